using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

public sealed class AssertionTests
{
    private static readonly string[] Origins = [TestAuthenticator.Origin];
    private static readonly byte[] Challenge = RandomNumberGenerator.GetBytes(32);

    public static TheoryData<string> Kinds => ["ES256", "RS256", "EdDSA"];

    private static CoseKey KeyOf(TestAuthenticator authenticator)
    {
        Assert.True(CoseKey.TryParse(authenticator.CoseKey, out var key, out var error), error?.Detail);
        return key;
    }

    private static WebAuthnResult<VerifiedAssertion> Verify(
        TestAuthenticator authenticator,
        byte[] authData,
        byte[] clientData,
        byte[]? signature = null,
        uint storedSignCount = 0,
        bool requireUv = true) =>
        WebAuthnVerifier.VerifyAssertion(authData, clientData, signature ?? authenticator.SignCeremony(authData, clientData),
            KeyOf(authenticator), Challenge, Origins, TestAuthenticator.RpId, storedSignCount, requireUv);

    private static byte[] GetClientData() => TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_valid_assertion_verifies_and_reports_the_new_sign_count(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData(signCount: 42);

        var result = Verify(authenticator, authData, GetClientData(), storedSignCount: 41);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(42u, result.Value.SignCount);
        Assert.Equal(TestAuthenticator.Origin, result.Value.ClientData.Origin);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_signature_with_one_flipped_bit_is_refused(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData();
        var clientData = GetClientData();
        var signature = authenticator.SignCeremony(authData, clientData);
        signature[signature.Length / 2] ^= 0x01;

        Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(authenticator, authData, clientData, signature).Error?.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_truncated_signature_is_refused(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData();
        var clientData = GetClientData();
        var signature = authenticator.SignCeremony(authData, clientData)[..^1];

        Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(authenticator, authData, clientData, signature).Error?.Code);
    }

    [Fact]
    public void A_signature_over_different_client_data_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData();
        var signature = authenticator.SignCeremony(authData, TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, extra: ",\"x\":1"));

        Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(authenticator, authData, GetClientData(), signature).Error?.Code);
    }

    [Fact]
    public void Client_data_of_type_create_is_refused_as_wrong_type()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(authenticator, authenticator.AuthenticatorData(), TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge));

        Assert.Equal(WebAuthnFailures.WrongType, result.Error?.Code);
    }

    [Fact]
    public void A_different_challenge_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(authenticator, authenticator.AuthenticatorData(),
            TestAuthenticator.ClientDataJson(ClientData.TypeGet, [.. Challenge[..^1], (byte)(Challenge[^1] ^ 1)]));

        Assert.Equal(WebAuthnFailures.ChallengeMismatch, result.Error?.Code);
    }

    [Fact]
    public void An_origin_outside_the_allowed_set_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(authenticator, authenticator.AuthenticatorData(),
            TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, "http://assent.example"));

        Assert.Equal(WebAuthnFailures.OriginNotAllowed, result.Error?.Code);
    }

    [Fact]
    public void Authenticator_data_for_another_rp_id_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(authenticator, authenticator.AuthenticatorData(rpId: "example.com"), GetClientData());

        Assert.Equal(WebAuthnFailures.RpIdMismatch, result.Error?.Code);
    }

    [Fact]
    public void An_assertion_without_user_presence_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var result = Verify(authenticator, authenticator.AuthenticatorData(AuthenticatorFlags.UserVerified), GetClientData());

        Assert.Equal(WebAuthnFailures.UserNotPresent, result.Error?.Code);
    }

    [Fact]
    public void An_assertion_without_user_verification_is_refused_unless_not_required()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var authData = authenticator.AuthenticatorData(AuthenticatorFlags.UserPresent);

        Assert.Equal(WebAuthnFailures.UserNotVerified, Verify(authenticator, authData, GetClientData()).Error?.Code);
        Assert.True(Verify(authenticator, authData, GetClientData(), requireUv: false).Succeeded);
    }

    [Theory]
    [InlineData(10u, 10u)]
    [InlineData(10u, 9u)]
    [InlineData(1u, 1u)]
    public void A_sign_count_that_does_not_increase_is_reported_as_regression(uint stored, uint next)
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(authenticator, authenticator.AuthenticatorData(signCount: next), GetClientData(), storedSignCount: stored);

        Assert.Equal(WebAuthnFailures.SignCountRegression, result.Error?.Code);
    }

    [Theory]
    [InlineData(0u, 0u)]
    [InlineData(0u, 5u)]
    [InlineData(10u, 0u)]
    [InlineData(10u, 11u)]
    public void A_zero_or_increasing_sign_count_is_accepted(uint stored, uint next)
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(authenticator, authenticator.AuthenticatorData(signCount: next), GetClientData(), storedSignCount: stored);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(next, result.Value.SignCount);
    }

    [Fact]
    public void The_sdk_checks_evidence_against_a_challenge_it_derives_and_a_key_from_a_jwk()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        // The SDK derives the challenge itself: SHA-256(decision ‖ 0x00 ‖ payload).
        byte[] expected = SHA256.HashData([.. Encoding.UTF8.GetBytes("approve"), 0x00, .. Encoding.UTF8.GetBytes("{\"amount\":10}")]);
        var authData = authenticator.AuthenticatorData();
        var clientData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, expected);
        var signature = authenticator.SignCeremony(authData, clientData);
        Assert.True(CoseKey.TryFromJwk(KeyOf(authenticator).ToJwk(), out var key, out _));

        var result = WebAuthnVerifier.VerifyAssertionSignature(authData, clientData, signature, key, expected);
        var otherDecision = SHA256.HashData([.. Encoding.UTF8.GetBytes("deny"), 0x00, .. Encoding.UTF8.GetBytes("{\"amount\":10}")]);
        var tampered = WebAuthnVerifier.VerifyAssertionSignature(authData, clientData, signature, key, otherDecision);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(WebAuthnFailures.ChallengeMismatch, tampered.Error?.Code);
    }

    [Fact]
    public void The_sdk_entry_point_still_refuses_missing_user_verification()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var authData = authenticator.AuthenticatorData(AuthenticatorFlags.UserPresent);
        var clientData = GetClientData();

        var result = WebAuthnVerifier.VerifyAssertionSignature(authData, clientData, authenticator.SignCeremony(authData, clientData),
            KeyOf(authenticator), Challenge);

        Assert.Equal(WebAuthnFailures.UserNotVerified, result.Error?.Code);
    }

    [Fact]
    public void Authenticator_data_with_trailing_bytes_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        byte[] authData = [.. authenticator.AuthenticatorData(), 0x00];

        Assert.Equal(WebAuthnFailures.MalformedAuthenticatorData, Verify(authenticator, authData, GetClientData()).Error?.Code);
    }

    [Fact]
    public void Client_data_with_duplicate_members_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var clientData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, extra: ",\"type\":\"webauthn.get\"");

        Assert.Equal(WebAuthnFailures.MalformedClientData, Verify(authenticator, authenticator.AuthenticatorData(), clientData).Error?.Code);
    }
}
