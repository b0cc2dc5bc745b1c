using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Unicode;

namespace Assent.Protocol.WebAuthn;

/// <summary>The members of collected client data (WebAuthn L3 §5.8.1) that verification reads.</summary>
public sealed record ClientData(string Type, byte[] Challenge, string Origin, bool CrossOrigin, string? TopOrigin)
{
    /// <summary>The type of client data for registration (WebAuthn L3 §7.1 step 7).</summary>
    public const string TypeCreate = "webauthn.create";

    /// <summary>The type of client data for authentication (WebAuthn L3 §7.2 step 11).</summary>
    public const string TypeGet = "webauthn.get";

    /// <summary>Client data above this size is refused before parsing.</summary>
    public const int MaxLength = 16 * 1024;

    private static readonly JsonDocumentOptions Options = new()
    {
        MaxDepth = 8,
        AllowDuplicateProperties = false,
    };

    /// <summary>
    /// Parses clientDataJSON as JSON (WebAuthn L3 §7.1 step 5 allows any conforming parser):
    /// <c>type</c>, <c>challenge</c> (unpadded base64url) and <c>origin</c> are required strings,
    /// <c>crossOrigin</c> an optional boolean and <c>topOrigin</c> an optional string.
    /// Duplicate members are refused.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> json, [NotNullWhen(true)] out ClientData? clientData, [NotNullWhen(false)] out WebAuthnError? error)
    {
        clientData = null;
        error = null;
        if (json.Length > MaxLength)
        {
            error = Malformed("client data is larger than allowed");
            return false;
        }
        // RFC 8259 §8.1: JSON text is UTF-8. JsonDocument only transcodes strings when read, and
        // then throws InvalidOperationException, so the whole input is checked up front.
        if (!Utf8.IsValid(json))
        {
            error = Malformed("client data is not valid UTF-8");
            return false;
        }
        try
        {
            // JsonDocument.Parse takes memory, not a span; the copy is bounded by MaxLength.
            using var document = JsonDocument.Parse(json.ToArray(), Options);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = Malformed("client data is not a JSON object");
                return false;
            }
            if (!TryString(root, "type", out var type) || !TryString(root, "challenge", out var challengeText) ||
                !TryString(root, "origin", out var origin))
            {
                error = Malformed("client data lacks a string type, challenge or origin");
                return false;
            }
            if (!Base64Url.TryDecode(challengeText, out var challenge))
            {
                error = Malformed("challenge is not unpadded base64url");
                return false;
            }
            var crossOrigin = false;
            if (root.TryGetProperty("crossOrigin", out var cross))
            {
                if (cross.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    error = Malformed("crossOrigin is not a boolean");
                    return false;
                }
                crossOrigin = cross.GetBoolean();
            }
            string? topOrigin = null;
            if (root.TryGetProperty("topOrigin", out var top))
            {
                if (top.ValueKind != JsonValueKind.String)
                {
                    error = Malformed("topOrigin is not a string");
                    return false;
                }
                topOrigin = top.GetString();
            }
            clientData = new ClientData(type, challenge, origin, crossOrigin, topOrigin);
            return true;
        }
        catch (JsonException e)
        {
            error = Malformed("client data is not valid JSON: " + e.Message);
            return false;
        }
    }

    private static bool TryString(JsonElement root, string name, out string value)
    {
        value = "";
        if (!root.TryGetProperty(name, out var element) || element.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        value = element.GetString() ?? "";
        return true;
    }

    private static WebAuthnError Malformed(string detail) => new(WebAuthnFailures.MalformedClientData, detail);
}
