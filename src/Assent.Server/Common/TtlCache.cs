using System.Collections.Concurrent;

namespace Assent.Server.Common;

/// <summary>
/// A small read-through cache for records that are read on every request and rarely change.
/// Only found records are kept, each for <paramref name="lifetime"/>; a change made elsewhere
/// (another node, an offline admin command) is seen once the entry ages out, a change made here
/// at once through <see cref="Forget"/>.
/// </summary>
internal sealed class TtlCache<T>(TimeProvider time, TimeSpan lifetime, int capacity = 10_000) where T : class
{
    private readonly ConcurrentDictionary<string, (T Value, long Until)> _entries = new(StringComparer.Ordinal);
    private readonly long _lifetimeMs = (long)lifetime.TotalMilliseconds;

    public async ValueTask<T?> GetAsync(string key, Func<string, CancellationToken, Task<T?>> load, CancellationToken ct)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (_entries.TryGetValue(key, out var hit) && hit.Until > now)
        {
            return hit.Value;
        }
        var value = await load(key, ct);
        if (value is not null)
        {
            if (_entries.Count >= capacity)
            {
                _entries.Clear();
            }
            _entries[key] = (value, now + _lifetimeMs);
        }
        return value;
    }

    public void Forget(string key) => _entries.TryRemove(key, out _);

    public void Clear() => _entries.Clear();
}
