using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Assent.Server.Tests.Passkeys;

/// <summary>A test authenticator vendor: a root CA that issues attestation certificates.</summary>
internal sealed class TestAttestationCa : IDisposable
{
    /// <summary>WebAuthn L3 §8.2.1: id-fido-gen-ce-aaguid, the AAGUID extension of an attestation certificate.</summary>
    private const string AaguidExtension = "1.3.6.1.4.1.45724.1.1.4";

    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestAttestationCa(string name = "Assent Test Attestation Root")
    {
        var request = new CertificateRequest($"CN={name}, O=Assent Test Vendor, C=US", _key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Root = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(10));
    }

    /// <summary>The root, with its private key.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>Writes the root certificate as PEM (or DER) into a new temporary file and returns its path.</summary>
    public string WriteRoot(bool pem = true)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("assent-ca-").FullName, pem ? "root.pem" : "root.der");
        if (pem)
        {
            File.WriteAllText(path, Root.ExportCertificatePem());
        }
        else
        {
            File.WriteAllBytes(path, Root.RawData);
        }
        return path;
    }

    /// <summary>
    /// An attestation certificate as WebAuthn L3 §8.2.1 requires of a packed one: X.509 v3; subject
    /// C, O, OU "Authenticator Attestation" and CN; basic constraints CA false; and, for a model
    /// with an AAGUID, the non-critical id-fido-gen-ce-aaguid extension holding it.
    /// </summary>
    public (X509Certificate2 Certificate, ECDsa Key) Issue(Guid? aaguid = null,
        string subject = "CN=Assent Test Authenticator, OU=Authenticator Attestation, O=Assent Test Vendor, C=US")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Root, true, false));
        if (aaguid is { } id)
        {
            var value = new AsnWriter(AsnEncodingRules.DER);
            value.WriteOctetString(id.ToByteArray(bigEndian: true));
            request.CertificateExtensions.Add(new X509Extension(AaguidExtension, value.Encode(), critical: false));
        }
        var certificate = request.Create(Root, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddYears(1), RandomNumberGenerator.GetBytes(16));
        return (certificate, key);
    }

    public void Dispose()
    {
        Root.Dispose();
        _key.Dispose();
    }
}
