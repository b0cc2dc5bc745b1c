using System.Collections.Concurrent;

namespace Assent.Server.Approvals;

/// <summary>
/// Enforces the CIBA polling interval per request (CIBA Core §7.3, §11). A client polling sooner
/// than its interval gets <c>slow_down</c> and the interval grows by 5 seconds for this and every
/// later poll (RFC 8628 §3.5). Requests held by <c>Prefer: wait</c> are paced by the server itself,
/// so they are exempt. Kept in memory: pacing is advice to well-behaved clients, not a security boundary.
/// </summary>
internal sealed class PollPacer(TimeProvider time)
{
    private static readonly TimeSpan SlowDownStep = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed record Entry(long NextAllowedMs, TimeSpan Interval, long ExpiresMs);

    /// <summary>Records a plain poll; returns false when it came too early (answer slow_down).</summary>
    public bool TryPoll(string approvalId, TimeSpan interval, long expiresMs)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        while (true)
        {
            if (!_entries.TryGetValue(approvalId, out var e))
            {
                if (_entries.TryAdd(approvalId, new Entry(now + Ms(interval), interval, expiresMs)))
                {
                    return true;
                }
                continue;
            }
            // Allow a little jitter: timers and networks are not exact.
            var early = now + 250 < e.NextAllowedMs;
            var next = early
                ? new Entry(now + Ms(e.Interval + SlowDownStep), e.Interval + SlowDownStep, e.ExpiresMs)
                : new Entry(now + Ms(e.Interval), e.Interval, e.ExpiresMs);
            if (_entries.TryUpdate(approvalId, next, e))
            {
                return !early;
            }
        }
    }

    /// <summary>The request settled, or a held (long-poll) answer was given: the client may come straight back.</summary>
    public void Forget(string approvalId) => _entries.TryRemove(approvalId, out _);

    public void Prune()
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var (id, e) in _entries)
        {
            if (e.ExpiresMs < now)
            {
                _entries.TryRemove(id, out _);
            }
        }
    }

    private static long Ms(TimeSpan t) => (long)t.TotalMilliseconds;
}
