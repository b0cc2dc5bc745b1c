using System.Text;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;

namespace Assent.Protocol.Tests.Jose;

public sealed class JwsTests
{
    // RFC 8037 Appendix A.1: the Ed25519 key used by the A.4 JWS example.
    private static readonly byte[] Seed = Base64Url.Decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    private static readonly byte[] PublicKey = Base64Url.Decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");

    private static string Token(string kid = "k1") =>
        Jws.Sign(Jws.EncodeHeader(kid, Jws.AccessTokenType), """{"sub":"did:web:example.com:users:u"}"""u8, Seed);

    private static string Part(string json) => Base64Url.Encode(Encoding.UTF8.GetBytes(json));

    private static string WithHeader(string headerJson)
    {
        var token = Token();
        return Part(headerJson) + token[token.IndexOf('.')..];
    }

    [Fact]
    public void Signs_the_rfc8037_a4_example_exactly()
    {
        // RFC 8037 Appendix A.4: {"alg":"EdDSA"} over "Example of Ed25519 signing".
        const string expected = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." +
                                "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        Assert.Equal(expected, Jws.Sign("eyJhbGciOiJFZERTQSJ9", "Example of Ed25519 signing"u8, Seed));

        Assert.True(Jws.TryParse(expected, Jws.DefaultMaxLength, out var parts, out _));
        Assert.True(Jws.VerifySignature(expected, parts!, PublicKey));
        Assert.Equal(new JwsHeader("EdDSA", null, null), parts!.Header);
    }

    [Fact]
    public void Sign_parse_and_verify_round_trip()
    {
        var token = Token("key-2024");

        Assert.True(Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out var error));
        Assert.Null(error);
        Assert.Equal(new JwsHeader(Jws.EdDsa, "key-2024", Jws.AccessTokenType), parts!.Header);
        Assert.Equal("""{"sub":"did:web:example.com:users:u"}""", Encoding.UTF8.GetString(parts.Payload));
        Assert.Equal(64, parts.Signature.Length);
        Assert.Equal(token.LastIndexOf('.'), parts.SigningInputLength);
        Assert.True(Jws.VerifySignature(token, parts, PublicKey));
    }

    [Fact]
    public void The_header_is_exactly_alg_kid_typ_in_that_order()
    {
        var header = Jws.EncodeHeader("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", Jws.AccessTokenType);
        Assert.Equal("""{"alg":"EdDSA","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k","typ":"at+jwt"}""",
            Encoding.UTF8.GetString(Base64Url.Decode(header)));
    }

    [Fact]
    public void Another_key_does_not_verify()
    {
        var token = Token();
        Assert.True(Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out _));
        Assert.False(Jws.VerifySignature(token, parts!, Ed25519.PublicKeyFromSeed(Ed25519.NewSeed())));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(511)]
    public void A_flipped_signature_bit_parses_but_does_not_verify(int bit)
    {
        var token = Token();
        var dot = token.LastIndexOf('.');
        var signature = Base64Url.Decode(token.AsSpan(dot + 1));
        signature[bit / 8] ^= (byte)(1 << (bit % 8));
        var tampered = token[..(dot + 1)] + Base64Url.Encode(signature);

        Assert.True(Jws.TryParse(tampered, Jws.DefaultMaxLength, out var parts, out _));
        Assert.False(Jws.VerifySignature(tampered, parts!, PublicKey));
    }

    [Fact]
    public void A_changed_payload_does_not_verify()
    {
        var token = Token();
        var parts = token.Split('.');
        var forged = $"{parts[0]}.{Part("""{"sub":"did:web:example.com:users:mallory"}""")}.{parts[2]}";
        Assert.True(Jws.TryParse(forged, Jws.DefaultMaxLength, out var parsed, out _));
        Assert.False(Jws.VerifySignature(forged, parsed!, PublicKey));
    }

    public static TheoryData<string> Malformed()
    {
        var token = Token();
        var p = token.Split('.');
        return new TheoryData<string>
        {
            "",
            ".",
            "..",
            $"{p[0]}.{p[1]}",
            $"{p[0]}.{p[1]}.{p[2]}.{p[2]}",
            $"{p[0]}.{p[1]}.{p[2]}.",
            $".{p[1]}.{p[2]}",
            $"{p[0]}..{p[2]}",
            $"{p[0]}.{p[1]}.",
            $"{p[0]}.{p[1]}.{p[2]}==",
            $"{p[0]}=.{p[1]}.{p[2]}",
            $"{p[0]}.{p[1]}.{p[2][..^2]}+/",
            $"{p[0]}.{p[1]} .{p[2]}",
            $"{p[0]}.{p[1]}.{Base64Url.Encode(new byte[63])}",
            $"{p[0]}.{p[1]}.{Base64Url.Encode(new byte[65])}",
            $"{Part("not json")}.{p[1]}.{p[2]}",
            $"{Part("[]")}.{p[1]}.{p[2]}",
            $"{Part("""["EdDSA"]""")}.{p[1]}.{p[2]}",
            $"{Part("\"EdDSA\"")}.{p[1]}.{p[2]}",
            $"{Part("""{"alg":"EdDSA"}x""")}.{p[1]}.{p[2]}",
            $"{Part("""{"alg":"EdDSA"}{}""")}.{p[1]}.{p[2]}",
            $"{Part("""{"alg":"EdDSA" """)}.{p[1]}.{p[2]}",
            $"{Part("""{"alg":1}""")}.{p[1]}.{p[2]}",
            $"{Part("""{"alg":"EdDSA","kid":null}""")}.{p[1]}.{p[2]}",
            $"{Part("""{"alg":"EdDSA","typ":["at+jwt"]}""")}.{p[1]}.{p[2]}",
            $"{Part("""{"alg":"EdDSA","crit":["exp"],"exp":1}""")}.{p[1]}.{p[2]}",
            $"{Part("""{"crit":[],"alg":"EdDSA"}""")}.{p[1]}.{p[2]}",
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_tokens_are_refused_with_a_reason(string token)
    {
        Assert.False(Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out var error));
        Assert.Null(parts);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void A_token_over_the_maximum_length_is_refused_before_parsing()
    {
        var token = Token();
        Assert.True(Jws.TryParse(token, token.Length, out _, out _));
        Assert.False(Jws.TryParse(token, token.Length - 1, out _, out var error));
        Assert.Equal("token is larger than allowed", error);

        var huge = new string('A', Jws.DefaultMaxLength + 1);
        Assert.False(Jws.TryParse(huge, Jws.DefaultMaxLength, out _, out _));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS256")]
    [InlineData("RS256")]
    public void Parsing_does_not_judge_alg_but_shows_it(string alg)
    {
        // RFC 8725 §3.1: the caller pins EdDSA; TryParse only reports what the header says.
        var token = WithHeader($$"""{"alg":"{{alg}}","kid":"k1","typ":"at+jwt"}""");
        Assert.True(Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out _));
        Assert.Equal(alg, parts!.Header.Alg);
    }

    [Fact]
    public void Unknown_header_members_are_skipped_and_missing_ones_are_null()
    {
        var token = WithHeader("""{"x5u":"https://evil.example/","jku":{"a":[1,2,{"b":null}]},"typ":"JWT"}""");
        Assert.True(Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out _));
        Assert.Equal(new JwsHeader(null, null, Jws.JwtType), parts!.Header);
    }

    [Fact]
    public void A_signature_with_non_zero_trailing_bits_is_refused()
    {
        // 64 bytes take 86 characters; the last one carries 4 unused bits. Accepting them
        // set would give one signature several spellings (RFC 4648 §3.5).
        var token = Token();
        var last = token[^1];
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        var other = alphabet[alphabet.IndexOf(last) | 1];
        Assert.NotEqual(last, other);
        Assert.False(Jws.TryParse(token[..^1] + other, Jws.DefaultMaxLength, out _, out _));
    }
}
