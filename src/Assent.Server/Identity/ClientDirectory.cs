using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Identity;

/// <summary>
/// Agent records are read on every CIBA and token request and almost never change; a short
/// cache spares the database. A client changed or removed elsewhere is seen within <see cref="Lifetime"/>.
/// </summary>
internal sealed class ClientDirectory(IClientStore clients, TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);
    private readonly TtlCache<ClientRecord> _cache = new(time, Lifetime);

    public ValueTask<ClientRecord?> FindAsync(string clientId, CancellationToken ct) => _cache.GetAsync(clientId, clients.FindAsync, ct);

    public void Forget(string clientId) => _cache.Forget(clientId);
}
