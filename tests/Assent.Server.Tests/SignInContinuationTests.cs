using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Assent.Protocol;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Tests.Passkeys;

namespace Assent.Server.Tests;

/// <summary>
/// The sign-in page of an authorization request (docs/http-api.md §17.2) comes with its first challenge, and posts the
/// authorization request it continues with the assertion: when the user has nothing more to decide, the sign-in answers
/// the client's redirect with the code, and otherwise nothing but the session (the page then goes on to the authorization
/// endpoint). The browser's side of it runs in tests/Assent.Web.Tests (SignInTests, RelyingPartyTests).
/// </summary>
public sealed class SignInContinuationTests
{
    private const string Callback = "https://wiki.example.com/cb";

    private sealed record Setup(PasskeyUser User, string ClientId, string Verifier, HttpClient Browser) : IAsyncDisposable
    {
        public TestServer Server => User.Server;

        public async ValueTask DisposeAsync()
        {
            Browser.Dispose();
            await User.DisposeAsync();
        }
    }

    private static async Task<Setup> StartAsync(bool consented)
    {
        var user = await PasskeyUser.StartAsync("cont");
        var client = await user.Server.Admin.CreateWebClientAsync("wiki", [Callback], [], true, null, default);
        if (consented)
        {
            await user.Server.Store.WebClients.GrantConsentAsync(user.UserId, client.ClientId, "openid", user.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds(),
                new AuditEvent(AuditTypes.WebConsentGranted, user.UserId, user.DeviceId, client.ClientId), default);
        }
        // A browser of its own: no cookie jar (each test says which cookie it sends), no redirects followed.
        var browser = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = user.Server.BaseUri };
        return new Setup(user, client.ClientId, Base64Url.Encode(RandomNumberGenerator.GetBytes(32)), browser);
    }

    private static string Query(Setup s, string extra = "") =>
        $"response_type=code&client_id={s.ClientId}&redirect_uri={Uri.EscapeDataString(Callback)}&scope=openid&state=st8&nonce=n0" +
        $"&code_challenge={Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(s.Verifier)))}&code_challenge_method=S256{extra}";

    /// <summary>The sign-in page of an authorization request: its first challenge and the request it continues.</summary>
    private static async Task<(byte[] Challenge, string Continue)> PageAsync(Setup s, string query)
    {
        using var page = await s.Browser.GetAsync("/oauth/authorize?" + query);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        string Attribute(string name) => WebUtility.HtmlDecode(Regex.Match(html, $"data-{name}=\"([^\"]*)\"").Groups[1].Value);
        Assert.Equal(s.Server.Options.RpId, Attribute("rp-id"));
        return (Base64Url.Decode(Attribute("challenge")), Attribute("continue"));
    }

    private static async Task<(HttpStatusCode Status, string? RedirectTo, string? Cookie)> SignInAsync(Setup s, byte[] challenge, string? continuation)
    {
        var body = s.User.Assertion(challenge);
        if (continuation is not null)
        {
            body["continue"] = continuation;
        }
        using var response = await s.Browser.PostAsync("/webauthn/signin", TestDevice.JsonBody(body));
        var (status, json) = await TestServer.ReadAsync(response);
        var cookie = response.Headers.TryGetValues("Set-Cookie", out var set) ? string.Join("; ", set.Select(c => c[..c.IndexOf(';', StringComparison.Ordinal)])) : null;
        return (status, json.TryGetProperty("redirect_to", out var to) ? to.GetString() : null, cookie);
    }

    private static Task<long> CodesAsync(TestServer server) =>
        server.Store.Database.ReadAsync(async q => (await q.AllAsync("SELECT COUNT(*) FROM authorization_codes", r => r.GetInt64(0)))[0], default);

    [Fact]
    public async Task The_page_brings_its_challenge_and_the_sign_in_answers_the_clients_redirect_with_a_code_that_redeems_once()
    {
        await using var s = await StartAsync(consented: true);
        var (challenge, continuation) = await PageAsync(s, Query(s));
        Assert.StartsWith("/oauth/authorize?", continuation);

        var (status, redirectTo, cookie) = await SignInAsync(s, challenge, continuation);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.NotNull(cookie);
        Assert.NotNull(redirectTo);
        Assert.StartsWith(Callback + "?code=", redirectTo);
        var response = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(redirectTo).Query);
        Assert.Equal("st8", response["state"].ToString());
        // RFC 9207 §2: iss beside the code, as from the authorization endpoint.
        Assert.Equal(s.Server.Options.IssuerString, response["iss"].ToString());
        // The code and the session token start with their creation time, which keys them in the store (docs/concepts.md §9).
        var signedInAt = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var sessionToken = cookie!.Split("; ").Select(c => c.Split('=', 2)).Single(c => c[0] == s.Server.Options.SessionCookieName)[1];
        foreach (var secret in new[] { response["code"].ToString(), sessionToken })
        {
            Assert.Matches("^[A-Za-z0-9_-]{51}$", secret);
            var key = Ids.HandleKey(secret);
            Assert.Equal(6 + 32, key.Length);
            Assert.Equal(signedInAt, key.Take(6).Aggregate(0L, (t, b) => (t << 8) | b));
        }
        Assert.NotNull(await s.Server.Store.Sessions.FindWebSessionAsync(Ids.HandleKey(sessionToken), signedInAt, default));
        FormUrlEncodedContent Redeem() => new([new("grant_type", "authorization_code"), new("code", response["code"].ToString()), new("redirect_uri", Callback),
            new("client_id", s.ClientId), new("code_verifier", s.Verifier)]);
        using var token = await s.Browser.PostAsync("/oauth/token", Redeem());
        var (tokenStatus, tokenJson) = await TestServer.ReadAsync(token);
        Assert.True(tokenStatus == HttpStatusCode.OK, tokenJson.ToString());
        var idToken = tokenJson.GetProperty("id_token").GetString()!;
        var claims = System.Text.Json.JsonDocument.Parse(Base64Url.Decode(idToken.Split('.')[1])).RootElement;
        Assert.Equal("n0", claims.GetProperty("nonce").GetString());
        Assert.Equal(s.Server.Clock.GetUtcNow().ToUnixTimeSeconds(), claims.GetProperty("auth_time").GetInt64());
        using var replay = await s.Browser.PostAsync("/oauth/token", Redeem());
        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);

        // The page's challenge was spent by that sign-in: a second assertion over it is refused.
        Assert.Equal(HttpStatusCode.Unauthorized, (await SignInAsync(s, challenge, continuation)).Status);
    }

    public static TheoryData<string, string> NoCodeCases => new()
    {
        { "consent not given yet", "" },
        { "prompt=consent", "prompt=consent" },
        { "form_post response mode", "response_mode=form_post" },
        { "login_hint of another user", "login_hint=someone-else" },
        { "unregistered redirect URI", "redirect_uri=" + Uri.EscapeDataString("https://evil.example/cb") },
        { "a repeated parameter", "state=again" },
        { "not the authorization endpoint", "!https://evil.example/oauth/authorize?" },
        { "another path of this server", "!/oauth/authorize/consent?" },
    };

    [Theory]
    [MemberData(nameof(NoCodeCases))]
    public async Task A_sign_in_whose_request_needs_more_or_is_not_one_opens_the_session_and_issues_no_code(string why, string change)
    {
        await using var s = await StartAsync(consented: why != "consent not given yet");
        var query = Query(s);
        var continuation = change switch
        {
            "" => (await PageAsync(s, query)).Continue,
            ['!', .. var prefix] => prefix + query,
            _ when change.StartsWith("redirect_uri=", StringComparison.Ordinal) =>
                "/oauth/authorize?" + query.Replace("redirect_uri=" + Uri.EscapeDataString(Callback), change, StringComparison.Ordinal),
            _ => "/oauth/authorize?" + query + "&" + change,
        };

        var (status, redirectTo, cookie) = await SignInAsync(s, await s.User.SignInChallengeAsync(), continuation);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.NotNull(cookie);
        Assert.Null(redirectTo);
        Assert.Equal(0, await CodesAsync(s.Server));
    }

    [Theory]
    [InlineData("prompt=login")]
    [InlineData("prompt=select_account")]
    [InlineData("max_age=0")]
    public async Task A_request_that_asks_for_a_new_sign_in_is_answered_by_one_and_not_asked_again(string ask)
    {
        await using var s = await StartAsync(consented: false);
        var (challenge, continuation) = await PageAsync(s, Query(s, "&" + ask));
        Assert.DoesNotContain(ask, continuation);

        var (status, redirectTo, cookie) = await SignInAsync(s, challenge, continuation);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Null(redirectTo);

        // The page goes on to the request it continues: the consent page now, not the sign-in page again (and again).
        using var next = new HttpRequestMessage(HttpMethod.Get, continuation);
        next.Headers.Add("Cookie", cookie);
        using var page = await s.Browser.SendAsync(next);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("wants to sign you in", html);
        Assert.DoesNotContain("data-challenge", html);
    }
}
