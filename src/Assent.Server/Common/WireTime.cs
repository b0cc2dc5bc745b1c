using System.Globalization;

namespace Assent.Server.Common;

/// <summary>Times on the /v1 API: RFC 3339 UTC with milliseconds (docs/challenges.md §2).</summary>
internal static class WireTime
{
    public static string? Of(long? unixMs) =>
        unixMs is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) : null;
}
