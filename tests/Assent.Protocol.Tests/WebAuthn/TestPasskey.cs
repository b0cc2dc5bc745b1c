using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

/// <summary>A software passkey that makes assertions, for the offline verifier (registration lives in the server tests).</summary>
internal sealed class TestPasskey : IDisposable
{
    public const string RpId = "assent.example";
    public const string Origin = "https://assent.example";

    private readonly ECDsa? _ecdsa;
    private readonly RSA? _rsa;
    private readonly byte[]? _seed;

    private TestPasskey(ECDsa? ecdsa, RSA? rsa, byte[]? seed)
    {
        _ecdsa = ecdsa;
        _rsa = rsa;
        _seed = seed;
    }

    public static TestPasskey Create(string kind) => kind switch
    {
        "ES256" => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), null, null),
        "RS256" => new(null, RSA.Create(2048), null),
        _ => new(null, null, Ed25519.NewSeed()),
    };

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

    /// <summary>authData ‖ SHA-256(clientDataJSON), signed as an authenticator signs an assertion (WebAuthn L3 §6.3.3).</summary>
    public byte[] Sign(byte[] authData, byte[] clientDataJson)
    {
        byte[] data = [.. authData, .. SHA256.HashData(clientDataJson)];
        return _ecdsa?.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)
            ?? _rsa?.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            ?? Ed25519.Sign(_seed, data);
    }

    public static byte[] AuthenticatorData(
        AuthenticatorFlags flags = AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified, uint signCount = 1, string rpId = RpId)
    {
        var data = new byte[37];
        SHA256.HashData(Encoding.UTF8.GetBytes(rpId), data);
        data[32] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(33), signCount);
        return data;
    }

    public static byte[] ClientDataJson(byte[] challenge, string type = ClientData.TypeGet, string origin = Origin, string extra = "") =>
        Encoding.UTF8.GetBytes(
            $"{{\"type\":\"{type}\",\"challenge\":\"{Base64Url.Encode(challenge)}\",\"origin\":\"{origin}\",\"crossOrigin\":false{extra}}}");

    public void Dispose()
    {
        _ecdsa?.Dispose();
        _rsa?.Dispose();
    }
}
