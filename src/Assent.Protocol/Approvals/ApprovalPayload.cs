using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Assent.Protocol.Approvals;

/// <summary>The two words a device can sign (SPEC §1).</summary>
public static class Decisions
{
    public const string Approve = "approve";
    public const string Deny = "deny";

    public static bool IsValid(string? decision) => decision is Approve or Deny;
}

/// <summary>
/// The approval payload of SPEC §1: the exact UTF-8 JSON bytes a device signs, built once
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

    /// <summary>Writes the payload members in the fixed order of SPEC §1.</summary>
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

    /// <summary>The bytes a device signs: <c>decision ‖ 0x00 ‖ payload</c> (SPEC §1).</summary>
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

    /// <summary>Parses payload bytes for display or checking; false when they are not a v1 payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> payload, out ApprovalPayload? parsed)
    {
        parsed = null;
        try
        {
            using var doc = JsonDocument.Parse(payload.ToArray(), new JsonDocumentOptions { MaxDepth = 32 });
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object || !r.TryGetProperty("v", out var v) || v.ValueKind != JsonValueKind.Number || v.GetInt32() != Version)
            {
                return false;
            }
            string? Str(string name) => r.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            long Num(string name) => r.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Number ? e.GetInt64() : -1;
            JsonElement? details = r.TryGetProperty("authorization_details", out var d) && d.ValueKind == JsonValueKind.Array ? d.Clone() : null;
            var (iss, req, sub, cid, cname, scope, nonce) = (Str("iss"), Str("req"), Str("sub"), Str("client_id"), Str("client_name"), Str("scope"), Str("nonce"));
            if (iss is null || req is null || sub is null || cid is null || cname is null || scope is null || nonce is null)
            {
                return false;
            }
            parsed = new ApprovalPayload(Version, iss, req, sub, cid, cname, scope, Str("binding_message"), details, Num("iat"), Num("exp"), nonce);
            return true;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return false;
        }
    }
}
