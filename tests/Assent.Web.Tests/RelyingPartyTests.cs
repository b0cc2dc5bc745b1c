using System.Net;
using System.Text.Encodings.Web;
using Assent.Server.Authorize;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Assent.Server.Tests;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>
/// An ASP.NET Core application signing its users in with Assent through Microsoft's OpenID Connect handler, on real
/// Kestrel. Registered with ES256: Microsoft.IdentityModel cannot verify EdDSA, which is why clients choose their
/// ID token algorithm (docs/tokens.md §11).
/// </summary>
public sealed class RelyingPartyApp : IAsyncLifetime
{
    private WebApplication? _app;

    public TestServer Server { get; private set; } = null!;

    public string Origin { get; private set; } = "";

    public string ClientId { get; private set; } = "";

    /// <summary>The nonce the handler sent in its last authorization request.</summary>
    public string? SentNonce { get; set; }

    /// <summary>The nonce of the last ID token the handler validated (it compares it with its nonce cookie first).</summary>
    public string? ValidatedNonce { get; set; }

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync(configure: o => o.Limits.CreationsPerMinute = 10_000);
        Origin = $"http://localhost:{Ports.Reserve()}";
        var client = await Server.Admin.CreateWebClientAsync("Team wiki", [Origin + "/signin-oidc"], [Origin + "/signout-callback-oidc"],
            isPublic: false, IdTokenAlgs.Es256, CancellationToken.None);
        ClientId = client.ClientId;
        // Registration made the ES256 key in storage; this node publishes it at its next key refresh, brought forward here.
        await Server.Service<KeyRing>().RefreshAsync(CancellationToken.None);

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(Origin);
        builder.Logging.ClearProviders();
        builder.Services.AddAuthorization();
        builder.Services.AddAuthentication(o =>
            {
                o.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                o.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
            })
            .AddCookie(o => o.Cookie.Name = "wiki")
            .AddOpenIdConnect(o =>
            {
                o.Authority = Server.Options.Issuer;
                o.RequireHttpsMetadata = false;
                o.ClientId = client.ClientId;
                o.ClientSecret = client.ClientSecret;
                o.ResponseType = OpenIdConnectResponseType.Code;
                // The handler's default response mode, form_post (docs/http-api.md §17.1): Assent's page posts the code back.
                o.SaveTokens = true;
                o.MapInboundClaims = false;
                o.GetClaimsFromUserInfoEndpoint = true;
                o.ClaimActions.MapUniqueJsonKey("preferred_username", "preferred_username");
                // Plain http on localhost in the test: the correlation and nonce cookies cannot be Secure with SameSite=None.
                o.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.CorrelationCookie.SameSite = SameSiteMode.Lax;
                o.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.NonceCookie.SameSite = SameSiteMode.Lax;
                o.Events.OnRedirectToIdentityProvider = c =>
                {
                    SentNonce = c.ProtocolMessage.Nonce;
                    return Task.CompletedTask;
                };
                o.Events.OnTokenValidated = c =>
                {
                    ValidatedNonce = c.SecurityToken.Payload.TryGetValue("nonce", out var nonce) ? nonce as string : null;
                    return Task.CompletedTask;
                };
                o.Events.OnRemoteFailure = async c =>
                {
                    c.HandleResponse();
                    c.Response.StatusCode = 400;
                    c.Response.ContentType = "text/html; charset=utf-8";
                    await c.Response.WriteAsync($"<p id=failure>{HtmlEncoder.Default.Encode(c.Failure?.Message ?? "failed")}</p>");
                };
            });
        _app = builder.Build();
        _app.UseAuthentication();
        _app.UseAuthorization();
        _app.MapGet("/", (HttpContext http) => Results.Content(
                "<ul id=claims>" + string.Concat(http.User.Claims.Select(c => $"<li>{HtmlEncoder.Default.Encode(c.Type)}={HtmlEncoder.Default.Encode(c.Value)}</li>")) + "</ul>",
                "text/html; charset=utf-8"))
            .RequireAuthorization();
        _app.MapGet("/logout", () => Results.SignOut(new AuthenticationProperties { RedirectUri = "/signed-out" },
            [CookieAuthenticationDefaults.AuthenticationScheme, OpenIdConnectDefaults.AuthenticationScheme]));
        _app.MapGet("/signed-out", (HttpContext http) => Results.Content(
            $"<p id=out>signed out of the wiki; signed in: {http.User.Identity?.IsAuthenticated == true}</p>", "text/html; charset=utf-8"));
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
        await Server.DisposeAsync();
    }
}

/// <summary>
/// Passkey sign-in for other applications (docs/http-api.md §17) with Microsoft's OpenID Connect handler as the relying
/// party, driven through Chromium with a CDP virtual authenticator: login, consent, the claims the application sees,
/// RP-initiated logout back to it, a second login without consent; state and nonce checked by the handler.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class RelyingPartyTests(BrowserHost host, RelyingPartyApp rp) : IClassFixture<RelyingPartyApp>
{
    private TestServer Server
    {
        get
        {
            // The server's clock is a manual one; the handler checks iat and exp on the real clock.
            var behind = DateTimeOffset.UtcNow - rp.Server.Clock.GetUtcNow();
            if (behind > TimeSpan.FromSeconds(5))
            {
                rp.Server.Clock.Advance(behind);
            }
            return rp.Server;
        }
    }

    [Fact]
    public async Task An_aspnetcore_app_signs_in_with_a_passkey_shows_the_claims_logs_out_and_signs_in_again_without_consent()
    {
        var (phone, did, handle) = await SignedOutUserAsync();
        await using var __ = phone;
        var authorize = Capture(phone, Server.Options.Issuer + AuthorizePaths.Authorize + "?");
        var callback = Capture(phone, rp.Origin + "/signin-oidc");

        await phone.Page.GotoAsync(rp.Origin + "/");
        // The sign-in page's conditional request is answered by the virtual authenticator; first use asks consent.
        await phone.Page.Locator("text=wants to sign you in").WaitForAsync();
        Assert.Contains("Team wiki", await phone.Page.TextContentAsync("h1"));
        await phone.Page.ClickAsync("button[value=allow]");
        await phone.Page.Locator("#claims").WaitForAsync();

        var claims = await ClaimsAsync(phone);
        Assert.Contains($"sub={did}", claims);
        Assert.Contains($"preferred_username={handle}", claims);
        Assert.Contains("amr=hwk", claims);
        Assert.Contains(claims, c => c.StartsWith("auth_time=", StringComparison.Ordinal));

        // state: what the handler sent comes back unchanged, with iss (RFC 9207); the nonce it sent is the ID token's, which it checked.
        var sent = Query(await authorize.Task);
        var returned = Query(await callback.Task);
        Assert.False(string.IsNullOrEmpty(sent["state"]));
        Assert.Equal(sent["state"], returned["state"]);
        Assert.Equal(Server.Options.Issuer, returned["iss"]);
        Assert.Equal("S256", sent["code_challenge_method"]);
        // The handler's default: the code came back in a form posted by Assent's page (OAuth 2.0 Form Post Response Mode).
        Assert.Equal("form_post", sent["response_mode"]);
        Assert.Equal(rp.SentNonce, sent["nonce"]);
        Assert.Equal(rp.SentNonce, rp.ValidatedNonce);

        // RP-initiated logout: through Assent's end-session endpoint (id_token_hint, so no confirmation) back to the wiki.
        await phone.Page.GotoAsync(rp.Origin + "/logout");
        await phone.Page.Locator("#out").WaitForAsync();
        Assert.Equal(rp.Origin + "/signed-out", phone.Page.Url);
        Assert.Contains("signed in: False", await phone.Page.TextContentAsync("#out"));
        Assert.DoesNotContain(await phone.Page.Context.CookiesAsync([Server.BaseUri.ToString()]), c => c.Name == Server.Options.SessionCookieName);

        // A second login: the passkey again (the Assent session ended), but no consent page this time.
        var consentShown = false;
        phone.Page.Request += (_, r) => consentShown |= r.Url.Contains("/consent", StringComparison.Ordinal);
        await phone.Page.GotoAsync(rp.Origin + "/");
        await phone.Page.Locator("#claims").WaitForAsync();
        Assert.False(consentShown);
        Assert.Contains($"sub={did}", await ClaimsAsync(phone));
    }

    [Fact]
    public async Task The_handler_refuses_a_callback_whose_state_or_nonce_is_not_its_own()
    {
        var (phone, _, _) = await SignedOutUserAsync();
        await using var __ = phone;
        // A forged state: the handler cannot unprotect it.
        var forged = await phone.Page.GotoAsync(rp.Origin + "/signin-oidc?code=abc&state=forged&iss=" + Uri.EscapeDataString(Server.Options.Issuer));
        Assert.Equal(400, forged!.Status);

        // The nonce cookie gone (another browser's callback, replayed here): the ID token's nonce matches nothing.
        await phone.Page.GotoAsync(rp.Origin + "/");
        await phone.Page.Locator("text=wants to sign you in").WaitForAsync();
        await phone.Page.Context.ClearCookiesAsync(new() { NameRegex = new System.Text.RegularExpressions.Regex("^\\.AspNetCore\\.OpenIdConnect\\.Nonce") });
        await phone.Page.ClickAsync("button[value=allow]");
        await phone.Page.Locator("#failure").WaitForAsync();
        Assert.Contains("nonce", await phone.Page.TextContentAsync("#failure"), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_passkey_of_a_revoked_device_cannot_sign_in()
    {
        var invite = await Server.InviteAsync("rp-" + Guid.NewGuid().ToString("N")[..8]);
        var phone = await host.PhoneAsync(Server);
        await using var __ = phone;
        await phone.EnrollAsync(invite.Code);
        await phone.Page.Context.ClearCookiesAsync();
        var device = Assert.Single(await Server.Store.Devices.ListAsync(invite.UserId, CancellationToken.None));
        Assert.True(await Server.Store.Devices.TryRevokeAsync(device.Id, invite.UserId, Server.Clock.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.DeviceRevoked, invite.UserId, "test", device.Id), CancellationToken.None));

        var callback = Capture(phone, rp.Origin + "/signin-oidc");
        await phone.Page.GotoAsync(rp.Origin + "/");
        await phone.Page.Locator("#error:has-text('revoked')").WaitForAsync();
        Assert.False(callback.Task.IsCompleted);
        Assert.StartsWith(Server.Options.Issuer + AuthorizePaths.Authorize, phone.Page.Url);
    }

    [Fact]
    public async Task A_redirect_uri_differing_by_a_path_suffix_or_query_gets_an_error_page_and_no_redirect()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = Server.BaseUri };
        var registered = rp.Origin + "/signin-oidc";
        foreach (var attempt in new[]
                 {
                     registered + "/evil", registered + "x", registered + "/../evil", registered + "?next=https://evil.example/",
                     registered + "?", registered + "%2F..%2Fevil", rp.Origin.Replace("localhost", "127.0.0.1", StringComparison.Ordinal) + "/signin-oidc",
                 })
        {
            using var response = await http.GetAsync($"/oauth/authorize?response_type=code&client_id={rp.ClientId}&scope=openid&state=s" +
                                                     $"&redirect_uri={Uri.EscapeDataString(attempt)}");
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, attempt);
            Assert.Null(response.Headers.Location);
            Assert.StartsWith("text/html", response.Content.Headers.ContentType?.ToString());
            Assert.Contains("redirect_uri", await response.Content.ReadAsStringAsync());
        }
    }

    private async Task<(Phone Phone, string Did, string Handle)> SignedOutUserAsync()
    {
        var handle = "rp-" + Guid.NewGuid().ToString("N")[..8];
        var invite = await Server.InviteAsync(handle);
        var phone = await host.PhoneAsync(Server);
        await phone.EnrollAsync(invite.Code);
        await phone.Page.Context.ClearCookiesAsync();
        return (phone, Assent.Protocol.Did.DidWeb.ForUser(new Uri(Server.Options.Issuer), invite.UserId), handle);
    }

    private static async Task<List<string>> ClaimsAsync(Phone phone) =>
        (await phone.Page.Locator("#claims li").AllTextContentsAsync()).ToList();

    private static System.Collections.Specialized.NameValueCollection Query(string url) => System.Web.HttpUtility.ParseQueryString(new Uri(url).Query);

    /// <summary>
    /// The next request the page makes to <paramref name="prefix"/> (a redirect's target included); a form post's body
    /// is given as the URL's query (the URL itself has none then).
    /// </summary>
    private static TaskCompletionSource<string> Capture(Phone phone, string prefix)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnRequest(object? sender, IRequest request)
        {
            var url = request.Method == "POST" && !request.Url.Contains('?', StringComparison.Ordinal) ? request.Url + "?" + request.PostData : request.Url;
            if (request.Url.StartsWith(prefix, StringComparison.Ordinal) && seen.TrySetResult(url))
            {
                phone.Page.Request -= OnRequest;
            }
        }
        phone.Page.Request += OnRequest;
        return seen;
    }
}
