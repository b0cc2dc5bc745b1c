using System.Security.Cryptography;
using System.Text;
using Assent.Protocol;
using Assent.Protocol.Did;
using Assent.Protocol.OAuth;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Passkeys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Authorize;

/// <summary>
/// Passkey sign-in for other applications (docs/http-api.md §17): the OpenID Connect authorization endpoint with its
/// sign-in and consent pages, and RP-initiated logout. The token side is <see cref="AuthorizationCodeGrant"/>.
/// </summary>
internal static class AuthorizeEndpoints
{
    public static IEndpointRouteBuilder MapAuthorize(this IEndpointRouteBuilder app)
    {
        // An outsider's door: a page per request, so each address gets the creation limit (docs/deployment.md §10).
        app.MapGet(AuthorizePaths.Authorize, AuthorizeAsync).RequireRateLimiting(CreationLimit.Policy)
            .WithSummary("OpenID Connect authorization endpoint (authorization code + PKCE): sign-in with a passkey, consent, then the code").WithTags("Sign-in");
        app.MapPost(AuthorizePaths.Authorize, AuthorizeAsync).RequireRateLimiting(CreationLimit.Policy).DisableAntiforgery()
            .WithSummary("The authorization endpoint by form post (OpenID Connect Core §3.1.2.1)").WithTags("Sign-in");
        app.MapPost(AuthorizePaths.Consent, ConsentAsync).RequireRateLimiting(CreationLimit.Policy).DisableAntiforgery()
            .WithSummary("The consent form of the sign-in page (CSRF-protected)").WithTags("Sign-in");
        app.MapGet(AuthorizePaths.EndSession, EndSessionAsync).RequireRateLimiting(CreationLimit.Policy)
            .WithSummary("OpenID Connect RP-Initiated Logout 1.0").WithTags("Sign-in");
        app.MapPost(AuthorizePaths.EndSession, EndSessionAsync).RequireRateLimiting(CreationLimit.Policy).DisableAntiforgery()
            .WithSummary("RP-Initiated Logout by form post").WithTags("Sign-in");
        app.MapApplications();
        return app;
    }

    internal static async Task<IResult> AuthorizeAsync(HttpContext http, IWebClientStore clients, WebSessions sessions, IdentityDirectory directory,
        AuthorizationCodes codes, SignInChallenges challenges, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var (parameters, readError) = await AuthorizationRequests.ReadAsync(http.Request, ct);
        if (parameters is null)
        {
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, readError!);
        }
        var (request, refusal) = await AuthorizationRequests.ValidateAsync(parameters, clients, ct);
        if (request is null)
        {
            return Refuse(http.Response, refusal!, options);
        }
        var session = await sessions.FindForSignInAsync(http.Request, ct);
        var user = session is null ? null : await directory.FindUserAsync(session.UserId, ct);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (session is null || user is null || codes.NeedsSignIn(request, session, user, now))
        {
            if (request.Prompt.Contains(Prompts.None))
            {
                // OpenID Connect Core §3.1.2.6: no page may be shown, and the user must sign in.
                return Redirect(http.Request, request, options, AuthorizeErrors.LoginRequired, "the user is not signed in (or must sign in again)");
            }
            var continueUrl = AuthorizationRequests.Respond(AuthorizePaths.Authorize, request.AfterSignIn().Select(p => new KeyValuePair<string, string?>(p.Key, p.Value)));
            // The page's first passkey request needs no round trip for its options: they come with it (stateless, nothing written).
            return AuthorizePages.SignIn(http.Response, request.Client.Name, continueUrl, request.LoginHint, challenges.IssueOptions(), "'self'");
        }
        return await ConsentOrCodeAsync(http, request, session, user, codes, options, decided: false, ct);
    }

    internal static async Task<IResult> ConsentAsync(HttpContext http, IWebClientStore clients, WebSessions sessions, IdentityDirectory directory,
        AuthorizationCodes codes, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        if (!sessions.FromOwnOrigin(http.Request))
        {
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, "the consent form must be posted from this server's own page");
        }
        var (parameters, readError) = await AuthorizationRequests.ReadAsync(http.Request, ct);
        if (parameters is null)
        {
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, readError!);
        }
        var (request, refusal) = await AuthorizationRequests.ValidateAsync(parameters, clients, ct);
        if (request is null)
        {
            return Refuse(http.Response, refusal!, options);
        }
        var session = await sessions.FindForSignInAsync(http.Request, ct);
        var user = session is null ? null : await directory.FindUserAsync(session.UserId, ct);
        var csrf = parameters.FirstOrDefault(p => p.Key == AuthorizeParameters.Csrf).Value;
        if (session is null || user is null || csrf is null || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(csrf),
                Encoding.ASCII.GetBytes(Csrf(session, "consent", request.Client.Id, request.RedirectUri, request.Scope))))
        {
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, "the consent form expired or was not this session's; start the sign-in again from the application");
        }
        if (parameters.FirstOrDefault(p => p.Key == AuthorizeParameters.Decision).Value != "allow")
        {
            return Redirect(http.Request, request, options, OAuthErrors.AccessDenied, "the user declined");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await clients.GrantConsentAsync(user.Id, request.Client.Id, request.Scope, now,
            new AuditEvent(AuditTypes.WebConsentGranted, user.Id, session.DeviceId, request.Client.Id, new Dictionary<string, string> { ["scope"] = request.Scope }), ct);
        return await ConsentOrCodeAsync(http, request, session, user, codes, options, decided: true, ct);
    }

    private static async Task<IResult> ConsentOrCodeAsync(HttpContext http, AuthorizationRequest request, WebSessionRecord session, UserRecord user,
        AuthorizationCodes codes, AssentOptions options, bool decided, CancellationToken ct)
    {
        if (!decided && await codes.NeedsConsentAsync(request, user, ct))
        {
            if (request.Prompt.Contains(Prompts.None))
            {
                return Redirect(http.Request, request, options, AuthorizeErrors.ConsentRequired, "the user has not consented to this client's scopes");
            }
            var carried = request.Parameters.Where(p => p.Key is not (AuthorizeParameters.Csrf or AuthorizeParameters.Decision));
            return AuthorizePages.Consent(http.Response, request.Client.Name, user.Handle, request.Scope.Split(' '), carried,
                Csrf(session, "consent", request.Client.Id, request.RedirectUri, request.Scope), "'self' " + Origin(request.RedirectUri));
        }
        return RedirectTo(request.RedirectUri, await codes.IssueAsync(request, session, user, ct), http.Request, request.FormPost);
    }

    internal static async Task<IResult> EndSessionAsync(HttpContext http, IWebClientStore clients, WebSessions sessions, IdTokenHints hints,
        AssentOptions options, CancellationToken ct)
    {
        var (parameters, readError) = await AuthorizationRequests.ReadAsync(http.Request, ct);
        if (parameters is null)
        {
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, readError!);
        }
        string? Get(string name) => parameters.FirstOrDefault(p => p.Key == name).Value is { Length: > 0 } v ? v : null;
        var hint = Get(OAuthParameters.IdTokenHint);
        var hinted = hint is null ? null : hints.Validate(hint);
        if (hint is not null && hinted is null)
        {
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, "id_token_hint is not an ID token this server issued");
        }
        // RP-Initiated Logout 1.0 §2: client_id, when given beside id_token_hint, must be its audience.
        var clientId = Get(OAuthParameters.ClientId);
        if (clientId is not null && hinted is not null && clientId != hinted.ClientId)
        {
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, "client_id is not the audience of id_token_hint");
        }
        clientId ??= hinted?.ClientId;
        var client = clientId is null || clientId.Length > 128 ? null : await clients.FindAsync(clientId, ct);
        var postLogout = Get(AuthorizeParameters.PostLogoutRedirectUri);
        if (postLogout is not null && (client is null || !client.PostLogoutRedirectUris.Contains(postLogout, StringComparer.Ordinal)))
        {
            // §3: only a URI registered for the client it names (exact match); never an open redirect.
            return AuthorizePages.Error(http.Response, OAuthErrors.InvalidRequest, "post_logout_redirect_uri is not registered for this client (or no client was named)");
        }
        var session = await sessions.FindForSignInAsync(http.Request, ct);
        if (session is not null && (hinted is null || hinted.Subject != DidWeb.ForUser(options.IssuerUri, session.UserId)))
        {
            // §2: without an ID token of this very user, a logout could be forced on them by any page: they confirm it.
            var csrf = parameters.FirstOrDefault(p => p.Key == AuthorizeParameters.Csrf).Value;
            if (!HttpMethods.IsPost(http.Request.Method) || csrf is null || !sessions.FromOwnOrigin(http.Request) ||
                !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(csrf), Encoding.ASCII.GetBytes(Csrf(session, "logout", clientId ?? "", postLogout ?? "", ""))))
            {
                var carried = parameters.Where(p => p.Key != AuthorizeParameters.Csrf && p.Key != OAuthParameters.IdTokenHint)
                    .Concat(clientId is not null && Get(OAuthParameters.ClientId) is null ? [new(OAuthParameters.ClientId, clientId)] : []);
                return AuthorizePages.ConfirmLogout(http.Response, carried, Csrf(session, "logout", clientId ?? "", postLogout ?? "", ""),
                    "'self'" + (postLogout is null ? "" : " " + Origin(postLogout)));
            }
        }
        await sessions.CloseAsync(http.Request, http.Response, ct);
        if (postLogout is not null)
        {
            return RedirectTo(postLogout, [new(AuthorizeParameters.State, Get(AuthorizeParameters.State))], http.Request);
        }
        return AuthorizePages.Message(http.Response, "Signed out", "You are signed out of Assent. You can close this page.");
    }

    /// <summary>A refusal: to the client's validated redirect URI, else on a page (RFC 6749 §4.1.2.1).</summary>
    private static IResult Refuse(HttpResponse response, AuthorizationRefusal refusal, AssentOptions options) =>
        refusal.RedirectUri is null
            ? AuthorizePages.Error(response, refusal.Error, refusal.Description)
            : RedirectTo(refusal.RedirectUri, [
                new(AuthorizeParameters.Error, refusal.Error),
                new(AuthorizeParameters.ErrorDescription, refusal.Description),
                new(AuthorizeParameters.State, refusal.State),
                new(AuthorizeParameters.Issuer, options.IssuerString),
            ], response.HttpContext.Request, refusal.FormPost);

    private static IResult Redirect(HttpRequest http, AuthorizationRequest request, AssentOptions options, string error, string description) =>
        RedirectTo(request.RedirectUri, [
            new(AuthorizeParameters.Error, error),
            new(AuthorizeParameters.ErrorDescription, description),
            new(AuthorizeParameters.State, request.State),
            // RFC 9207 §2: iss in every authorization response, errors included.
            new(AuthorizeParameters.Issuer, options.IssuerString),
        ], http, request.FormPost);

    /// <summary>
    /// 302 after a GET; 303 after a POST, so the browser does not post the form again to the client (RFC 9700 §4.12).
    /// With <paramref name="formPost"/>, a page that posts the parameters to the URI instead (OAuth 2.0 Form Post Response Mode §2).
    /// </summary>
    private static IResult RedirectTo(string uri, KeyValuePair<string, string?>[] parameters, HttpRequest? request, bool formPost = false)
    {
        if (formPost && request is not null)
        {
            return AuthorizePages.FormPost(request.HttpContext.Response, uri, parameters.Where(p => p.Value is not null).Select(p => new KeyValuePair<string, string>(p.Key, p.Value!)),
                Origin(uri));
        }
        var location = AuthorizationRequests.Respond(uri, parameters);
        if (request is not null && HttpMethods.IsPost(request.Method))
        {
            request.HttpContext.Response.Headers.CacheControl = "no-store";
            return new SeeOther(location);
        }
        return TypedResults.Redirect(location);
    }

    /// <summary>
    /// The CSRF token of a form shown to a signed-in user: an HMAC keyed with the session's stored hash over what the
    /// form decides. Only this session's browser can have it (the cookie is HttpOnly), and it works on every node.
    /// </summary>
    private static string Csrf(WebSessionRecord session, string purpose, string a, string b, string c) =>
        Base64Url.Encode(HMACSHA256.HashData(session.TokenHash, Encoding.UTF8.GetBytes(string.Join('\0', purpose, a, b, c))));

    private static string Origin(string uri) => new Uri(uri).GetLeftPart(UriPartial.Authority);

    private sealed class SeeOther(string location) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            context.Response.StatusCode = StatusCodes.Status303SeeOther;
            context.Response.Headers.Location = location;
            return Task.CompletedTask;
        }
    }
}
