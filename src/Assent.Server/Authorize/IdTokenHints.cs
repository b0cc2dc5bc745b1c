using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Jose;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Keys;

namespace Assent.Server.Authorize;

/// <summary>What an <c>id_token_hint</c> says, once verified.</summary>
internal sealed record HintedIdToken(string Subject, string ClientId);

/// <summary>
/// Verifies an <c>id_token_hint</c> (RP-Initiated Logout 1.0 §2) as RFC 8725 asks of every JWT parsed: size capped
/// before parsing (§3.5), the algorithm one of ours and the one its key is for (§3.1, no <c>none</c>, no HS*, no key
/// confusion), the key by kid from our own JWKS only, <c>typ: JWT</c> so an access token is no hint (§3.11), exact
/// issuer (§3.8) and a single audience. An expired one is accepted: §2 lets a logout follow the token's expiry.
/// </summary>
internal sealed class IdTokenHints(KeyRing keys, AssentOptions options)
{
    public HintedIdToken? Validate(string token)
    {
        var parts = Parse(token);
        if (parts is null || parts.Header.Typ != Jws.JwtType || parts.Header.Kid is null)
        {
            return null;
        }
        var key = keys.Published.FirstOrDefault(k => k.Kid == parts.Header.Kid);
        if (key is null || !Verifies(token, parts, key))
        {
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(parts.Payload);
            var root = doc.RootElement;
            return root.ValueKind == JsonValueKind.Object &&
                   root.TryGetProperty(ClaimNames.Issuer, out var iss) && iss.ValueKind == JsonValueKind.String && iss.GetString() == options.IssuerString &&
                   root.TryGetProperty(ClaimNames.Subject, out var sub) && sub.ValueKind == JsonValueKind.String &&
                   root.TryGetProperty(ClaimNames.Audience, out var aud) && aud.ValueKind == JsonValueKind.String
                ? new HintedIdToken(sub.GetString()!, aud.GetString()!)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// <see cref="Jws.TryParse"/> takes only Ed25519's 64-byte signatures; an ES256 signature is 64 bytes too, an RS256 one
    /// the modulus' size. So an RS256 hint is split here: the same checks (size first, three base64url parts, a JSON-object
    /// header without <c>crit</c>) with the signature's length left to the key's verification.
    /// </summary>
    private static JwsParts? Parse(string token)
    {
        if (Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out _))
        {
            return parts;
        }
        if (token.Length > Jws.DefaultMaxLength)
        {
            return null;
        }
        var segments = token.Split('.');
        if (segments.Length != 3 || segments.Any(p => p.Length == 0) ||
            !Base64Url.TryDecode(segments[0], out var header) || !Base64Url.TryDecode(segments[1], out var payload) || !Base64Url.TryDecode(segments[2], out var signature))
        {
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(header);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || root.TryGetProperty("crit", out _))
            {
                return null;
            }
            string? Text(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return new JwsParts(new JwsHeader(Text("alg"), Text("kid"), Text("typ")), header, payload, signature, segments[0].Length + 1 + segments[1].Length);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool Verifies(string token, JwsParts parts, Jwk key)
    {
        var alg = parts.Header.Alg;
        if (alg == Jws.EdDsa)
        {
            return key.TryGetEd25519(out var publicKey) && Jws.VerifySignature(token, parts, publicKey);
        }
        // The ES256/RS256 keys are published with their alg; the header must name exactly that one.
        if (key.Alg is null || key.Alg != alg)
        {
            return false;
        }
        var input = Encoding.ASCII.GetBytes(token[..parts.SigningInputLength]);
        try
        {
            if (alg == IdTokenAlgs.Es256 && key is { Kty: "EC", Crv: "P-256", X: not null, Y: not null })
            {
                using var ec = ECDsa.Create(new ECParameters
                {
                    Curve = ECCurve.NamedCurves.nistP256,
                    Q = new ECPoint { X = Base64Url.Decode(key.X), Y = Base64Url.Decode(key.Y) },
                });
                return ec.VerifyData(input, parts.Signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
            }
            if (alg == IdTokenAlgs.Rs256 && key is { Kty: "RSA", N: not null, E: not null })
            {
                using var rsa = RSA.Create(new RSAParameters { Modulus = Base64Url.Decode(key.N), Exponent = Base64Url.Decode(key.E) });
                return rsa.VerifyData(input, parts.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            }
        }
        catch (CryptographicException)
        {
        }
        return false;
    }
}
