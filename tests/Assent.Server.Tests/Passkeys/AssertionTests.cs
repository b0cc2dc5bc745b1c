using System.Security.Cryptography;
using System.Text;
using Assent.Protocol;
using Assent.Protocol.WebAuthn;
using Assent.Server.Common;
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

        // WebAuthn L3 §7.2, the UV flag step: demanded explicitly, whatever the verifier's default.
        Assert.Equal(new WebAuthnError(WebAuthnFailures.UserNotVerified, "the UV flag is not set"), result.Error);
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

        // Fido2 accepted both; the one check that runs is the SDK's.
        Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidSignature, "assertion signature does not verify"),
            (await VerifyAsync(authenticator, authData, clientData, notDer)).Error);
        Assert.Equal(WebAuthnFailures.MalformedClientData, (await VerifyAsync(authenticator, authData, duplicate)).Error?.Code);
    }

    [Theory]
    [InlineData(",\"crossOrigin\":true", "")]
    [InlineData("", ",\"topOrigin\":\"https://assent.example\"")]
    [InlineData("", ",\"topOrigin\":\"https://elsewhere.example\"")]
    public async Task An_assertion_made_in_a_cross_origin_frame_is_refused(string crossOrigin, string topOrigin)
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var clientData = Encoding.UTF8.GetBytes($"{{\"type\":\"webauthn.get\",\"challenge\":\"{Base64Url.Encode(Challenge)}\"," +
                                                $"\"origin\":\"{TestAuthenticator.Origin}\"{topOrigin}{crossOrigin}}}");

        Assert.Equal(WebAuthnFailures.CrossOriginRefused, (await VerifyAsync(authenticator, authenticator.AuthenticatorData(), clientData)).Error?.Code);
    }

    [Fact]
    public async Task An_origin_is_compared_as_a_browser_serializes_it()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        // Allowed: the configured origin exactly, the form a browser serializes (no default port, lower-case host).
        Assert.True((await VerifyAsync(authenticator, authenticator.AuthenticatorData(), GetClientData())).Succeeded);
        foreach (var origin in new[] { "https://assent.example:8443", "https://assent.example.evil", "http://assent.example", "https://assent.example:443",
                     "https://ASSENT.example", "https://assent.example/", "null", "" })
        {
            var result = await VerifyAsync(authenticator, authenticator.AuthenticatorData(), TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, origin));
            Assert.Equal(WebAuthnFailures.OriginNotAllowed, result.Error?.Code);
        }
    }

    [Fact]
    public async Task A_configured_origin_with_its_default_port_or_a_trailing_slash_still_names_the_origin_a_browser_sends()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var ceremonies = await PasskeyCeremonies.CreateAsync(new AssentOptions
        {
            Issuer = TestAuthenticator.Origin, WebAuthnOrigins = ["https://ASSENT.example:443/", "https://app.assent.example:8443"],
        }, default);
        var authData = authenticator.AuthenticatorData();

        foreach (var (origin, accepted) in new[] { (TestAuthenticator.Origin, true), ("https://app.assent.example:8443", true), ("https://app.assent.example", false) })
        {
            var clientData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge, origin);
            var result = await ceremonies.VerifyAssertionAsync(authenticator.Stored(), authData, clientData, authenticator.SignCeremony(authData, clientData), Challenge, default);
            Assert.True(accepted == result.Succeeded, $"{origin}: {result.Error?.Detail}");
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_passkey_whose_stored_key_was_replaced_verifies_only_with_the_new_key(string kind)
    {
        // The same credential id, first with one key (verified, so its import is kept), then stored with another:
        // the kept import is found by the key's bytes, never by the credential, so the old key's signature is refused.
        using var before = TestAuthenticator.Create(kind);
        using var after = TestAuthenticator.Create(kind);
        var authData = before.AuthenticatorData();
        var clientData = GetClientData();
        var ceremonies = await TestCeremonies.NoneAsync();
        var oldSignature = before.SignCeremony(authData, clientData);
        Assert.True((await ceremonies.VerifyAssertionAsync(before.Stored(), authData, clientData, oldSignature, Challenge, default)).Succeeded);

        var replaced = new StoredPasskey(before.CredentialId, after.PublicJwk, 0);

        Assert.Equal(WebAuthnFailures.InvalidSignature, (await ceremonies.VerifyAssertionAsync(replaced, authData, clientData, oldSignature, Challenge, default)).Error?.Code);
        Assert.True((await ceremonies.VerifyAssertionAsync(replaced, authData, clientData, after.SignCeremony(authData, clientData), Challenge, default)).Succeeded);
    }

    [Fact]
    public async Task Parsed_keys_are_kept_by_their_stored_text_up_to_the_bound_and_unusable_ones_never()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var ceremonies = await PasskeyCeremonies.CreateAsync(TestCeremonies.Options(), default);
        var authData = authenticator.AuthenticatorData();
        var clientData = GetClientData();
        var signature = authenticator.SignCeremony(authData, clientData);

        Assert.True((await ceremonies.VerifyAssertionAsync(authenticator.Stored(), authData, clientData, signature, Challenge, default)).Succeeded);
        Assert.True((await ceremonies.VerifyAssertionAsync(authenticator.Stored(), authData, clientData, signature, Challenge, default)).Succeeded);
        Assert.Equal(1, ceremonies.StoredKeyCount);
        // An unusable key is refused each time, and not kept.
        var unusable = new StoredPasskey(authenticator.CredentialId, """{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}""", 0);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(WebAuthnFailures.InvalidKey, (await ceremonies.VerifyAssertionAsync(unusable, authData, clientData, signature, Challenge, default)).Error?.Code);
        }
        Assert.Equal(1, ceremonies.StoredKeyCount);
        // The same key in other text (members reordered) is another entry: keys are found by their exact stored text.
        var reordered = new StoredPasskey(authenticator.CredentialId, $$"""{"x":"{{authenticator.Jwk.X}}","crv":"Ed25519","kty":"OKP"}""", 0);
        Assert.True((await ceremonies.VerifyAssertionAsync(reordered, authData, clientData, signature, Challenge, default)).Succeeded);
        Assert.Equal(2, ceremonies.StoredKeyCount);
        // Bounded: past the bound the map starts over.
        for (var i = 0; ceremonies.StoredKeyCount < PasskeyCeremonies.MaxStoredKeys; i++)
        {
            var padded = new StoredPasskey(authenticator.CredentialId, $$"""{"kty":"OKP","crv":"Ed25519","x":"{{authenticator.Jwk.X}}","kid":"{{i}}"}""", 0);
            await ceremonies.VerifyAssertionAsync(padded, authData, clientData, signature, Challenge, default);
        }
        Assert.Equal(PasskeyCeremonies.MaxStoredKeys, ceremonies.StoredKeyCount);
        var extra = new StoredPasskey(authenticator.CredentialId, $$"""{"kty":"OKP","crv":"Ed25519","x":"{{authenticator.Jwk.X}}","kid":"extra"}""", 0);
        Assert.True((await ceremonies.VerifyAssertionAsync(extra, authData, clientData, signature, Challenge, default)).Succeeded);
        Assert.Equal(1, ceremonies.StoredKeyCount);
    }

    [Fact]
    public async Task A_counter_regression_is_judged_only_after_the_signature_verified()
    {
        // A forged assertion with a low counter must not be audited as a cloned authenticator (WebAuthn L3 §7.2 orders the counter last).
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData(signCount: 1);
        var signature = authenticator.SignCeremony(authData, GetClientData());
        signature[^1] ^= 0x01;

        Assert.Equal(WebAuthnFailures.InvalidSignature, (await VerifyAsync(authenticator, authData, GetClientData(), signature, storedSignCount: 10)).Error?.Code);
    }

    [Fact]
    public async Task Client_data_that_is_not_json_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");

        Assert.Equal(WebAuthnFailures.MalformedClientData, (await VerifyAsync(authenticator, authenticator.AuthenticatorData(), [0x7b, 0xff])).Error?.Code);
    }
}
