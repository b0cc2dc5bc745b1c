using System.Buffers;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Approvals;

/// <summary>What a human is shown with a request: checked before any request is created (docs/concepts.md §6).</summary>
internal static class ApprovalText
{
    /// <summary>JsonDocument's own limit; deeper input is refused as not JSON before the configured depth is measured.</summary>
    private const int MaxParseDepth = 64;

    /// <summary>
    /// At most 256 characters, shown verbatim, so nothing that could hide or reorder what the approver reads
    /// (<see cref="DisplayText"/>). Null when it may be shown, else why not.
    /// </summary>
    internal static string? BindingMessageProblem(string text) =>
        text.Length is 0 or > AccessTokenBudget.MaxBindingMessageLength
            ? $"binding_message must be 1 to {AccessTokenBudget.MaxBindingMessageLength} characters"
            : DisplayText.Problem(OAuthParameters.BindingMessage, text);

    /// <summary>
    /// RFC 9396 §2: a JSON array of objects, each with a string <c>type</c> this server knows and agents may send. Within the configured
    /// entries, depth and normalized bytes, so that every token carrying it verifies (<see cref="AccessTokenBudget"/>),
    /// and with no member name or string that could hide or reorder what the approver reads (<see cref="DisplayText"/>).
    /// </summary>
    internal static bool TryNormalizeDetails(string raw, AssentOptions options, out string? normalized, out string why)
    {
        normalized = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(raw, new JsonDocumentOptions { MaxDepth = MaxParseDepth });
        }
        catch (JsonException)
        {
            why = $"authorization_details is not valid JSON (or nests deeper than {MaxParseDepth} levels)";
            return false;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() == 0)
            {
                why = "authorization_details must be a non-empty JSON array";
                return false;
            }
            if (root.GetArrayLength() > options.MaxAuthorizationDetailsEntries)
            {
                why = $"authorization_details has {root.GetArrayLength()} entries; at most {options.MaxAuthorizationDetailsEntries} are allowed";
                return false;
            }
            if (Depth(root) is var depth && depth > options.MaxAuthorizationDetailsDepth)
            {
                why = $"authorization_details nests {depth} levels deep; at most {options.MaxAuthorizationDetailsDepth} are allowed (the outer array is level 1)";
                return false;
            }
            if (DisplayText.Problem(OAuthParameters.AuthorizationDetails, root) is { } hidden)
            {
                why = hidden;
                return false;
            }
            var buffer = new ArrayBufferWriter<byte>(raw.Length);
            using (var w = new Utf8JsonWriter(buffer))
            {
                root.WriteTo(w);
            }
            if (buffer.WrittenCount > options.MaxAuthorizationDetailsBytes)
            {
                why = $"authorization_details is {buffer.WrittenCount} bytes once normalized; at most {options.MaxAuthorizationDetailsBytes} are allowed";
                return false;
            }
            foreach (var item in root.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty(AuthorizationDetailFields.Type, out var type) || type.ValueKind != JsonValueKind.String)
                {
                    why = "every authorization_details entry must be an object with a string 'type'";
                    return false;
                }
                // Those types describe only requests the server raises itself: an agent's request must not pass for one,
                // whatever the configured list says.
                if (ApprovalKinds.ServerRaised.Contains(type.GetString()!))
                {
                    why = $"authorization_details type '{type.GetString()}' is raised by this server only, never by an agent";
                    return false;
                }
                if (!options.AuthorizationDetailsTypes.Contains(type.GetString()!))
                {
                    why = $"unknown authorization_details type '{type.GetString()}'; supported: {string.Join(", ", options.AuthorizationDetailsTypes)}";
                    return false;
                }
            }
            normalized = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
            why = "";
            return true;
        }
    }

    /// <summary>Nesting depth: an array or object is one level more than its deepest member; a scalar is none.</summary>
    private static int Depth(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Array => 1 + element.EnumerateArray().Select(Depth).DefaultIfEmpty(0).Max(),
        JsonValueKind.Object => 1 + element.EnumerateObject().Select(m => Depth(m.Value)).DefaultIfEmpty(0).Max(),
        _ => 0,
    };
}
