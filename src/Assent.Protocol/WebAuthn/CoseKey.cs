using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Security.Cryptography;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;

namespace Assent.Protocol.WebAuthn;

/// <summary>
/// A credential public key (COSE_Key, RFC 9052 §7) of one of the three algorithms Assent
/// accepts: ES256 on P-256 (RFC 9053 §2.1), EdDSA on Ed25519 (RFC 9053 §2.2) and RS256
/// (RFC 8812 §2). It converts to and from a public <see cref="Jwk"/>.
/// </summary>
public sealed class CoseKey
{
    /// <summary>COSE algorithm ES256, ECDSA with SHA-256 (RFC 9053 §2.1).</summary>
    public const int ES256 = -7;

    /// <summary>COSE algorithm EdDSA (RFC 9053 §2.2); WebAuthn only pairs it with Ed25519.</summary>
    public const int EdDSA = -8;

    /// <summary>COSE algorithm RS256, RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8812 §2).</summary>
    public const int RS256 = -257;

    /// <summary>Smallest RSA modulus accepted, in bits.</summary>
    public const int MinRsaBits = 2048;

    /// <summary>Largest RSA modulus accepted, in bits; caps verification cost.</summary>
    public const int MaxRsaBits = 8192;

    // RFC 9052 §7.1 common labels and RFC 9053 §7 / RFC 8230 §4 key type parameters.
    private const long LabelKty = 1;
    private const long LabelKid = 2;
    private const long LabelAlg = 3;
    private const long LabelCrv = -1;
    private const long LabelX = -2;
    private const long LabelY = -3;
    private const long LabelRsaN = -1;
    private const long LabelRsaE = -2;
    private const long KtyOkp = 1;
    private const long KtyEc2 = 2;
    private const long KtyRsa = 3;
    private const long CrvP256 = 1;
    private const long CrvEd25519 = 6;

    private const int CoordinateSize = 32;
    private const string JwkEc = "EC";
    private const string JwkRsa = "RSA";
    private const string JwkP256 = "P-256";

    private readonly byte[] _x;
    private readonly byte[] _y;

    private CoseKey(int algorithm, byte[] x, byte[] y)
    {
        Algorithm = algorithm;
        _x = x;
        _y = y;
    }

    /// <summary>The COSE algorithm: <see cref="ES256"/>, <see cref="EdDSA"/> or <see cref="RS256"/>.</summary>
    public int Algorithm { get; }

    /// <summary>Parses a CBOR-encoded COSE_Key that must span the whole input.</summary>
    public static bool TryParse(ReadOnlySpan<byte> cbor, [NotNullWhen(true)] out CoseKey? key, [NotNullWhen(false)] out WebAuthnError? error)
    {
        key = null;
        try
        {
            key = FromCbor(Cbor.Decode(cbor));
            error = null;
            return true;
        }
        catch (CborException e)
        {
            error = new WebAuthnError(WebAuthnFailures.InvalidKey, "COSE key is not valid CBOR: " + e.Message);
        }
        catch (WebAuthnFormatException e)
        {
            error = e.Error;
        }
        return false;
    }

    /// <summary>
    /// Reads a public JWK (RFC 7517) as a COSE key: EC P-256 becomes ES256, OKP Ed25519 becomes
    /// EdDSA, RSA becomes RS256. Members are checked as strictly as in the COSE form.
    /// </summary>
    public static bool TryFromJwk(Jwk jwk, [NotNullWhen(true)] out CoseKey? key, [NotNullWhen(false)] out WebAuthnError? error)
    {
        key = null;
        try
        {
            key = jwk.Kty switch
            {
                JwkEc when jwk.Crv == JwkP256 => Ec2(JwkMember(jwk.X, "x"), JwkMember(jwk.Y, "y")),
                Jwk.OctetKeyPair when jwk.Crv == Jwk.Ed25519Curve => Okp(JwkMember(jwk.X, "x")),
                JwkRsa => Rsa(JwkMember(jwk.N, "n"), JwkMember(jwk.E, "e")),
                _ => throw Unsupported($"JWK kty {jwk.Kty} with crv {jwk.Crv ?? "(none)"} is not supported"),
            };
            error = null;
            return true;
        }
        catch (WebAuthnFormatException e)
        {
            error = e.Error;
            return false;
        }
    }

    /// <summary>The public JWK for this key (RFC 7518 §6.2, §6.3; RFC 8037 §2), without kid or use.</summary>
    public Jwk ToJwk() => Algorithm switch
    {
        ES256 => new Jwk(JwkEc, JwkP256, Base64Url.Encode(_x), Base64Url.Encode(_y)),
        EdDSA => new Jwk(Jwk.OctetKeyPair, Jwk.Ed25519Curve, Base64Url.Encode(_x)),
        _ => new Jwk(JwkRsa, null, null, N: Base64Url.Encode(_x), E: Base64Url.Encode(_y)),
    };

    /// <summary>
    /// Verifies a WebAuthn signature over <paramref name="data"/>: ES256 signatures are ASN.1 DER
    /// (WebAuthn L3 §6.5.5, decoded strictly), EdDSA signatures are the raw 64 bytes and RS256
    /// signatures are PKCS#1 v1.5 of exactly the modulus length. False for any malformed input.
    /// </summary>
    public bool VerifySignature(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        switch (Algorithm)
        {
            case EdDSA:
                return signature.Length == Ed25519.SignatureSize && Ed25519.Verify(_x, data, signature);
            case ES256:
                Span<byte> p1363 = stackalloc byte[2 * CoordinateSize];
                if (!EcdsaSignature.TryDerToP1363(signature, p1363))
                {
                    return false;
                }
                try
                {
                    using var ecdsa = ECDsa.Create(EcParameters(_x, _y));
                    return ecdsa.VerifyData(data, p1363, HashAlgorithmName.SHA256);
                }
                catch (CryptographicException)
                {
                    return false;
                }
            default:
                // RFC 8017 §8.2.2 step 1: the signature is exactly as long as the modulus.
                if (signature.Length != _x.Length)
                {
                    return false;
                }
                try
                {
                    using var rsa = RSA.Create(new RSAParameters { Modulus = _x, Exponent = _y });
                    return rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                }
                catch (CryptographicException)
                {
                    return false;
                }
        }
    }

    /// <summary>Reads a decoded COSE_Key; throws <see cref="WebAuthnFormatException"/> on anything else.</summary>
    internal static CoseKey FromCbor(CborValue value)
    {
        if (value is not CborMap map)
        {
            throw Invalid("COSE key is not a map");
        }
        var kty = Integer(map, LabelKty, "kty");
        // WebAuthn L3 §6.5.1.1: the credential public key must carry alg.
        var alg = Integer(map, LabelAlg, "alg");
        if (map[LabelKid] is not (null or CborByteString))
        {
            throw Invalid("COSE kid is not a byte string");
        }
        long[] allowed;
        CoseKey key;
        switch (kty)
        {
            case KtyEc2:
                RequireAlg(alg, ES256, "EC2");
                if (Integer(map, LabelCrv, "crv") != CrvP256)
                {
                    throw Unsupported("EC2 key is not on P-256");
                }
                // RFC 9053 §7.1.1: y may be a bool for point compression; WebAuthn keys are uncompressed.
                key = Ec2(Bytes(map, LabelX, "x"), Bytes(map, LabelY, "y"));
                allowed = [LabelKty, LabelKid, LabelAlg, LabelCrv, LabelX, LabelY];
                break;
            case KtyOkp:
                RequireAlg(alg, EdDSA, "OKP");
                if (Integer(map, LabelCrv, "crv") != CrvEd25519)
                {
                    throw Unsupported("OKP key is not Ed25519");
                }
                key = Okp(Bytes(map, LabelX, "x"));
                allowed = [LabelKty, LabelKid, LabelAlg, LabelCrv, LabelX];
                break;
            case KtyRsa:
                RequireAlg(alg, RS256, "RSA");
                key = Rsa(Bytes(map, LabelRsaN, "n"), Bytes(map, LabelRsaE, "e"));
                allowed = [LabelKty, LabelKid, LabelAlg, LabelRsaN, LabelRsaE];
                break;
            default:
                throw Unsupported($"COSE kty {kty} is not supported");
        }
        // Anything else — a private component such as d, key_ops, a base IV — has no place in a
        // credential public key.
        foreach (var label in map.Entries.Keys)
        {
            if (label is not CborInteger { Value: var l } || Array.IndexOf(allowed, l) < 0)
            {
                throw Invalid($"COSE key has an unexpected parameter {label}");
            }
        }
        return key;
    }

    private static CoseKey Ec2(byte[] x, byte[] y)
    {
        if (x.Length != CoordinateSize || y.Length != CoordinateSize)
        {
            throw Invalid("P-256 coordinates must be 32 bytes each");
        }
        try
        {
            // Import checks that the point is on the curve.
            using var ecdsa = ECDsa.Create(EcParameters(x, y));
        }
        catch (CryptographicException)
        {
            throw Invalid("P-256 point is not on the curve");
        }
        return new CoseKey(ES256, x, y);
    }

    private static CoseKey Okp(byte[] x) =>
        x.Length == Ed25519.PublicKeySize ? new CoseKey(EdDSA, x, []) : throw Invalid("Ed25519 key must be 32 bytes");

    private static CoseKey Rsa(byte[] n, byte[] e)
    {
        // RFC 8230 §4 and RFC 7518 §6.3.1: unsigned big-endian in the minimum number of octets.
        if (n.Length == 0 || n[0] == 0 || e.Length == 0 || e[0] == 0)
        {
            throw Invalid("RSA n and e must be minimal non-empty big-endian integers");
        }
        var bits = (n.Length - 1) * 8 + (32 - BitOperations.LeadingZeroCount((uint)n[0]));
        if (bits is < MinRsaBits or > MaxRsaBits || (n[^1] & 1) == 0)
        {
            throw Invalid($"RSA modulus of {bits} bits is outside {MinRsaBits}–{MaxRsaBits} or even");
        }
        if (e.Length > 4 || (e[^1] & 1) == 0 || (e.Length == 1 && e[0] < 3))
        {
            throw Invalid("RSA exponent must be odd, at least 3 and at most 32 bits");
        }
        try
        {
            using var rsa = RSA.Create(new RSAParameters { Modulus = n, Exponent = e });
        }
        catch (CryptographicException)
        {
            throw Invalid("RSA key could not be imported");
        }
        return new CoseKey(RS256, n, e);
    }

    private static ECParameters EcParameters(byte[] x, byte[] y) => new()
    {
        Curve = ECCurve.NamedCurves.nistP256,
        Q = new ECPoint { X = x, Y = y },
    };

    private static void RequireAlg(long alg, int expected, string kty)
    {
        if (alg != expected)
        {
            throw Unsupported($"COSE alg {alg} is not accepted for kty {kty}");
        }
    }

    private static long Integer(CborMap map, long label, string name) =>
        map[label] is CborInteger i ? i.Value : throw Invalid($"COSE {name} is missing or not an integer");

    private static byte[] Bytes(CborMap map, long label, string name) =>
        map[label] is CborByteString b ? b.Value : throw Invalid($"COSE {name} is missing or not a byte string");

    private static byte[] JwkMember(string? value, string name) =>
        value is not null && Base64Url.TryDecode(value, out var bytes)
            ? bytes
            : throw Invalid($"JWK {name} is missing or not base64url");

    private static WebAuthnFormatException Invalid(string detail) => new(WebAuthnFailures.InvalidKey, detail);

    private static WebAuthnFormatException Unsupported(string detail) => new(WebAuthnFailures.UnsupportedAlgorithm, detail);
}
