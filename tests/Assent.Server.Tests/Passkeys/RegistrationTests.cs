using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Protocol.WebAuthn;
using Assent.Server.Identity;

namespace Assent.Server.Tests.Passkeys;

public sealed class PasskeyRegistrationTests
{
    private static readonly byte[] Challenge = RandomNumberGenerator.GetBytes(32);

    public static TheoryData<string> Kinds => ["ES256", "RS256", "EdDSA"];

    private static async Task<WebAuthnResult<RegisteredPasskey>> VerifyAsync(byte[] attestationObject, byte[] clientData) =>
        await (await TestCeremonies.NoneAsync()).VerifyRegistrationAsync("usr_test", attestationObject, clientData, Challenge, default);

    private static byte[] CreateClientData() => TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task None_attestation_registers_the_credential_with_its_key_as_a_jwk(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData(signCount: 7, attested: true);

        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authData), CreateClientData());

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(authenticator.CredentialId, result.Value.CredentialId);
        Assert.Equal(authenticator.Algorithm, result.Value.Algorithm);
        Assert.Equal(authenticator.Jwk, result.Value.PublicKey);
        Assert.Equal(7u, result.Value.SignCount);
        Assert.Equal(TestAuthenticator.Aaguid, result.Value.Aaguid);
        Assert.Equal("none", result.Value.AttestationFormat);
        Assert.False(result.Value.AttestationTrusted);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Packed_self_attestation_registers_when_signed_by_the_credential_key(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData(attested: true);
        var clientData = CreateClientData();

        var result = await VerifyAsync(authenticator.PackedSelfAttestation(authData, clientData), clientData);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal("packed", result.Value.AttestationFormat);
        Assert.False(result.Value.AttestationTrusted);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task The_registered_key_verifies_a_later_assertion(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var registered = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), CreateClientData());
        var authData = authenticator.AuthenticatorData(signCount: 2);
        var clientData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge);
        Assert.True(registered.Succeeded, registered.Error?.Detail);
        var stored = new StoredPasskey(registered.Value.CredentialId,
            System.Text.Json.JsonSerializer.Serialize(registered.Value.PublicKey, Protocol.Jose.JwkJson.Default.Jwk), registered.Value.SignCount);

        var assertion = await (await TestCeremonies.NoneAsync()).VerifyAssertionAsync(stored, authData, clientData,
            authenticator.SignCeremony(authData, clientData), Challenge, default);

        Assert.True(assertion.Succeeded, assertion.Error?.Detail);
        Assert.Equal(2u, assertion.Value.SignCount);
    }

    [Fact]
    public async Task The_options_are_the_json_the_web_app_reads()
    {
        var ceremonies = await TestCeremonies.NoneAsync();
        byte[] existing = [1, 2, 3];

        var creation = ceremonies.RegistrationOptions("usr_1", "alice", [existing]);
        var json = System.Text.Json.JsonSerializer.Serialize(creation.Options, WebAuthnOptionsJson.Default.CreationOptions);

        Assert.Equal(32, creation.Challenge.Length);
        var expected = $$"""
            {"rp":{"id":"assent.example","name":"Assent"},
            "user":{"id":"{{Base64Url.Encode("usr_1"u8)}}","name":"alice","displayName":"alice"},
            "challenge":"{{Base64Url.Encode(creation.Challenge)}}",
            "pubKeyCredParams":[{"type":"public-key","alg":-8},{"type":"public-key","alg":-7},{"type":"public-key","alg":-257}],
            "timeout":120000,
            "excludeCredentials":[{"type":"public-key","id":"AQID"}],
            "authenticatorSelection":{"residentKey":"preferred","requireResidentKey":false,"userVerification":"required"},
            "attestation":"none"}
            """.ReplaceLineEndings("");
        Assert.Equal(expected, json);
        Assert.Equal("direct", (await TestCeremonies.TrustedAsync(new TestAttestationCa().WriteRoot())).RegistrationOptions("usr_1", "alice", []).Options.Attestation);
    }

    [Fact]
    public async Task Client_data_of_type_get_is_refused_as_wrong_type()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)),
            TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge));

        Assert.Equal(WebAuthnFailures.WrongType, result.Error?.Code);
    }

    [Fact]
    public async Task A_different_challenge_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)),
            TestAuthenticator.ClientDataJson(ClientData.TypeCreate, RandomNumberGenerator.GetBytes(32)));

        Assert.Equal(WebAuthnFailures.ChallengeMismatch, result.Error?.Code);
    }

    [Fact]
    public async Task An_origin_outside_the_allowed_set_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)),
            TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge, "https://assent.example.evil"));

        Assert.Equal(WebAuthnFailures.OriginNotAllowed, result.Error?.Code);
    }

    [Fact]
    public async Task A_cross_origin_ceremony_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var clientData = System.Text.Encoding.UTF8.GetBytes(
            $"{{\"type\":\"webauthn.create\",\"challenge\":\"{Base64Url.Encode(Challenge)}\",\"origin\":\"{TestAuthenticator.Origin}\",\"crossOrigin\":true}}");

        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), clientData);

        Assert.Equal(WebAuthnFailures.CrossOriginRefused, result.Error?.Code);
    }

    [Fact]
    public async Task Authenticator_data_for_another_rp_id_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true, rpId: "evil.example")),
            CreateClientData());

        Assert.Equal(WebAuthnFailures.RpIdMismatch, result.Error?.Code);
    }

    [Fact]
    public async Task Registration_without_user_presence_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(
            authenticator.AuthenticatorData(AuthenticatorFlags.UserVerified, attested: true)), CreateClientData());

        Assert.Equal(WebAuthnFailures.UserNotPresent, result.Error?.Code);
    }

    [Fact]
    public async Task Registration_without_user_verification_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(
            authenticator.AuthenticatorData(AuthenticatorFlags.UserPresent, attested: true)), CreateClientData());

        Assert.Equal(WebAuthnFailures.UserNotVerified, result.Error?.Code);
    }

    [Fact]
    public async Task Backup_state_without_backup_eligibility_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var flags = AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified | AuthenticatorFlags.BackupState;
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(flags, attested: true)), CreateClientData());

        Assert.Equal(WebAuthnFailures.InvalidBackupFlags, result.Error?.Code);
    }

    [Fact]
    public async Task Authenticator_data_without_attested_credential_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData()), CreateClientData());

        Assert.Equal(WebAuthnFailures.MissingAttestedCredential, result.Error?.Code);
    }

    [Fact]
    public async Task A_key_of_an_algorithm_not_offered_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        // The ES256 key labelled PS256 (-37), which the options do not offer.
        var coseKey = TestCbor.Encode(TestCbor.Map([.. authenticator.CoseKeyMap().Entries.Select(e => e.Key is 3 ? (e.Key, (object?)-37) : e)]));
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true, coseKey: coseKey)), CreateClientData());

        Assert.False(result.Succeeded);
    }

    [Fact]
    public async Task A_credential_key_fido2_takes_but_assent_cannot_read_is_refused_as_unsupported()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        // The ES256 key with one more member whose label is beyond a 32-bit integer: Fido2 reads it, Assent does not.
        var coseKey = TestCbor.Encode(TestCbor.Map([.. authenticator.CoseKeyMap().Entries, (1L << 40, 0)]));

        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true, coseKey: coseKey)), CreateClientData());

        Assert.Equal(new WebAuthnError(WebAuthnFailures.UnsupportedAlgorithm, "the credential key is not an EdDSA, ES256 or RS256 key"), result.Error);
    }

    [Fact]
    public async Task A_credential_key_the_sdk_could_not_check_evidence_with_is_refused_with_the_sdks_reason()
    {
        // RS256 with a 1024-bit modulus: a key of the right kind that the SDK's verifier refuses (WebAuthnVerifier.MinRsaBits).
        using var rsa = RSA.Create(1024);
        var p = rsa.ExportParameters(false);
        var coseKey = TestCbor.Encode(TestCbor.Map((1, 3), (3, -257), (-1, p.Modulus), (-2, p.Exponent)));
        using var authenticator = TestAuthenticator.Create("RS256");
        Assert.True(CoseJwk.TryToJwk(coseKey, out var jwk, out _));
        Assert.False(WebAuthnVerifier.IsUsableKey(jwk, out var expected));

        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true, coseKey: coseKey)), CreateClientData());

        Assert.Equal(expected, result.Error);
        Assert.Equal(WebAuthnFailures.InvalidKey, result.Error?.Code);
    }

    [Fact]
    public async Task Packed_statement_whose_alg_differs_from_the_key_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData(attested: true);
        var clientData = CreateClientData();

        var result = await VerifyAsync(authenticator.PackedSelfAttestation(authData, clientData, alg: TestAuthenticator.RS256), clientData);

        Assert.Equal(WebAuthnFailures.InvalidAttestation, result.Error?.Code);
    }

    [Fact]
    public async Task Packed_statement_signed_over_other_client_data_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var authData = authenticator.AuthenticatorData(attested: true);
        var signedOver = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge, extra: ",\"other\":1");

        var result = await VerifyAsync(authenticator.PackedSelfAttestation(authData, signedOver), CreateClientData());

        Assert.Equal(WebAuthnFailures.InvalidAttestation, result.Error?.Code);
    }

    [Fact]
    public async Task Packed_statement_with_a_certificate_that_is_not_one_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData(attested: true);
        var clientData = CreateClientData();
        var x5c = new object[] { new byte[] { 0x30, 0x00 } };

        var result = await VerifyAsync(authenticator.PackedSelfAttestation(authData, clientData, null, ("x5c", x5c)), clientData);

        Assert.False(result.Succeeded);
    }

    [Fact]
    public async Task Fido_u2f_attestation_with_a_garbage_certificate_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var attestation = TestCbor.Encode(TestCbor.Map(
            ("fmt", "fido-u2f"),
            ("attStmt", TestCbor.Map(("sig", new byte[70]), ("x5c", new object[] { new byte[10] }))),
            ("authData", authenticator.AuthenticatorData(attested: true, aaguid: Guid.Empty))));

        Assert.False((await VerifyAsync(attestation, CreateClientData())).Succeeded);
    }

    [Fact]
    public async Task An_unknown_attestation_format_is_refused_as_unsupported()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var attestation = TestCbor.Encode(TestCbor.Map(
            ("fmt", "made-up"), ("attStmt", TestCbor.Map()), ("authData", authenticator.AuthenticatorData(attested: true))));

        Assert.Equal(WebAuthnFailures.UnsupportedAttestation, (await VerifyAsync(attestation, CreateClientData())).Error?.Code);
    }

    [Fact]
    public async Task None_attestation_with_a_statement_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var attestation = TestCbor.Encode(TestCbor.Map(
            ("fmt", "none"), ("attStmt", TestCbor.Map(("sig", new byte[1]))), ("authData", authenticator.AuthenticatorData(attested: true))));

        Assert.Equal(WebAuthnFailures.InvalidAttestation, (await VerifyAsync(attestation, CreateClientData())).Error?.Code);
    }

    [Fact]
    public async Task Trailing_bytes_after_the_credential_key_in_authenticator_data_are_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        byte[] authData = [.. authenticator.AuthenticatorData(attested: true), 0xa0];

        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authData), CreateClientData());

        Assert.False(result.Succeeded);
    }

    [Fact]
    public async Task Client_data_that_is_not_json_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = await VerifyAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), [0x7b, 0xff]);

        Assert.Equal(WebAuthnFailures.MalformedClientData, result.Error?.Code);
    }
}
