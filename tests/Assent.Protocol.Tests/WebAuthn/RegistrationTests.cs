using System.Security.Cryptography;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

public sealed class RegistrationTests
{
    private static readonly string[] Origins = [TestAuthenticator.Origin];
    private static readonly byte[] Challenge = RandomNumberGenerator.GetBytes(32);

    public static TheoryData<string> Kinds => ["ES256", "RS256", "EdDSA"];

    private static WebAuthnResult<RegisteredCredential> Verify(byte[] attestationObject, byte[] clientData, bool requireUv = true) =>
        WebAuthnVerifier.VerifyRegistration(attestationObject, clientData, Challenge, Origins, TestAuthenticator.RpId, requireUv);

    private static byte[] CreateClientData() => TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void None_attestation_registers_the_credential_with_its_key_and_flags(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData(signCount: 7, attested: true);

        var result = Verify(TestAuthenticator.NoneAttestation(authData), CreateClientData());

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(authenticator.CredentialId, result.Value.CredentialId);
        Assert.Equal(authenticator.Algorithm, result.Value.Algorithm);
        Assert.Equal(authenticator.CoseKey, result.Value.PublicKeyCose);
        Assert.Equal(7u, result.Value.SignCount);
        Assert.Equal(TestAuthenticator.Aaguid, result.Value.Aaguid);
        Assert.Equal(AttestationObject.FormatNone, result.Value.AttestationFormat);
        Assert.Equal(AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified | AuthenticatorFlags.AttestedCredentialData, result.Value.Flags);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Packed_self_attestation_registers_when_signed_by_the_credential_key(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var authData = authenticator.AuthenticatorData(attested: true);
        var clientData = CreateClientData();

        var result = Verify(authenticator.PackedSelfAttestation(authData, clientData), clientData);

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(AttestationObject.FormatPacked, result.Value.AttestationFormat);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Registered_key_verifies_a_later_assertion(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);
        var registered = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), CreateClientData());
        var authData = authenticator.AuthenticatorData(signCount: 2);
        var clientData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge);

        Assert.True(registered.Succeeded);
        var assertion = WebAuthnVerifier.VerifyAssertion(authData, clientData, authenticator.SignCeremony(authData, clientData),
            registered.Value.PublicKey, Challenge, Origins, TestAuthenticator.RpId, registered.Value.SignCount);
        Assert.True(assertion.Succeeded, assertion.Error?.Detail);
    }

    [Fact]
    public void Client_data_of_type_get_is_refused_as_wrong_type()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)),
            TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge));

        Assert.Equal(WebAuthnFailures.WrongType, result.Error?.Code);
    }

    [Fact]
    public void A_different_challenge_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)),
            TestAuthenticator.ClientDataJson(ClientData.TypeCreate, RandomNumberGenerator.GetBytes(32)));

        Assert.Equal(WebAuthnFailures.ChallengeMismatch, result.Error?.Code);
    }

    [Fact]
    public void An_origin_outside_the_allowed_set_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)),
            TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge, "https://assent.example.evil"));

        Assert.Equal(WebAuthnFailures.OriginNotAllowed, result.Error?.Code);
    }

    [Fact]
    public void A_cross_origin_ceremony_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var clientData = System.Text.Encoding.UTF8.GetBytes(
            $"{{\"type\":\"webauthn.create\",\"challenge\":\"{Base64Url.Encode(Challenge)}\",\"origin\":\"{TestAuthenticator.Origin}\",\"crossOrigin\":true}}");

        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), clientData);

        Assert.Equal(WebAuthnFailures.CrossOriginRefused, result.Error?.Code);
    }

    [Fact]
    public void Authenticator_data_for_another_rp_id_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true, rpId: "evil.example")),
            CreateClientData());

        Assert.Equal(WebAuthnFailures.RpIdMismatch, result.Error?.Code);
    }

    [Fact]
    public void Registration_without_user_presence_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(TestAuthenticator.NoneAttestation(
            authenticator.AuthenticatorData(AuthenticatorFlags.UserVerified, attested: true)), CreateClientData());

        Assert.Equal(WebAuthnFailures.UserNotPresent, result.Error?.Code);
    }

    [Fact]
    public void Registration_without_user_verification_is_refused_unless_not_required()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var attestation = TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(AuthenticatorFlags.UserPresent, attested: true));

        Assert.Equal(WebAuthnFailures.UserNotVerified, Verify(attestation, CreateClientData()).Error?.Code);
        Assert.True(Verify(attestation, CreateClientData(), requireUv: false).Succeeded);
    }

    [Fact]
    public void Backup_state_without_backup_eligibility_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var flags = AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified | AuthenticatorFlags.BackupState;
        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(flags, attested: true)), CreateClientData());

        Assert.Equal(WebAuthnFailures.InvalidBackupFlags, result.Error?.Code);
    }

    [Fact]
    public void Authenticator_data_without_attested_credential_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData()), CreateClientData());

        Assert.Equal(WebAuthnFailures.MissingAttestedCredential, result.Error?.Code);
    }

    [Fact]
    public void Packed_statement_whose_alg_differs_from_the_key_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData(attested: true);
        var clientData = CreateClientData();

        var result = Verify(authenticator.PackedSelfAttestation(authData, clientData, alg: CoseKey.RS256), clientData);

        Assert.Equal(WebAuthnFailures.AttestationAlgorithmMismatch, result.Error?.Code);
    }

    [Fact]
    public void Packed_statement_signed_over_other_client_data_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var authData = authenticator.AuthenticatorData(attested: true);
        var signedOver = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge, extra: ",\"other\":1");

        var result = Verify(authenticator.PackedSelfAttestation(authData, signedOver), CreateClientData());

        Assert.Equal(WebAuthnFailures.InvalidAttestationSignature, result.Error?.Code);
    }

    [Fact]
    public void Packed_statement_with_a_certificate_chain_is_refused_as_unsupported()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var authData = authenticator.AuthenticatorData(attested: true);
        var clientData = CreateClientData();
        var x5c = new object[] { new byte[] { 0x30, 0x00 } };

        var result = Verify(authenticator.PackedSelfAttestation(authData, clientData, null, ("x5c", x5c)), clientData);

        Assert.Equal(WebAuthnFailures.UnsupportedAttestation, result.Error?.Code);
    }

    [Fact]
    public void Fido_u2f_attestation_is_refused_as_unsupported()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var attestation = TestCbor.Encode(TestCbor.Map(
            ("fmt", "fido-u2f"),
            ("attStmt", TestCbor.Map(("sig", new byte[70]), ("x5c", new object[] { new byte[10] }))),
            ("authData", authenticator.AuthenticatorData(attested: true))));

        Assert.Equal(WebAuthnFailures.UnsupportedAttestation, Verify(attestation, CreateClientData()).Error?.Code);
    }

    [Fact]
    public void None_attestation_with_a_statement_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var attestation = TestCbor.Encode(TestCbor.Map(
            ("fmt", "none"), ("attStmt", TestCbor.Map(("sig", new byte[1]))), ("authData", authenticator.AuthenticatorData(attested: true))));

        Assert.Equal(WebAuthnFailures.MalformedAttestation, Verify(attestation, CreateClientData()).Error?.Code);
    }

    [Fact]
    public void Trailing_bytes_after_the_attestation_object_are_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        byte[] attestation = [.. TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), 0x00];

        Assert.Equal(WebAuthnFailures.MalformedAttestation, Verify(attestation, CreateClientData()).Error?.Code);
    }

    [Fact]
    public void Trailing_bytes_after_the_credential_key_in_authenticator_data_are_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        byte[] authData = [.. authenticator.AuthenticatorData(attested: true), 0xa0];

        var result = Verify(TestAuthenticator.NoneAttestation(authData), CreateClientData());

        Assert.Equal(WebAuthnFailures.MalformedAuthenticatorData, result.Error?.Code);
    }

    [Fact]
    public void Client_data_that_is_not_json_is_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var result = Verify(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), [0x7b, 0xff]);

        Assert.Equal(WebAuthnFailures.MalformedClientData, result.Error?.Code);
    }
}
