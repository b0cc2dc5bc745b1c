using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Server.Identity;
using Assent.Server.Storage;

namespace Assent.Server.Approvals;

/// <summary>A request as an approver's device shows it (docs/http-api.md §10.2): the same view in lists, streams and answers.</summary>
internal sealed class ApprovalViews(ClientDirectory clients, IdentityDirectory users, IApprovalStore approvals)
{
    public async Task<PendingApproval> ViewAsync(ApprovalRecord a, CancellationToken ct)
    {
        var client = await clients.FindAsync(a.ClientId, ct);
        // Whose agent asks: names are unique per owner only, so the name alone could be anyone's (docs/concepts.md §3).
        var owner = client is null ? null : await users.FindUserAsync(client.OwnerUserId, ct);
        JsonElement? details = a.AuthorizationDetails is null ? null : JsonDocument.Parse(a.AuthorizationDetails).RootElement.Clone();
        return new PendingApproval(a.Id, a.Kind, a.ClientId, client?.Name ?? a.ClientId, owner?.Handle, a.Scope, a.BindingMessage, details,
            a.CreatedAt / 1000, a.ExpiresAt / 1000, Base64Url.Encode(a.Payload), StateNames.Of(a.State), a.Resource, a.DecidedAt / 1000, a.Policy,
            await ProgressAsync(a, ct));
    }

    /// <summary>Who approved and who is awaited, for a request several users decide (docs/policies.md §3); null otherwise.</summary>
    private async Task<QuorumProgress?> ProgressAsync(ApprovalRecord a, CancellationToken ct)
    {
        if (a.Policy is null && a.EligibleUsers is null && a.Approvers == 1)
        {
            return null;
        }
        var eligible = a.EligibleUsers ?? await approvals.ListEligibleAsync(a.Id, ct);
        if (eligible.Count == 0)
        {
            return null;
        }
        var decisions = await approvals.ListDecisionsAsync(a.Id, ct);
        List<string> approved = [], waiting = [], denied = [];
        foreach (var id in eligible)
        {
            var handle = (await users.FindUserAsync(id, ct))?.Handle ?? id;
            (decisions.FirstOrDefault(d => d.UserId == id)?.Decision switch
            {
                ApprovalState.Approved => approved,
                ApprovalState.Denied => denied,
                _ => waiting,
            }).Add(handle);
        }
        return new QuorumProgress(a.Quorum, eligible.Count, approved, waiting, denied);
    }

    public async Task<List<PendingApproval>> ViewAllAsync(IReadOnlyList<ApprovalRecord> list, CancellationToken ct)
    {
        var views = new List<PendingApproval>(list.Count);
        foreach (var a in list)
        {
            views.Add(await ViewAsync(a, ct));
        }
        return views;
    }
}
