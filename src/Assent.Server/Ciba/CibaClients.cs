using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Ciba;

/// <summary>
/// Each agent's CIBA delivery mode (CIBA Core §4), read on every <c>bc-authorize</c>: cached for half a minute, so a
/// change made with <c>assent admin agent set</c> reaches every node within that.
/// </summary>
internal sealed class CibaClients(IWebhookStore store, TimeProvider time)
{
    private readonly TtlCache<CibaClientSettings> _cache = new(time, TimeSpan.FromSeconds(30));

    public async ValueTask<string> ModeAsync(string clientId, CancellationToken ct) =>
        (await _cache.GetAsync(clientId, store.FindCibaClientAsync, ct))?.Mode ?? DeliveryModes.Poll;
}
