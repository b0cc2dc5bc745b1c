using System.Collections.Concurrent;
using Assent.Server.Storage;

namespace Assent.Server.Clients;

/// <summary>
/// Agent records are read on every CIBA and token request and almost never change; a short
/// cache spares the database. A client changed or removed elsewhere is seen within <see cref="Lifetime"/>.
/// </summary>
internal sealed class ClientDirectory(IAssentStore store, TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, (ClientRecord? Client, long Until)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<ClientRecord?> FindAsync(string clientId, CancellationToken ct)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (_cache.TryGetValue(clientId, out var hit) && hit.Until > now && hit.Client is not null)
        {
            return hit.Client;
        }
        var client = await store.FindClientAsync(clientId, ct);
        if (client is not null)
        {
            if (_cache.Count > 10_000)
            {
                _cache.Clear();
            }
            _cache[clientId] = (client, now + (long)Lifetime.TotalMilliseconds);
        }
        return client;
    }

    public void Forget(string clientId) => _cache.TryRemove(clientId, out _);
}
