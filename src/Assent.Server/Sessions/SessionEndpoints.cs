using System.Text.Json;
using System.Text.RegularExpressions;
using Assent.Protocol.Jose;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Audit;
using Assent.Server.Ciba;
using Assent.Server.Clients;
using Assent.Server.Devices;
using Assent.Server.Hosting;
using Assent.Server.Http;
using Assent.Server.Storage;
using Assent.Server.Users;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Sessions;

/// <summary>
/// Human sign-in for the CLI: RFC 8628 device authorization (approved from an enrolled device like any
/// request), RFC 7009 revocation and OpenID Connect UserInfo.
/// </summary>
internal static partial class SessionEndpoints
{
    public const string DeviceAuthorizationPath = "/oauth/device/code";
    public const string VerificationPath = "/device";
    public const string DeviceLoginPath = "/authenticator/device-login";
    public const string RevocationPath = "/oauth/revoke";
    public const string UserInfoPath = "/userinfo";

    /// <summary>A user with this many sign-ins waiting is not sent more: pushed logins must not become a flood to tap through.</summary>
    private const int MaxPendingLogins = 3;

    public static IEndpointRouteBuilder MapSessions(this IEndpointRouteBuilder app)
    {
        app.MapPost(DeviceAuthorizationPath, DeviceAuthorizationAsync).DisableAntiforgery()
            .WithSummary("RFC 8628 device authorization for the CLI (public client assent-cli); login_hint pushes it to that user's devices").WithTags("OAuth");
        app.MapPost(DeviceLoginPath, DeviceLoginAsync).DisableAntiforgery()
            .WithSummary("Bind an RFC 8628 user code to the device's user: raises the sign-in request for the device to decide (signed request)")
            .WithTags("Authenticator");
        app.MapPost(RevocationPath, RevokeAsync).DisableAntiforgery()
            .WithSummary("RFC 7009 token revocation: refresh tokens (the whole session) and access tokens").WithTags("OAuth");
        app.MapGet(UserInfoPath, UserInfoAsync).WithSummary("OpenID Connect UserInfo for a Bearer access token").WithTags("OAuth");
        app.MapPost(UserInfoPath, UserInfoAsync).DisableAntiforgery().WithSummary("OpenID Connect UserInfo (POST form)").WithTags("OAuth");
        return app;
    }

    /// <summary>RFC 8628 §3.1–§3.2.</summary>
    internal static async Task<Results<Ok<DeviceAuthorizationResponse>, OAuthError>> DeviceAuthorizationAsync(HttpContext http, ClientAuthenticator clients,
        IAssentStore store, IdentityDirectory directory, ApprovalService approvals, AssentOptions options, TimeProvider time, CancellationToken ct)
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
            user = await CibaEndpoints.FindUserAsync(hint, directory, options, ct);
            if (user is null)
            {
                return new OAuthError(OAuthErrors.UnknownUserId, "login_hint names no user of this server");
            }
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            if ((await store.ListPendingAsync(user.Id, now, ct)).Count(a => a.Kind == ApprovalKinds.DeviceLogin) >= MaxPendingLogins)
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
            await store.CreateDeviceAuthorizationAsync(authorization, null, null, ct);
        }
        else
        {
            // Pushed to the user's devices at once, in the same transaction as the code (SPEC §4 `auth login --user`).
            await approvals.CreateAsync(ApprovalKinds.DeviceLogin, CliClient.Id, CliClient.Name, user, scope, LoginMessage(from, userCode), null, null,
                options.DeviceCodeLifetime, async (approval, audit, c) =>
                {
                    await store.CreateDeviceAuthorizationAsync(authorization with { ExpiresAt = approval.ExpiresAt }, approval, audit, c);
                    return true;
                }, ct);
        }
        var verification = options.IssuerString + VerificationPath;
        return TypedResults.Ok(new DeviceAuthorizationResponse(deviceCode, userCode, verification,
            verification + "?user_code=" + Uri.EscapeDataString(userCode), (int)options.DeviceCodeLifetime.TotalSeconds,
            (int)Math.Ceiling(options.PollInterval.TotalSeconds)));
    }

    /// <summary>An enrolled device binds a user code it was shown: the sign-in becomes a request of its user, returned for it to decide.</summary>
    internal static async Task<IResult> DeviceLoginAsync(HttpRequest request, DeviceAuthenticator auth, IAssentStore store, ApprovalService approvals,
        ApprovalHub hub, ClientDirectory clients, TimeProvider time, CancellationToken ct)
    {
        var body = await DeviceEndpoints.ReadSignedBodyAsync(request, ct);
        if (body is null)
        {
            return Problem.Make(StatusCodes.Status413PayloadTooLarge, "Payload too large", "the body is larger than allowed");
        }
        var (_, user, error) = await auth.AuthenticateAsync(request, body, ct);
        if (error is not null)
        {
            return error;
        }
        DeviceLoginRequest? login;
        try
        {
            login = JsonSerializer.Deserialize(body, ServerJson.Default.DeviceLoginRequest);
        }
        catch (JsonException)
        {
            return Problem.BadRequest("the body must be JSON {\"user_code\": \"XXXX-XXXX\"}");
        }
        return await BindUserCodeAsync(user!, login?.UserCode, store, approvals, hub, clients, time, ct);
    }

    /// <summary>
    /// A signed-in human (device key or passkey session) claims the code their terminal shows: the
    /// waiting RFC 8628 authorization gets a device_login request for that human, decided like any other.
    /// </summary>
    internal static async Task<IResult> BindUserCodeAsync(UserRecord user, string? rawUserCode, IAssentStore store, ApprovalService approvals,
        ApprovalHub hub, ClientDirectory clients, TimeProvider time, CancellationToken ct)
    {
        var userCode = Ids.NormalizeUserCode(rawUserCode);
        if (userCode is null)
        {
            return Problem.BadRequest("user_code must be the 8-letter code the terminal shows, like BCDF-GHJK");
        }
        var authorization = await store.FindDeviceAuthorizationByUserCodeAsync(Ids.Hash(userCode), ct);
        var now = time.GetUtcNow();
        if (authorization is null)
        {
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
        var created = await approvals.CreateAsync(ApprovalKinds.DeviceLogin, CliClient.Id, CliClient.Name, user, authorization.Scope,
            LoginMessage(authorization.RequestedFrom, userCode), null, null, remaining,
            (approval, audit, c) => store.TryBindUserCodeAsync(authorization.Id, now.ToUnixTimeMilliseconds(), approval, audit, c), ct);
        if (created is null)
        {
            return Problem.Conflict("this code has already been used or has just expired");
        }
        // The CLI may be held by Prefer: wait on the code itself: tell it there is now a request to wait on.
        hub.Wake(authorization.Id);
        return TypedResults.Created($"{DeviceEndpoints.Prefix}/approvals/{created.Approval.Id}",
            await DeviceEndpoints.ViewAsync(created.Approval, clients, ct));
    }

    /// <summary>RFC 7009 §2. Always 200 for tokens that are unknown, expired or not this client's (§2.2).</summary>
    internal static async Task<IResult> RevokeAsync(HttpContext http, ClientAuthenticator clients, SessionService sessions, AccessTokenValidator validator,
        IAssentStore store, TimeProvider time, CancellationToken ct)
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
        var hint = form.Value("token_type_hint");
        if (hint is not null && hint is not ("access_token" or "refresh_token"))
        {
            return new OAuthError(OAuthErrors.UnsupportedTokenType, "token_type_hint must be access_token or refresh_token");
        }
        // Access tokens are JWS (two dots); refresh tokens are opaque. The hint only speeds up a search (§2.1), so the shape decides.
        if (token.Count(c => c == '.') == 2)
        {
            var (claims, _) = await validator.ValidateAsync(token, ct);
            if (claims is not null && claims.ClientId == client!.Id)
            {
                await store.RevokeAccessTokenAsync(claims.Jti, claims.ExpiresAt * 1000, time.GetUtcNow().ToUnixTimeMilliseconds(),
                    new AuditEvent(AuditTypes.AccessTokenRevoked, claims.UserId, client.Id, claims.Jti), ct);
            }
        }
        else if (token.Length <= 128)
        {
            await sessions.RevokeRefreshTokenAsync(token, client!.Id, ct);
        }
        return TypedResults.Ok();
    }

    /// <summary>OpenID Connect Core §5.3 with SPEC §2's members; RFC 6750 §3 challenges for bad tokens.</summary>
    internal static async Task<IResult> UserInfoAsync(HttpContext http, AccessTokenValidator validator, IAssentStore store, CancellationToken ct)
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
        var user = claims.UserId is null ? null : await store.FindUserAsync(claims.UserId, ct);
        return TypedResults.Json(new UserInfoResponse(claims.Subject, claims.Scope, claims.ClientId, user?.Handle), ServerJson.Default.UserInfoResponse);
    }

    /// <summary>Shown on the approving device; names the code so the human can match it with the terminal.</summary>
    internal static string LoginMessage(string from, string userCode) => $"Sign in to the Assent CLI on {from}, code {userCode}";

    [GeneratedRegex(@"\(([A-Za-z0-9][A-Za-z0-9._-]{0,62})[;)]")]
    private static partial Regex HostComment();

    /// <summary>The host the CLI names in its User-Agent comment (<c>assent/1.0 (laptop)</c>); else "a terminal".</summary>
    internal static string RequestedFrom(HttpRequest request) =>
        HostComment().Match(request.Headers.UserAgent.ToString()) is { Success: true } m ? m.Groups[1].Value : "a terminal";
}
