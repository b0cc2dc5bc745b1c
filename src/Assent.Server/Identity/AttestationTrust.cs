using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Assent.Server.Common;
using Fido2NetLib;
using Fido2NetLib.Serialization;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Assent.Server.Identity;

/// <summary>
/// The roots a <c>trusted</c> registration's attestation must chain to (docs/deployment.md,
/// "Passkey attestation"), handed to Fido2 as its metadata service. For any AAGUID that the
/// operator's roots or the MDS BLOB cover, it answers an entry declaring full basic attestation
/// with those roots, so Fido2 validates the attestation certificate chain against them
/// (WebAuthn L3 §7.1 steps 23–24) and refuses models whose latest MDS status is undesired
/// (a compromise or a revocation). For other AAGUIDs it answers nothing, and
/// <see cref="PasskeyCeremonies"/> refuses the registration.
/// </summary>
internal sealed class AttestationTrust : IMetadataService
{
    // The names a metadata statement's attestationTypes uses (FIDO Registry of Predefined Values, attestation types).
    private const string BasicFull = "basic_full";
    private const string BasicSurrogate = "basic_surrogate";

    // The JWS algorithms Fido2 itself accepts for an MDS BLOB (FIDO Metadata Service 3.0, the metadata BLOB).
    private static readonly string[] BlobAlgorithms = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

    private readonly string[] _operatorRoots;
    private readonly Dictionary<Guid, MetadataBLOBPayloadEntry> _metadata;

    private AttestationTrust(string[] operatorRoots, Dictionary<Guid, MetadataBLOBPayloadEntry> metadata)
    {
        _operatorRoots = operatorRoots;
        _metadata = metadata;
    }

    /// <summary>The models the MDS BLOB describes; 0 without one.</summary>
    public int MetadataEntries => _metadata.Count;

    /// <summary>Reads the configured roots and verifies and reads the MDS BLOB, offline; throws InvalidOperationException naming the setting.</summary>
    public static async Task<AttestationTrust> LoadAsync(AssentOptions options, CancellationToken ct)
    {
        var roots = new List<string>();
        foreach (var path in options.WebAuthnTrustedRoots ?? [])
        {
            if (!CertificateFiles.TryRead(path, out var certificates, out var error))
            {
                throw new InvalidOperationException($"Assent:WebAuthnTrustedRoots: {error}");
            }
            roots.AddRange(certificates.Select(c => Convert.ToBase64String(c.RawData)));
        }
        var metadata = new Dictionary<Guid, MetadataBLOBPayloadEntry>();
        if (!string.IsNullOrWhiteSpace(options.WebAuthnMetadataBlob))
        {
            if (!CertificateFiles.TryRead(options.WebAuthnMetadataBlobRoot ?? "", out var blobRoots, out var error))
            {
                throw new InvalidOperationException($"Assent:WebAuthnMetadataBlobRoot: {error}");
            }
            var blob = await ReadBlobAsync(options.WebAuthnMetadataBlob, blobRoots, ct);
            foreach (var entry in blob.Entries)
            {
                if (entry.AaGuid is { } aaguid && aaguid != Guid.Empty && entry.MetadataStatement is not null)
                {
                    metadata[aaguid] = entry;
                }
            }
        }
        return new AttestationTrust([.. roots], metadata);
    }

    /// <summary>Whether an attestation of this model can chain to a root Assent trusts.</summary>
    public bool Covers(Guid aaguid) => _operatorRoots.Length > 0 || _metadata.ContainsKey(aaguid);

    public Task<MetadataBLOBPayloadEntry?> GetEntryAsync(Guid aaguid, CancellationToken cancellationToken = default)
    {
        var known = _metadata.GetValueOrDefault(aaguid);
        string[] roots = [.. _operatorRoots, .. known?.MetadataStatement.AttestationRootCertificates ?? []];
        if (roots.Length == 0)
        {
            return Task.FromResult<MetadataBLOBPayloadEntry?>(null);
        }
        // basic_full makes Fido2 validate every trust path against the roots; basic_surrogate lets a self
        // attestation through Fido2, to be refused by PasskeyCeremonies with its own code.
        return Task.FromResult<MetadataBLOBPayloadEntry?>(new MetadataBLOBPayloadEntry
        {
            AaGuid = aaguid,
            MetadataStatement = new MetadataStatement
            {
                AaGuid = aaguid,
                Description = known?.MetadataStatement.Description ?? "trusted by Assent:WebAuthnTrustedRoots",
                AttestationTypes = [BasicFull, BasicSurrogate],
                AttestationRootCertificates = roots,
            },
            StatusReports = known?.StatusReports ?? [],
        });
    }

    /// <summary>Fido2 relaxes some checks for the FIDO conformance tools; never here.</summary>
    public bool ConformanceTesting() => false;

    /// <summary>
    /// Verifies a FIDO Metadata Service 3.0 BLOB as Fido2's own MDS client does,
    /// offline: a compact JWS whose header names an accepted <c>alg</c> and carries <c>x5c</c>,
    /// whose signature verifies with the first certificate's key, and whose certificates chain to
    /// <paramref name="roots"/> (the operator's copy of the MDS root, as Fido2 pins its own).
    /// Revocation is not checked (no network) and <c>nextUpdate</c> is not enforced.
    /// </summary>
    private static async Task<MetadataBLOBPayload> ReadBlobAsync(string path, X509Certificate2[] roots, CancellationToken ct)
    {
        static InvalidOperationException Refused(string path, string why) => new($"Assent:WebAuthnMetadataBlob: '{path}' {why}");
        if (!File.Exists(path))
        {
            throw Refused(path, "does not exist");
        }
        var jwt = (await File.ReadAllTextAsync(path, ct)).Trim();
        var parts = jwt.Split('.');
        if (parts.Length != 3)
        {
            throw Refused(path, "is not a compact JWS (header.payload.signature)");
        }
        X509Certificate2[] chain;
        string algorithm;
        try
        {
            using var header = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(parts[0]));
            algorithm = header.RootElement.GetProperty("alg").GetString() ?? "";
            chain = [.. header.RootElement.GetProperty("x5c").EnumerateArray()
                .Select(c => X509CertificateLoader.LoadCertificate(Convert.FromBase64String(c.GetString() ?? "")))];
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException or CryptographicException)
        {
            throw Refused(path, $"has no readable JWS header with alg and x5c: {e.Message}");
        }
        if (Array.IndexOf(BlobAlgorithms, algorithm) < 0 || chain.Length == 0)
        {
            throw Refused(path, $"is signed with '{algorithm}' or carries no x5c certificate");
        }
        SecurityKey key = chain[0].GetECDsaPublicKey() is { } ec ? new ECDsaSecurityKey(ec)
            : chain[0].GetRSAPublicKey() is { } rsa ? new RsaSecurityKey(rsa)
            : throw Refused(path, "is signed by a certificate whose key is neither EC nor RSA");
        var result = await new JsonWebTokenHandler { MaximumTokenSizeInBytes = jwt.Length }.ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            IssuerSigningKey = key,
            ValidAlgorithms = BlobAlgorithms,
        });
        if (!result.IsValid)
        {
            throw Refused(path, $"has a signature that does not verify: {result.Exception?.Message}");
        }
        using (var x509 = new X509Chain())
        {
            x509.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            x509.ChainPolicy.CustomTrustStore.AddRange(roots);
            x509.ChainPolicy.ExtraStore.AddRange(chain[1..]);
            x509.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            x509.ChainPolicy.DisableCertificateDownloads = true;
            if (!x509.Build(chain[0]))
            {
                throw Refused(path, "is signed by a certificate that does not chain to Assent:WebAuthnMetadataBlobRoot: " +
                    string.Join(", ", x509.ChainStatus.Select(s => s.StatusInformation.Trim())));
            }
        }
        try
        {
            var payload = System.Buffers.Text.Base64Url.DecodeFromChars(((JsonWebToken)result.SecurityToken).EncodedPayload);
            return JsonSerializer.Deserialize(payload, FidoModelSerializerContext.Default.MetadataBLOBPayload) ?? throw Refused(path, "has an empty payload");
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw Refused(path, $"has a payload that is not an MDS BLOB: {e.Message}");
        }
    }
}
