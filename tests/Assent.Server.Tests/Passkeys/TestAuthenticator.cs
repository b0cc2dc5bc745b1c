using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;
using Assent.Server.Identity;

namespace Assent.Server.Tests.Passkeys;

/// <summary>A software authenticator holding one real credential, for building ceremonies.</summary>
internal sealed class TestAuthenticator : IDisposable
{
    public const string RpId = "assent.example";
    public const string Origin = "https://assent.example";

    // COSE algorithms (RFC 9053 §2.1, §2.2; RFC 8812 §2).
    public const int ES256 = -7;
    public const int EdDSA = -8;
    public const int RS256 = -257;

    public static readonly Guid Aaguid = new("6028b017-b1d4-4c02-b4b3-afcdafc96bb2");

    private readonly ECDsa? _ecdsa;
    private readonly RSA? _rsa;
    private readonly byte[]? _seed;

    private TestAuthenticator(int algorithm, ECDsa? ecdsa, RSA? rsa, byte[]? seed)
    {
        Algorithm = algorithm;
        _ecdsa = ecdsa;
        _rsa = rsa;
        _seed = seed;
        CredentialId = RandomNumberGenerator.GetBytes(16);
        CoseKey = TestCbor.Encode(CoseKeyMap());
    }

    public int Algorithm { get; }

    public byte[] CredentialId { get; }

    public byte[] CoseKey { get; }

    /// <summary>The credential public key as the server stores it.</summary>
    public Jwk Jwk
    {
        get
        {
            if (_ecdsa is not null)
            {
                var p = _ecdsa.ExportParameters(false);
                return new Jwk("EC", "P-256", Base64Url.Encode(p.Q.X), Base64Url.Encode(p.Q.Y));
            }
            if (_rsa is not null)
            {
                var p = _rsa.ExportParameters(false);
                return new Jwk("RSA", null, null, N: Base64Url.Encode(p.Modulus), E: Base64Url.Encode(p.Exponent));
            }
            return new Jwk(Jwk.OctetKeyPair, Jwk.Ed25519Curve, Base64Url.Encode(Ed25519.PublicKeyFromSeed(_seed)));
        }
    }

    public string PublicJwk => JsonSerializer.Serialize(Jwk, JwkJson.Default.Jwk);

    public StoredPasskey Stored(long signCount = 0) => new(CredentialId, PublicJwk, signCount);

    public static TestAuthenticator Create(string kind) => kind switch
    {
        "ES256" => new(ES256, ECDsa.Create(ECCurve.NamedCurves.nistP256), null, null),
        "RS256" => new(RS256, null, RSA.Create(2048), null),
        _ => new(EdDSA, null, null, Ed25519.NewSeed()),
    };

    public TestCborMap CoseKeyMap(params (object Key, object? Value)[] extra)
    {
        var entries = new List<(object Key, object? Value)>();
        if (_ecdsa is not null)
        {
            var p = _ecdsa.ExportParameters(false);
            entries.AddRange([(1, 2), (3, -7), (-1, 1), (-2, p.Q.X), (-3, p.Q.Y)]);
        }
        else if (_rsa is not null)
        {
            var p = _rsa.ExportParameters(false);
            entries.AddRange([(1, 3), (3, -257), (-1, p.Modulus), (-2, p.Exponent)]);
        }
        else
        {
            entries.AddRange([(1, 1), (3, -8), (-1, 6), (-2, Ed25519.PublicKeyFromSeed(_seed))]);
        }
        entries.AddRange(extra);
        return new TestCborMap(entries);
    }

    public byte[] Sign(byte[] data) =>
        _ecdsa?.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)
        ?? _rsa?.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
        ?? Ed25519.Sign(_seed, data);

    /// <summary>authData ‖ SHA-256(clientDataJSON), what assertions and packed statements sign.</summary>
    public byte[] SignCeremony(byte[] authData, byte[] clientDataJson) => Sign([.. authData, .. SHA256.HashData(clientDataJson)]);

    public byte[] AuthenticatorData(
        AuthenticatorFlags flags = AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified,
        uint signCount = 1,
        bool attested = false,
        string rpId = RpId,
        byte[]? coseKey = null,
        byte[]? extensions = null,
        Guid? aaguid = null)
    {
        var data = new List<byte>(SHA256.HashData(Encoding.UTF8.GetBytes(rpId)));
        data.Add((byte)(flags | (attested ? AuthenticatorFlags.AttestedCredentialData : 0) |
                        (extensions is null ? 0 : AuthenticatorFlags.ExtensionData)));
        var count = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, signCount);
        data.AddRange(count);
        if (attested)
        {
            data.AddRange((aaguid ?? Aaguid).ToByteArray(bigEndian: true));
            data.Add((byte)(CredentialId.Length >> 8));
            data.Add((byte)CredentialId.Length);
            data.AddRange(CredentialId);
            data.AddRange(coseKey ?? CoseKey);
        }
        if (extensions is not null)
        {
            data.AddRange(extensions);
        }
        return [.. data];
    }

    public static byte[] ClientDataJson(string type, byte[] challenge, string origin = Origin, string extra = "") =>
        Encoding.UTF8.GetBytes(
            $"{{\"type\":\"{type}\",\"challenge\":\"{Base64Url.Encode(challenge)}\",\"origin\":\"{origin}\",\"crossOrigin\":false{extra}}}");

    public static byte[] NoneAttestation(byte[] authData) =>
        TestCbor.Encode(TestCbor.Map(("fmt", "none"), ("attStmt", TestCbor.Map()), ("authData", authData)));

    public byte[] PackedSelfAttestation(byte[] authData, byte[] clientDataJson, int? alg = null, params (object Key, object? Value)[] extra) =>
        TestCbor.Encode(TestCbor.Map(
            ("fmt", "packed"),
            ("attStmt", TestCbor.Map([("alg", alg ?? Algorithm), ("sig", SignCeremony(authData, clientDataJson)), .. extra])),
            ("authData", authData)));

    /// <summary>Packed full attestation (WebAuthn L3 §8.2): signed by the attestation key of <paramref name="x5c"/>[0].</summary>
    public static byte[] PackedAttestation(byte[] authData, byte[] clientDataJson, ECDsa attestationKey, params X509Certificate2[] x5c) =>
        TestCbor.Encode(TestCbor.Map(
            ("fmt", "packed"),
            ("attStmt", TestCbor.Map(
                ("alg", ES256),
                ("sig", attestationKey.SignData([.. authData, .. SHA256.HashData(clientDataJson)], HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)),
                ("x5c", x5c.Select(c => (object?)c.RawData).ToArray()))),
            ("authData", authData)));

    /// <summary>
    /// FIDO U2F attestation (WebAuthn L3 §8.6): the attestation key signs
    /// 0x00 ‖ rpIdHash ‖ clientDataHash ‖ credentialId ‖ 0x04 ‖ x ‖ y of this ES256 credential.
    /// </summary>
    public byte[] FidoU2fAttestation(byte[] authData, byte[] clientDataJson, ECDsa attestationKey, X509Certificate2 certificate)
    {
        var p = _ecdsa!.ExportParameters(false);
        byte[] signed = [0x00, .. authData[..32], .. SHA256.HashData(clientDataJson), .. CredentialId, 0x04, .. p.Q.X!, .. p.Q.Y!];
        return TestCbor.Encode(TestCbor.Map(
            ("fmt", "fido-u2f"),
            ("attStmt", TestCbor.Map(
                ("sig", attestationKey.SignData(signed, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)),
                ("x5c", new object?[] { certificate.RawData }))),
            ("authData", authData)));
    }

    public void Dispose()
    {
        _ecdsa?.Dispose();
        _rsa?.Dispose();
    }
}
