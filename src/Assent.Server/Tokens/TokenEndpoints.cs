using System.Text.Json;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Audit;
using Assent.Server.Ciba;
using Assent.Server.Clients;
using Assent.Server.Hosting;
using Assent.Server.Http;
using Assent.Server.Sessions;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Tokens;

/// <summary>The token endpoint (RFC 6749 §3.2): CIBA, device_code (RFC 8628), refresh_token and client_credentials grants.</summary>
internal static class TokenEndpoints
{
    public const string Path = "/oauth/token";

    public static IEndpointRouteBuilder MapTokens(this IEndpointRouteBuilder app)
    {
        app.MapPost(Path, TokenAsync)
            .DisableAntiforgery()
            .WithSummary("Token endpoint: CIBA, device_code, refresh_token, client_credentials (RFC 6749 §3.2, CIBA Core §10, RFC 8628 §3.4)")
            .WithTags("OAuth");
        return app;
    }

    internal static async Task<Results<Ok<TokenResponse>, OAuthError>> TokenAsync(
        HttpContext http, ClientAuthenticator clients, IAssentStore store, ApprovalHub hub, PollPacer pacer, TokenIssuer issuer,
        SessionService sessions, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        // The human grants come from the public CLI client, which has no secret.
        static bool IsHumanGrant(string? grant) => grant is GrantTypes.DeviceCode or GrantTypes.RefreshToken;
        var (read, client, error) = await clients.ReadFormAsync(http.Request, f => IsHumanGrant(f.Value(OAuthParameters.GrantType)), ct);
        if (error is not null)
        {
            return error;
        }
        var form = read!;
        var grant = form.Value(OAuthParameters.GrantType);
        if (IsHumanGrant(grant) && client!.Id != CliClient.Id)
        {
            // Sessions are for humans at the CLI; agents get their tokens through CIBA.
            return new OAuthError(OAuthErrors.UnauthorizedClient, $"grant_type '{grant}' is only for the public client {CliClient.Id}");
        }
        var deps = new Deps(http, store, hub, pacer, options, time);
        return grant switch
        {
            GrantTypes.Ciba => await CibaAsync(deps, form, client!, issuer, ct),
            GrantTypes.DeviceCode => await DeviceCodeAsync(deps, form, sessions, ct),
            GrantTypes.RefreshToken => await sessions.RefreshAsync(form.Value(OAuthParameters.RefreshToken), form.Value(OAuthParameters.Scope), ct),
            GrantTypes.ClientCredentials => ClientCredentials(form, client!, issuer),
            null => new OAuthError(OAuthErrors.InvalidRequest, "grant_type is required"),
            var other => new OAuthError(OAuthErrors.UnsupportedGrantType, $"grant_type '{other}' is not supported here"),
        };
    }

    private sealed record Deps(HttpContext Http, IAssentStore Store, ApprovalHub Hub, PollPacer Pacer, AssentOptions Options, TimeProvider Time);

    /// <summary>CIBA Core §10.1–§11.</summary>
    private static async Task<Results<Ok<TokenResponse>, OAuthError>> CibaAsync(Deps d, IFormCollection form, ClientRecord client, TokenIssuer issuer,
        CancellationToken ct)
    {
        var handle = form.Value(OAuthParameters.AuthReqId);
        if (handle is null || handle.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "auth_req_id is required");
        }
        var version = d.Hub.Version;
        var handleHash = Ids.Hash(handle);
        // A request created here and not settled as far as this node has heard needs no read (see AnnouncedByHandle).
        var approval = d.Hub.AnnouncedByHandle(handleHash) ?? await d.Store.FindApprovalByHandleAsync(handleHash, ct);
        // §11: an auth_req_id that is unknown or was issued to another client is invalid_grant.
        if (approval is null || approval.ClientId != client.Id || approval.Kind != ApprovalKinds.Ciba)
        {
            return new OAuthError(OAuthErrors.InvalidGrant, "auth_req_id is unknown or was not issued to this client");
        }
        // A wake that says "approved" goes straight to the redemption, which returns the decided row.
        return await SettleAsync(d, approval.Id, approval, version, approval.ExpiresAt, c => d.Store.FindApprovalAsync(approval.Id, c), true, async decided =>
        {
            // The redemption returns the row as decided, so the token is built from what was committed.
            if (await d.Store.TryRedeemAsync(decided.Id, d.Time.GetUtcNow().ToUnixTimeMilliseconds(),
                    new AuditEvent(AuditTypes.ApprovalRedeemed, decided.UserId, client.Id, decided.Id), ct) is not { } approved)
            {
                return new OAuthError(OAuthErrors.InvalidGrant, "this auth_req_id has already been redeemed");
            }
            var tokens = issuer.ForApproval(approved, handle, includeIdToken: approved.Scope.Split(' ').Contains(Scopes.OpenId));
            return TypedResults.Ok(new TokenResponse(tokens.AccessToken, "Bearer", tokens.ExpiresIn, approved.Scope, tokens.IdToken,
                AuthorizationDetails: approved.AuthorizationDetails is null ? null : JsonDocument.Parse(approved.AuthorizationDetails).RootElement));
        }, "auth_req_id", ct);
    }

    /// <summary>RFC 8628 §3.4–§3.5: the CLI polls (or waits) with its device_code until a device decides.</summary>
    private static async Task<Results<Ok<TokenResponse>, OAuthError>> DeviceCodeAsync(Deps d, IFormCollection form, SessionService sessions,
        CancellationToken ct)
    {
        var code = form.Value(OAuthParameters.DeviceCode);
        if (code is null || code.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "device_code is required");
        }
        var hash = Ids.Hash(code);
        var version = d.Hub.Version;
        var authorization = await d.Store.FindDeviceAuthorizationAsync(hash, ct);
        if (authorization is null || authorization.ClientId != CliClient.Id)
        {
            return new OAuthError(OAuthErrors.InvalidGrant, "device_code is unknown");
        }
        var approval = authorization.ApprovalId is null ? null : await d.Store.FindApprovalAsync(authorization.ApprovalId, ct);
        return await SettleAsync(d, authorization.Id, approval, version, authorization.ExpiresAt, async c =>
                await d.Store.FindDeviceAuthorizationAsync(hash, c) is { ApprovalId: { } id } ? await d.Store.FindApprovalAsync(id, c) : null, false,
            async approved => await sessions.StartAsync(approved, ct) is { } tokens
                ? TypedResults.Ok(tokens)
                : new OAuthError(OAuthErrors.InvalidGrant, "this device_code has already been used"),
            "device_code", ct);
    }

    /// <summary>
    /// The shared tail of the CIBA and device-code grants (CIBA Core §11, RFC 8628 §3.5): hold a pending
    /// request open for <c>Prefer: wait</c> or pace plain polls, then answer by the request's state.
    /// <paramref name="approval"/> is null while a device code is not yet bound to a request.
    /// </summary>
    private static async Task<Results<Ok<TokenResponse>, OAuthError>> SettleAsync(Deps d, string key, ApprovalRecord? approval, long readAtVersion, long expiresAt,
        Func<CancellationToken, Task<ApprovalRecord?>> read, bool approvedWithoutReading, Func<ApprovalRecord, Task<Results<Ok<TokenResponse>, OAuthError>>> redeem,
        string codeName, CancellationToken ct)
    {
        var wait = PreferWait.Requested(d.Http.Request, d.Options.MaxWait);
        var pending = approval is null || approval.State == ApprovalState.Pending;
        if (pending && wait > TimeSpan.Zero)
        {
            PreferWait.Applied(d.Http.Response, wait);
            approval = await PreferWait.HoldAsync(d.Hub, key, approval, readAtVersion, approval?.ExpiresAt ?? expiresAt, read, wait, d.Time, ct, approvedWithoutReading);
            d.Pacer.Held(key);
            if (approval is null || approval.State == ApprovalState.Pending)
            {
                return Pending(approval?.ExpiresAt ?? expiresAt, d.Time);
            }
        }

        switch (approval?.State)
        {
            case null:
            case ApprovalState.Pending:
                var expires = approval?.ExpiresAt ?? expiresAt;
                if (expires > d.Time.GetUtcNow().ToUnixTimeMilliseconds() && !d.Pacer.TryPoll(key, d.Options.PollInterval, expires))
                {
                    return new OAuthError(OAuthErrors.SlowDown, "polling faster than the interval; wait 5 seconds longer between polls");
                }
                return Pending(expires, d.Time);
            case ApprovalState.Approved:
                d.Pacer.Forget(key);
                return await redeem(approval);
            case ApprovalState.Denied:
            case ApprovalState.Cancelled:
                d.Pacer.Forget(key);
                return new OAuthError(OAuthErrors.AccessDenied, "the user denied the request");
            case ApprovalState.Expired:
                d.Pacer.Forget(key);
                return new OAuthError(OAuthErrors.ExpiredToken, "the request expired before the user decided; start a new one");
            default:
                return new OAuthError(OAuthErrors.InvalidGrant, $"this {codeName} has already been redeemed");
        }
    }

    private static OAuthError Pending(long expiresAt, TimeProvider time) =>
        expiresAt <= time.GetUtcNow().ToUnixTimeMilliseconds()
            ? new OAuthError(OAuthErrors.ExpiredToken, "the request expired before the user decided; start a new one")
            : new OAuthError(OAuthErrors.AuthorizationPending, "the user has not decided yet");

    /// <summary>
    /// RFC 6749 §4.4: the agent authenticates as itself, with no human involved. Every scope an agent is
    /// registered with is one it may ask a human for, so none of them is granted here (that would be an
    /// approval no human gave); the token carries no scope and a type of its own (docs/tokens.md).
    /// </summary>
    private static Results<Ok<TokenResponse>, OAuthError> ClientCredentials(IFormCollection form, ClientRecord client, TokenIssuer issuer)
    {
        var requested = form.Value(OAuthParameters.Scope)?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        var allowed = client.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (requested.Any(allowed.Contains))
        {
            return new OAuthError(OAuthErrors.InvalidScope, "approval scopes are granted only by a human decision: use CIBA");
        }
        if (requested.Length > 0)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"this client may not ask for: {string.Join(' ', requested.Distinct())}");
        }
        var resource = form.Value(OAuthParameters.Resource);
        if (resource is not null && !Uri.TryCreate(resource, UriKind.Absolute, out _))
        {
            return new OAuthError("invalid_target", "resource must be an absolute URI");
        }
        var tokens = issuer.ForClient(client, resource);
        return TypedResults.Ok(new TokenResponse(tokens.AccessToken, "Bearer", tokens.ExpiresIn, Scope: null));
    }
}
