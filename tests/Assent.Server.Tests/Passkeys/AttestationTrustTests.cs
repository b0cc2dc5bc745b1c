using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.WebAuthn;
using Assent.Server.Common;
using Assent.Server.Identity;

namespace Assent.Server.Tests.Passkeys;

/// <summary>Assent:WebAuthnAttestation=trusted: only attestations whose certificate chain reaches a trusted root register.</summary>
public sealed class PasskeyAttestationTrustTests
{
    private static readonly byte[] Challenge = RandomNumberGenerator.GetBytes(32);
    private static readonly byte[] CreateData = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge);

    private static async Task<WebAuthnResult<RegisteredPasskey>> RegisterAsync(PasskeyCeremonies ceremonies, byte[] attestation) =>
        await ceremonies.VerifyRegistrationAsync("usr_test", attestation, CreateData, Challenge, default);

    /// <summary>A packed full attestation (WebAuthn L3 §8.2) by an attestation certificate of <paramref name="ca"/>.</summary>
    private static byte[] Packed(TestAuthenticator authenticator, TestAttestationCa ca, Guid? certificateAaguid = null)
    {
        var (certificate, key) = ca.Issue(certificateAaguid ?? TestAuthenticator.Aaguid);
        using (key)
        {
            return TestAuthenticator.PackedAttestation(authenticator.AuthenticatorData(attested: true), CreateData, key, certificate);
        }
    }

    [Fact]
    public async Task A_packed_attestation_is_trusted_when_its_root_is_supplied()
    {
        using var ca = new TestAttestationCa();
        using var authenticator = TestAuthenticator.Create("ES256");

        var result = await RegisterAsync(await TestCeremonies.TrustedAsync(ca.WriteRoot()), Packed(authenticator, ca));

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.True(result.Value.AttestationTrusted);
        Assert.Equal("packed", result.Value.AttestationFormat);
        Assert.Equal(TestAuthenticator.Aaguid, result.Value.Aaguid);
        Assert.Equal(authenticator.Jwk, result.Value.PublicKey);
    }

    [Fact]
    public async Task A_packed_attestation_is_refused_when_its_root_is_not_supplied()
    {
        using var ca = new TestAttestationCa();
        using var other = new TestAttestationCa("Another Vendor Root");
        using var authenticator = TestAuthenticator.Create("EdDSA");

        var result = await RegisterAsync(await TestCeremonies.TrustedAsync(other.WriteRoot()), Packed(authenticator, ca));

        Assert.Equal(WebAuthnFailures.AttestationNotTrusted, result.Error?.Code);
    }

    [Fact]
    public async Task A_packed_attestation_registers_untrusted_without_a_trust_policy()
    {
        using var ca = new TestAttestationCa();
        using var authenticator = TestAuthenticator.Create("ES256");

        var result = await RegisterAsync(await TestCeremonies.NoneAsync(), Packed(authenticator, ca));

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.False(result.Value.AttestationTrusted);
    }

    [Fact]
    public async Task An_attestation_certificate_naming_another_aaguid_is_refused()
    {
        using var ca = new TestAttestationCa();
        using var authenticator = TestAuthenticator.Create("ES256");

        var result = await RegisterAsync(await TestCeremonies.TrustedAsync(ca.WriteRoot()), Packed(authenticator, ca, Guid.NewGuid()));

        Assert.Equal(WebAuthnFailures.InvalidAttestation, result.Error?.Code);
    }

    [Fact]
    public async Task A_fido_u2f_attestation_is_trusted_with_its_root()
    {
        using var ca = new TestAttestationCa();
        using var authenticator = TestAuthenticator.Create("ES256");
        var (certificate, key) = ca.Issue(subject: "CN=Assent Test U2F Key");
        using var _ = key;
        // WebAuthn L3 §8.6: a U2F authenticator has no AAGUID.
        var authData = authenticator.AuthenticatorData(attested: true, aaguid: Guid.Empty);

        var trusted = await RegisterAsync(await TestCeremonies.TrustedAsync(ca.WriteRoot(pem: false)),
            authenticator.FidoU2fAttestation(authData, CreateData, key, certificate));
        using var other = new TestAttestationCa("Another Vendor Root");
        var untrusted = await RegisterAsync(await TestCeremonies.TrustedAsync(other.WriteRoot()),
            authenticator.FidoU2fAttestation(authData, CreateData, key, certificate));

        Assert.True(trusted.Succeeded, trusted.Error?.Detail);
        Assert.True(trusted.Value.AttestationTrusted);
        Assert.Equal("fido-u2f", trusted.Value.AttestationFormat);
        Assert.Equal(WebAuthnFailures.AttestationNotTrusted, untrusted.Error?.Code);
    }

    [Fact]
    public async Task None_and_self_attestation_are_refused_when_attestations_must_be_trusted()
    {
        using var ca = new TestAttestationCa();
        using var authenticator = TestAuthenticator.Create("ES256");
        var ceremonies = await TestCeremonies.TrustedAsync(ca.WriteRoot());
        var authData = authenticator.AuthenticatorData(attested: true);

        Assert.Equal(new WebAuthnError(WebAuthnFailures.AttestationNotTrusted,
                "none attestation of type none does not chain to a trusted root, and only such attestations are accepted here"),
            (await RegisterAsync(ceremonies, TestAuthenticator.NoneAttestation(authData))).Error);
        Assert.Equal(new WebAuthnError(WebAuthnFailures.AttestationNotTrusted,
                "packed attestation of type self does not chain to a trusted root, and only such attestations are accepted here"),
            (await RegisterAsync(ceremonies, authenticator.PackedSelfAttestation(authData, CreateData))).Error);
    }

    [Fact]
    public async Task An_offline_metadata_blob_trusts_the_roots_it_lists_for_its_models()
    {
        using var vendor = new TestAttestationCa();
        using var mds = new TestAttestationCa("Assent Test MDS Root");
        var unknownModel = Guid.NewGuid();
        var revokedModel = Guid.NewGuid();
        var ceremonies = await PasskeyCeremonies.CreateAsync(new AssentOptions
        {
            Issuer = TestAuthenticator.Origin,
            WebAuthnAttestation = WebAuthnAttestationModes.Trusted,
            WebAuthnMetadataBlob = WriteBlob(mds, Entry(TestAuthenticator.Aaguid, vendor, "FIDO_CERTIFIED_L1"), Entry(revokedModel, vendor, "REVOKED")),
            WebAuthnMetadataBlobRoot = mds.WriteRoot(),
        }, default);
        using var authenticator = TestAuthenticator.Create("ES256");

        var known = await RegisterAsync(ceremonies, Packed(authenticator, vendor));
        var (certificate, key) = vendor.Issue(unknownModel);
        using (key)
        {
            var unknown = await RegisterAsync(ceremonies,
                TestAuthenticator.PackedAttestation(authenticator.AuthenticatorData(attested: true, aaguid: unknownModel), CreateData, key, certificate));
            Assert.Equal(new WebAuthnError(WebAuthnFailures.AttestationNotTrusted, $"no trusted root or metadata covers authenticator model {unknownModel}"),
                unknown.Error);
        }
        (certificate, key) = vendor.Issue(revokedModel);
        using (key)
        {
            var revoked = await RegisterAsync(ceremonies,
                TestAuthenticator.PackedAttestation(authenticator.AuthenticatorData(attested: true, aaguid: revokedModel), CreateData, key, certificate));
            Assert.Equal(WebAuthnFailures.AttestationNotTrusted, revoked.Error?.Code);
            Assert.Contains("REVOKED", revoked.Error?.Detail);
        }

        Assert.True(known.Succeeded, known.Error?.Detail);
        Assert.True(known.Value.AttestationTrusted);
    }

    [Fact]
    public async Task A_metadata_blob_that_does_not_verify_stops_the_start()
    {
        using var vendor = new TestAttestationCa();
        using var mds = new TestAttestationCa("Assent Test MDS Root");
        using var impostor = new TestAttestationCa("Impostor MDS Root");
        var blob = WriteBlob(mds, Entry(TestAuthenticator.Aaguid, vendor, "FIDO_CERTIFIED"));
        var tampered = File.ReadAllText(blob).Split('.');
        var payload = Base64Url.Encode(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Base64Url.Decode(tampered[1])).Replace("FIDO_CERTIFIED", "NOT_FIDO_CERTIFIED")));
        var tamperedPath = Path.Combine(Path.GetDirectoryName(blob)!, "tampered.jwt");
        File.WriteAllText(tamperedPath, $"{tampered[0]}.{payload}.{tampered[2]}");

        Task<PasskeyCeremonies> Start(string path, string root) => PasskeyCeremonies.CreateAsync(new AssentOptions
        {
            Issuer = TestAuthenticator.Origin,
            WebAuthnAttestation = WebAuthnAttestationModes.Trusted,
            WebAuthnMetadataBlob = path,
            WebAuthnMetadataBlobRoot = root,
        }, default);

        Assert.Contains("signature", (await Assert.ThrowsAsync<InvalidOperationException>(() => Start(tamperedPath, mds.WriteRoot()))).Message);
        Assert.Contains("does not chain", (await Assert.ThrowsAsync<InvalidOperationException>(() => Start(blob, impostor.WriteRoot()))).Message);
        Assert.StartsWith("Assent:WebAuthnMetadataBlob", (await Assert.ThrowsAsync<InvalidOperationException>(() => Start(vendor.WriteRoot(), mds.WriteRoot()))).Message);
    }

    [Fact]
    public void The_attestation_settings_are_validated_at_start()
    {
        using var ca = new TestAttestationCa();
        var folder = Directory.CreateTempSubdirectory("assent-ca-").FullName;
        var garbage = Path.Combine(folder, "garbage.der");
        File.WriteAllText(garbage, "not a certificate");
        var empty = Path.Combine(folder, "empty.pem");
        File.WriteAllText(empty, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        string? Problem(Action<AssentOptions> set)
        {
            var options = new AssentOptions { Issuer = TestAuthenticator.Origin };
            set(options);
            return options.Validate();
        }

        Assert.Null(Problem(_ => { }));
        Assert.Null(Problem(o => (o.WebAuthnAttestation, o.WebAuthnTrustedRoots) = ("trusted", [ca.WriteRoot(), ca.WriteRoot(pem: false)])));
        Assert.Contains("must be 'none' or 'trusted'", Problem(o => o.WebAuthnAttestation = "direct"));
        Assert.Contains("needs Assent:WebAuthnTrustedRoots or Assent:WebAuthnMetadataBlob", Problem(o => o.WebAuthnAttestation = "trusted"));
        Assert.Contains("read only with Assent:WebAuthnAttestation=trusted", Problem(o => o.WebAuthnTrustedRoots = [ca.WriteRoot()]));
        Assert.Contains("does not exist", Problem(o => (o.WebAuthnAttestation, o.WebAuthnTrustedRoots) = ("trusted", ["/nonexistent/root.pem"])));
        Assert.Contains("is not a PEM or DER certificate", Problem(o => (o.WebAuthnAttestation, o.WebAuthnTrustedRoots) = ("trusted", [garbage])));
        Assert.Contains("holds no certificate", Problem(o => (o.WebAuthnAttestation, o.WebAuthnTrustedRoots) = ("trusted", [empty])));
        Assert.Contains("WebAuthnMetadataBlobRoot", Problem(o => (o.WebAuthnAttestation, o.WebAuthnMetadataBlob) = ("trusted", garbage)));
    }

    private static object Entry(Guid aaguid, TestAttestationCa vendor, string status) => new Dictionary<string, object>
    {
        ["aaguid"] = aaguid.ToString(),
        ["metadataStatement"] = new Dictionary<string, object>
        {
            ["aaguid"] = aaguid.ToString(),
            ["description"] = "Assent Test Authenticator",
            ["protocolFamily"] = "fido2",
            ["schema"] = 3,
            ["attestationTypes"] = new[] { "basic_full" },
            ["attestationRootCertificates"] = new[] { Convert.ToBase64String(vendor.Root.RawData) },
        },
        ["statusReports"] = new[] { new Dictionary<string, object> { ["status"] = status, ["effectiveDate"] = "2024-01-01" } },
        ["timeOfLastStatusChange"] = "2024-01-01",
    };

    /// <summary>
    /// An MDS BLOB (FIDO Metadata Service 3.0): a compact JWS, ES256, whose x5c holds a signing certificate
    /// issued by <paramref name="mds"/>.
    /// </summary>
    private static string WriteBlob(TestAttestationCa mds, params object[] entries)
    {
        var (signer, key) = mds.Issue(subject: "CN=Assent Test MDS Signer");
        using (key)
        {
            var header = JsonSerializer.Serialize(new { alg = "ES256", typ = "JWT", x5c = new[] { Convert.ToBase64String(signer.RawData) } });
            var payload = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["legalHeader"] = "test", ["no"] = 1, ["nextUpdate"] = "2099-01-01", ["entries"] = entries,
            });
            var input = Base64Url.Encode(Encoding.UTF8.GetBytes(header)) + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(payload));
            var signature = key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256);
            var path = Path.Combine(Directory.CreateTempSubdirectory("assent-mds-").FullName, "blob.jwt");
            File.WriteAllText(path, input + "." + Base64Url.Encode(signature));
            return path;
        }
    }
}
