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
/// <c>POST /agents</c> (docs/http-api.md §9): a signed-in human asks to register an agent, and their own device must
/// approve it, like any other request. The agent's secret exists once: in the answer that creates it.
/// </summary>
internal static class AgentEndpoints
{
    public static IEndpointRouteBuilder MapAgents(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(EndpointPaths.Agents).WithTags("Agents").DisableAntiforgery();
        group.MapPost("", RegisterAsync)
            .WithSummary("Ask (with a session token) to register an agent; the owner's device approves. Honours Prefer: wait");
        group.MapGet("/requests/{id}", RequestAsync)
            .WithSummary("An agent registration request: 202 pending, 201 with the credentials (once), 403 denied, 410 expired. Honours Prefer: wait");
        return app;
    }

    internal static async Task<IResult> RegisterAsync(HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, IApprovalStore store,
        IClientStore clients, ApprovalService approvals, ApprovalHub hub, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.AgentsWriteScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, ProtocolJson.Default.AgentRegistrationRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var name = read.Value!.Name?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            return Problem.BadRequest($"name is required: 1 to {Naming.MaxNameLength} characters, e.g. deploy-bot");
        }
        // The approver is shown the name: nothing in it may hide or reorder text.
        if (Naming.NameProblem("name", name) is { } badName)
        {
            return Problem.BadRequest(badName);
        }
        // An owner's agents are told apart by name: a second active one of the same name is refused before anyone is asked.
        if (await clients.FindActiveByNameAsync(user!.Id, name, ct) is { } taken)
        {
            return Problem.Conflict(Naming.AgentNameTaken(user.Handle, name, taken.Id));
        }
        string scopes;
        try
        {
            scopes = Naming.NormalizeScopes(read.Value.Scopes switch
            {
                null => "",
                { ValueKind: JsonValueKind.String } s => s.GetString()!,
                { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                    string.Join(' ', a.EnumerateArray().Select(e => e.GetString())),
                _ => throw new ArgumentException("scopes must be an array of strings or one space-separated string"),
            });
        }
        catch (ArgumentException e)
        {
            return Problem.BadRequest(e.Message);
        }
        var message = $"Register agent '{name}' with scopes {scopes}";
        if (ApprovalText.BindingMessageProblem(message) is not null)
        {
            return Problem.BadRequest("too many scopes to show the approver in one message (at most 256 characters)");
        }
        var version = hub.Version;
        var created = await approvals.CreateAsync(ApprovalKinds.AgentRegistration, CliClient.Id, CliClient.Name, user!, CliClient.AgentsWriteScope,
            message, NamedGrantDetails.Write(ApprovalKinds.AgentRegistration, name, scopes), null, options.DefaultRequestExpiry, ct);
        return await AnswerAsync(http, created.Approval, version, user!, store, clients, hub, options, time, ct);
    }

    internal static async Task<IResult> RequestAsync(string id, HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, IApprovalStore store,
        IClientStore clients, ApprovalHub hub, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.AgentsWriteScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        var version = hub.Version;
        var approval = id.Length <= 64 ? await store.FindAsync(id, ct) : null;
        if (approval is null || approval.Kind != ApprovalKinds.AgentRegistration || approval.UserId != user!.Id)
        {
            return Problem.NotFound("no such agent registration request of yours");
        }
        return await AnswerAsync(http, approval, version, user, store, clients, hub, options, time, ct);
    }

    private static async Task<IResult> AnswerAsync(HttpContext http, ApprovalRecord approval, long readAtVersion, UserRecord user, IApprovalStore store,
        IClientStore clients, ApprovalHub hub, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        approval = await PreferWait.HoldIfAskedAsync(http, approval, readAtVersion, hub, store, options, time, ct);
        var location = $"{EndpointPaths.AgentRequests}/{approval.Id}";
        var (name, scopes) = NamedGrantDetails.Read(approval.AuthorizationDetails);
        var clientId = ClientIdFor(approval);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        switch (approval.State)
        {
            case ApprovalState.Pending when approval.ExpiresAt > now:
                http.Response.Headers.Location = location;
                return TypedResults.Json(new AgentRegistrationResponse(approval.Id, "pending", ExpiresAt: approval.ExpiresAt / 1000),
                    ProtocolJson.Default.AgentRegistrationResponse, statusCode: StatusCodes.Status202Accepted);
            case ApprovalState.Pending:
            case ApprovalState.Expired:
                return Problem.Gone("the owner did not decide in time; ask again");
            case ApprovalState.Denied:
            case ApprovalState.Cancelled:
                return Problem.Forbidden("the owner denied registering this agent");
            case ApprovalState.Approved:
                var secret = Ids.Secret("sec");
                var client = new ClientRecord(clientId, Ids.Hash(secret), name, user.Id, scopes, now, null);
                // The actor is the device that approved it.
                var approver = (await store.ListDecisionsAsync(approval.Id, ct)).FirstOrDefault(d => d.Decision == ApprovalState.Approved)?.DeviceId;
                switch (await clients.TryCreateFromRegistrationAsync(approval.Id, now, client, new AuditEvent(AuditTypes.AgentCreated, user.Id, approver, clientId,
                            new Dictionary<string, string> { ["name"] = name, ["scopes"] = scopes, ["approval"] = approval.Id }), ct))
                {
                    case AgentCreation.Created:
                        http.Response.Headers.Location = location;
                        return TypedResults.Json(new AgentRegistrationResponse(approval.Id, "created", clientId, secret, name, scopes, user.Handle),
                            ProtocolJson.Default.AgentRegistrationResponse, statusCode: StatusCodes.Status201Created);
                    case AgentCreation.NameTaken:
                        // Another agent of this name was created while the owner decided; this one stays approved, uncreated.
                        return Problem.Conflict(Naming.AgentNameTaken(user.Handle, name, null));
                }
                // Another fetch created it a moment ago and took the secret with it.
                goto default;
            default:
                return TypedResults.Json(new AgentRegistrationResponse(approval.Id, "created", clientId, null, name, scopes, user.Handle),
                    ProtocolJson.Default.AgentRegistrationResponse);
        }
    }

    /// <summary>The agent registered by request <c>apr_X</c> is <c>agt_X</c>: one request, one agent, found again without a lookup.</summary>
    private static string ClientIdFor(ApprovalRecord approval) => "agt_" + approval.Id[(approval.Id.IndexOf('_') + 1)..];
}
