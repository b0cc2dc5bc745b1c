using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

/// <summary>The offline check of a token's webauthn evidence: a JWK from a DID document, a challenge the verifier derives.</summary>
public sealed class WebAuthnVerifierTests
{
    private static readonly byte[] Challenge = SHA256.HashData([.. "approve"u8, 0x00, .. "{\"amount\":10}"u8]);

    public static TheoryData<string> Kinds => ["ES256", "RS256", "EdDSA"];

    private static WebAuthnResult<VerifiedAssertion> Verify(TestPasskey passkey, byte[] authData, byte[] clientData, byte[]? signature = null,
        string? rpId = null, string[]? origins = null) =>
        WebAuthnVerifier.VerifyAssertionSignature(authData, clientData, signature ?? passkey.Sign(authData, clientData), passkey.Jwk, Challenge, rpId, origins);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_valid_assertion_verifies_with_the_jwk_and_reports_flags_and_counter(string kind)
    {
        using var passkey = TestPasskey.Create(kind);
        var authData = TestPasskey.AuthenticatorData(signCount: 0x01020304);

        var result = Verify(passkey, authData, TestPasskey.ClientDataJson(Challenge), rpId: TestPasskey.RpId, origins: [TestPasskey.Origin]);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(0x01020304u, result.Value.SignCount);
        Assert.Equal(AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified, result.Value.Flags);
        Assert.Equal(TestPasskey.Origin, result.Value.ClientData.Origin);
        Assert.True(WebAuthnVerifier.IsUsableKey(passkey.Jwk, out _));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_signature_with_one_flipped_bit_or_truncated_is_refused(string kind)
    {
        using var passkey = TestPasskey.Create(kind);
        var authData = TestPasskey.AuthenticatorData();
        var clientData = TestPasskey.ClientDataJson(Challenge);
        var signature = passkey.Sign(authData, clientData);
        var flipped = signature.ToArray();
        flipped[flipped.Length / 2] ^= 0x01;

        Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidSignature, "assertion signature does not verify"), Verify(passkey, authData, clientData, flipped).Error);
        Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidSignature, "assertion signature does not verify"),
            Verify(passkey, authData, clientData, signature[..^1]).Error);
    }

    [Fact]
    public void An_es256_signature_that_is_not_strict_der_is_refused()
    {
        using var passkey = TestPasskey.Create("ES256");
        var authData = TestPasskey.AuthenticatorData();
        var clientData = TestPasskey.ClientDataJson(Challenge);
        var signature = passkey.Sign(authData, clientData);
        signature[0] = 0x31; // a SET, not a SEQUENCE

        Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(passkey, authData, clientData, signature).Error?.Code);
    }

    [Fact]
    public void An_assertion_for_the_other_decision_is_a_challenge_mismatch()
    {
        using var passkey = TestPasskey.Create("ES256");
        var deny = SHA256.HashData([.. "deny"u8, 0x00, .. "{\"amount\":10}"u8]);

        var result = Verify(passkey, TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(deny));

        Assert.Equal(new WebAuthnError(WebAuthnFailures.ChallengeMismatch, "challenge is not the one expected"), result.Error);
    }

    [Fact]
    public void Client_data_of_type_create_is_refused_as_wrong_type()
    {
        using var passkey = TestPasskey.Create("EdDSA");
        var result = Verify(passkey, TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(Challenge, ClientData.TypeCreate));

        Assert.Equal(new WebAuthnError(WebAuthnFailures.WrongType, "client data type is webauthn.create, not webauthn.get"), result.Error);
    }

    [Fact]
    public void Origin_and_rp_id_are_checked_when_given()
    {
        using var passkey = TestPasskey.Create("EdDSA");
        var authData = TestPasskey.AuthenticatorData(rpId: "example.com");
        var clientData = TestPasskey.ClientDataJson(Challenge, origin: "https://evil.example");

        Assert.True(Verify(passkey, authData, clientData).Succeeded);
        Assert.Equal(new WebAuthnError(WebAuthnFailures.OriginNotAllowed, "origin https://evil.example is not allowed"),
            Verify(passkey, authData, clientData, origins: [TestPasskey.Origin]).Error);
        Assert.Equal(new WebAuthnError(WebAuthnFailures.RpIdMismatch, "rpIdHash is not SHA-256 of assent.example"),
            Verify(passkey, authData, clientData, rpId: TestPasskey.RpId).Error);
        Assert.True(Verify(passkey, authData, clientData, rpId: "example.com", origins: ["https://evil.example"]).Succeeded);
    }

    [Fact]
    public void A_cross_origin_ceremony_is_refused()
    {
        using var passkey = TestPasskey.Create("EdDSA");
        var clientData = Encoding.UTF8.GetBytes(
            $"{{\"type\":\"webauthn.get\",\"challenge\":\"{Base64Url.Encode(Challenge)}\",\"origin\":\"{TestPasskey.Origin}\",\"crossOrigin\":true}}");

        // WebAuthn L3 §5.8.1: topOrigin is only present for a ceremony in a cross-origin iframe; refused even with crossOrigin false.
        var framed = TestPasskey.ClientDataJson(Challenge, extra: ",\"topOrigin\":\"https://host.example\"");
        var refusal = new WebAuthnError(WebAuthnFailures.CrossOriginRefused, "the ceremony ran in a cross-origin iframe");

        Assert.Equal(refusal, Verify(passkey, TestPasskey.AuthenticatorData(), clientData).Error);
        Assert.Equal(refusal, Verify(passkey, TestPasskey.AuthenticatorData(), framed).Error);
    }

    [Theory]
    [InlineData(AuthenticatorFlags.UserVerified, WebAuthnFailures.UserNotPresent, "the UP flag is not set")]
    [InlineData(AuthenticatorFlags.UserPresent, WebAuthnFailures.UserNotVerified, "the UV flag is not set")]
    [InlineData(AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified | AuthenticatorFlags.BackupState, WebAuthnFailures.InvalidBackupFlags,
        "BS is set without BE")]
    public void Flags_are_refused_without_user_presence_and_verification_or_with_bs_but_not_be(AuthenticatorFlags flags, string code, string detail)
    {
        using var passkey = TestPasskey.Create("EdDSA");

        Assert.Equal(new WebAuthnError(code, detail), Verify(passkey, TestPasskey.AuthenticatorData(flags), TestPasskey.ClientDataJson(Challenge)).Error);
    }

    [Fact]
    public void A_backed_up_passkey_verifies_and_user_verification_is_waived_only_when_the_caller_says_so()
    {
        using var passkey = TestPasskey.Create("ES256");
        var clientData = TestPasskey.ClientDataJson(Challenge);
        var backedUp = TestPasskey.AuthenticatorData(
            AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified | AuthenticatorFlags.BackupEligible | AuthenticatorFlags.BackupState);
        var presentOnly = TestPasskey.AuthenticatorData(AuthenticatorFlags.UserPresent);

        Assert.True(Verify(passkey, backedUp, clientData).Succeeded);
        var waived = WebAuthnVerifier.VerifyAssertionSignature(presentOnly, clientData, passkey.Sign(presentOnly, clientData), passkey.Jwk, Challenge,
            requireUserVerification: false);
        Assert.True(waived.Succeeded, waived.Error?.Detail);
        Assert.Equal(AuthenticatorFlags.UserPresent, waived.Value.Flags);
        // The default requires it.
        Assert.Equal(WebAuthnFailures.UserNotVerified,
            WebAuthnVerifier.VerifyAssertionSignature(presentOnly, clientData, passkey.Sign(presentOnly, clientData), passkey.Jwk, Challenge).Error?.Code);
    }

    [Fact]
    public void Short_authenticator_data_and_client_data_with_duplicate_members_are_refused()
    {
        using var passkey = TestPasskey.Create("ES256");
        var clientData = TestPasskey.ClientDataJson(Challenge);
        var duplicate = TestPasskey.ClientDataJson(Challenge, extra: ",\"type\":\"webauthn.get\"");

        Assert.Equal(new WebAuthnError(WebAuthnFailures.MalformedAuthenticatorData, "authenticator data is 36 bytes, shorter than 37"),
            Verify(passkey, TestPasskey.AuthenticatorData()[..36], clientData).Error);
        Assert.Equal(WebAuthnFailures.MalformedClientData, Verify(passkey, TestPasskey.AuthenticatorData(), duplicate).Error?.Code);
    }

    [Theory]
    [InlineData("""{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}""", WebAuthnFailures.InvalidKey, "a P-256 JWK needs x and y of 32 bytes each")]
    [InlineData("""{"kty":"EC","crv":"P-256","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}""", WebAuthnFailures.InvalidKey,
        "a P-256 JWK needs x and y of 32 bytes each")]
    [InlineData("""{"kty":"EC","crv":"P-256","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","y":"AA"}""", WebAuthnFailures.InvalidKey,
        "a P-256 JWK needs x and y of 32 bytes each")]
    [InlineData("""{"kty":"EC","crv":"P-256","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}""",
        WebAuthnFailures.InvalidKey, "the P-256 point is not on the curve")]
    [InlineData("""{"kty":"OKP","crv":"Ed25519","x":"AAAA"}""", WebAuthnFailures.InvalidKey, "an Ed25519 JWK needs an x of 32 bytes")]
    [InlineData("""{"kty":"RSA","n":"AQAB","e":"AQAB"}""", WebAuthnFailures.InvalidKey, "an RSA modulus of 17 bits is outside 2048–8192, or n or e is even")]
    [InlineData("""{"kty":"RSA","e":"AQAB"}""", WebAuthnFailures.InvalidKey, "an RSA JWK needs n and e as minimal big-endian integers")]
    [InlineData("""{"kty":"RSA","n":"AQAB"}""", WebAuthnFailures.InvalidKey, "an RSA JWK needs n and e as minimal big-endian integers")]
    [InlineData("""{"kty":"RSA","n":"","e":"AQAB"}""", WebAuthnFailures.InvalidKey, "an RSA JWK needs n and e as minimal big-endian integers")]
    [InlineData("""{"kty":"RSA","n":"AQAB","e":""}""", WebAuthnFailures.InvalidKey, "an RSA JWK needs n and e as minimal big-endian integers")]
    [InlineData("""{"kty":"RSA","n":"AAEAAQ","e":"AQAB"}""", WebAuthnFailures.InvalidKey, "an RSA JWK needs n and e as minimal big-endian integers")]
    [InlineData("""{"kty":"RSA","n":"AQAB","e":"AAEAAQ"}""", WebAuthnFailures.InvalidKey, "an RSA JWK needs n and e as minimal big-endian integers")]
    [InlineData("""{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}""", WebAuthnFailures.UnsupportedAlgorithm, "JWK kty EC with crv P-384 is not supported")]
    [InlineData("""{"kty":"OKP","crv":"X25519","x":"AA"}""", WebAuthnFailures.UnsupportedAlgorithm, "JWK kty OKP with crv X25519 is not supported")]
    [InlineData("""{"kty":"oct","k":"AA"}""", WebAuthnFailures.UnsupportedAlgorithm, "JWK kty oct with crv (none) is not supported")]
    public void Jwks_that_are_not_usable_keys_are_refused(string json, string code, string detail)
    {
        var jwk = System.Text.Json.JsonSerializer.Deserialize<Jwk>(json)!;

        Assert.False(WebAuthnVerifier.IsUsableKey(jwk, out var error));
        Assert.Equal(new WebAuthnError(code, detail), error);
        var result = WebAuthnVerifier.VerifyAssertionSignature(TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(Challenge), new byte[64], jwk, Challenge);
        Assert.Equal(new WebAuthnError(code, detail), result.Error);
    }

    /// <summary>An RSA modulus of exactly <paramref name="bits"/> bits (top bit set), odd unless told otherwise.</summary>
    private static byte[] Modulus(int bits, bool odd = true)
    {
        var n = new byte[(bits + 7) / 8];
        RandomNumberGenerator.Fill(n);
        var top = (bits - 1) % 8;
        n[0] = (byte)((n[0] & ((1 << top) - 1)) | (1 << top));
        n[^1] = (byte)(odd ? n[^1] | 1 : n[^1] & 0xFE);
        return n;
    }

    [Theory]
    [InlineData(2048, true, new byte[] { 1, 0, 1 }, true)]
    [InlineData(8192, true, new byte[] { 1, 0, 1 }, true)]
    [InlineData(2048, true, new byte[] { 1, 0, 0, 1 }, true)]
    [InlineData(2047, true, new byte[] { 1, 0, 1 }, false)]
    [InlineData(8193, true, new byte[] { 1, 0, 1 }, false)]
    [InlineData(2048, false, new byte[] { 1, 0, 1 }, false)]
    [InlineData(2048, true, new byte[] { 1, 0, 0 }, false)]
    [InlineData(2048, true, new byte[] { 1, 0, 0, 0, 1 }, false)]
    public void Rsa_keys_are_usable_only_from_2048_to_8192_bits_with_an_odd_modulus_and_exponent_of_at_most_four_bytes(int bits, bool oddModulus, byte[] exponent, bool usable)
    {
        var jwk = new Jwk("RSA", null, null, N: Base64Url.Encode(Modulus(bits, oddModulus)), E: Base64Url.Encode(exponent));

        Assert.Equal(usable, WebAuthnVerifier.IsUsableKey(jwk, out var error));
        if (!usable)
        {
            // An exponent of more than four bytes fails the encoding check, before the size is looked at.
            var detail = exponent.Length > 4
                ? "an RSA JWK needs n and e as minimal big-endian integers"
                : $"an RSA modulus of {bits} bits is outside 2048–8192, or n or e is even";
            Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidKey, detail), error);
        }
    }
}
