using System.Text.Json;

namespace Assent.Server.Approvals;

/// <summary>What a human is shown with a request: checked before any request is created (docs/concepts.md §4).</summary>
internal static class ApprovalText
{
    /// <summary>At most 256 characters, shown verbatim, so no control characters that could hide or reorder text.</summary>
    internal static bool IsDisplayable(string text) =>
        text.Length is > 0 and <= 256 && !text.Any(c => char.IsControl(c) || c is '\u202A' or '\u202B' or '\u202C' or '\u202D' or '\u202E' or '\u2066' or '\u2067' or '\u2068' or '\u2069');

    /// <summary>RFC 9396 §2: a JSON array of objects, each with a string <c>type</c> this server knows.</summary>
    internal static bool TryNormalizeDetails(string raw, IReadOnlyCollection<string> types, out string? normalized, out string why)
    {
        normalized = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(raw, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException)
        {
            why = "authorization_details is not valid JSON";
            return false;
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array || doc.RootElement.GetArrayLength() == 0)
            {
                why = "authorization_details must be a non-empty JSON array";
                return false;
            }
            foreach (var item in doc.RootElement.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                {
                    why = "every authorization_details entry must be an object with a string 'type'";
                    return false;
                }
                if (!types.Contains(type.GetString()!))
                {
                    why = $"unknown authorization_details type '{type.GetString()}'; supported: {string.Join(", ", types)}";
                    return false;
                }
            }
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream))
            {
                doc.RootElement.WriteTo(w);
            }
            normalized = System.Text.Encoding.UTF8.GetString(stream.ToArray());
            why = "";
            return true;
        }
    }
}
