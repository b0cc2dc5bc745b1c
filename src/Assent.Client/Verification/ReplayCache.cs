using System.Collections.Concurrent;

namespace Assent.Client.Verification;

/// <summary>
/// Remembers accepted <c>jti</c> values until their token can no longer verify (docs/tokens.md replay
/// guard). Implement it over a shared store (Redis, a database) when several processes verify.
/// </summary>
public interface IReplayCache
{
    /// <summary>Records <paramref name="jti"/> until <paramref name="keepUntil"/>; false when it was already recorded (a replay) or cannot be recorded.</summary>
    ValueTask<bool> TryAddAsync(string jti, DateTimeOffset keepUntil, CancellationToken ct);
}

/// <summary>
/// The in-process default: a bounded map of <c>jti</c> to expiry. When full of unexpired entries it
/// refuses new ones (fails closed) rather than forgetting one that could then be replayed.
/// </summary>
/// <param name="capacity">The most values remembered at once.</param>
/// <param name="time">The clock that decides when an entry may be forgotten.</param>
public sealed class MemoryReplayCache(int capacity = 1_000_000, TimeProvider? time = null) : IReplayCache
{
    // Expired entries are swept once a minute, and at most once a second while the map is full.
    private static readonly long SweepEvery = TimeSpan.FromMinutes(1).Ticks;
    private static readonly long SweepWhenFullEvery = TimeSpan.FromSeconds(1).Ticks;

    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private long _lastPurge;
    private int _count;

    /// <summary>The number of remembered values.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <inheritdoc />
    public ValueTask<bool> TryAddAsync(string jti, DateTimeOffset keepUntil, CancellationToken ct)
    {
        var now = _time.GetUtcNow().UtcTicks;
        if (now - Volatile.Read(ref _lastPurge) >= SweepEvery)
        {
            Purge(now, SweepEvery);
        }
        if (Volatile.Read(ref _count) >= capacity)
        {
            Purge(now, SweepWhenFullEvery);
            if (Volatile.Read(ref _count) >= capacity)
            {
                return ValueTask.FromResult(false);
            }
        }
        if (_seen.TryAdd(jti, keepUntil.UtcTicks))
        {
            Interlocked.Increment(ref _count);
            return ValueTask.FromResult(true);
        }
        // An entry past its keep-until is a token that no longer verifies anyway; refusing is still correct.
        return ValueTask.FromResult(false);
    }

    private void Purge(long now, long minimumGap)
    {
        var last = Volatile.Read(ref _lastPurge);
        if (now - last < minimumGap || Interlocked.CompareExchange(ref _lastPurge, now, last) != last)
        {
            return;
        }
        foreach (var (jti, until) in _seen)
        {
            if (until < now && _seen.TryRemove(jti, out _))
            {
                Interlocked.Decrement(ref _count);
            }
        }
    }
}
