using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Server.Keys;

namespace Assent.Server.Tests;

/// <summary>Steps of the CLI sign-in (RFC 8628) and the session it gets, as a real client does them.</summary>
internal static class Session
{
    public const string DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";

    public static async Task<JsonElement> StartAsync(TestServer server, string? loginHint = null, string? userAgent = "assent/1.0 (build-box)")
    {
        var form = new Dictionary<string, string> { ["client_id"] = "assent-cli" };
        if (loginHint is not null)
        {
            form["login_hint"] = loginHint;
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/device/code") { Content = new FormUrlEncodedContent(form) };
        if (userAgent is not null)
        {
            request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        }
        using var response = await server.Http.SendAsync(request);
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        return body;
    }

    public static Task<HttpResponseMessage> PollAsync(TestServer server, string deviceCode, int? wait = null, string clientId = "assent-cli") =>
        Form(server, "/oauth/token", new() { ["grant_type"] = DeviceCodeGrant, ["device_code"] = deviceCode, ["client_id"] = clientId }, wait);

    public static Task<HttpResponseMessage> RefreshAsync(TestServer server, string refreshToken) =>
        Form(server, "/oauth/token", new() { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken, ["client_id"] = "assent-cli" });

    public static Task<HttpResponseMessage> RevokeAsync(TestServer server, string token) =>
        Form(server, "/oauth/revoke", new() { ["token"] = token, ["client_id"] = "assent-cli" });

    public static async Task<HttpResponseMessage> Form(TestServer server, string path, Dictionary<string, string> form, int? wait = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        if (wait is not null)
        {
            request.Headers.TryAddWithoutValidation("Prefer", $"wait={wait}");
        }
        return await server.Http.SendAsync(request);
    }

    /// <summary>Signs the device's user in with login_hint and approves on the device; returns the token response.</summary>
    public static async Task<JsonElement> SignInAsync(TestServer server, TestDevice device)
    {
        var started = await StartAsync(server, device.Handle);
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var response = await PollAsync(server, started.GetProperty("device_code").GetString()!);
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        return body;
    }

    public static HttpRequestMessage Bearer(HttpMethod method, string path, string token, object? json = null, int? wait = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(json), Encoding.UTF8, "application/json");
        }
        if (wait is not null)
        {
            request.Headers.TryAddWithoutValidation("Prefer", $"wait={wait}");
        }
        return request;
    }
}

[Collection(SharedServerCollection.Name)]
public sealed class SessionTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    [Fact]
    public async Task Device_login_pushed_with_login_hint_and_approved_on_the_device_returns_a_session_access_token_and_refresh_token()
    {
        var device = await Server.UserWithDeviceAsync();
        var started = await Session.StartAsync(Server, device.Handle);

        var userCode = started.GetProperty("user_code").GetString()!;
        Assert.Matches("^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$", userCode);
        Assert.True(started.GetProperty("device_code").GetString()!.Length >= 43);
        Assert.Equal(Server.Options.Issuer + "/device", started.GetProperty("verification_uri").GetString());
        Assert.Equal(Server.Options.Issuer + "/device?user_code=" + userCode, started.GetProperty("verification_uri_complete").GetString());
        Assert.Equal(600, started.GetProperty("expires_in").GetInt32());
        Assert.True(started.GetProperty("interval").GetInt32() <= 2);
        var pending = Assert.Single(await device.PendingAsync());
        Assert.Equal("device_login", pending.GetProperty("kind").GetString());
        Assert.Equal($"Sign in to the Assent CLI on build-box, code {userCode}", pending.GetProperty("binding_message").GetString());

        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var response = await Session.PollAsync(Server, started.GetProperty("device_code").GetString()!);
        var (status, body) = await TestServer.ReadAsync(response);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("openid session agents:write", body.GetProperty("scope").GetString());
        Assert.StartsWith("rt_", body.GetProperty("refresh_token").GetString());
        Assert.True(body.GetProperty("refresh_token").GetString()!.Length >= 3 + 43);
        var claims = await FlowTests.VerifiedClaimsAsync(Server, body.GetProperty("access_token").GetString()!);
        Assert.Equal(device.Did, claims.GetProperty("sub").GetString());
        Assert.Equal("assent-cli", claims.GetProperty("client_id").GetString());
        Assert.False(claims.TryGetProperty("act", out _));
        Assert.Equal("ed25519", claims.GetProperty("evidence").GetProperty("kind").GetString());
        using var again = await Session.PollAsync(Server, started.GetProperty("device_code").GetString()!);
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(again));
    }

    [Fact]
    public async Task Device_code_before_a_decision_is_pending_then_slow_down_when_polled_too_fast_and_access_denied_once_denied()
    {
        var device = await Server.UserWithDeviceAsync();
        var code = (await Session.StartAsync(Server, device.Handle)).GetProperty("device_code").GetString()!;

        using var first = await Session.PollAsync(Server, code);
        using var second = await Session.PollAsync(Server, code);
        Assert.Equal("authorization_pending", await TestServer.ErrorOf(first));
        Assert.Equal("slow_down", await TestServer.ErrorOf(second));

        using (var denied = await device.DecideOnlyPendingAsync(Decisions.Deny))
        {
            Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        }
        using var after = await Session.PollAsync(Server, code);
        Assert.Equal("access_denied", await TestServer.ErrorOf(after));
    }

    [Fact]
    public async Task Each_slow_down_adds_exactly_five_seconds_to_the_device_code_polling_interval()
    {
        // Moves its clock: its own server, not the shared one.
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var started = await Session.StartAsync(server, device.Handle);
        var code = started.GetProperty("device_code").GetString()!;

        await FlowTests.AssertSlowDownGrowthAsync(server, TimeSpan.FromSeconds(started.GetProperty("interval").GetInt32()), async () =>
        {
            using var response = await Session.PollAsync(server, code);
            return await TestServer.ErrorOf(response);
        });
    }

    [Fact]
    public async Task Unknown_device_codes_and_agents_using_the_device_code_grant_are_refused()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var code = (await Session.StartAsync(Server)).GetProperty("device_code").GetString()!;

        using var unknown = await Session.PollAsync(Server, "dc_nope");
        using var asAgent = await Server.Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = Session.DeviceCodeGrant, ["device_code"] = code }),
            Headers = { Authorization = TestServer.Basic(agent) },
        });
        using var cibaAsCli = await Session.Form(Server, "/oauth/token",
            new() { ["grant_type"] = "urn:openid:params:grant-type:ciba", ["auth_req_id"] = "x", ["client_id"] = "assent-cli" });
        using var unknownUser = await Session.Form(Server, "/oauth/device/code", new() { ["client_id"] = "assent-cli", ["login_hint"] = "nobody-here" });

        Assert.Equal("invalid_grant", await TestServer.ErrorOf(unknown));
        Assert.Equal("unauthorized_client", await TestServer.ErrorOf(asAgent));
        Assert.Equal("unauthorized_client", await TestServer.ErrorOf(cibaAsCli));
        Assert.Equal("unknown_user_id", await TestServer.ErrorOf(unknownUser));
    }

    [Fact]
    public async Task A_device_binds_the_user_code_and_a_cli_held_by_prefer_wait_is_answered_when_it_approves()
    {
        var device = await Server.UserWithDeviceAsync();
        var started = await Session.StartAsync(Server, userAgent: null);
        var code = started.GetProperty("device_code").GetString()!;
        Assert.Empty(await device.PendingAsync());

        var held = Session.PollAsync(Server, code, wait: 30);
        await Server.WaitForWaitersAsync();
        var body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { user_code = started.GetProperty("user_code").GetString()!.ToLowerInvariant().Replace("-", "") }));
        using var bound = await Server.Http.SendAsync(device.Signed(HttpMethod.Post, "/authenticator/device-login", body));
        var (boundStatus, request) = await TestServer.ReadAsync(bound);
        Assert.Equal(HttpStatusCode.Created, boundStatus);
        Assert.Equal("device_login", request.GetProperty("kind").GetString());
        Assert.Contains("a terminal", request.GetProperty("binding_message").GetString());
        Assert.False(held.IsCompleted);

        using (var decided = await device.PostDecisionAsync(request.GetProperty("id").GetString()!, Decisions.Approve,
                   device.SignDecision(Decisions.Approve, request.GetProperty("payload").GetString()!)))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var answered = await held.WaitAsync(TimeSpan.FromSeconds(10));
        var (status, tokens) = await TestServer.ReadAsync(answered);
        Assert.Equal(HttpStatusCode.OK, status);
        var claims = await FlowTests.VerifiedClaimsAsync(Server, tokens.GetProperty("access_token").GetString()!);
        Assert.Equal(device.Did, claims.GetProperty("sub").GetString());

        using var twice = await Server.Http.SendAsync(device.Signed(HttpMethod.Post, "/authenticator/device-login", body));
        using var unknown = await Server.Http.SendAsync(device.Signed(HttpMethod.Post, "/authenticator/device-login",
            Encoding.UTF8.GetBytes("""{"user_code":"BBBB-BBBB"}""")));
        using var malformed = await Server.Http.SendAsync(device.Signed(HttpMethod.Post, "/authenticator/device-login",
            Encoding.UTF8.GetBytes("""{"user_code":"AEIO-0000"}""")));
        Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
    }

    [Fact]
    public async Task Refresh_rotates_the_refresh_token_and_reusing_a_consumed_one_ends_the_whole_session()
    {
        var device = await Server.UserWithDeviceAsync();
        var first = (await Session.SignInAsync(Server, device)).GetProperty("refresh_token").GetString()!;

        using var rotated = await Session.RefreshAsync(Server, first);
        var (status, body) = await TestServer.ReadAsync(rotated);
        Assert.Equal(HttpStatusCode.OK, status);
        var second = body.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(first, second);
        var claims = await FlowTests.VerifiedClaimsAsync(Server, body.GetProperty("access_token").GetString()!);
        Assert.Equal(device.Did, claims.GetProperty("sub").GetString());
        Assert.Equal("ed25519", claims.GetProperty("evidence").GetProperty("kind").GetString());

        // An attacker (or a confused client) replays the consumed token: the family ends for everyone.
        using var reused = await Session.RefreshAsync(Server, first);
        using var legitimate = await Session.RefreshAsync(Server, second);
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(reused));
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(legitimate));
    }

    [Fact]
    public async Task Concurrent_refreshes_of_one_token_rotate_it_once()
    {
        var device = await Server.UserWithDeviceAsync();
        var token = (await Session.SignInAsync(Server, device)).GetProperty("refresh_token").GetString()!;

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Session.RefreshAsync(Server, token)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        foreach (var r in responses)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task Revoking_the_refresh_token_ends_the_session_and_unknown_tokens_still_get_200()
    {
        var device = await Server.UserWithDeviceAsync();
        var tokens = await Session.SignInAsync(Server, device);
        var refresh = tokens.GetProperty("refresh_token").GetString()!;

        using var revoked = await Session.RevokeAsync(Server, refresh);
        using var unknown = await Session.RevokeAsync(Server, "rt_not-a-real-token");
        using var garbage = await Session.RevokeAsync(Server, "a.b.c");
        using var refreshed = await Session.RefreshAsync(Server, refresh);

        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.OK, garbage.StatusCode);
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(refreshed));
    }

    [Fact]
    public async Task Userinfo_answers_for_a_valid_token_and_a_revoked_access_token_is_refused_with_a_bearer_challenge()
    {
        var device = await Server.UserWithDeviceAsync();
        var access = (await Session.SignInAsync(Server, device)).GetProperty("access_token").GetString()!;

        using var info = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, "/userinfo", access));
        var (status, body) = await TestServer.ReadAsync(info);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(device.Did, body.GetProperty("sub").GetString());
        Assert.Equal("openid session agents:write", body.GetProperty("scope").GetString());
        Assert.Equal("assent-cli", body.GetProperty("client_id").GetString());
        Assert.Equal(device.Handle, body.GetProperty("preferred_username").GetString());

        using var revoke = await Session.RevokeAsync(Server, access);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        using var after = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, "/userinfo", access));
        using var none = await Server.Http.GetAsync("/userinfo");

        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.StartsWith("Bearer realm=\"assent\", error=\"invalid_token\"", after.Headers.WwwAuthenticate.ToString());
        Assert.Equal("invalid_token", await TestServer.ErrorOf(after));
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal("Bearer realm=\"assent\"", none.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task Discovery_advertises_the_device_code_and_refresh_token_grants()
    {
        var doc = JsonDocument.Parse(await Server.Http.GetStringAsync("/.well-known/openid-configuration")).RootElement;
        var grants = doc.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains(Session.DeviceCodeGrant, grants);
        Assert.Contains("refresh_token", grants);
        Assert.Equal(Server.Options.Issuer + "/oauth/device/code", doc.GetProperty("device_authorization_endpoint").GetString());
        // The verification page is the web app's (it fills in the code client-side; the browser tests drive it).
        using var page = await Server.Http.GetAsync("/device?user_code=bcdf-ghjk");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
    }
}

/// <summary>Tests that move the clock or rotate keys get their own server.</summary>
public sealed class SessionClockTests
{
    [Fact]
    public async Task A_device_code_past_its_lifetime_answers_expired_token()
    {
        await using var server = await TestServer.StartAsync();
        var code = (await Session.StartAsync(server)).GetProperty("device_code").GetString()!;

        server.Clock.Advance(TimeSpan.FromSeconds(601));
        using var response = await Session.PollAsync(server, code);

        Assert.Equal("expired_token", await TestServer.ErrorOf(response));
    }

    [Fact]
    public async Task An_agent_registration_nobody_decides_answers_410_once_it_expires()
    {
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var access = (await Session.SignInAsync(server, device)).GetProperty("access_token").GetString()!;
        using var accepted = await server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "bot", scopes = "approve:action" }));
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var location = accepted.Headers.Location!.ToString();
        // Keep the session token valid while the request runs out: sign in again after moving the clock.
        server.Clock.Advance(TimeSpan.FromSeconds(301));
        var fresh = (await Session.SignInAsync(server, device)).GetProperty("access_token").GetString()!;

        using var gone = await server.Http.SendAsync(Session.Bearer(HttpMethod.Get, location, fresh));

        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Fact]
    public async Task Pushed_sign_ins_stop_at_three_waiting_per_user()
    {
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        for (var i = 0; i < 3; i++)
        {
            await Session.StartAsync(server, device.Handle);
        }

        using var fourth = await Session.Form(server, "/oauth/device/code", new() { ["client_id"] = "assent-cli", ["login_hint"] = device.Handle });

        Assert.Equal("invalid_request", await TestServer.ErrorOf(fourth));
        Assert.Equal(3, (await device.PendingAsync()).Length);
    }

    [Fact]
    public async Task Agents_refuses_expired_session_tokens_but_accepts_one_signed_by_a_retired_key_still_published()
    {
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var access = (await Session.SignInAsync(server, device)).GetProperty("access_token").GetString()!;

        await server.Service<KeyRing>().RotateAsync(CancellationToken.None);
        using var afterRotation = await server.Http.SendAsync(Session.Bearer(HttpMethod.Get, "/userinfo", access));
        Assert.Equal(HttpStatusCode.OK, afterRotation.StatusCode);

        server.Clock.Advance(TimeSpan.FromMinutes(6));
        using var expired = await server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "bot", scopes = new[] { "approve:action" } }));
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        Assert.Contains("expired", expired.Headers.WwwAuthenticate.ToString());
    }
}
