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

namespace Assent.Server.ApiKeys;

/// <summary>
/// <c>/v1/api-keys</c> (docs/challenges.md §1): a human signed in with the CLI asks for a key and their own device
/// approves it, like an agent's registration; the key (<c>sk_…</c>) exists once, in the answer that creates it.
/// Keys are listed and revoked with the same session. Operators create keys offline: <c>assent admin apikey create</c>.
/// </summary>
internal static class ApiKeyEndpoints
{
    public const string Path = "/v1/api-keys";


    public static IEndpointRouteBuilder MapApiKeys(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("API keys").DisableAntiforgery();
        group.MapPost("", CreateAsync).WithSummary("Ask (with a session token) for an API key; your device approves. Honours Prefer: wait")
            .Accepts<ApiKeyCreateRequest>("application/json").Produces<ApiKeyResponse>(StatusCodes.Status201Created).Produces<ApiKeyResponse>(StatusCodes.Status202Accepted);
        group.MapGet("/requests/{id}", RequestAsync).WithSummary("An API key request: 202 pending, 201 with the key (once), 403 denied, 410 expired. Honours Prefer: wait");
        group.MapGet("", ListAsync).WithSummary("Your API keys (session token), with when each was last used").Produces<ApiKeyList>();
        group.MapDelete("/{id}", RevokeAsync).WithSummary("Revoke one of your API keys (session token)");
        return app;
    }

    internal static async Task<IResult> CreateAsync(HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, IApprovalStore store,
        IApiKeyStore keys, ApprovalService approvals, ApprovalHub hub, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, V1Json.Default.ApiKeyCreateRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var name = read.Value!.Name?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            return Problem.BadRequest($"name is required: 1 to {Naming.MaxNameLength} characters, e.g. billing-backend");
        }
        if (Naming.NameProblem("name", name) is { } badName)
        {
            return Problem.BadRequest(badName);
        }
        string scopes;
        try
        {
            scopes = ApiScopes.Normalize(read.Value.Scopes switch
            {
                { ValueKind: JsonValueKind.String } s => s.GetString()!,
                { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                    string.Join(' ', a.EnumerateArray().Select(e => e.GetString())),
                _ => throw new ArgumentException($"scopes is required: an array of {string.Join(", ", ApiScopes.All)}"),
            });
        }
        catch (ArgumentException e)
        {
            return Problem.BadRequest(e.Message);
        }
        var version = hub.Version;
        var created = await approvals.CreateAsync(ApprovalKinds.ApiKey, CliClient.Id, CliClient.Name, user!, CliClient.SessionScope,
            $"Create API key '{name}' with scopes {scopes}", NamedGrantDetails.Write(ApprovalKinds.ApiKey, name, scopes), null, options.DefaultRequestExpiry, ct);
        return await AnswerAsync(http, created.Approval, version, user!, store, keys, hub, options, time, ct);
    }

    internal static async Task<IResult> RequestAsync(string id, HttpContext http, AccessTokenValidator validator, IdentityDirectory directory,
        IApprovalStore store, IApiKeyStore keys, ApprovalHub hub, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        var version = hub.Version;
        var approval = id.Length <= 64 ? await store.FindAsync(id, ct) : null;
        if (approval is null || approval.Kind != ApprovalKinds.ApiKey || approval.UserId != user!.Id)
        {
            return Problem.NotFound("no such API key request of yours");
        }
        return await AnswerAsync(http, approval, version, user, store, keys, hub, options, time, ct);
    }

    private static async Task<IResult> AnswerAsync(HttpContext http, ApprovalRecord approval, long readAtVersion, UserRecord user, IApprovalStore store,
        IApiKeyStore keys, ApprovalHub hub, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        approval = await PreferWait.HoldIfAskedAsync(http, approval, readAtVersion, hub, store, options, time, ct);
        var location = $"{Path}/requests/{approval.Id}";
        var (name, scopes) = NamedGrantDetails.Read(approval.AuthorizationDetails);
        // One request, one key: key_X for request apr_X, found again without a lookup.
        var keyId = "key_" + approval.Id[(approval.Id.IndexOf('_') + 1)..];
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        switch (approval.State)
        {
            case ApprovalState.Pending when approval.ExpiresAt > now:
                http.Response.Headers.Location = location;
                return TypedResults.Json(new ApiKeyResponse(keyId, "pending", name, scopes.Split(' '), user.Handle, RequestId: approval.Id,
                    ExpiresAt: WireTime.Of(approval.ExpiresAt)), V1Json.Default.ApiKeyResponse, statusCode: StatusCodes.Status202Accepted);
            case ApprovalState.Pending:
            case ApprovalState.Expired:
                return Problem.Gone("you did not approve in time; ask again");
            case ApprovalState.Denied:
            case ApprovalState.Cancelled:
                return Problem.Forbidden("you denied creating this API key");
            case ApprovalState.Approved:
                var secret = Ids.Secret(ApiKeyHandler.Prefix[..^1]);
                var approver = (await store.ListDecisionsAsync(approval.Id, ct)).FirstOrDefault(d => d.Decision == ApprovalState.Approved)?.DeviceId;
                var record = new ApiKeyRecord(keyId, Ids.Hash(secret), user.Id, name, scopes, now, null, null);
                if (await keys.TryCreateFromApprovalAsync(approval.Id, now, record, new AuditEvent(AuditTypes.ApiKeyCreated, user.Id, approver, keyId,
                        new Dictionary<string, string> { ["name"] = name, ["scopes"] = scopes, ["approval"] = approval.Id }), ct))
                {
                    http.Response.Headers.Location = location;
                    return TypedResults.Json(View(record, user.Handle, secret) with { RequestId = approval.Id }, V1Json.Default.ApiKeyResponse,
                        statusCode: StatusCodes.Status201Created);
                }
                goto default;
            default:
                // Created by an earlier fetch, which took the key with it.
                return await keys.FindAsync(keyId, ct) is { } existing
                    ? TypedResults.Json(View(existing, user.Handle, null) with { RequestId = approval.Id }, V1Json.Default.ApiKeyResponse)
                    : Problem.Gone("this request was used up without creating a key");
        }
    }

    internal static async Task<IResult> ListAsync(HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, IApiKeyStore keys,
        CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        var list = await keys.ListAsync(user!.Id, ct);
        return TypedResults.Json(new ApiKeyList([.. list.Select(k => View(k, user.Handle, null))]), V1Json.Default.ApiKeyList);
    }

    internal static async Task<IResult> RevokeAsync(string id, HttpContext http, AccessTokenValidator validator, IdentityDirectory directory,
        IApiKeyStore keys, TimeProvider time, CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        if (refused is not null)
        {
            return refused;
        }
        if (id.Length > 64 || !await keys.TryRevokeAsync(id, user!.Id, time.GetUtcNow().ToUnixTimeMilliseconds(),
                new AuditEvent(AuditTypes.ApiKeyRevoked, user.Id, user.Id, id), ct))
        {
            return Problem.NotFound("no active API key of yours with this id");
        }
        return TypedResults.NoContent();
    }

    internal static ApiKeyResponse View(ApiKeyRecord k, string owner, string? secret) =>
        new(k.Id, k.Active ? "active" : "revoked", k.Name, k.Scopes.Split(' '), owner, secret, WireTime.Of(k.CreatedAt),
            WireTime.Of(k.LastUsedAt), WireTime.Of(k.RevokedAt));
}
