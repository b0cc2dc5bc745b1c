using System.Text.Json;

namespace Assent.Server.Tests;

/// <summary>Reads a device stream (docs/http-api.md §11) one event at a time, comments skipped.</summary>
internal static class ServerSentEvents
{
    public static async Task<(string Type, JsonElement Data)> NextAsync(StreamReader reader, CancellationToken ct)
    {
        string? type = null;
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && type is not null)
            {
                return (type, JsonDocument.Parse(line[6..]).RootElement.Clone());
            }
        }
        throw new EndOfStreamException("the stream ended");
    }
}
