using System.Buffers;
using System.Text.Json;
using Assent.Protocol.OAuth;

namespace Assent.Server.Approvals;

/// <summary>
/// The RFC 9396 entry of a request that creates a named credential with scopes (an agent, an API key):
/// <c>[{"type":…,"name":…,"scopes":[…]}]</c>. The device shows and signs it; what is created is read back from it,
/// so what the human approved is what exists.
/// </summary>
internal static class NamedGrantDetails
{
    public static string Write(string type, string name, string scopes)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString(AuthorizationDetailFields.Type, type);
            w.WriteString("name", name);
            w.WriteStartArray("scopes");
            foreach (var s in scopes.Split(' '))
            {
                w.WriteStringValue(s);
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static (string Name, string Scopes) Read(string? details)
    {
        using var doc = JsonDocument.Parse(details ?? "[{}]");
        var entry = doc.RootElement[0];
        var name = entry.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "";
        var scopes = entry.TryGetProperty("scopes", out var s) ? string.Join(' ', s.EnumerateArray().Select(e => e.GetString())) : "";
        return (name, scopes);
    }
}
