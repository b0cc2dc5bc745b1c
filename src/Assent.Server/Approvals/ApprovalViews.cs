using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Server.Identity;
using Assent.Server.Storage;

namespace Assent.Server.Approvals;

/// <summary>A request as an approver's device shows it (docs/http-api.md §10.2): the same view in lists, streams and answers.</summary>
internal sealed class ApprovalViews(ClientDirectory clients, IdentityDirectory users)
{
    public async Task<PendingApproval> ViewAsync(ApprovalRecord a, CancellationToken ct)
    {
        var client = await clients.FindAsync(a.ClientId, ct);
        // Whose agent asks: names are unique per owner only, so the name alone could be anyone's (docs/concepts.md §3).
        var owner = client is null ? null : await users.FindUserAsync(client.OwnerUserId, ct);
        JsonElement? details = a.AuthorizationDetails is null ? null : JsonDocument.Parse(a.AuthorizationDetails).RootElement.Clone();
        return new PendingApproval(a.Id, a.Kind, a.ClientId, client?.Name ?? a.ClientId, owner?.Handle, a.Scope, a.BindingMessage, details,
            a.CreatedAt / 1000, a.ExpiresAt / 1000, Base64Url.Encode(a.Payload), StateNames.Of(a.State), a.Resource, a.DecidedAt / 1000);
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
