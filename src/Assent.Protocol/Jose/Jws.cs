using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Assent.Protocol.Crypto;

namespace Assent.Protocol.Jose;

/// <summary>The parts of a compact JWS (RFC 7515 §7.1), decoded but not yet trusted.</summary>
public sealed record JwsParts(JwsHeader Header, byte[] HeaderBytes, byte[] Payload, byte[] Signature, int SigningInputLength);

/// <summary>The protected header members Assent reads; anything else is ignored unless it is <c>crit</c>.</summary>
public sealed record JwsHeader(string? Alg, string? Kid, string? Typ);

/// <summary>Compact JWS with EdDSA over Ed25519 (RFC 8037 §3.1), the only algorithm Assent signs or accepts.</summary>
public static class Jws
{
    public const string EdDsa = "EdDSA";
    public const string AccessTokenType = "at+jwt";
    public const string JwtType = "JWT";

    /// <summary>RFC 8725 §3.1 / §3.5: cap the input before any parsing work.</summary>
    public const int DefaultMaxLength = 16 * 1024;

    /// <summary>Encodes the protected header once; callers cache it per key.</summary>
    public static string EncodeHeader(string kid, string typ)
    {
        var buffer = new ArrayBufferWriter<byte>(96);
        // The default encoder writes '+' as \u002B; docs/tokens.md §3 and RFC 9068 §2.1 show "at+jwt" as is.
        // There is no HTML context in a JOSE header, so the relaxed encoder is safe here.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("alg", EdDsa);
            w.WriteString("kid", kid);
            w.WriteString("typ", typ);
            w.WriteEndObject();
        }
        return Base64Url.Encode(buffer.WrittenSpan);
    }

    /// <summary>Signs <paramref name="payload"/> under an already-encoded header.</summary>
    public static string Sign(string encodedHeader, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> seed)
    {
        using var signer = new Ed25519Signer(seed);
        return Sign(encodedHeader, payload, signer);
    }

    /// <summary>Signs <paramref name="payload"/> under an already-encoded header with a key imported once.</summary>
    public static string Sign(string encodedHeader, ReadOnlySpan<byte> payload, Ed25519Signer signer)
    {
        var encodedPayload = Base64Url.Encode(payload);
        var signingInput = string.Concat(encodedHeader, ".", encodedPayload);
        var inputBytes = Encoding.ASCII.GetBytes(signingInput);
        var signature = signer.Sign(inputBytes);
        return string.Concat(signingInput, ".", Base64Url.Encode(signature));
    }

    /// <summary>
    /// Splits and decodes a compact JWS without trusting it. Refuses anything but three
    /// base64url parts, a JSON-object header and a 64-byte signature; <c>crit</c> is refused
    /// because Assent understands no extension (RFC 7515 §4.1.11).
    /// </summary>
    public static bool TryParse(string token, int maxLength, out JwsParts? parts, out string? error)
    {
        parts = null;
        if (token.Length > maxLength)
        {
            error = "token is larger than allowed";
            return false;
        }
        var first = token.IndexOf('.');
        var second = first < 0 ? -1 : token.IndexOf('.', first + 1);
        if (first <= 0 || second <= first + 1 || token.IndexOf('.', second + 1) >= 0 || second == token.Length - 1)
        {
            error = "not a compact JWS";
            return false;
        }
        if (!Base64Url.TryDecode(token.AsSpan(0, first), out var headerBytes) ||
            !Base64Url.TryDecode(token.AsSpan(first + 1, second - first - 1), out var payload) ||
            !Base64Url.TryDecode(token.AsSpan(second + 1), out var signature))
        {
            error = "a part is not base64url";
            return false;
        }
        if (signature.Length != Ed25519.SignatureSize)
        {
            error = "signature has the wrong length";
            return false;
        }
        if (!TryReadHeader(headerBytes, out var header, out error))
        {
            return false;
        }
        parts = new JwsParts(header!, headerBytes, payload, signature, second);
        return true;
    }

    /// <summary>Checks the EdDSA signature of a parsed token against a raw Ed25519 public key.</summary>
    public static bool VerifySignature(string token, JwsParts parts, ReadOnlySpan<byte> publicKey)
    {
        var input = parts.SigningInputLength <= 4096 ? stackalloc byte[parts.SigningInputLength] : new byte[parts.SigningInputLength];
        var written = Encoding.ASCII.GetBytes(token.AsSpan(0, parts.SigningInputLength), input);
        return Ed25519.Verify(publicKey, input[..written], parts.Signature);
    }

    private static bool TryReadHeader(byte[] headerBytes, out JwsHeader? header, out string? error)
    {
        header = null;
        string? alg = null, kid = null, typ = null;
        try
        {
            var reader = new Utf8JsonReader(headerBytes, new JsonReaderOptions { MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "header is not a JSON object";
                return false;
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "alg":
                        alg = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                        if (alg is null) { error = "alg is not a string"; return false; }
                        break;
                    case "kid":
                        kid = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                        if (kid is null) { error = "kid is not a string"; return false; }
                        break;
                    case "typ":
                        typ = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                        if (typ is null) { error = "typ is not a string"; return false; }
                        break;
                    case "crit":
                        error = "crit header parameters are not supported";
                        return false;
                    default:
                        reader.Skip();
                        break;
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                error = "header has trailing data";
                return false;
            }
        }
        catch (JsonException)
        {
            error = "header is not valid JSON";
            return false;
        }
        header = new JwsHeader(alg, kid, typ);
        error = null;
        return true;
    }
}
