using System.Text.Json;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;

namespace Assent.Protocol.Tests.Jose;

public sealed class JwkTests
{
    // RFC 8037 Appendix A.1/A.2: the Ed25519 key (it is RFC 8032 §7.1 TEST 1).
    private const string D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    private const string X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    // RFC 8037 Appendix A.3: its RFC 7638 thumbprint.
    private const string Thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    [Fact]
    public void Thumbprint_matches_rfc8037_a3()
    {
        Assert.Equal(Thumbprint, Jwk.Thumbprint(X));
        // A.3 also prints the digest bytes: 90 fa ca fe a9 b1 55 66 98 54 0f 70 c0 11 7a 22 ...
        Assert.Equal("90facafea9b1556698540f70c0117a22ea37bd5cf3ed3c47093c1707282b4b89",
            Convert.ToHexStringLower(Base64Url.Decode(Thumbprint)));
    }

    [Fact]
    public void The_rfc8037_private_key_derives_the_rfc8037_public_key()
    {
        Assert.Equal(X, Base64Url.Encode(Ed25519.PublicKeyFromSeed(Base64Url.Decode(D))));
    }

    [Fact]
    public void ForEd25519_serializes_with_use_sig_and_no_alg()
    {
        var jwk = Jwk.ForEd25519(Base64Url.Decode(X));

        Assert.Equal($$"""{"kty":"OKP","crv":"Ed25519","x":"{{X}}","kid":"{{Thumbprint}}","use":"sig"}""",
            JsonSerializer.Serialize(jwk));
        Assert.DoesNotContain("\"alg\"", JsonSerializer.Serialize(new JwkSet([jwk])));
    }

    [Fact]
    public void ForEd25519_keeps_an_explicit_kid_and_can_leave_out_use()
    {
        var jwk = Jwk.ForEd25519(Base64Url.Decode(X), kid: "2026-01", use: null);
        Assert.Equal($$"""{"kty":"OKP","crv":"Ed25519","x":"{{X}}","kid":"2026-01"}""", JsonSerializer.Serialize(jwk));
    }

    [Fact]
    public void A_jwks_round_trips_through_json()
    {
        var set = new JwkSet([Jwk.ForEd25519(Base64Url.Decode(X))]);
        var json = JsonSerializer.Serialize(set);
        Assert.StartsWith("""{"keys":[{"kty":"OKP",""", json);

        var back = JsonSerializer.Deserialize<JwkSet>(json);
        Assert.NotNull(back);
        Assert.True(back.Keys.Single().TryGetEd25519(out var key));
        Assert.Equal(Base64Url.Decode(X), key);
    }

    [Theory]
    [InlineData("EC", "Ed25519", X)]
    [InlineData("OKP", "X25519", X)]
    [InlineData("OKP", "Ed448", X)]
    [InlineData("OKP", "Ed25519", null)]
    [InlineData("OKP", "Ed25519", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR")]
    [InlineData("OKP", "Ed25519", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")]
    [InlineData("OKP", "Ed25519", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo")]
    [InlineData("OKP", "Ed25519", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoA")]
    public void TryGetEd25519_refuses_anything_but_a_32_byte_okp_ed25519_key(string kty, string crv, string? x)
    {
        Assert.False(new Jwk(kty, crv, x).TryGetEd25519(out _));
    }
}
