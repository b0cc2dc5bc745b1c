namespace Assent.Server.Storage;

/// <summary>One key's count in its current window, and the end of a lockout stored for it (0 when none).</summary>
internal sealed record RateCount(string Key, long Count, long LockedUntil);

/// <summary>
/// Counters of failed attempts that every node shares (docs/deployment.md §10): one row per key, counting in fixed
/// windows, so that guesses spread over several nodes add up. Rows are pruned once their window and lockout are over.
/// </summary>
internal interface IRateCounterStore
{
    /// <summary>
    /// Counts one more attempt for each key in the window that starts at <paramref name="windowStart"/> (a key last
    /// counted in an earlier window starts again at 1) and returns the counts, one per key, in one statement.
    /// </summary>
    Task<IReadOnlyList<RateCount>> CountAsync(IReadOnlyList<string> keys, long windowStart, long windowEnd, CancellationToken ct);

    /// <summary>Locks a key out until <paramref name="until"/>, whatever its window, and appends the audit event in the same transaction.</summary>
    Task LockAsync(string key, long until, AuditEvent audit, CancellationToken ct);
}

internal sealed class RateCounterStore(Database db) : IRateCounterStore
{
    // $1 = window start, $2 = window end, $3… = the keys. A row outlives its lockout: pruning keeps it until both are over.
    private static string CountSql(int keys) =>
        "INSERT INTO rate_counters(key, window_start, hits, locked_until, expires_at) VALUES " +
        string.Join(", ", Enumerable.Range(3, keys).Select(i => $"(${i}, $1, 1, 0, $2)")) +
        " ON CONFLICT (key) DO UPDATE SET " +
        "hits = CASE WHEN rate_counters.window_start = excluded.window_start THEN rate_counters.hits + 1 ELSE 1 END, " +
        "window_start = excluded.window_start, " +
        "expires_at = CASE WHEN rate_counters.locked_until > excluded.expires_at THEN rate_counters.locked_until ELSE excluded.expires_at END " +
        "RETURNING key, hits, locked_until";

    private static readonly string[] Statements = [CountSql(1), CountSql(2)];

    public Task<IReadOnlyList<RateCount>> CountAsync(IReadOnlyList<string> keys, long windowStart, long windowEnd, CancellationToken ct)
    {
        if (keys.Count is 0 or > 2)
        {
            throw new ArgumentOutOfRangeException(nameof(keys), "one or two keys per count");
        }
        return db.StatementAsync<IReadOnlyList<RateCount>>(Statements[keys.Count - 1], [windowStart, windowEnd, .. keys], static async (r, ct) =>
        {
            var counts = new List<RateCount>(2);
            while (await r.ReadAsync(ct))
            {
                counts.Add(new RateCount(r.GetString(0), r.GetInt64(1), r.GetInt64(2)));
            }
            return counts;
        }, ct);
    }

    public Task LockAsync(string key, long until, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("UPDATE rate_counters SET locked_until = $2, expires_at = CASE WHEN expires_at > $2 THEN expires_at ELSE $2 END " +
                              "WHERE key = $1 AND locked_until < $2", key, until);
            return await w.AuditedAsync(audit);
        }, ct);
}
