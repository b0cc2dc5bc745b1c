using System.Security.Claims;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Authentication;

/// <summary>
/// The human a request comes from, as an authentication scheme proved it: by a device-signed request (the device
/// API) or by a passkey session (the web app). Handlers take it as a parameter; it is never null there, because
/// the endpoint requires one of the schemes.
/// </summary>
internal sealed record Approver(UserRecord User, string DeviceId, WebSessionRecord? Session = null)
{
    public static ValueTask<Approver?> BindAsync(HttpContext http) => ValueTask.FromResult(http.Features.Get<Approver>());

    /// <summary>For an endpoint where signing in is optional (e.g. a registration that may come with an invite instead): runs the scheme here.</summary>
    public static async Task<(Approver? Approver, string? Refused)> AuthenticateAsync(HttpContext http, string scheme)
    {
        var result = await http.AuthenticateAsync(scheme);
        return result.Succeeded ? (http.Features.Get<Approver>(), null) : (null, result.Failure?.Message ?? "not signed in");
    }

    internal static AuthenticateResult Authenticated(HttpContext http, Approver approver, string scheme)
    {
        http.Features.Set(approver);
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, approver.User.Id), new Claim("device", approver.DeviceId)], scheme);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), scheme));
    }
}

/// <summary>The authentication schemes and the policies that require them.</summary>
internal static class AssentSchemes
{
    /// <summary>A request signed with an enrolled device's key (docs/http-api.md §3.3).</summary>
    public const string Device = "AssentDevice";

    /// <summary>The web app's passkey session cookie.</summary>
    public const string WebSession = "AssentWebSession";

    /// <summary>A backend's <c>Authorization: Bearer sk_…</c> (docs/challenges.md §1).</summary>
    public const string ApiKey = "AssentApiKey";
}
