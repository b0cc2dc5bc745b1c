using System.Collections.Concurrent;
using Assent.Server.Storage;

namespace Assent.Server.Identity;

/// <summary>
/// Whom an agent may ask (docs/concepts.md §3.1): its owner, and any other user whose device approved that user's
/// consent to it and who has not revoked it. Consents are read from the store on every such request, never cached,
/// so a revocation holds for the very next one; an owner asking is decided without a read.
/// </summary>
internal sealed class AgentConsents(IConsentStore consents, IAuditStore audit, TimeProvider time)
{
    /// <summary>A refusal of one agent for one user is audited at most once in this period by each node.</summary>
    public static readonly TimeSpan RefusalAuditPeriod = TimeSpan.FromMinutes(1);

    private const int MaxRemembered = 10_000;
    private readonly ConcurrentDictionary<(string Client, string User), long> _audited = new();

    /// <summary>Whether <paramref name="client"/> may ask <paramref name="user"/>; a refusal is audited under the user asked.</summary>
    public async Task<bool> MayAskAsync(ClientRecord client, UserRecord user, CancellationToken ct)
    {
        if (client.OwnerUserId == user.Id || await consents.IsGrantedAsync(user.Id, client.Id, ct))
        {
            return true;
        }
        // A refused agent can repeat itself as fast as it likes: the chain gets one entry per agent, user and period,
        // which is what someone reading it needs, not one per attempt.
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var key = (client.Id, user.Id);
        if (_audited.TryGetValue(key, out var until) && until > now)
        {
            return false;
        }
        if (_audited.Count >= MaxRemembered)
        {
            _audited.Clear();
        }
        _audited[key] = now + (long)RefusalAuditPeriod.TotalMilliseconds;
        await audit.AppendAsync(new AuditEvent(AuditTypes.AgentRefusedForeignUser, user.Id, client.Id, client.Id,
            new Dictionary<string, string> { ["owner"] = client.OwnerUserId }), ct);
        return false;
    }
}
