using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Server.Audit;
using Assent.Server.Hosting;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Passkeys;

/// <summary>
/// Web app sessions opened by a passkey (sign-in or registration). The cookie holds an opaque
/// 256-bit random token; the store keeps only its SHA-256, so a database read gives no session.
/// The cookie is HttpOnly, SameSite=Strict, Secure (and <c>__Host-</c>-prefixed) over https, and
/// expires with the session (absolute lifetime, <see cref="AssentOptions.WebSessionLifetime"/>).
/// A session dies with the passkey that opened it: revoking the device ends it.
/// A session only reads and manages; every decision still carries its own assertion.
/// </summary>
internal sealed class WebSessions(IAssentStore store, AssentOptions options, TimeProvider time)
{
    public sealed record Current(WebSessionRecord Session, UserRecord User);

    private const int MaxTokenLength = 64;

    public async Task<Current?> GetAsync(HttpRequest request, CancellationToken ct)
    {
        var token = request.Cookies[options.SessionCookieName];
        if (string.IsNullOrEmpty(token) || token.Length > MaxTokenLength)
        {
            return null;
        }
        var session = await store.FindWebSessionAsync(Ids.Hash(token), time.GetUtcNow().ToUnixTimeMilliseconds(), ct);
        if (session is null)
        {
            return null;
        }
        var user = await store.FindUserAsync(session.UserId, ct);
        return user is null ? null : new Current(session, user);
    }

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
        var token = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow();
        var expires = now + options.WebSessionLifetime;
        var session = new WebSessionRecord(Ids.Hash(token), device.UserId, device.Id, now.ToUnixTimeMilliseconds(), expires.ToUnixTimeMilliseconds());
        await store.CreateWebSessionAsync(session, now.ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.SessionCreated, device.UserId, device.Id, device.UserId), ct);
        response.Cookies.Append(options.SessionCookieName, token, Cookie(expires));
        response.Headers.CacheControl = "no-store";
        return session;
    }

    public async Task CloseAsync(HttpRequest request, HttpResponse response, CancellationToken ct)
    {
        var token = request.Cookies[options.SessionCookieName];
        if (!string.IsNullOrEmpty(token) && token.Length <= MaxTokenLength)
        {
            await store.DeleteWebSessionAsync(Ids.Hash(token), ct);
        }
        response.Cookies.Delete(options.SessionCookieName, Cookie(null));
    }

    private CookieOptions Cookie(DateTimeOffset? expires) => new()
    {
        HttpOnly = true,
        Secure = options.IssuerUri.Scheme == Uri.UriSchemeHttps,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        Expires = expires,
        IsEssential = true,
    };
}
