using System.Collections.Concurrent;
using System.Globalization;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Authentication;

/// <summary>
/// How failed attempts at one kind of secret are limited: counted in fixed windows per key; from
/// <paramref name="Allowed"/> failures on, refused for the rest of the window or, with <paramref name="Backoff"/>,
/// for 1 s, 2 s, 4 s, … after each failure (at most <paramref name="Lockout"/>); from <paramref name="LockoutAfter"/>
/// on, locked out for <paramref name="Lockout"/>.
/// </summary>
internal sealed record AttemptPolicy(string Name, TimeSpan Window, int Allowed, bool Backoff = false, int? LockoutAfter = null, TimeSpan Lockout = default)
{
    /// <summary>RFC 6749 §2.3.1 client secrets, per client_id and per address.</summary>
    public static AttemptPolicy ForClients(LimitOptions o) =>
        new(LimitNames.ClientAuthentication, o.ClientAuthWindow, o.ClientAuthBackoffAfter, Backoff: true, o.ClientAuthLockoutAfter, o.ClientAuthLockout);

    /// <summary>API keys (docs/challenges.md §1), per address, on the client secrets' settings.</summary>
    public static AttemptPolicy ForApiKeys(LimitOptions o) =>
        new(LimitNames.ApiKeyAuthentication, o.ClientAuthWindow, o.ClientAuthBackoffAfter, Backoff: true, o.ClientAuthLockoutAfter, o.ClientAuthLockout);

    /// <summary>RFC 8628 §5.1 user codes, per address and per signed-in user.</summary>
    public static AttemptPolicy ForUserCodes(LimitOptions o) => new(LimitNames.UserCode, o.UserCodeWindow, o.UserCodeGuesses);

    /// <summary>Invite codes, per address.</summary>
    public static AttemptPolicy ForEnrolmentCodes(LimitOptions o) => new(LimitNames.EnrolmentCode, o.EnrolmentCodeWindow, o.EnrolmentCodeGuesses);

    /// <summary>The counter's key: the limit, what is counted (client, address, user) and which one.</summary>
    public string Key(string what, string id) => $"{Name}:{what}:{id}";
}

/// <summary>One key an attempt is counted under, and the user whose audit trail hears of it (null: admins only).</summary>
internal sealed record AttemptKey(string Key, string? UserId);

/// <summary>An attempt refused unchecked: how long to wait, and whether it still counts as a failure (during a backoff).</summary>
internal sealed record AttemptRefusal(TimeSpan RetryAfter, bool Counts);

/// <summary>
/// Limits guesses of secrets (client secrets, user codes, invite codes) across every node (docs/deployment.md §10).
/// Failures are counted in the database, one statement per failure; what is refused is known in process, learnt
/// from those counts, so a request that succeeds costs no database round trip. A node hears of a key's refusal at
/// its own next failure for it: across N nodes a key gets at most N − 1 attempts more than one node would allow.
/// The first refusal of a window and every lockout are audited once, whichever node sees them.
/// </summary>
internal sealed class AttemptLimiter(IRateCounterStore counters, IAuditStore audit, TimeProvider time)
{
    private const int PurgeAbove = 10_000;
    private const int PurgeEvery = 1_024;
    private long _failures;

    // Until when each refused key is refused (Unix ms), and whether attempts meanwhile still count (a backoff does).
    private readonly ConcurrentDictionary<string, (long Until, bool Counts)> _refused = new(StringComparer.Ordinal);

    // The end of the latest refusal this node knows of: once past, nothing is refused (read without a lock).
    private long _refusingUntil;

    /// <summary>Whether no key is refused at the moment (then <see cref="Refused"/> answers null for any): one clock read.</summary>
    public bool RefusesNone => time.GetUtcNow().ToUnixTimeMilliseconds() >= Volatile.Read(ref _refusingUntil);

    /// <summary>Whether an attempt under <paramref name="keys"/> must be refused without being checked; null when it may be checked.</summary>
    public AttemptRefusal? Refused(params ReadOnlySpan<AttemptKey> keys)
    {
        if (RefusesNone)
        {
            return null;
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        long until = 0;
        var counts = true;
        foreach (var key in keys)
        {
            if (!_refused.TryGetValue(key.Key, out var refused))
            {
                continue;
            }
            if (refused.Until <= now)
            {
                _refused.TryRemove(KeyValuePair.Create(key.Key, refused));
                continue;
            }
            until = Math.Max(until, refused.Until);
            // A lockout or a spent window decides alone: counting more would change nothing.
            counts &= refused.Counts;
        }
        return until > now ? new AttemptRefusal(TimeSpan.FromMilliseconds(until - now), counts) : null;
    }

    /// <summary>
    /// Counts a failed attempt under every key. Returns how long the caller must now wait (the longest of its keys'),
    /// or null when it may try again at once.
    /// </summary>
    public async Task<TimeSpan?> FailedAsync(AttemptPolicy policy, IReadOnlyList<AttemptKey> keys, CancellationToken ct)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var window = (long)policy.Window.TotalMilliseconds;
        var windowStart = now - now % window;
        var counts = await counters.CountAsync(keys.Select(k => k.Key).ToArray(), windowStart, windowStart + window, ct);
        long longest = 0;
        foreach (var count in counts)
        {
            var key = keys.First(k => k.Key == count.Key);
            var (until, counting) = await RefusedUntilAsync(policy, key, count.Count, now, windowStart + window, ct);
            if (count.LockedUntil > until)
            {
                (until, counting) = (count.LockedUntil, false);
            }
            if (until > now)
            {
                // Answers of concurrent failures may arrive out of order: the longer refusal stands.
                var refusal = (until, counting);
                _refused.AddOrUpdate(count.Key, refusal, (_, known) => known.Until >= until ? known : refusal);
                longest = Math.Max(longest, until);
            }
        }
        for (var known = Volatile.Read(ref _refusingUntil); longest > known; known = Volatile.Read(ref _refusingUntil))
        {
            if (Interlocked.CompareExchange(ref _refusingUntil, longest, known) == known)
            {
                break;
            }
        }
        if (Interlocked.Increment(ref _failures) % PurgeEvery == 0 && _refused.Count > PurgeAbove)
        {
            Purge(now);
        }
        return longest > now ? TimeSpan.FromMilliseconds(longest - now) : null;
    }

    /// <summary>
    /// Until when a key with <paramref name="count"/> failures in this window is refused, and whether attempts meanwhile
    /// count; audits the first refusal and the lockout.
    /// </summary>
    private async Task<(long Until, bool Counts)> RefusedUntilAsync(AttemptPolicy policy, AttemptKey key, long count, long now, long windowEnd,
        CancellationToken ct)
    {
        if (policy.LockoutAfter is { } lockoutAfter && count >= lockoutAfter)
        {
            var lockedUntil = now + (long)policy.Lockout.TotalMilliseconds;
            if (count == lockoutAfter)
            {
                // Exactly one failure, on one node, sees the count reach the threshold: it stores the lockout for every node.
                await counters.LockAsync(key.Key, lockedUntil, Audited(AuditTypes.LimitLockedOut, policy, key, lockedUntil - now), ct);
            }
            return (lockedUntil, false);
        }
        if (count < policy.Allowed)
        {
            return (0, false);
        }
        if (count == policy.Allowed)
        {
            await audit.AppendAsync(Audited(AuditTypes.LimitRefused, policy, key, policy.Backoff ? 1000 : windowEnd - now), ct);
        }
        // A backoff doubles with every attempt that does not wait for it, and those attempts count towards the lockout.
        return policy.Backoff
            ? (now + Math.Min(1000L << (int)Math.Min(count - policy.Allowed, 40), (long)policy.Lockout.TotalMilliseconds), true)
            : (windowEnd, false);
    }

    private static AuditEvent Audited(string type, AttemptPolicy policy, AttemptKey key, long refusedForMs) =>
        new(type, key.UserId, "system", key.Key, new Dictionary<string, string>
        {
            ["limit"] = policy.Name,
            ["retry_after_s"] = Math.Max(1, (refusedForMs + 999) / 1000).ToString(CultureInfo.InvariantCulture),
        });

    private void Purge(long now)
    {
        foreach (var (key, refused) in _refused)
        {
            if (refused.Until <= now)
            {
                _refused.TryRemove(KeyValuePair.Create(key, refused));
            }
        }
    }
}
