using System.Text.RegularExpressions;
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
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Sessions;

/// <summary>
/// Human sign-in for the CLI: RFC 8628 device authorization (approved from an enrolled device like any request;
/// its grant is <see cref="DeviceCodeGrant"/>), RFC 7009 revocation and OpenID Connect UserInfo.
/// </summary>
internal static partial class SessionEndpoints
{
    /// <summary>A user with this many sign-ins waiting is not sent more: pushed logins must not become a flood to tap through.</summary>
    private const int MaxPendingLogins = 3;

    public static IEndpointRouteBuilder MapSessions(this IEndpointRouteBuilder app)
    {
        app.MapPost(EndpointPaths.DeviceAuthorization, DeviceAuthorizationAsync).DisableAntiforgery().RequireRateLimiting(CreationLimit.Policy)
            .WithSummary("RFC 8628 device authorization for the CLI (public client assent-cli); login_hint pushes it to that user's devices").WithTags("OAuth");
        // The same binding for both kinds of approver: a device-signed request, or the web app's passkey session.
        app.MapPost(EndpointPaths.Authenticator + "/device-login", DeviceLoginAsync).DisableAntiforgery()
            .RequireAuthorization(AssentSchemes.Device)
            .WithSummary("Bind an RFC 8628 user code to the device's user: raises the sign-in request for the device to decide (signed request)")
            .WithTags("Authenticator");
        app.MapPost(EndpointPaths.WebAuthn + "/device-login", DeviceLoginAsync).DisableAntiforgery()
            .RequireAuthorization(AssentSchemes.WebSession)
            .WithSummary("Bind an RFC 8628 user code: raises a device_login approval request (session cookie)")
            .WithTags("Passkeys");
        app.MapPost(EndpointPaths.Revocation, RevokeAsync).DisableAntiforgery()
            .WithSummary("RFC 7009 token revocation: refresh tokens (the whole session), access tokens, and an agent's pending CIBA auth_req_id (withdraws the request)").WithTags("OAuth");
        app.MapGet(EndpointPaths.UserInfo, UserInfoAsync).WithSummary("OpenID Connect UserInfo for a Bearer access token").WithTags("OAuth");
        app.MapPost(EndpointPaths.UserInfo, UserInfoAsync).DisableAntiforgery().WithSummary("OpenID Connect UserInfo (POST form)").WithTags("OAuth");
        return app;
    }

    /// <summary>RFC 8628 §3.1–§3.2.</summary>
    internal static async Task<Results<Ok<DeviceAuthorizationResponse>, OAuthError>> DeviceAuthorizationAsync(HttpContext http, ClientAuthenticator clients,
        ISessionStore sessions, IApprovalStore approvalStore, IdentityDirectory directory, ApprovalService approvals, AssentOptions options, TimeProvider time,
        CancellationToken ct)
    {
        var (read, client, error) = await clients.ReadFormAsync(http.Request, _ => true, ct);
        if (error is not null)
        {
            return error;
        }
        var form = read!;
        if (client!.Id != CliClient.Id)
        {
            return new OAuthError(OAuthErrors.UnauthorizedClient, $"device authorization is for the CLI's public client {CliClient.Id}; agents use CIBA");
        }
        var requested = form.Value(OAuthParameters.Scope)?.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct().ToArray() ?? CliClient.Scopes;
        if (requested.FirstOrDefault(s => !CliClient.Scopes.Contains(s)) is { } unknown)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"'{unknown}' is not a session scope; ask for some of: {string.Join(' ', CliClient.Scopes)}");
        }
        var scope = string.Join(' ', requested);

        UserRecord? user = null;
        if (form.Value(OAuthParameters.LoginHint) is { } hint)
        {
            user = await directory.FindByHintAsync(hint, ct);
            if (user is null)
            {
                return new OAuthError(OAuthErrors.UnknownUserId, "login_hint names no user of this server");
            }
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            if ((await approvalStore.ListPendingAsync(user.Id, now, ct)).Count(a => a.Kind == ApprovalKinds.DeviceLogin) >= MaxPendingLogins)
            {
                return new OAuthError(OAuthErrors.InvalidRequest, "this user already has sign-ins waiting on their devices; approve or deny those first");
            }
        }

        var deviceCode = Ids.Secret("dc");
        var userCode = Ids.UserCode();
        var from = RequestedFrom(http.Request);
        var created = time.GetUtcNow();
        var authorization = new DeviceAuthorizationRecord(Ids.New("dva"), Ids.Hash(deviceCode), Ids.Hash(userCode), CliClient.Id, scope, from, null,
            created.ToUnixTimeMilliseconds(), (created + options.DeviceCodeLifetime).ToUnixTimeMilliseconds());
        if (user is null)
        {
            await sessions.CreateDeviceAuthorizationAsync(authorization, null, null, ct);
        }
        else
        {
            // Pushed to the user's devices at once, in the same transaction as the code (docs/cli.md: auth login --user).
            await approvals.CreateAsync(ApprovalKinds.DeviceLogin, CliClient.Id, CliClient.Name, user, scope, LoginMessage(from, userCode), null, null,
                options.DeviceCodeLifetime, async (approval, _, audit, c) =>
                {
                    await sessions.CreateDeviceAuthorizationAsync(authorization with { ExpiresAt = approval.ExpiresAt }, approval, audit, c);
                    return true;
                }, ct);
        }
        var verification = options.IssuerString + EndpointPaths.Verification;
        return TypedResults.Ok(new DeviceAuthorizationResponse(deviceCode, userCode, verification,
            verification + "?user_code=" + Uri.EscapeDataString(userCode), (int)options.DeviceCodeLifetime.TotalSeconds,
            (int)Math.Ceiling(options.PollInterval.TotalSeconds)));
    }

    /// <summary>
    /// RFC 8628 §3.3: a signed-in human (device key or passkey session) claims the code their terminal shows: the
    /// waiting authorization gets a device_login request for that human, returned for them to decide like any other.
    /// </summary>
    internal static async Task<IResult> DeviceLoginAsync(Approver approver, HttpRequest request, ISessionStore sessions, ApprovalService approvals,
        ApprovalHub hub, ApprovalViews views, AttemptLimiter limiter, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, ProtocolJson.Default.DeviceLoginRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var userCode = Ids.NormalizeUserCode(read.Value!.UserCode);
        if (userCode is null)
        {
            return Problem.BadRequest("user_code must be the 8-letter code the terminal shows, like BCDF-GHJK");
        }
        // RFC 8628 §5.1: a user code is short enough to guess, so wrong ones are limited per address and per signed-in user.
        var policy = AttemptPolicy.ForUserCodes(options.Limits);
        AttemptKey[] keys = [new(policy.Key("address", ClientAddress.Of(request.HttpContext)), null), new(policy.Key("user", approver.User.Id), approver.User.Id)];
        if (limiter.Refused(keys) is { } limited)
        {
            return Problem.TooManyRequests("too many wrong sign-in codes from here or for this account; try again later", limited.RetryAfter);
        }
        var authorization = await sessions.FindDeviceAuthorizationByUserCodeAsync(Ids.Hash(userCode), ct);
        var now = time.GetUtcNow();
        if (authorization is null)
        {
            await limiter.FailedAsync(policy, keys, ct);
            return Problem.NotFound("no sign-in is waiting for this code; check it, or run assent auth login again");
        }
        if (authorization.ExpiresAt <= now.ToUnixTimeMilliseconds())
        {
            return Problem.Gone("this code has expired; run assent auth login again");
        }
        if (authorization.ApprovalId is not null)
        {
            return Problem.Conflict("this code has already been used");
        }
        var remaining = TimeSpan.FromMilliseconds(authorization.ExpiresAt - now.ToUnixTimeMilliseconds());
        var created = await approvals.CreateAsync(ApprovalKinds.DeviceLogin, CliClient.Id, CliClient.Name, approver.User, authorization.Scope,
            LoginMessage(authorization.RequestedFrom, userCode), null, null, remaining,
            (approval, _, audit, c) => sessions.TryBindUserCodeAsync(authorization.Id, now.ToUnixTimeMilliseconds(), approval, audit, c), ct);
        if (created is null)
        {
            return Problem.Conflict("this code has already been used or has just expired");
        }
        // The CLI may be held by Prefer: wait on the code itself: tell it there is now a request to wait on.
        hub.Wake(authorization.Id);
        return TypedResults.Created($"{EndpointPaths.Authenticator}/approvals/{created.Approval.Id}", await views.ViewAsync(created.Approval, ct));
    }

    /// <summary>
    /// RFC 7009 §2. Always 200 for tokens that are unknown, expired or not this client's (§2.2). Besides access and
    /// refresh tokens, an agent may revoke the <c>auth_req_id</c> of its own CIBA request while nobody has decided it:
    /// the request is withdrawn (cancelled) and the approver's devices stop showing it (docs/http-api.md §8.1).
    /// </summary>
    internal static async Task<IResult> RevokeAsync(HttpContext http, ClientAuthenticator clients, SessionService sessionService, AccessTokenValidator validator,
        ISessionStore sessions, IApprovalStore approvalStore, ApprovalService approvals, TimeProvider time, CancellationToken ct)
    {
        var (read, client, error) = await clients.ReadFormAsync(http.Request, _ => true, ct);
        if (error is not null)
        {
            return error;
        }
        var form = read!;
        var token = form.Value(OAuthParameters.Token);
        if (token is null)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "token is required");
        }
        var hint = form.Value(OAuthParameters.TokenTypeHint);
        if (hint is not null && hint is not (OAuthParameters.AccessToken or OAuthParameters.RefreshToken or OAuthParameters.AuthReqId))
        {
            return new OAuthError(OAuthErrors.UnsupportedTokenType, "token_type_hint must be access_token, refresh_token or auth_req_id");
        }
        // Access tokens are JWS (two dots); refresh tokens are opaque. The hint only speeds up a search (§2.1), so the shape decides.
        if (token.Count(c => c == '.') == 2)
        {
            var (claims, _) = await validator.ValidateAsync(token, ct);
            if (claims is not null && claims.ClientId == client!.Id)
            {
                await sessions.RevokeAccessTokenAsync(claims.Jti, claims.ExpiresAt * 1000, time.GetUtcNow().ToUnixTimeMilliseconds(),
                    new AuditEvent(AuditTypes.AccessTokenRevoked, claims.UserId, client.Id, claims.Jti), ct);
            }
        }
        else if (token.Length <= 128)
        {
            // Both opaque kinds are found by their hash (an auth_req_id by its key: docs/concepts.md §9), so both are looked
            // for whatever the hint (RFC 7009 §2.1: a server that does not find the token under the hint extends its search
            // to every type it supports).
            await sessionService.RevokeRefreshTokenAsync(token, client!.Id, ct);
            // An auth_req_id is withdrawn only by the client it was issued to, and only while pending (CIBA Core §11
            // treats another client's auth_req_id as unknown; here it changes nothing and is answered 200 alike).
            if (await approvalStore.FindByHandleAsync(Ids.HandleKey(token), ct) is { Kind: ApprovalKinds.Ciba, State: ApprovalState.Pending } request
                && request.ClientId == client.Id)
            {
                await approvals.CancelAsync(request, client.Id, ct);
            }
        }
        return TypedResults.Ok();
    }

    /// <summary>OpenID Connect Core §5.3 with the members of docs/http-api.md; RFC 6750 §3 challenges for bad tokens.</summary>
    internal static async Task<IResult> UserInfoAsync(HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, CancellationToken ct)
    {
        OAuthError.NoStore(http.Response);
        var token = AccessTokenValidator.BearerToken(http.Request);
        if (token is null)
        {
            return BearerError.Missing(problem: false);
        }
        var (claims, error) = await validator.ValidateAsync(token, ct);
        if (claims is null)
        {
            return BearerError.InvalidToken(error!, problem: false);
        }
        // OpenID Connect Core §5.4: a web client learns the handle only with the profile scope the user consented to
        // (docs/http-api.md §17.7); the server's own clients (the CLI's sessions) always.
        var consented = !Authorize.WebClientRegistration.IsWebClient(claims.ClientId) || claims.HasScope(Authorize.SignInScopes.Profile);
        var user = claims.UserId is null || !consented ? null : await directory.FindUserAsync(claims.UserId, ct);
        return TypedResults.Json(new UserInfoResponse(claims.Subject, claims.Scope, claims.ClientId, user?.Handle), ProtocolJson.Default.UserInfoResponse);
    }

    /// <summary>Shown on the approving device; names the code so the human can match it with the terminal.</summary>
    internal static string LoginMessage(string from, string userCode) => $"Sign in to the Assent CLI on {from}, code {userCode}";

    [GeneratedRegex(@"\(([A-Za-z0-9][A-Za-z0-9._-]{0,62})[;)]")]
    private static partial Regex HostComment();

    /// <summary>The host the CLI names in its User-Agent comment (<c>assent/1.0 (laptop)</c>); else "a terminal".</summary>
    internal static string RequestedFrom(HttpRequest request) =>
        HostComment().Match(request.Headers.UserAgent.ToString()) is { Success: true } m ? m.Groups[1].Value : "a terminal";
}
