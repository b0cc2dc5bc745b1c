using System.Security.Cryptography;
using Assent.Protocol.WebAuthn;
using Assent.Server.Identity;

namespace Assent.Server.Tests.Passkeys;

public sealed class PasskeyAssertionTests
{
    private static readonly byte[] Challenge = RandomNumberGenerator.GetBytes(32);

    public static TheoryData<string> Kinds => ["ES256", "RS256", "EdDSA"];

    private static async Task<WebAuthnResult<PasskeyAssertion>> VerifyAsync(TestAuthenticator authenticator, byte[] authData, byte[] clientData,
        byte[]? signature = null, long storedSignCount = 0) =>
        await (await TestCeremonies.NoneAsync()).VerifyAssertionAsync(authenticator.Stored(storedSignCount), authData, clientData,
            signature ?? authenticator.SignCeremony(authData, clientData), Challenge, default);

    private static byte[] GetClientData() => TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_valid_assertion_verifies_and_reports_the_new_sign_count(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);

        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(signCount: 42), GetClientData(), storedSignCount: 41);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(42u, result.Value.SignCount);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_signature_with_one_flipped_bit_is_refused(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData();
        var clientData = GetClientData();
        var signature = authenticator.SignCeremony(authData, clientData);
        signature[signature.Length / 2] ^= 0x01;

        Assert.Equal(WebAuthnFailures.InvalidSignature, (await VerifyAsync(authenticator, authData, clientData, signature)).Error?.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_truncated_signature_is_refused(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData();
        var clientData = GetClientData();
        var signature = authenticator.SignCeremony(authData, clientData)[..^1];

        Assert.False((await VerifyAsync(authenticator, authData, clientData, signature)).Succeeded);
    }

    [Fact]
    public async Task A_signature_over_different_client_data_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData();
        var signature = authenticator.SignCeremony(authData, TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, extra: ",\"x\":1"));

        Assert.Equal(WebAuthnFailures.InvalidSignature, (await VerifyAsync(authenticator, authData, GetClientData(), signature)).Error?.Code);
    }

    [Fact]
    public async Task Client_data_of_type_create_is_refused_as_wrong_type()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(), TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge));

        Assert.Equal(WebAuthnFailures.WrongType, result.Error?.Code);
    }

    [Fact]
    public async Task A_different_challenge_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(),
            TestAuthenticator.ClientDataJson(ClientData.TypeGet, [.. Challenge[..^1], (byte)(Challenge[^1] ^ 1)]));

        Assert.Equal(WebAuthnFailures.ChallengeMismatch, result.Error?.Code);
    }

    [Fact]
    public async Task An_origin_outside_the_allowed_set_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(),
            TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, "http://assent.example"));

        Assert.Equal(WebAuthnFailures.OriginNotAllowed, result.Error?.Code);
    }

    [Fact]
    public async Task Authenticator_data_for_another_rp_id_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(rpId: "example.com"), GetClientData());

        Assert.Equal(WebAuthnFailures.RpIdMismatch, result.Error?.Code);
    }

    [Fact]
    public async Task An_assertion_without_user_presence_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(AuthenticatorFlags.UserVerified), GetClientData());

        Assert.Equal(WebAuthnFailures.UserNotPresent, result.Error?.Code);
    }

    [Fact]
    public async Task An_assertion_without_user_verification_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(AuthenticatorFlags.UserPresent), GetClientData());

        Assert.Equal(WebAuthnFailures.UserNotVerified, result.Error?.Code);
        // Fido2 refuses it (WebAuthn L3 §7.2, the UV flag step), before the offline check that demands user verification again.
        Assert.DoesNotContain("checked offline", result.Error?.Detail);
    }

    [Theory]
    [InlineData(10u, 10u)]
    [InlineData(10u, 9u)]
    [InlineData(1u, 1u)]
    [InlineData(5u, 0u)]
    [InlineData(1u, 0u)]
    public async Task A_sign_count_that_does_not_increase_is_a_regression_even_when_it_falls_to_zero(uint stored, uint next)
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(signCount: next), GetClientData(), storedSignCount: stored);

        Assert.Equal(WebAuthnFailures.SignCountRegression, result.Error?.Code);
        Assert.Equal($"signature counter {next} is not above the stored {stored}", result.Error?.Detail);
    }

    [Theory]
    [InlineData(0u, 0u)]
    [InlineData(0u, 5u)]
    [InlineData(10u, 11u)]
    public async Task A_counter_that_increases_or_is_always_zero_is_accepted(uint stored, uint next)
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(signCount: next), GetClientData(), storedSignCount: stored);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(next, result.Value.SignCount);
    }

    [Fact]
    public async Task A_stored_key_that_is_not_a_usable_jwk_is_refused_as_invalid_key()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData();
        var clientData = GetClientData();
        var ceremonies = await TestCeremonies.NoneAsync();

        foreach (var stored in new[] { "{}", """{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}""", """{"kty":"oct","k":"AA"}""", "not json", "null" })
        {
            var result = await ceremonies.VerifyAssertionAsync(new StoredPasskey(authenticator.CredentialId, stored, 0), authData, clientData,
                authenticator.SignCeremony(authData, clientData), Challenge, default);
            Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidKey, "the stored passkey key is unusable"), result.Error);
        }
        var withoutId = await ceremonies.VerifyAssertionAsync(new StoredPasskey([], authenticator.PublicJwk, 0), authData, clientData,
            authenticator.SignCeremony(authData, clientData), Challenge, default);
        Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidKey, "the stored passkey key is unusable"), withoutId.Error);
    }

    [Fact]
    public async Task Authenticator_data_with_trailing_bytes_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        byte[] authData = [.. authenticator.AuthenticatorData(), 0x00];

        Assert.Equal(WebAuthnFailures.MalformedAuthenticatorData, (await VerifyAsync(authenticator, authData, GetClientData())).Error?.Code);
    }

    [Fact]
    public async Task What_a_token_evidence_check_would_refuse_is_refused_here_too()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData();
        var clientData = GetClientData();
        var notDer = authenticator.SignCeremony(authData, clientData);
        notDer[0] = 0x31; // a SET, not a SEQUENCE: Fido2 reads it, the SDK does not
        var duplicate = TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, extra: ",\"type\":\"webauthn.get\"");

        // Fido2 accepted both: the detail says the offline check refused them.
        Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidSignature, "assertion signature does not verify (as a token's evidence is checked offline)"),
            (await VerifyAsync(authenticator, authData, clientData, notDer)).Error);
        var refused = (await VerifyAsync(authenticator, authData, duplicate)).Error;
        Assert.Equal(WebAuthnFailures.MalformedClientData, refused?.Code);
        Assert.EndsWith(" (as a token's evidence is checked offline)", refused?.Detail);
    }

    [Fact]
    public async Task Client_data_that_is_not_json_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");

        Assert.Equal(WebAuthnFailures.MalformedClientData, (await VerifyAsync(authenticator, authenticator.AuthenticatorData(), [0x7b, 0xff])).Error?.Code);
    }
}
