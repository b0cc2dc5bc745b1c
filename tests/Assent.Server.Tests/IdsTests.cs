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

    [Fact]
    public void A_handle_is_256_random_bits_after_its_time_and_keys_sort_by_that_time()
    {
        var start = DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_000);
        var handles = Enumerable.Range(0, 1000).Select(i => Ids.OrderedHandle(start.AddMilliseconds(i))).ToList();
        Assert.All(handles, h => Assert.Matches("^[A-Za-z0-9_-]{51}$", h));
        Assert.Equal(handles.Count, handles.Distinct(StringComparer.Ordinal).Count());
        var keys = handles.Select(Ids.HandleKey).ToList();
        for (var i = 0; i < keys.Count; i++)
        {
            // The key is the creation time, then the SHA-256 of the whole handle: the time alone finds nothing.
            Assert.Equal(38, keys[i].Length);
            Assert.Equal(Ids.Hash(handles[i]), keys[i][6..]);
            Assert.Equal(start.AddMilliseconds(i).ToUnixTimeMilliseconds(), Convert.ToInt64(Convert.ToHexString(keys[i], 0, 6), 16));
            if (i > 0)
            {
                // Byte order, as SQLite's BLOB and PostgreSQL's bytea compare: new rows go to the end of the index.
                Assert.True(keys[i - 1].AsSpan().SequenceCompareTo(keys[i]) < 0);
            }
        }
    }

    [Fact]
    public void A_handle_without_a_time_keys_as_its_hash_alone_as_earlier_releases_stored_it()
    {
        var earlier = Assent.Protocol.Base64Url.Encode(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        Assert.Equal(Ids.Hash(earlier), Ids.HandleKey(earlier));
        // 51 characters that are not base64url in their first eight, or of another length: the hash alone, never an error.
        var odd = "!" + new string('A', 50);
        Assert.Equal(Ids.Hash(odd), Ids.HandleKey(odd));
        Assert.Equal(Ids.Hash(""), Ids.HandleKey(""));
    }
}
