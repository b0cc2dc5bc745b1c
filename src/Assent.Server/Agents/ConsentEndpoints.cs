using System.Buffers;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Agents;

/// <summary>
/// Consents (docs/http-api.md §9.3, §10.8): an agent asks its owner only, unless another user lets it ask them too. The
/// owner asks for that with their session; the other user decides on their own device, like any request, and later
/// lists and revokes what they allowed through the device API or the web app alike.
/// </summary>
internal static class ConsentEndpoints
{
    // The members of an agent_consent entry of authorization_details, besides its type (docs/concepts.md §3.1).
    private const string ClientIdMember = "client_id";
    private const string AgentNameMember = "agent_name";
    private const string OwnerMember = "owner";

    public static IEndpointRouteBuilder MapConsents(this IEndpointRouteBuilder app)
    {
        var owner = app.MapGroup(EndpointPaths.Agents).WithTags("Agents").DisableAntiforgery();
        owner.MapPost("/{clientId}/consents", RequestAsync)
            .WithSummary("Ask (with a session token) another user to let your agent ask them; their device approves. Honours Prefer: wait");
        owner.MapGet("/{clientId}/consents/{requestId}", RequestStatusAsync)
            .WithSummary("A consent request: 202 pending, 201 granted (stored by this answer), 200 granted or revoked, 403 denied, 410 expired. Honours Prefer: wait");
        MapManagement(app.MapGroup(EndpointPaths.Authenticator).WithTags("Authenticator").DisableAntiforgery().RequireAuthorization(AssentSchemes.Device),
            "signed request");
        MapManagement(app.MapGroup(EndpointPaths.WebAuthn).WithTags("Passkeys").DisableAntiforgery().RequireAuthorization(AssentSchemes.WebSession),
            "session cookie");
        return app;
    }

    private static void MapManagement(RouteGroupBuilder group, string how)
    {
        group.MapGet("/consents", ListAsync).WithSummary($"The agents of other owners the user allows to ask them ({how})");
        group.MapDelete("/consents/{clientId}", RevokeAsync).WithSummary($"Stop allowing an agent to ask the user, at once ({how})");
    }

    internal static async Task<IResult> RequestAsync(string clientId, HttpContext http, AccessTokenValidator validator, IdentityDirectory directory,
        IClientStore clients, IConsentStore consents, IApprovalStore store, ApprovalService approvals, ApprovalHub hub, AssentOptions options,
        TimeProvider time, CancellationToken ct)
    {
        var (owner, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.AgentsWriteScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        var agent = await OwnAgentAsync(clientId, owner!, clients, ct);
        if (agent is null)
        {
            return Problem.NotFound("no such active agent of yours");
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, ProtocolJson.Default.ConsentRequestBody, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var hint = read.Value!.User?.Trim();
        if (string.IsNullOrEmpty(hint))
        {
            return Problem.BadRequest("user is required: the handle or DID of the user whose consent to ask, e.g. alice");
        }
        var user = await directory.FindByHintAsync(hint, ct);
        if (user is null)
        {
            return Problem.NotFound("user names no user of this server");
        }
        if (user.Id == owner!.Id)
        {
            return Problem.BadRequest("an agent may always ask its owner: there is nothing to consent to");
        }
        var version = hub.Version;
        if ((await consents.ListAsync(user.Id, ct)).FirstOrDefault(c => c.Active && c.ClientId == agent.Id) is { } granted)
        {
            return Answer(http, new ConsentRequestResponse(granted.ApprovalId, "granted", agent.Id, agent.Name, user.Handle), StatusCodes.Status200OK, null);
        }
        // One open request per agent and user: asking again answers the pending one rather than raise another.
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var pending = (await store.ListPendingAsync(user.Id, now, ct)).FirstOrDefault(a => a.Kind == ApprovalKinds.AgentConsent && ClientIdOf(a) == agent.Id);
        if (pending is null)
        {
            var message = $"Allow {owner.Handle}'s agent '{agent.Name}' ({agent.Id}) to ask you for approvals";
            if (ApprovalText.BindingMessageProblem(message) is not null)
            {
                return Problem.BadRequest("this agent's name cannot be shown to the user in one message (at most 256 characters, nothing hidden); rename it first");
            }
            // The scope shown is what the agent may then ask them for; the details say which agent, whose.
            pending = (await approvals.CreateAsync(ApprovalKinds.AgentConsent, CliClient.Id, CliClient.Name, user, agent.Scopes, message,
                Details(agent, owner.Handle), null, options.DefaultRequestExpiry, ct)).Approval;
        }
        return await AnswerAsync(http, pending, version, agent, user, store, consents, hub, options, time, ct);
    }

    internal static async Task<IResult> RequestStatusAsync(string clientId, string requestId, HttpContext http, AccessTokenValidator validator,
        IdentityDirectory directory, IClientStore clients, IConsentStore consents, IApprovalStore store, ApprovalHub hub, AssentOptions options,
        TimeProvider time, CancellationToken ct)
    {
        var (owner, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.AgentsWriteScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        var version = hub.Version;
        var agent = await OwnAgentAsync(clientId, owner!, clients, ct);
        var approval = agent is null || requestId.Length > 64 ? null : await store.FindAsync(requestId, ct);
        var user = approval is null ? null : await directory.FindUserAsync(approval.UserId, ct);
        if (approval is null || user is null || approval.Kind != ApprovalKinds.AgentConsent || ClientIdOf(approval) != agent!.Id)
        {
            return Problem.NotFound("no such consent request for this agent of yours");
        }
        return await AnswerAsync(http, approval, version, agent, user, store, consents, hub, options, time, ct);
    }

    private static async Task<IResult> AnswerAsync(HttpContext http, ApprovalRecord approval, long readAtVersion, ClientRecord agent, UserRecord user,
        IApprovalStore store, IConsentStore consents, ApprovalHub hub, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        approval = await PreferWait.HoldIfAskedAsync(http, approval, readAtVersion, hub, store, options, time, ct);
        var location = $"{EndpointPaths.Agents}/{agent.Id}/consents/{approval.Id}";
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        ConsentRequestResponse Status(string status, long? expiresAt = null) => new(approval.Id, status, agent.Id, agent.Name, user.Handle, expiresAt);
        switch (approval.State)
        {
            case ApprovalState.Pending when approval.ExpiresAt > now:
                return Answer(http, Status("pending", approval.ExpiresAt / 1000), StatusCodes.Status202Accepted, location);
            case ApprovalState.Pending:
            case ApprovalState.Expired:
                return Problem.Gone($"{user.Handle} did not decide in time; ask again");
            case ApprovalState.Denied:
            case ApprovalState.Cancelled:
                return Problem.Forbidden($"{user.Handle} declined to let this agent ask them");
            case ApprovalState.Approved:
                // The consent is stored as the approval is redeemed, in one step; the actor is the device that approved.
                var approver = (await store.ListDecisionsAsync(approval.Id, ct)).FirstOrDefault(d => d.Decision == ApprovalState.Approved)?.DeviceId;
                if (await consents.TryGrantFromApprovalAsync(new ConsentRecord(approval.Id, user.Id, agent.Id, now, null), now,
                        new AuditEvent(AuditTypes.ConsentGranted, user.Id, approver, agent.Id,
                            new Dictionary<string, string> { ["owner"] = agent.OwnerUserId, ["approval"] = approval.Id }), ct))
                {
                    return Answer(http, Status("granted"), StatusCodes.Status201Created, location);
                }
                // Another fetch stored it a moment ago.
                goto default;
            default:
                // Redeemed: what holds now, since the user may have revoked the consent since.
                return Answer(http, Status(await consents.IsGrantedAsync(user.Id, agent.Id, ct) ? "granted" : "revoked"), StatusCodes.Status200OK, location);
        }
    }

    internal static async Task<IResult> ListAsync(Approver approver, IConsentStore consents, ClientDirectory clients, IdentityDirectory directory,
        CancellationToken ct)
    {
        var views = new List<ConsentView>();
        foreach (var c in await consents.ListAsync(approver.User.Id, ct))
        {
            var agent = await clients.FindAsync(c.ClientId, ct);
            var owner = agent is null ? null : await directory.FindUserAsync(agent.OwnerUserId, ct);
            views.Add(new ConsentView(c.ClientId, agent?.Name ?? c.ClientId, owner?.Handle, c.CreatedAt / 1000, c.RevokedAt / 1000, c.Active, c.ApprovalId));
        }
        return TypedResults.Json(new ConsentList(views), ProtocolJson.Default.ConsentList);
    }

    internal static async Task<IResult> RevokeAsync(string clientId, Approver approver, IConsentStore consents, TimeProvider time, CancellationToken ct)
    {
        // Read uncached by bc-authorize, so the very next request of that agent is refused.
        var ok = clientId.Length <= 128 && await consents.TryRevokeAsync(approver.User.Id, clientId, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.ConsentRevoked, approver.User.Id, approver.DeviceId, clientId), ct);
        return ok ? TypedResults.NoContent() : Problem.NotFound("you do not allow this agent to ask you");
    }

    /// <summary>The caller's own active agent, read fresh.</summary>
    private static async Task<ClientRecord?> OwnAgentAsync(string clientId, UserRecord owner, IClientStore clients, CancellationToken ct) =>
        clientId.Length <= 128 && await clients.FindAsync(clientId, ct) is { RevokedAt: null } agent && agent.OwnerUserId == owner.Id ? agent : null;

    private static IResult Answer(HttpContext http, ConsentRequestResponse body, int status, string? location)
    {
        http.Response.Headers.CacheControl = "no-store";
        if (location is not null)
        {
            http.Response.Headers.Location = location;
        }
        return TypedResults.Json(body, ProtocolJson.Default.ConsentRequestResponse, statusCode: status);
    }

    /// <summary>RFC 9396 entry the device shows and signs: <c>[{"type":"agent_consent","client_id":…,"agent_name":…,"owner":…}]</c>.</summary>
    private static string Details(ClientRecord agent, string ownerHandle)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString(AuthorizationDetailFields.Type, ApprovalKinds.AgentConsent);
            w.WriteString(ClientIdMember, agent.Id);
            w.WriteString(AgentNameMember, agent.Name);
            w.WriteString(OwnerMember, ownerHandle);
            w.WriteEndObject();
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The agent a consent request is about, read back from the signed details: what the user approved is what is stored.</summary>
    private static string? ClientIdOf(ApprovalRecord approval)
    {
        using var doc = JsonDocument.Parse(approval.AuthorizationDetails ?? "[{}]");
        return doc.RootElement[0].TryGetProperty(ClientIdMember, out var id) ? id.GetString() : null;
    }
}
