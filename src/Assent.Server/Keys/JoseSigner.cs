using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Jose;

namespace Assent.Server.Keys;

/// <summary>The JOSE algorithms an ID token may be signed with (per client, <c>id_token_signed_response_alg</c>, docs/tokens.md §11).</summary>
internal static class IdTokenAlgs
{
    public const string EdDsa = Jws.EdDsa;

    /// <summary>RFC 7518 §3.4: ECDSA P-256 SHA-256.</summary>
    public const string Es256 = "ES256";

    /// <summary>RFC 7518 §3.3: RSASSA-PKCS1-v1_5 SHA-256.</summary>
    public const string Rs256 = "RS256";

    public static readonly IReadOnlyList<string> All = [EdDsa, Es256, Rs256];

    /// <summary>The algorithm's canonical spelling, or null when it is none of <see cref="All"/>.</summary>
    public static string? Parse(string? alg) => All.FirstOrDefault(a => string.Equals(a, alg, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// An ES256 or RS256 ID-token key, imported once. Signing is <see cref="System.Security.Cryptography"/>'s (RFC 7518 §3.3–§3.4:
/// ECDSA signatures as the fixed-width R‖S, RSA as PKCS#1 v1.5); the compact JWS around it is a few lines, as for EdDSA.
/// </summary>
internal sealed class JoseSigner : IDisposable
{
    private readonly ECDsa? _ec;
    private readonly RSA? _rsa;
    private readonly string _header;

    private JoseSigner(string kid, string alg, ECDsa? ec, RSA? rsa, Jwk publicJwk)
    {
        Kid = kid;
        Alg = alg;
        _ec = ec;
        _rsa = rsa;
        PublicJwk = publicJwk;
        _header = EncodeHeader(alg, kid, Jws.JwtType);
    }

    public string Kid { get; }

    public string Alg { get; }

    /// <summary>As published in the JWKS: with <c>alg</c> (docs/tokens.md §11), unlike the Ed25519 keys.</summary>
    public Jwk PublicJwk { get; }

    public string Sign(ReadOnlySpan<byte> payload)
    {
        var input = Encoding.ASCII.GetBytes(string.Concat(_header, ".", Base64Url.Encode(payload)));
        var signature = _ec is not null
            ? _ec.SignData(input, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
            : _rsa!.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return string.Concat(Encoding.ASCII.GetString(input), ".", Base64Url.Encode(signature));
    }

    /// <summary>A new key: the PKCS#8 private key (for sealing) and its public JWK with its RFC 7638 thumbprint as kid.</summary>
    public static (byte[] Pkcs8, Jwk PublicJwk) Generate(string alg)
    {
        if (alg == IdTokenAlgs.Es256)
        {
            using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            return (ec.ExportPkcs8PrivateKey(), PublicOf(alg, ec, null));
        }
        using var rsa = RSA.Create(2048);
        return (rsa.ExportPkcs8PrivateKey(), PublicOf(alg, null, rsa));
    }

    public static JoseSigner Load(string kid, string alg, byte[] pkcs8)
    {
        if (alg == IdTokenAlgs.Es256)
        {
            var ec = ECDsa.Create();
            ec.ImportPkcs8PrivateKey(pkcs8, out _);
            return new JoseSigner(kid, alg, ec, null, PublicOf(alg, ec, null) with { Kid = kid });
        }
        var rsa = RSA.Create();
        rsa.ImportPkcs8PrivateKey(pkcs8, out _);
        return new JoseSigner(kid, alg, null, rsa, PublicOf(alg, null, rsa) with { Kid = kid });
    }

    private static Jwk PublicOf(string alg, ECDsa? ec, RSA? rsa)
    {
        if (ec is not null)
        {
            var p = ec.ExportParameters(false);
            var (x, y) = (Base64Url.Encode(p.Q.X!), Base64Url.Encode(p.Q.Y!));
            // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
            var kid = Thumbprint($"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{x}\",\"y\":\"{y}\"}}");
            return new Jwk("EC", "P-256", x, y, Kid: kid, Use: "sig", Alg: alg);
        }
        var r = rsa!.ExportParameters(false);
        var (n, e) = (Base64Url.Encode(r.Modulus!), Base64Url.Encode(r.Exponent!));
        return new Jwk("RSA", null, null, N: n, E: e, Kid: Thumbprint($"{{\"e\":\"{e}\",\"kty\":\"RSA\",\"n\":\"{n}\"}}"), Use: "sig", Alg: alg);
    }

    private static string Thumbprint(string canonical) => Base64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));

    private static string EncodeHeader(string alg, string kid, string typ)
    {
        var buffer = new ArrayBufferWriter<byte>(96);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("alg", alg);
            w.WriteString("kid", kid);
            w.WriteString("typ", typ);
            w.WriteEndObject();
        }
        return Base64Url.Encode(buffer.WrittenSpan);
    }

    public void Dispose()
    {
        _ec?.Dispose();
        _rsa?.Dispose();
    }
}
