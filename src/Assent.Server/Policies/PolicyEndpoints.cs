using System.Text.Json;
using Assent.Protocol.Messages;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Policies;

/// <summary>
/// <c>/v1/policies</c> (docs/policies.md §4): add, list, remove and try policies. Policies govern every user's requests,
/// so only an administrator's API key with <c>policies:manage</c> may use them.
/// </summary>
internal static class PolicyEndpoints
{
    public const string Path = "/v1/policies";

    public static IEndpointRouteBuilder MapPolicies(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Policies").DisableAntiforgery().RequireAuthorization(AssentSchemes.ApiKey);
        group.MapPost("", AddAsync).WithSummary("Add a policy, or the next version of one (an administrator's key with policies:manage)")
            .Accepts<PolicyCreateRequest>("application/json").Produces<PolicyResponse>(StatusCodes.Status201Created).ProducesProblem(StatusCodes.Status400BadRequest);
        group.MapGet("", ListAsync).WithSummary("Active policies in the order they are tried (policies:manage)").Produces<PolicyList>();
        group.MapDelete("/{name}", RemoveAsync).WithSummary("Retire a policy's active version (policies:manage)").Produces<PolicyResponse>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/test", TestAsync).WithSummary("Which policy would a sample request meet? (policies:manage)")
            .Accepts<PolicyTestRequest>("application/json").Produces<PolicyTestResponse>().ProducesProblem(StatusCodes.Status400BadRequest);
        group.ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        return app;
    }

    private static IResult? Refused(ApiCaller caller) =>
        caller.Lacks(ApiScopes.PoliciesManage) ??
        (caller.Owner.IsAdmin ? null : Problem.Forbidden("policies govern every user's requests: only an administrator's API key may manage them"));

    internal static async Task<IResult> AddAsync(HttpContext http, ApiCaller caller, PolicyBook book, IUserStore users, CancellationToken ct)
    {
        if (Refused(caller) is { } refused)
        {
            return refused;
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, V1Json.Default.PolicyCreateRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var r = read.Value!;
        PolicyRecord added;
        try
        {
            added = await book.AddAsync(new PolicyDraft(r.Name, r.Position, r.Agent, r.Scope, r.Type, r.Currency, r.AmountOver, r.AmountAtMost, r.Requires,
                r.Quorum, r.Approvers), caller.Key.Id, ct);
        }
        catch (PolicyProblemException e)
        {
            return Problem.BadRequest(e.Message);
        }
        http.Response.Headers.Location = $"{Path}/{added.Name}";
        return TypedResults.Json(await ViewAsync(added, users, ct), V1Json.Default.PolicyResponse, statusCode: StatusCodes.Status201Created);
    }

    internal static async Task<IResult> ListAsync(ApiCaller caller, PolicyBook book, IUserStore users, CancellationToken ct)
    {
        if (Refused(caller) is { } refused)
        {
            return refused;
        }
        var list = new List<PolicyResponse>();
        foreach (var p in await book.ListAsync(ct))
        {
            list.Add(await ViewAsync(p, users, ct));
        }
        return TypedResults.Json(new PolicyList(list), V1Json.Default.PolicyList);
    }

    internal static async Task<IResult> RemoveAsync(string name, ApiCaller caller, PolicyBook book, IUserStore users, CancellationToken ct)
    {
        if (Refused(caller) is { } refused)
        {
            return refused;
        }
        return await book.RemoveAsync(name, caller.Key.Id, ct) is { } removed
            ? TypedResults.Json(await ViewAsync(removed, users, ct), V1Json.Default.PolicyResponse)
            : Problem.NotFound($"no active policy '{(name.Length <= 64 ? name : name[..64] + "…")}'");
    }

    internal static async Task<IResult> TestAsync(HttpContext http, ApiCaller caller, PolicyBook book, IUserStore users, CancellationToken ct)
    {
        if (Refused(caller) is { } refused)
        {
            return refused;
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, V1Json.Default.PolicyTestRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var r = read.Value!;
        if (r.AuthorizationDetails is { } d && d.ValueKind != JsonValueKind.Array)
        {
            return Problem.BadRequest("authorizationDetails must be an array of objects with a type (RFC 9396)");
        }
        var policy = await book.MatchAsync(r.Agent ?? "", r.Scope ?? "", r.AuthorizationDetails?.GetRawText(), ct);
        return TypedResults.Json(new PolicyTestResponse(policy?.Requires ?? PolicyRequirements.One, policy is null ? null : await ViewAsync(policy, users, ct)),
            V1Json.Default.PolicyTestResponse);
    }

    /// <summary>The policy as the API and the CLI show it: approvers by handle.</summary>
    internal static async Task<PolicyResponse> ViewAsync(PolicyRecord p, IUserStore users, CancellationToken ct)
    {
        List<string>? approvers = null;
        if (p.Requires == PolicyRequirements.Quorum)
        {
            approvers = [];
            foreach (var id in p.ApproverIds)
            {
                approvers.Add((await users.FindAsync(id, ct))?.Handle ?? id);
            }
        }
        return new PolicyResponse(p.Id, p.Name, p.Version, p.Position, p.Requires, WireTime.Of(p.CreatedAt)!, p.ClientId, p.Scope, p.DetailType, p.Currency,
            p.AmountOver, p.AmountAtMost, p.Requires == PolicyRequirements.Quorum ? p.Quorum : null, approvers, WireTime.Of(p.RemovedAt));
    }
}
