using System.Collections.Concurrent;
using Assent.Server.Storage;

namespace Assent.Server.Authentication;

/// <summary>
/// Audits the refusals of a limit counted in process (docs/deployment.md §10) once per key and window on each node,
/// not once per request: whoever is refused must not flood the audit log either.
/// </summary>
internal sealed class RefusalAudit(IAuditStore audit, TimeProvider time)
{
    private const int Remembered = 10_000;

    // The window in which each key's refusal was last audited.
    private readonly ConcurrentDictionary<string, long> _audited = new(StringComparer.Ordinal);
    private int _count;

    /// <summary>Appends <c>limit.refused</c> for <paramref name="key"/> unless this node did so in the current window.</summary>
    public async Task RefusedAsync(string limit, string key, string? userId, TimeSpan window, IReadOnlyDictionary<string, string>? data, CancellationToken ct)
    {
        if (FirstInWindow(key, time.GetUtcNow().ToUnixTimeMilliseconds() / (long)window.TotalMilliseconds))
        {
            await audit.AppendAsync(new AuditEvent(AuditTypes.LimitRefused, userId, "system", key,
                new Dictionary<string, string>(data ?? new Dictionary<string, string>()) { ["limit"] = limit }), ct);
        }
    }

    private bool FirstInWindow(string key, long window)
    {
        if (_audited.TryGetValue(key, out var last))
        {
            return last != window && _audited.TryUpdate(key, window, last);
        }
        if (Interlocked.Increment(ref _count) > Remembered)
        {
            // Many keys at once: forget them all rather than grow; at worst a key is audited twice in a window.
            _audited.Clear();
            Interlocked.Exchange(ref _count, 0);
        }
        return _audited.TryAdd(key, window);
    }
}
