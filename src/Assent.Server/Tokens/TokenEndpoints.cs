using System.Globalization;
using System.Text.Json;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Audit;
using Assent.Server.Ciba;
using Assent.Server.Clients;
using Assent.Server.Hosting;
using Assent.Server.Http;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Tokens;

/// <summary>The token endpoint (RFC 6749 §3.2): CIBA and client_credentials grants.</summary>
internal static class TokenEndpoints
{
    public const string Path = "/oauth/token";

    public static IEndpointRouteBuilder MapTokens(this IEndpointRouteBuilder app)
    {
        app.MapPost(Path, TokenAsync)
            .DisableAntiforgery()
            .WithSummary("Token endpoint: CIBA, client_credentials (RFC 6749 §3.2, CIBA Core §10)")
            .WithTags("OAuth");
        return app;
    }

    internal static async Task<Results<Ok<TokenResponse>, OAuthError>> TokenAsync(
        HttpContext http, ClientAuthenticator clients, IAssentStore store, ApprovalHub hub, PollPacer pacer, TokenIssuer issuer,
        AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        OAuthError.NoStore(http.Response);
        var read = await RequestBodies.ReadFormAsync(http.Request, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var form = read.Form!;
        var (client, authError) = await clients.AuthenticateAsync(http.Request, form, ct);
        if (authError is not null)
        {
            return authError;
        }
        return form.Value(OAuthParameters.GrantType) switch
        {
            GrantTypes.Ciba => await CibaAsync(http, form, client!, store, hub, pacer, issuer, options, time, ct),
            GrantTypes.ClientCredentials => ClientCredentials(form, client!, issuer),
            null => new OAuthError(OAuthErrors.InvalidRequest, "grant_type is required"),
            var other => new OAuthError(OAuthErrors.UnsupportedGrantType, $"grant_type '{other}' is not supported here"),
        };
    }

    /// <summary>CIBA Core §10.1–§11, with RFC 7240 <c>Prefer: wait</c> holding a pending answer open.</summary>
    private static async Task<Results<Ok<TokenResponse>, OAuthError>> CibaAsync(HttpContext http, IFormCollection form, ClientRecord client,
        IAssentStore store, ApprovalHub hub, PollPacer pacer, TokenIssuer issuer, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var handle = form.Value(OAuthParameters.AuthReqId);
        if (handle is null || handle.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "auth_req_id is required");
        }
        var approval = await store.FindApprovalByHandleAsync(Ids.Hash(handle), ct);
        // §11: an auth_req_id that is unknown or was issued to another client is invalid_grant.
        if (approval is null || approval.ClientId != client.Id || approval.Kind != ApprovalKinds.Ciba)
        {
            return new OAuthError(OAuthErrors.InvalidGrant, "auth_req_id is unknown or was not issued to this client");
        }

        var wait = PreferredWait(http.Request, options.MaxWait);
        if (approval.State == ApprovalState.Pending && wait > TimeSpan.Zero)
        {
            http.Response.Headers[HeaderNames.PreferenceApplied] = "wait=" + ((int)wait.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            approval = await WaitForDecisionAsync(approval, wait, store, hub, time, ct);
            pacer.Held(approval.Id);
            if (approval.State == ApprovalState.Pending)
            {
                return Pending(approval, time);
            }
        }

        switch (approval.State)
        {
            case ApprovalState.Pending:
                if (!pacer.TryPoll(approval.Id, options.PollInterval, approval.ExpiresAt))
                {
                    return new OAuthError(OAuthErrors.SlowDown, "polling faster than the interval; wait 5 seconds longer between polls");
                }
                return Pending(approval, time);
            case ApprovalState.Approved:
                if (!await store.TryRedeemAsync(approval.Id, time.GetUtcNow().ToUnixTimeMilliseconds(),
                        new AuditEvent(AuditTypes.ApprovalRedeemed, approval.UserId, client.Id, approval.Id), ct))
                {
                    return new OAuthError(OAuthErrors.InvalidGrant, "this auth_req_id has already been redeemed");
                }
                pacer.Forget(approval.Id);
                var device = approval.DeviceId is null ? null : await store.FindDeviceAsync(approval.DeviceId, ct);
                var tokens = issuer.ForApproval(approval, device, handle, includeIdToken: approval.Scope.Split(' ').Contains(Scopes.OpenId));
                return TypedResults.Ok(new TokenResponse(tokens.AccessToken, "Bearer", tokens.ExpiresIn, approval.Scope, tokens.IdToken,
                    AuthorizationDetails: approval.AuthorizationDetails is null ? null : JsonDocument.Parse(approval.AuthorizationDetails).RootElement));
            case ApprovalState.Denied:
            case ApprovalState.Cancelled:
                pacer.Forget(approval.Id);
                return new OAuthError(OAuthErrors.AccessDenied, "the user denied the request");
            case ApprovalState.Expired:
                pacer.Forget(approval.Id);
                return new OAuthError(OAuthErrors.ExpiredToken, "the request expired before the user decided; start a new one");
            default:
                return new OAuthError(OAuthErrors.InvalidGrant, "this auth_req_id has already been redeemed");
        }
    }

    private static OAuthError Pending(ApprovalRecord approval, TimeProvider time) =>
        approval.ExpiresAt <= time.GetUtcNow().ToUnixTimeMilliseconds()
            ? new OAuthError(OAuthErrors.ExpiredToken, "the request expired before the user decided; start a new one")
            : new OAuthError(OAuthErrors.AuthorizationPending, "the user has not decided yet");

    /// <summary>Holds until the request settles or the wait (capped by its expiry) runs out.</summary>
    internal static async Task<ApprovalRecord> WaitForDecisionAsync(ApprovalRecord approval, TimeSpan wait, IAssentStore store, ApprovalHub hub,
        TimeProvider time, CancellationToken ct)
    {
        using var watch = hub.Watch(approval.Id);
        // Re-read after registering: a decision between the first read and Watch() is not lost.
        var current = await store.FindApprovalAsync(approval.Id, ct) ?? approval;
        if (current.State != ApprovalState.Pending)
        {
            return current;
        }
        var untilExpiry = TimeSpan.FromMilliseconds(Math.Max(0, current.ExpiresAt - time.GetUtcNow().ToUnixTimeMilliseconds()));
        var limit = wait < untilExpiry ? wait : untilExpiry + TimeSpan.FromMilliseconds(50);
        try
        {
            await watch.Signaled.WaitAsync(limit, time, ct);
        }
        catch (TimeoutException)
        {
            return current;
        }
        return await store.FindApprovalAsync(approval.Id, ct) ?? current;
    }

    /// <summary>RFC 7240 §4.3: <c>Prefer: wait=N</c>, capped at the server's maximum.</summary>
    internal static TimeSpan PreferredWait(HttpRequest request, TimeSpan max)
    {
        foreach (var header in request.Headers[HeaderNames.Prefer])
        {
            foreach (var preference in (header ?? "").Split(','))
            {
                var token = preference.Split(';')[0].Trim();
                if (token.StartsWith("wait=", StringComparison.OrdinalIgnoreCase) &&
                    int.TryParse(token.AsSpan(5).Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
                {
                    var wanted = TimeSpan.FromSeconds(seconds);
                    return wanted < max ? wanted : max;
                }
            }
        }
        return TimeSpan.Zero;
    }

    /// <summary>RFC 6749 §4.4: the agent authenticates as itself; scope must be within what it was registered for.</summary>
    private static Results<Ok<TokenResponse>, OAuthError> ClientCredentials(IFormCollection form, ClientRecord client, TokenIssuer issuer)
    {
        var allowed = client.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var requested = form.Value(OAuthParameters.Scope)?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? allowed;
        var extra = requested.Where(s => !allowed.Contains(s)).ToList();
        if (extra.Count > 0)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"this client may not ask for: {string.Join(' ', extra)}");
        }
        var resource = form.Value(OAuthParameters.Resource);
        if (resource is not null && !Uri.TryCreate(resource, UriKind.Absolute, out _))
        {
            return new OAuthError("invalid_target", "resource must be an absolute URI");
        }
        var scope = string.Join(' ', requested.Distinct());
        var tokens = issuer.ForClient(client, scope, resource);
        return TypedResults.Ok(new TokenResponse(tokens.AccessToken, "Bearer", tokens.ExpiresIn, scope));
    }
}
