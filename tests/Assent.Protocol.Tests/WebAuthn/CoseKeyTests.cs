using System.Security.Cryptography;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

public sealed class CoseKeyTests
{
    private static readonly byte[] Message = "assent"u8.ToArray();

    public static TheoryData<string> Kinds => ["ES256", "RS256", "EdDSA"];

    private static WebAuthnError Refusal(object coseKey)
    {
        Assert.False(CoseKey.TryParse(TestCbor.Encode(coseKey), out _, out var error));
        return error;
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_parsed_key_verifies_its_own_signatures_and_survives_a_jwk_round_trip(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        Assert.True(CoseKey.TryParse(authenticator.CoseKey, out var key, out var error), error?.Detail);
        Assert.True(CoseKey.TryFromJwk(key.ToJwk(), out var fromJwk, out error), error?.Detail);
        var signature = authenticator.Sign(Message);

        Assert.Equal(authenticator.Algorithm, key.Algorithm);
        Assert.Equal(key.Algorithm, fromJwk.Algorithm);
        Assert.Equal(key.ToJwk(), fromJwk.ToJwk());
        Assert.True(key.VerifySignature(Message, signature));
        Assert.True(fromJwk.VerifySignature(Message, signature));
        Assert.False(key.VerifySignature("other"u8, signature));
    }

    [Fact]
    public void Jwks_carry_the_members_of_their_key_type()
    {
        using var ec = TestAuthenticator.Create("ES256");
        using var rsa = TestAuthenticator.Create("RS256");
        using var okp = TestAuthenticator.Create("EdDSA");
        Assert.True(CoseKey.TryParse(ec.CoseKey, out var ecKey, out _));
        Assert.True(CoseKey.TryParse(rsa.CoseKey, out var rsaKey, out _));
        Assert.True(CoseKey.TryParse(okp.CoseKey, out var okpKey, out _));

        Assert.Equal(("EC", "P-256", 43, 43), (ecKey.ToJwk().Kty, ecKey.ToJwk().Crv, ecKey.ToJwk().X?.Length, ecKey.ToJwk().Y?.Length));
        Assert.Equal(("OKP", "Ed25519", 43), (okpKey.ToJwk().Kty, okpKey.ToJwk().Crv, okpKey.ToJwk().X?.Length));
        Assert.Equal(("RSA", "AQAB", 342), (rsaKey.ToJwk().Kty, rsaKey.ToJwk().E, rsaKey.ToJwk().N?.Length));
    }

    [Fact]
    public void An_ec2_key_claiming_eddsa_is_refused_as_unsupported()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var map = authenticator.CoseKeyMap();
        var swapped = TestCbor.Map([.. map.Entries.Select(e => e.Key is 3 ? (3, (object?)-8) : e)]);

        Assert.Equal(WebAuthnFailures.UnsupportedAlgorithm, Refusal(swapped).Code);
    }

    [Fact]
    public void An_okp_key_claiming_es256_is_refused_as_unsupported()
    {
        Assert.Equal(WebAuthnFailures.UnsupportedAlgorithm,
            Refusal(TestCbor.Map((1, 1), (3, -7), (-1, 6), (-2, new byte[32]))).Code);
    }

    [Fact]
    public void A_key_on_another_curve_is_refused_as_unsupported()
    {
        Assert.Equal(WebAuthnFailures.UnsupportedAlgorithm,
            Refusal(TestCbor.Map((1, 2), (3, -7), (-1, 2), (-2, new byte[48]), (-3, new byte[48]))).Code);
    }

    [Fact]
    public void A_key_without_alg_is_refused()
    {
        Assert.Equal(WebAuthnFailures.InvalidKey, Refusal(TestCbor.Map((1, 1), (-1, 6), (-2, new byte[32]))).Code);
    }

    [Theory]
    [InlineData(31)]
    [InlineData(33)]
    public void An_ed25519_key_of_the_wrong_length_is_refused(int length)
    {
        Assert.Equal(WebAuthnFailures.InvalidKey, Refusal(TestCbor.Map((1, 1), (3, -8), (-1, 6), (-2, new byte[length]))).Code);
    }

    [Fact]
    public void A_p256_coordinate_of_the_wrong_length_is_refused()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = ecdsa.ExportParameters(false).Q;

        Assert.Equal(WebAuthnFailures.InvalidKey,
            Refusal(TestCbor.Map((1, 2), (3, -7), (-1, 1), (-2, (q.X ?? [])[1..]), (-3, q.Y))).Code);
    }

    [Fact]
    public void A_point_off_the_p256_curve_is_refused()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = ecdsa.ExportParameters(false).Q;
        var y = (q.Y ?? []).ToArray();
        y[^1] ^= 1;

        Assert.Equal(WebAuthnFailures.InvalidKey, Refusal(TestCbor.Map((1, 2), (3, -7), (-1, 1), (-2, q.X), (-3, y))).Code);
    }

    [Fact]
    public void A_compressed_p256_point_is_refused()
    {
        Assert.Equal(WebAuthnFailures.InvalidKey, Refusal(TestCbor.Map((1, 2), (3, -7), (-1, 1), (-2, new byte[32]), (-3, true))).Code);
    }

    [Fact]
    public void An_rsa_modulus_below_2048_bits_is_refused()
    {
        using var rsa = RSA.Create(1024);
        var p = rsa.ExportParameters(false);

        Assert.Equal(WebAuthnFailures.InvalidKey, Refusal(TestCbor.Map((1, 3), (3, -257), (-1, p.Modulus), (-2, p.Exponent))).Code);
    }

    [Fact]
    public void An_rsa_modulus_with_a_leading_zero_octet_is_refused()
    {
        using var rsa = RSA.Create(2048);
        var p = rsa.ExportParameters(false);

        Assert.Equal(WebAuthnFailures.InvalidKey,
            Refusal(TestCbor.Map((1, 3), (3, -257), (-1, new byte[] { 0 }.Concat(p.Modulus ?? []).ToArray()), (-2, p.Exponent))).Code);
    }

    [Fact]
    public void An_rsa_key_claiming_ps256_is_refused_as_unsupported()
    {
        using var rsa = RSA.Create(2048);
        var p = rsa.ExportParameters(false);

        Assert.Equal(WebAuthnFailures.UnsupportedAlgorithm,
            Refusal(TestCbor.Map((1, 3), (3, -37), (-1, p.Modulus), (-2, p.Exponent))).Code);
    }

    [Fact]
    public void A_key_carrying_a_private_component_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");

        Assert.Equal(WebAuthnFailures.InvalidKey, Refusal(authenticator.CoseKeyMap((-4, new byte[32]))).Code);
    }

    [Fact]
    public void A_key_with_a_kid_is_accepted()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");

        Assert.True(CoseKey.TryParse(TestCbor.Encode(authenticator.CoseKeyMap((2, new byte[] { 1 }))), out _, out _));
    }

    [Fact]
    public void A_symmetric_key_type_is_refused_as_unsupported()
    {
        Assert.Equal(WebAuthnFailures.UnsupportedAlgorithm, Refusal(TestCbor.Map((1, 4), (3, 5), (-1, new byte[32]))).Code);
    }

    [Fact]
    public void Jwks_with_unknown_curves_or_bad_coordinates_are_refused()
    {
        Assert.False(CoseKey.TryFromJwk(new Jwk("EC", "P-384", Base64Url.Encode(new byte[48]), Base64Url.Encode(new byte[48])), out _, out var e1));
        Assert.False(CoseKey.TryFromJwk(new Jwk("OKP", "X25519", Base64Url.Encode(new byte[32])), out _, out var e2));
        Assert.False(CoseKey.TryFromJwk(new Jwk("OKP", "Ed25519", "not base64url!"), out _, out var e3));
        Assert.False(CoseKey.TryFromJwk(new Jwk("EC", "P-256", Base64Url.Encode(new byte[32]), null), out _, out var e4));

        Assert.Equal(WebAuthnFailures.UnsupportedAlgorithm, e1.Code);
        Assert.Equal(WebAuthnFailures.UnsupportedAlgorithm, e2.Code);
        Assert.Equal(WebAuthnFailures.InvalidKey, e3.Code);
        Assert.Equal(WebAuthnFailures.InvalidKey, e4.Code);
    }

    [Fact]
    public void Es256_signatures_must_be_strict_der()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        Assert.True(CoseKey.TryParse(authenticator.CoseKey, out var key, out _));
        var der = authenticator.Sign(Message);
        var rLength = der[3];
        // Re-encode r with a redundant leading zero octet: BER would accept it, DER does not.
        byte[] padded = [0x30, (byte)(der[1] + 1), 0x02, (byte)(rLength + 1), 0x00, .. der[4..]];
        byte[] longForm = [0x30, 0x81, der[1], .. der[2..]];

        Assert.True(key.VerifySignature(Message, der));
        Assert.False(key.VerifySignature(Message, [.. der, 0x00]));
        Assert.False(key.VerifySignature(Message, padded));
        Assert.False(key.VerifySignature(Message, longForm));
        Assert.False(key.VerifySignature(Message, new byte[64]));
        Assert.False(key.VerifySignature(Message, []));
    }
}
