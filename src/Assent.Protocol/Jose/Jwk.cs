using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Assent.Protocol.Crypto;

namespace Assent.Protocol.Jose;

/// <summary>A public JWK. Assent publishes OKP/Ed25519 keys (RFC 8037 §2); devices may hold EC or RSA keys.</summary>
public sealed record Jwk(
    [property: JsonPropertyName("kty")] string Kty,
    [property: JsonPropertyName("crv"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Crv,
    [property: JsonPropertyName("x"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? X,
    [property: JsonPropertyName("y"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Y = null,
    [property: JsonPropertyName("n"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? N = null,
    [property: JsonPropertyName("e"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? E = null,
    [property: JsonPropertyName("kid"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Kid = null,
    [property: JsonPropertyName("use"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Use = null,
    [property: JsonPropertyName("alg"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Alg = null)
{
    public const string OctetKeyPair = "OKP";
    public const string Ed25519Curve = "Ed25519";

    /// <summary>An Ed25519 signing key as published in a JWKS: no <c>alg</c> member (docs/http-api.md §4.2).</summary>
    public static Jwk ForEd25519(ReadOnlySpan<byte> publicKey, string? kid = null, string? use = "sig")
    {
        var x = Base64Url.Encode(publicKey);
        return new Jwk(OctetKeyPair, Ed25519Curve, x, Kid: kid ?? Thumbprint(x), Use: use);
    }

    /// <summary>RFC 7638 §3.2 thumbprint of an OKP key: SHA-256 over the required members in lexicographic order.</summary>
    public static string Thumbprint(string x)
    {
        var canonical = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" + x + "\"}";
        return Base64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>The raw Ed25519 public key, when this is a well-formed OKP/Ed25519 JWK.</summary>
    public bool TryGetEd25519(out byte[] publicKey)
    {
        publicKey = [];
        return Kty == OctetKeyPair && Crv == Ed25519Curve && X is not null &&
               Base64Url.TryDecode(X, out publicKey) && publicKey.Length == Ed25519.PublicKeySize;
    }
}

/// <summary>A JWK Set (RFC 7517 §5).</summary>
public sealed record JwkSet([property: JsonPropertyName("keys")] IReadOnlyList<Jwk> Keys);

/// <summary>JSON for JWKs, generated at build time (no reflection).</summary>
[JsonSerializable(typeof(Jwk))]
[JsonSerializable(typeof(JwkSet))]
public sealed partial class JwkJson : JsonSerializerContext;
