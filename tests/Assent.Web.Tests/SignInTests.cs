using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Server.Authorize;
using Assent.Server.Tests;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>
/// Its own server: the test moves its clock (an expired code), and the sign-in endpoints' per-address limit is raised
/// so that one machine running every case stays under it.
/// </summary>
public sealed class SignInServer : IAsyncLifetime
{
    private readonly HttpListener _relyingParty = new();

    public TestServer Server { get; private set; } = null!;

    /// <summary>The relying party's origin: a listener that answers every request with 200, so the browser lands somewhere.</summary>
    public string RelyingParty { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync(configure: o => o.Limits.CreationsPerMinute = 10_000);
        RelyingParty = $"http://127.0.0.1:{Ports.Reserve()}";
        _relyingParty.Prefixes.Add(RelyingParty + "/");
        _relyingParty.Start();
        _ = Task.Run(async () =>
        {
            while (_relyingParty.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _relyingParty.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }
                try
                {
                    context.Response.StatusCode = 200;
                    await context.Response.OutputStream.WriteAsync("ok"u8.ToArray());
                    context.Response.Close();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    // The browser left this page before its answer (a test's next navigation): serve the next request.
                    // Returning here stopped the relying party, and a later callback's navigation then never finished.
                }
            }
        });
    }

    public async Task DisposeAsync()
    {
        _relyingParty.Close();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// Passkey sign-in for other applications (docs/http-api.md §13): openid-client 6 as the relying party (tests/interop/oidc.mjs)
/// runs the authorization code flow with PKCE, Chromium with a CDP virtual authenticator signs in and consents, and jose
/// verifies the ID token for each algorithm a client may choose. Then the refusals, with plain HTTP.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class SignInTests(BrowserHost host, SignInServer fixture) : IClassFixture<SignInServer>
{
    /// <summary>The relying party's callback.</summary>
    private string RedirectUri => fixture.RelyingParty + "/callback";

    private TestServer Server
    {
        get
        {
            // The server's clock is a manual one; openid-client and jose check iat and exp on the real clock.
            var behind = DateTimeOffset.UtcNow - fixture.Server.Clock.GetUtcNow();
            if (behind > TimeSpan.FromSeconds(5))
            {
                fixture.Server.Clock.Advance(behind);
            }
            return fixture.Server;
        }
    }

    private string Issuer => Server.Options.Issuer;

    [Theory]
    [InlineData("EdDSA", false)]
    [InlineData("ES256", true)]
    [InlineData("RS256", false)]
    public async Task Openid_client_signs_in_with_a_passkey_and_jose_verifies_the_id_token(string alg, bool isPublic)
    {
        var client = await ClientAsync(alg, isPublic);
        var (phone, did) = await SignedOutUserAsync();
        await using var owned = phone;
        var callback = await CaptureCallbackAsync(phone);

        var start = await NodeAsync("start", client, alg);
        await phone.Page.GotoAsync(start.GetProperty("url").GetString()!);
        // Not signed in: the sign-in page starts a conditional request (autofill), which the virtual authenticator answers.
        // First use: the consent page names the client and its scopes.
        await phone.Page.Locator("text=wants to sign you in").WaitForAsync();
        Assert.Contains(client.Name, await phone.Page.TextContentAsync("h1"));
        await phone.Page.ClickAsync("button[value=allow]");
        var returned = await callback.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Contains("iss=" + Uri.EscapeDataString(Issuer), returned);

        var tokens = await NodeAsync("finish", client, alg, returned, start);
        var header = tokens.GetProperty("id_token_header");
        Assert.Equal(alg, header.GetProperty("alg").GetString());
        var claims = tokens.GetProperty("verified");
        Assert.Equal(Issuer, claims.GetProperty("iss").GetString());
        Assert.Equal(did, claims.GetProperty("sub").GetString());
        Assert.Equal(client.ClientId, claims.GetProperty("aud").GetString());
        Assert.Equal(start.GetProperty("nonce").GetString(), claims.GetProperty("nonce").GetString());
        Assert.Equal(["hwk", "user", "mfa"], claims.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("phr", claims.GetProperty("acr").GetString());
        Assert.True(claims.GetProperty("auth_time").GetInt64() <= claims.GetProperty("iat").GetInt64());
        Assert.Equal(TokenIssuerHash(tokens.GetProperty("access_token").GetString()!, alg), claims.GetProperty("at_hash").GetString());
        Assert.Equal("openid profile", tokens.GetProperty("scope").GetString());

        // The JWKS: the Ed25519 keys without alg, the ES256/RS256 key (once made) with it.
        var jwks = JsonDocument.Parse(await Server.Http.GetStringAsync("/oauth/jwks")).RootElement.GetProperty("keys").EnumerateArray().ToList();
        Assert.All(jwks.Where(k => k.GetProperty("kty").GetString() == "OKP"), k => Assert.False(k.TryGetProperty("alg", out _)));
        if (alg != "EdDSA")
        {
            var key = Assert.Single(jwks, k => k.GetProperty("kid").GetString() == header.GetProperty("kid").GetString());
            Assert.Equal(alg, key.GetProperty("alg").GetString());
        }

        // A second sign-in to the same client: signed in and consented, so straight back with a code; prompt=none too.
        var again = await NodeAsync("start", client, alg);
        callback = await CaptureCallbackAsync(phone);
        await phone.Page.GotoAsync(again.GetProperty("url").GetString()! + "&prompt=none");
        var second = await callback.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Contains("code=", second);
        var secondTokens = await NodeAsync("finish", client, alg, second, again);
        Assert.Equal(did, secondTokens.GetProperty("verified").GetProperty("sub").GetString());

        // prompt=login: the passkey again. The page came with its first challenge, and the sign-in answered the client's
        // redirect with the code itself: from the sign-in the browser went straight back to the application (§17.2).
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        phone.Page.Request += (_, r) =>
        {
            if (r.Url.StartsWith(Issuer + "/", StringComparison.Ordinal) && new Uri(r.Url).AbsolutePath is var path && (path.StartsWith("/oauth/", StringComparison.Ordinal) ||
                    path.StartsWith("/webauthn/", StringComparison.Ordinal)))
            {
                seen.Enqueue(r.Method + " " + path);
            }
        };
        var third = await NodeAsync("start", client, alg);
        callback = await CaptureCallbackAsync(phone);
        await phone.Page.GotoAsync(third.GetProperty("url").GetString()! + "&prompt=login");
        var thirdReturned = await callback.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var thirdTokens = await NodeAsync("finish", client, alg, thirdReturned, third);
        Assert.Equal(did, thirdTokens.GetProperty("verified").GetProperty("sub").GetString());
        Assert.Equal(["GET /oauth/authorize", "POST /webauthn/signin"], seen);
    }

    [Fact]
    public async Task Openid_client_refreshes_an_offline_access_sign_in_and_a_reused_refresh_token_ends_the_family()
    {
        var client = await ClientAsync("EdDSA", isPublic: false);
        var (phone, did) = await SignedOutUserAsync();
        await using var owned = phone;
        var callback = await CaptureCallbackAsync(phone);

        var start = await NodeAsync("start", client, "EdDSA", scope: "openid offline_access");
        await phone.Page.GotoAsync(start.GetProperty("url").GetString()!);
        // OpenID Connect Core §11: offline access is consented to on the consent page like any scope.
        await phone.Page.Locator("text=keep you signed in").WaitForAsync();
        await phone.Page.ClickAsync("button[value=allow]");
        var tokens = await NodeAsync("finish", client, "EdDSA", await callback.Task.WaitAsync(TimeSpan.FromSeconds(20)), start);
        Assert.Equal("openid offline_access", tokens.GetProperty("scope").GetString());
        var first = tokens.GetProperty("refresh_token").GetString()!;
        var signedInAt = tokens.GetProperty("verified").GetProperty("auth_time").GetInt64();

        // openid-client's refresh: a new access token, a rotated refresh token, an ID token of the same sign-in without nonce.
        var refreshed = await NodeAsync("refresh", client, "EdDSA", first);
        var second = refreshed.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(first, second);
        Assert.NotEqual(tokens.GetProperty("access_token").GetString(), refreshed.GetProperty("access_token").GetString());
        var claims = refreshed.GetProperty("verified");
        Assert.Equal(did, claims.GetProperty("sub").GetString());
        Assert.Equal(signedInAt, claims.GetProperty("auth_time").GetInt64());
        Assert.False(claims.TryGetProperty("nonce", out _));
        using (var info = await UserInfoAsync(refreshed.GetProperty("access_token").GetString()!))
        {
            Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        }

        // Another client cannot use it, and does not spend it.
        var other = await ClientAsync("EdDSA", isPublic: false);
        Assert.Equal("invalid_grant", (await NodeAsync("refresh", other, "EdDSA", second, expectedExit: 3)).GetProperty("error").GetString());

        // RFC 9700 §4.14.2: the consumed first token comes back, so the family ends: the live second token is refused too.
        Assert.Equal("invalid_grant", (await NodeAsync("refresh", client, "EdDSA", first, expectedExit: 3)).GetProperty("error").GetString());
        Assert.Equal("invalid_grant", (await NodeAsync("refresh", client, "EdDSA", second, expectedExit: 3)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_replayed_code_revokes_the_refresh_token_it_issued_and_without_offline_access_there_is_none()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        var verifier = Verifier();
        var code = await CodeAsync(phone, client, verifier, signIn: true, scope: "openid");
        using (var plain = await TokenAsync(client.ClientId, code, verifier, RedirectUri))
        {
            var (status, body) = await TestServer.ReadAsync(plain);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.False(body.TryGetProperty("refresh_token", out _));
        }

        verifier = Verifier();
        code = await CodeAsync(phone, client, verifier, signIn: true, scope: "openid offline_access");
        string refresh;
        using (var redeemed = await TokenAsync(client.ClientId, code, verifier, RedirectUri))
        {
            var (status, body) = await TestServer.ReadAsync(redeemed);
            Assert.Equal(HttpStatusCode.OK, status);
            refresh = body.GetProperty("refresh_token").GetString()!;
        }
        // RFC 6749 §4.1.2: the code comes back; the refresh token it issued is revoked with the access token.
        Assert.Equal("invalid_grant", await TokenErrorAsync(client.ClientId, code, verifier, RedirectUri));
        using var refused = await Server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token", ["refresh_token"] = refresh, ["client_id"] = client.ClientId,
        }));
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(refused));
    }

    [Fact]
    public async Task Prompt_none_from_another_site_carries_the_session_and_without_one_answers_login_required()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        var verifier = Verifier();
        await CodeAsync(phone, client, verifier, signIn: true);

        // The relying party (127.0.0.1) is another site than Assent (localhost): its page sends the browser over.
        Assert.NotEqual(new Uri(fixture.RelyingParty).Host, new Uri(Issuer).Host);
        await phone.Page.GotoAsync(fixture.RelyingParty + "/start");
        var callback = await CaptureCallbackAsync(phone);
        await phone.Page.EvaluateAsync("url => { location.href = url; }", AuthorizeUrl(client, verifier) + "&prompt=none");
        Assert.Contains("code=", await callback.Task.WaitAsync(TimeSpan.FromSeconds(20)));

        // The app's own state-changing calls still need the SameSite=Strict cookie: the Lax one alone is not a session there.
        var cookies = await phone.Page.Context.CookiesAsync([Issuer]);
        Assert.Contains(cookies, c => c.SameSite == SameSiteAttribute.Strict);
        Assert.Contains(cookies, c => c.SameSite == SameSiteAttribute.Lax);

        await phone.Page.Context.ClearCookiesAsync();
        await phone.Page.GotoAsync(fixture.RelyingParty + "/start");
        callback = await CaptureCallbackAsync(phone);
        await phone.Page.EvaluateAsync("url => { location.href = url; }", AuthorizeUrl(client, verifier) + "&prompt=none");
        Assert.Contains("error=login_required", await callback.Task.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task A_revoked_consent_is_asked_again_and_ends_the_applications_refresh_tokens()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        var verifier = Verifier();
        var code = await CodeAsync(phone, client, verifier, signIn: true, scope: "openid offline_access");
        string refresh;
        using (var redeemed = await TokenAsync(client.ClientId, code, verifier, RedirectUri))
        {
            refresh = (await TestServer.ReadAsync(redeemed)).Body.GetProperty("refresh_token").GetString()!;
        }

        // The web app's Access tab lists the website; its Revoke button, confirmed in the row, forgets the consent.
        await phone.Page.GotoAsync("/app");
        var listed = await phone.Page.EvaluateAsync<JsonElement>("async () => (await fetch('/webauthn/applications')).json()");
        var app = Assert.Single(listed.GetProperty("applications").EnumerateArray());
        Assert.Equal(client.ClientId, app.GetProperty("client_id").GetString());
        Assert.Equal("openid offline_access", app.GetProperty("scope").GetString());
        await phone.Page.ClickAsync("button[data-tab=consents]");
        var row = phone.Page.Locator($"#apps li[data-id='{client.ClientId}']");
        Assert.Contains(client.Name, await row.TextContentAsync());
        Assert.True(await phone.Page.Locator("#app-admin").IsHiddenAsync());
        await row.Locator("button.deny").ClickAsync();
        await row.Locator(".confirm button[data-act=confirm]").ClickAsync();
        await phone.Page.Locator("#no-apps").WaitForAsync();
        Assert.Equal(0, await phone.Page.Locator("#apps li").CountAsync());
        Assert.Equal(404, await phone.Page.EvaluateAsync<int>(
            "async id => (await fetch('/webauthn/applications/' + id, { method: 'DELETE' })).status", client.ClientId));

        // Its refresh token ended with the consent.
        using var refused = await Server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token", ["refresh_token"] = refresh, ["client_id"] = client.ClientId,
        }));
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(refused));

        // Still signed in, but the next sign-in to the application asks consent again.
        await phone.Page.GotoAsync(AuthorizeUrl(client, Verifier()));
        await phone.Page.Locator("text=wants to sign you in").WaitForAsync();
        Assert.Contains(client.Name, await phone.Page.TextContentAsync("h1"));
    }

    [Fact]
    public async Task Only_an_administrators_session_registers_a_web_client_and_sees_its_secret_once()
    {
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        await CodeAsync(phone, await ClientAsync("EdDSA", isPublic: true), Verifier(), signIn: true);
        await phone.Page.GotoAsync("/app");
        const string Register = """
            async body => {
              const r = await fetch('/webauthn/web-clients', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
              return { status: r.status, body: await r.json() };
            }
            """;
        var body = new { name = "Wiki by web", redirect_uris = new[] { RedirectUri }, id_token_alg = "ES256" };
        var refused = await phone.Page.EvaluateAsync<JsonElement>(Register, body);
        Assert.Equal(403, refused.GetProperty("status").GetInt32());

        var invite = await Server.InviteAsync("signin-admin-" + Guid.NewGuid().ToString("N")[..6], admin: true);
        await using var admin = await host.PhoneAsync(Server);
        await admin.EnrollAsync(invite.Code);
        await admin.Page.GotoAsync("/app");
        var bad = await admin.Page.EvaluateAsync<JsonElement>(Register, new { name = "Bad", redirect_uris = new[] { "http://evil.example/cb" } });
        Assert.Equal(400, bad.GetProperty("status").GetInt32());
        var created = await admin.Page.EvaluateAsync<JsonElement>(Register, body);
        Assert.Equal(201, created.GetProperty("status").GetInt32());
        var clientId = created.GetProperty("body").GetProperty("client_id").GetString()!;
        var secret = created.GetProperty("body").GetProperty("client_secret").GetString()!;
        var listed = await admin.Page.EvaluateAsync<string>("async () => (await fetch('/webauthn/web-clients')).text()");
        Assert.Contains(clientId, listed);
        Assert.DoesNotContain(secret, listed);
        var stored = await Server.Store.WebClients.FindAsync(clientId, CancellationToken.None);
        Assert.Equal("ES256", stored!.IdTokenAlg);
        Assert.Equal(Assent.Server.Common.Ids.Hash(secret), stored.SecretHash);

        // The same through the Access tab's form: the administrator sees the form, the clients, and the secret once.
        await admin.Page.ClickAsync("button[data-tab=consents]");
        await admin.Page.Locator("#app-admin").WaitForAsync();
        Assert.Contains(clientId, await admin.Page.TextContentAsync("#app-clients"));
        await admin.Page.FillAsync("#app-name", "Wiki by form");
        await admin.Page.FillAsync("#app-redirects", RedirectUri + " " + RedirectUri + "/2");
        await admin.Page.SelectOptionAsync("#app-alg", "RS256");
        await admin.Page.ClickAsync("#app-form button[type=submit]");
        await admin.Page.Locator("#app-created", new() { HasText = "shown this once" }).WaitForAsync();
        var shown = await admin.Page.TextContentAsync("#app-created");
        var formClient = (await Server.Store.WebClients.ListAsync(CancellationToken.None)).Single(c => c.Name == "Wiki by form");
        Assert.Contains(formClient.Id, shown);
        Assert.Equal([RedirectUri, RedirectUri + "/2"], formClient.RedirectUris);
        Assert.Equal("RS256", formClient.IdTokenAlg);
        Assert.False(formClient.IsPublic);
    }

    [Fact]
    public async Task Consent_is_asked_again_when_the_client_asks_for_more_scopes()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        var callback = await CaptureCallbackAsync(phone);
        var verifier = Verifier();
        // Without autofill (a browser lacking conditional mediation), the button's modal request signs in.
        await phone.Page.AddInitScriptAsync("PublicKeyCredential.isConditionalMediationAvailable = async () => false;");
        await phone.Page.GotoAsync(AuthorizeUrl(client, verifier, scope: "openid"));
        await phone.Page.Locator("input[autocomplete='username webauthn']").WaitForAsync();
        await phone.Page.ClickAsync("#passkey");
        await phone.Page.ClickAsync("button[value=allow]");
        Assert.Contains("code=", await callback.Task.WaitAsync(TimeSpan.FromSeconds(20)));

        await phone.Page.GotoAsync(AuthorizeUrl(client, verifier, scope: "openid profile"));
        await phone.Page.Locator("text=your handle").WaitForAsync();
        callback = await CaptureCallbackAsync(phone);
        await phone.Page.ClickAsync("button[value=deny]");
        var denied = await callback.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Contains("error=access_denied", denied);
        Assert.Contains("state=st", denied);
    }

    [Fact]
    public async Task A_code_is_single_use_bound_to_its_client_redirect_uri_and_verifier_and_short_lived()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        var other = await ClientAsync("EdDSA", isPublic: true);
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        var verifier = Verifier();
        var code = await CodeAsync(phone, client, verifier, signIn: true);

        // Wrong verifier, wrong redirect URI, another client: refused, and the code is not spent by them.
        Assert.Equal("invalid_grant", await TokenErrorAsync(client.ClientId, code, Verifier(), RedirectUri));
        Assert.Equal("invalid_grant", await TokenErrorAsync(client.ClientId, code, verifier, RedirectUri + "/other"));
        Assert.Equal("invalid_grant", await TokenErrorAsync(other.ClientId, code, verifier, RedirectUri));
        Assert.Equal("invalid_grant", await TokenErrorAsync(client.ClientId, code, null, RedirectUri));

        using var first = await TokenAsync(client.ClientId, code, verifier, RedirectUri);
        var (status, body) = await TestServer.ReadAsync(first);
        Assert.Equal(HttpStatusCode.OK, status);
        var access = body.GetProperty("access_token").GetString()!;
        using (var info = await UserInfoAsync(access))
        {
            Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        }

        // RFC 6749 §4.1.2: the replay is refused and the access token the code issued is revoked.
        Assert.Equal("invalid_grant", await TokenErrorAsync(client.ClientId, code, verifier, RedirectUri));
        using (var info = await UserInfoAsync(access))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, info.StatusCode);
        }

        // An unused code expires after a minute.
        var late = await CodeAsync(phone, client, verifier, signIn: false);
        Server.Clock.Advance(AuthorizationCodes.CodeLifetime + TimeSpan.FromSeconds(1));
        try
        {
            Assert.Equal("invalid_grant", await TokenErrorAsync(client.ClientId, late, verifier, RedirectUri));
        }
        finally
        {
            // Back to real time: the relying parties of the other cases check iat and exp on it.
            Server.Clock.Advance(-(AuthorizationCodes.CodeLifetime + TimeSpan.FromSeconds(1)));
        }
    }

    [Fact]
    public async Task Userinfo_tells_a_web_client_the_handle_only_under_the_consented_profile_scope()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        var (phone, did) = await SignedOutUserAsync();
        await using var __ = phone;

        // OpenID Connect Core §5.4: openid alone gives sub, nothing about the user.
        var verifier = Verifier();
        var code = await CodeAsync(phone, client, verifier, signIn: true, scope: "openid");
        var info = await UserInfoOfCodeAsync(client, code, verifier);
        Assert.Equal(did, info.GetProperty("sub").GetString());
        Assert.Equal("openid", info.GetProperty("scope").GetString());
        Assert.False(info.TryGetProperty("preferred_username", out _));

        // profile, once consented (the consent page is shown again for the wider scope): the handle.
        verifier = Verifier();
        code = await CodeAsync(phone, client, verifier, signIn: true, scope: "openid profile");
        info = await UserInfoOfCodeAsync(client, code, verifier);
        Assert.Equal(did, info.GetProperty("sub").GetString());
        Assert.StartsWith("signin-", info.GetProperty("preferred_username").GetString());
    }

    private async Task<JsonElement> UserInfoOfCodeAsync(Client client, string code, string verifier)
    {
        using var redeemed = await TokenAsync(client.ClientId, code, verifier, RedirectUri);
        var (status, body) = await TestServer.ReadAsync(redeemed);
        Assert.Equal(HttpStatusCode.OK, status);
        using var info = await UserInfoAsync(body.GetProperty("access_token").GetString()!);
        var (infoStatus, infoBody) = await TestServer.ReadAsync(info);
        Assert.Equal(HttpStatusCode.OK, infoStatus);
        return infoBody;
    }

    [Fact]
    public async Task A_confidential_client_must_authenticate_to_redeem_its_code()
    {
        var client = await ClientAsync("EdDSA", isPublic: false);
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        var code = await CodeAsync(phone, client, verifier: null, signIn: true);
        Assert.Equal("invalid_client", await TokenErrorAsync(client.ClientId, code, null, RedirectUri));
        using var wrong = await TokenAsync(client.ClientId, code, null, RedirectUri, secret: "sec_wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        using var right = await TokenAsync(client.ClientId, code, null, RedirectUri, secret: client.Secret);
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
    }

    [Fact]
    public async Task An_unregistered_or_mismatched_redirect_uri_gets_an_error_page_and_no_redirect()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = Server.BaseUri };
        foreach (var redirect in new[] { "https://evil.example/callback", RedirectUri + "/", RedirectUri.Replace("callback", "CALLBACK", StringComparison.Ordinal), "" })
        {
            using var response = await http.GetAsync(AuthorizeUrl(client, Verifier(), redirect: redirect));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Null(response.Headers.Location);
            Assert.StartsWith("text/html", response.Content.Headers.ContentType?.ToString());
        }
        using var unknown = await http.GetAsync("/oauth/authorize?response_type=code&client_id=web_nope&redirect_uri=" + Uri.EscapeDataString(RedirectUri));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Null(unknown.Headers.Location);
    }

    [Fact]
    public async Task Errors_after_the_redirect_uri_is_validated_go_back_to_it_with_state_and_iss()
    {
        var client = await ClientAsync("EdDSA", isPublic: true);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = Server.BaseUri };
        var challenge = Challenge(Verifier());
        var cases = new Dictionary<string, (string Query, string Error)>
        {
            ["missing PKCE"] = ("&scope=openid", "invalid_request"),
            ["plain PKCE"] = ($"&scope=openid&code_challenge={challenge}&code_challenge_method=plain", "invalid_request"),
            ["no method"] = ($"&scope=openid&code_challenge={challenge}", "invalid_request"),
            ["no openid"] = ($"&scope=profile&code_challenge={challenge}&code_challenge_method=S256", "invalid_scope"),
            ["prompt=none, no session"] = ($"&scope=openid&code_challenge={challenge}&code_challenge_method=S256&prompt=none", "login_required"),
        };
        foreach (var (name, (query, error)) in cases)
        {
            using var response = await http.GetAsync(
                $"/oauth/authorize?response_type=code&client_id={client.ClientId}&redirect_uri={Uri.EscapeDataString(RedirectUri)}&state=s1{query}");
            Assert.True(response.StatusCode == HttpStatusCode.Redirect, name);
            var location = response.Headers.Location!.ToString();
            Assert.StartsWith(RedirectUri + "?", location);
            Assert.Contains("error=" + error, location);
            Assert.Contains("state=s1", location);
            Assert.Contains("iss=" + Uri.EscapeDataString(Issuer), location);
        }
    }

    [Fact]
    public async Task Logout_with_an_id_token_hint_returns_to_the_registered_post_logout_uri()
    {
        var client = await ClientAsync("ES256", isPublic: true);
        var (phone, _) = await SignedOutUserAsync();
        await using var __ = phone;
        var verifier = Verifier();
        var code = await CodeAsync(phone, client, verifier, signIn: true);
        using var redeemed = await TokenAsync(client.ClientId, code, verifier, RedirectUri);
        var idToken = (await TestServer.ReadAsync(redeemed)).Body.GetProperty("id_token").GetString()!;

        // An unregistered post-logout URI is never redirected to.
        var refused = await phone.Page.GotoAsync($"/oauth/logout?id_token_hint={idToken}&post_logout_redirect_uri={Uri.EscapeDataString("https://evil.example/")}");
        Assert.Equal(400, refused!.Status);

        var back = CaptureCallback(phone, PostLogoutUri);
        await phone.Page.GotoAsync($"/oauth/logout?id_token_hint={idToken}&post_logout_redirect_uri={Uri.EscapeDataString(PostLogoutUri)}&state=bye1");
        Assert.Equal(PostLogoutUri + "?state=bye1", await back.Task.WaitAsync(TimeSpan.FromSeconds(20)));

        // Signed out: prompt=none now answers login_required.
        var callback = await CaptureCallbackAsync(phone);
        await phone.Page.GotoAsync(AuthorizeUrl(client, verifier) + "&prompt=none");
        Assert.Contains("error=login_required", await callback.Task.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    private string PostLogoutUri => fixture.RelyingParty + "/signed-out";

    private sealed record Client(string ClientId, string? Secret, string Name);

    private int _clients;

    private async Task<Client> ClientAsync(string alg, bool isPublic)
    {
        var name = $"Wiki {Interlocked.Increment(ref _clients)} {alg}";
        var created = await Server.Admin.CreateWebClientAsync(name, [RedirectUri], [PostLogoutUri], isPublic, alg, CancellationToken.None);
        return new Client(created.ClientId, created.ClientSecret, name);
    }

    /// <summary>A user with a passkey on a fresh phone, whose enrolment session is then dropped: the next sign-in needs the passkey.</summary>
    private async Task<(Phone Phone, string Did)> SignedOutUserAsync()
    {
        var invite = await Server.InviteAsync("signin-" + Guid.NewGuid().ToString("N")[..8]);
        var phone = await host.PhoneAsync(Server);
        await phone.EnrollAsync(invite.Code);
        await phone.Page.Context.ClearCookiesAsync();
        return (phone, Assent.Protocol.Did.DidWeb.ForUser(new Uri(Issuer), invite.UserId));
    }

    private Task<TaskCompletionSource<string>> CaptureCallbackAsync(Phone phone) => Task.FromResult(CaptureCallback(phone, RedirectUri));

    /// <summary>
    /// The next request the page makes to <paramref name="prefix"/> (a redirect's target included). A navigation completes
    /// it only once the page has committed to it: a test's next navigation would otherwise interrupt this one.
    /// </summary>
    private static TaskCompletionSource<string> CaptureCallback(Phone phone, string prefix)
    {
        var returned = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        string? requested = null;
        void Finish()
        {
            phone.Page.Request -= OnRequest;
            phone.Page.FrameNavigated -= OnNavigated;
            returned.TrySetResult(requested!);
        }
        void OnRequest(object? sender, IRequest request)
        {
            if (requested is null && request.Url.StartsWith(prefix, StringComparison.Ordinal))
            {
                requested = request.Url;
                if (!request.IsNavigationRequest)
                {
                    Finish();
                }
            }
        }
        void OnNavigated(object? sender, IFrame frame)
        {
            if (requested is not null && frame == phone.Page.MainFrame && frame.Url.StartsWith(prefix, StringComparison.Ordinal))
            {
                Finish();
            }
        }
        phone.Page.Request += OnRequest;
        phone.Page.FrameNavigated += OnNavigated;
        return returned;
    }

    private async Task<string> CodeAsync(Phone phone, Client client, string? verifier, bool signIn, string scope = "openid")
    {
        var callback = await CaptureCallbackAsync(phone);
        await phone.Page.GotoAsync(AuthorizeUrl(client, verifier, scope));
        if (signIn)
        {
            // The sign-in page's conditional request is answered by the virtual authenticator; then the consent page.
            await phone.Page.ClickAsync("button[value=allow]");
        }
        var done = await Task.WhenAny(callback.Task, Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.True(done == callback.Task, $"no callback; the page is {phone.Page.Url}:\n{await phone.Page.ContentAsync()}");
        var returned = new Uri(await callback.Task);
        var code = System.Web.HttpUtility.ParseQueryString(returned.Query)["code"];
        Assert.False(string.IsNullOrEmpty(code), returned.ToString());
        return code!;
    }

    private string AuthorizeUrl(Client client, string? verifier, string scope = "openid", string? redirect = null)
    {
        redirect ??= RedirectUri;
        var url = $"{Issuer}/oauth/authorize?response_type=code&client_id={client.ClientId}&redirect_uri={Uri.EscapeDataString(redirect)}" +
                  $"&scope={Uri.EscapeDataString(scope)}&state=st&nonce=n1";
        return verifier is null ? url : url + $"&code_challenge={Challenge(verifier)}&code_challenge_method=S256";
    }

    private static string Verifier() => Base64Url.Encode(RandomNumberGenerator.GetBytes(32));

    private static string Challenge(string verifier) => Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));

    private static string TokenIssuerHash(string accessToken, string alg)
    {
        var bytes = Encoding.ASCII.GetBytes(accessToken);
        var hash = alg == "EdDSA" ? SHA512.HashData(bytes) : SHA256.HashData(bytes);
        return Base64Url.Encode(hash.AsSpan(0, hash.Length / 2));
    }

    private Task<HttpResponseMessage> TokenAsync(string clientId, string code, string? verifier, string redirect, string? secret = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = redirect, ["client_id"] = clientId };
        if (verifier is not null)
        {
            form["code_verifier"] = verifier;
        }
        if (secret is not null)
        {
            form["client_secret"] = secret;
        }
        return Server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
    }

    private async Task<string> TokenErrorAsync(string clientId, string code, string? verifier, string redirect)
    {
        using var response = await TokenAsync(clientId, code, verifier, redirect);
        return await TestServer.ErrorOf(response);
    }

    private Task<HttpResponseMessage> UserInfoAsync(string accessToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/userinfo");
        request.Headers.Authorization = new("Bearer", accessToken);
        return Server.Http.SendAsync(request);
    }

    private async Task<JsonElement> NodeAsync(string step, Client client, string alg, string? callback = null, JsonElement? start = null, string? scope = null,
        int expectedExit = 0)
    {
        List<string> args = ["oidc.mjs", step, Issuer, client.ClientId, client.Secret ?? "-", RedirectUri, alg];
        if (step == "finish")
        {
            args.AddRange([callback!, start!.Value.GetProperty("code_verifier").GetString()!, start.Value.GetProperty("state").GetString()!,
                start.Value.GetProperty("nonce").GetString()!]);
        }
        else if (step == "refresh")
        {
            args.Add(callback!);
        }
        var (exit, stdout, stderr) = await RunAsync("node", args, scope);
        Assert.True(exit == expectedExit, $"node oidc.mjs {step} exited {exit}:\n{stdout}\n{stderr}");
        return JsonDocument.Parse(stdout).RootElement;
    }


    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    private static string InteropDirectory => Path.Combine(RepoRoot(), "tests", "interop");

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string fileName, IEnumerable<string> args, string? scope = null)
    {
        await InstallLock.WaitAsync();
        try
        {
            if (!File.Exists(Path.Combine(InteropDirectory, "node_modules", "openid-client", "package.json")))
            {
                var (code, output, error) = await StartAsync("npm", ["ci", "--no-audit", "--no-fund"]);
                Assert.True(code == 0, $"npm ci in tests/interop failed:\n{output}\n{error}");
            }
        }
        finally
        {
            InstallLock.Release();
        }
        return await StartAsync(fileName, args, scope);
    }

    /// <param name="scope">The scope oidc.mjs start asks for (OIDC_SCOPE), when not its default.</param>
    private static async Task<(int Exit, string Stdout, string Stderr)> StartAsync(string fileName, IEnumerable<string> args, string? scope = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = InteropDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8, StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        if (scope is not null)
        {
            info.Environment["OIDC_SCOPE"] = scope;
        }
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (Win32Exception e)
        {
            // Never a skip: a machine without Node cannot claim interop.
            Assert.Fail($"{fileName} must be on PATH ({e.Message})");
            throw;
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, await stdout, await stderr);
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Assent.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Assent.slnx above {AppContext.BaseDirectory}");
    }
}
