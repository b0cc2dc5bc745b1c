using Assent.Server.Common;

namespace Assent.Server.Tests;

public sealed class IdsTests
{
    [Fact]
    public void Ordered_ids_sort_by_creation_time_and_never_repeat()
    {
        var start = DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_000);
        var ids = Enumerable.Range(0, 2000).Select(i => Ids.Ordered("apr", start.AddMilliseconds(i / 4))).ToList();
        Assert.All(ids, id => Assert.Matches("^apr_[0-9a-f]{12}[A-Za-z0-9_-]{16}$", id));
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        // Ids of different milliseconds sort by time (ordinal, as SQLite and PostgreSQL's "C" collation compare text).
        for (var i = 4; i < ids.Count; i += 4)
        {
            Assert.True(string.CompareOrdinal(ids[i - 1], ids[i]) < 0, $"{ids[i - 1]} sorts after {ids[i]}");
        }
        Assert.StartsWith("apr_" + start.ToUnixTimeMilliseconds().ToString("x12", System.Globalization.CultureInfo.InvariantCulture), ids[0], StringComparison.Ordinal);
    }
}
