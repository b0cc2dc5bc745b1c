using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Assent.Protocol.Approvals;

/// <summary>The two words a device can sign (docs/concepts.md §5.1).</summary>
public static class Decisions
{
    public const string Approve = "approve";
    public const string Deny = "deny";

    public static bool IsValid(string? decision) => decision is Approve or Deny;
}

/// <summary>
/// The approval payload (docs/concepts.md §5): the exact UTF-8 JSON bytes a device signs, built once
/// when the request is created and never rebuilt.
/// </summary>
public sealed record ApprovalPayload(
    int V,
    string Iss,
    string Req,
    string Sub,
    string ClientId,
    string ClientName,
    string Scope,
    string? BindingMessage,
    JsonElement? AuthorizationDetails,
    long Iat,
    long Exp,
    string Nonce)
{
    public const int Version = 1;

    /// <summary>Writes the payload members in the fixed order of docs/concepts.md §5.</summary>
    /// <param name="authorizationDetailsJson">The RFC 9396 array as validated JSON, or null.</param>
    public static byte[] Build(string iss, string req, string sub, string clientId, string clientName, string scope,
        string? bindingMessage, ReadOnlySpan<byte> authorizationDetailsJson, long iat, long exp, string nonce)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = false }))
        {
            w.WriteStartObject();
            w.WriteNumber("v", Version);
            w.WriteString("iss", iss);
            w.WriteString("req", req);
            w.WriteString("sub", sub);
            w.WriteString("client_id", clientId);
            w.WriteString("client_name", clientName);
            w.WriteString("scope", scope);
            if (bindingMessage is null)
            {
                w.WriteNull("binding_message");
            }
            else
            {
                w.WriteString("binding_message", bindingMessage);
            }
            w.WritePropertyName("authorization_details");
            if (authorizationDetailsJson.IsEmpty)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteRawValue(authorizationDetailsJson, skipInputValidation: false);
            }
            w.WriteNumber("iat", iat);
            w.WriteNumber("exp", exp);
            w.WriteString("nonce", nonce);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The bytes a device signs: <c>decision ‖ 0x00 ‖ payload</c> (docs/concepts.md §5.1).</summary>
    public static byte[] SigningInput(string decision, ReadOnlySpan<byte> payload)
    {
        if (!Decisions.IsValid(decision))
        {
            throw new ArgumentException("decision must be 'approve' or 'deny'", nameof(decision));
        }
        var result = new byte[decision.Length + 1 + payload.Length];
        Encoding.ASCII.GetBytes(decision, result);
        result[decision.Length] = 0;
        payload.CopyTo(result.AsSpan(decision.Length + 1));
        return result;
    }

    private static readonly string[] Members =
        ["v", "iss", "req", "sub", "client_id", "client_name", "scope", "binding_message", "authorization_details", "iat", "exp", "nonce"];

    /// <summary>Parses payload bytes for display or checking; false when they are not a v1 payload.</summary>
    /// <remarks>
    /// The human approves what is shown, and the device signs the bytes: so exactly the twelve
    /// v1 members, each once and of its type. An extra, duplicate or mistyped member would be
    /// signed without being shown, or shown differently by another parser.
    /// </remarks>
    public static bool TryParse(ReadOnlySpan<byte> payload, out ApprovalPayload? parsed)
    {
        parsed = null;
        try
        {
            using var doc = JsonDocument.Parse(payload.ToArray(), new JsonDocumentOptions { MaxDepth = 32, AllowDuplicateProperties = false });
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object || r.GetPropertyCount() != Members.Length || !Members.All(m => r.TryGetProperty(m, out _)))
            {
                return false;
            }
            var v = r.GetProperty("v");
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var version) || version != Version)
            {
                return false;
            }
            string? Str(string name) => r.GetProperty(name) is { ValueKind: JsonValueKind.String } e ? e.GetString() : null;
            long? Num(string name) => r.GetProperty(name) is { ValueKind: JsonValueKind.Number } e && e.TryGetInt64(out var n) ? n : null;
            var binding = r.GetProperty("binding_message");
            var details = r.GetProperty("authorization_details");
            var (iss, req, sub, cid, cname, scope, nonce) = (Str("iss"), Str("req"), Str("sub"), Str("client_id"), Str("client_name"), Str("scope"), Str("nonce"));
            var (iat, exp) = (Num("iat"), Num("exp"));
            if (iss is null || req is null || sub is null || cid is null || cname is null || scope is null || nonce is null ||
                iat is null || exp is null ||
                binding.ValueKind is not (JsonValueKind.String or JsonValueKind.Null) ||
                details.ValueKind is not (JsonValueKind.Array or JsonValueKind.Null))
            {
                return false;
            }
            parsed = new ApprovalPayload(Version, iss, req, sub, cid, cname, scope, binding.GetString(),
                details.ValueKind == JsonValueKind.Array ? details.Clone() : null, iat.Value, exp.Value, nonce);
            return true;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return false;
        }
    }
}
