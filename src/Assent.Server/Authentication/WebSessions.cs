using System.Text.Encodings.Web;
using Assent.Protocol;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Assent.Server.Authentication;

/// <summary>
/// Web app sessions opened by a passkey (sign-in or registration). The cookie holds an opaque
/// 256-bit random token; the store keeps only its SHA-256, so a database read gives no session.
/// The cookie is HttpOnly, SameSite=Strict, Secure (and <c>__Host-</c>-prefixed) over https, and
/// expires with the session (absolute lifetime, <see cref="AssentOptions.WebSessionLifetime"/>). A second cookie with the
/// same token is SameSite=Lax, so that another site's top-level link to the authorization endpoint carries the session
/// (OpenID Connect Core §3.1.2.6, prompt=none across sites); only the sign-in endpoints read it
/// (<see cref="FindForSignInAsync"/>), never the app's state-changing calls (docs/http-api.md §17).
/// A session dies with the passkey that opened it: revoking the device ends it.
/// A session only reads and manages; every decision still carries its own assertion.
/// </summary>
internal sealed class WebSessions(ISessionStore sessions, AssentOptions options, TimeProvider time)
{
    private const int MaxTokenLength = 64;

    /// <summary>The unexpired session the request's cookie names, whose passkey is still active; null otherwise.</summary>
    public Task<WebSessionRecord?> FindAsync(HttpRequest request, CancellationToken ct) => FindAsync(request.Cookies[options.SessionCookieName], ct);

    /// <summary>
    /// The session for the sign-in endpoints (authorization, consent, end-session): the Strict cookie, or on a
    /// navigation from another site the Lax one. They redirect only to registered URIs, and every form they show
    /// carries its own CSRF token, so a cross-site GET gains no more than a link to them gives.
    /// </summary>
    public Task<WebSessionRecord?> FindForSignInAsync(HttpRequest request, CancellationToken ct) =>
        FindAsync(request.Cookies[options.SessionCookieName] is { Length: > 0 } strict ? strict : request.Cookies[SignInCookieName], ct);

    private async Task<WebSessionRecord?> FindAsync(string? token, CancellationToken ct) =>
        string.IsNullOrEmpty(token) || token.Length > MaxTokenLength
            ? null
            : await sessions.FindWebSessionAsync(Ids.HandleKey(token), time.GetUtcNow().ToUnixTimeMilliseconds(), ct);

    /// <summary>The SameSite=Lax companion of the session cookie (same token, read by the sign-in endpoints only).</summary>
    private string SignInCookieName => options.SessionCookieName + "_signin";

    /// <summary>
    /// Defence in depth beside SameSite=Strict: a state-changing call made with the cookie must
    /// come from one of our own origins (browsers send Origin on every non-GET fetch).
    /// </summary>
    public bool FromOwnOrigin(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        return origin.Length == 0 || options.Origins.Contains(origin, StringComparer.Ordinal);
    }

    public async Task<WebSessionRecord> OpenAsync(HttpResponse response, DeviceRecord device, CancellationToken ct)
    {
        var (token, session) = NewSession(device);
        await sessions.CreateWebSessionAsync(session, session.CreatedAt, Opened(device), ct);
        SetCookies(response, token, session);
        return session;
    }

    /// <summary>
    /// A passkey sign-in whose assertion verified: spends the challenge, moves the counter and opens the session in one
    /// commit (<see cref="ISessionStore.TrySignInAsync"/>, or <see cref="ISessionStore.TrySignInSpendingAsync"/> for a
    /// stateless challenge expiring at <paramref name="statelessExpiresAt"/>); the cookies are set only when the session was opened.
    /// </summary>
    public async Task<(PasskeySignInOutcome Outcome, WebSessionRecord? Session)> SignInAsync(HttpResponse response, DeviceRecord device, byte[] challengeHash,
        long? statelessExpiresAt, long signCount, CancellationToken ct)
    {
        var (token, session) = NewSession(device);
        var outcome = statelessExpiresAt is { } expires
            ? await sessions.TrySignInSpendingAsync(challengeHash, expires, signCount, session, session.CreatedAt, Opened(device), ct)
            : await sessions.TrySignInAsync(challengeHash, ChallengePurposes.SignIn, signCount, session, session.CreatedAt, Opened(device), ct);
        if (outcome != PasskeySignInOutcome.Opened)
        {
            return (outcome, null);
        }
        SetCookies(response, token, session);
        return (outcome, session);
    }

    private (string Token, WebSessionRecord Session) NewSession(DeviceRecord device)
    {
        // Its creation time first (docs/concepts.md §9): new sessions go to the end of their table's key index.
        var now = time.GetUtcNow();
        var token = Ids.OrderedHandle(now);
        var expires = now + options.WebSessionLifetime;
        return (token, new WebSessionRecord(Ids.HandleKey(token), device.UserId, device.Id, now.ToUnixTimeMilliseconds(), expires.ToUnixTimeMilliseconds()));
    }

    private static AuditEvent Opened(DeviceRecord device) => new(AuditTypes.SessionCreated, device.UserId, device.Id, device.UserId);

    private void SetCookies(HttpResponse response, string token, WebSessionRecord session)
    {
        var expires = DateTimeOffset.FromUnixTimeMilliseconds(session.ExpiresAt);
        response.Cookies.Append(options.SessionCookieName, token, Cookie(expires));
        response.Cookies.Append(SignInCookieName, token, Cookie(expires, SameSiteMode.Lax));
        response.Headers.CacheControl = "no-store";
    }

    public async Task CloseAsync(HttpRequest request, HttpResponse response, CancellationToken ct)
    {
        foreach (var token in new[] { request.Cookies[options.SessionCookieName], request.Cookies[SignInCookieName] }.Distinct())
        {
            if (!string.IsNullOrEmpty(token) && token.Length <= MaxTokenLength)
            {
                await sessions.DeleteWebSessionAsync(Ids.HandleKey(token), ct);
            }
        }
        response.Cookies.Delete(options.SessionCookieName, Cookie(null));
        response.Cookies.Delete(SignInCookieName, Cookie(null, SameSiteMode.Lax));
    }

    private CookieOptions Cookie(DateTimeOffset? expires, SameSiteMode sameSite = SameSiteMode.Strict) => new()
    {
        HttpOnly = true,
        Secure = options.IssuerUri.Scheme == Uri.UriSchemeHttps,
        SameSite = sameSite,
        Path = "/",
        Expires = expires,
        IsEssential = true,
    };
}

/// <summary>
/// The web app's authentication: the session cookie a passkey opened, and for state-changing calls our own Origin.
/// A refused request writes one line, at Information (docs/deployment.md §12), instead of the base class's two.
/// </summary>
internal sealed class WebSessionHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    WebSessions sessions, IdentityDirectory directory) : AuthenticationHandler<AuthenticationSchemeOptions>(options, NullLoggerFactory.Instance, encoder)
{
    private readonly ILogger _log = logger.CreateLogger<WebSessionHandler>();

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!HttpMethods.IsGet(Request.Method) && !HttpMethods.IsHead(Request.Method) && !sessions.FromOwnOrigin(Request))
        {
            return AuthenticateResult.Fail(new CrossOrigin());
        }
        var session = await sessions.FindAsync(Request, Context.RequestAborted);
        var user = session is null ? null : await directory.FindUserAsync(session.UserId, Context.RequestAborted);
        return session is null || user is null
            ? AuthenticateResult.Fail("not signed in")
            : Approver.Authenticated(Context, new Approver(user, session.DeviceId, session), Scheme.Name);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure;
        _log.LogInformation("refused a web session request to {Endpoint}: {Reason}", Context.GetEndpoint()?.DisplayName, failure?.Message);
        await (failure is CrossOrigin ? Problem.Forbidden(failure.Message) : Problem.Unauthorized("not signed in")).ExecuteAsync(Context);
    }

    private sealed class CrossOrigin() : Exception("cross-origin request refused");
}
