using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Tests;

namespace Assent.Server.Tests;

/// <summary>A server that may deliver to loopback: the receivers here run on this machine.</summary>
public sealed class WebhookServer : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(configure: o =>
    {
        o.Webhooks.AllowPrivateTargets = true;
        o.Webhooks.Timeout = TimeSpan.FromSeconds(1);
    });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Webhooks and CIBA ping/push (docs/webhooks.md) against a live server and a real HTTP receiver whose signature check
/// is the third-party <c>standardwebhooks</c> package (tests/interop/webhook-receiver.mjs).
/// </summary>
public sealed class WebhookTests(WebhookServer fixture) : IClassFixture<WebhookServer>
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(30);

    private TestServer Server => fixture.Server;

    private async Task<(TestDevice Device, string Key)> OwnerAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        var key = await Server.Admin.CreateApiKeyAsync(device.Handle, "backend", "challenges:write challenges:read webhooks:manage", CancellationToken.None);
        return (device, key.Key);
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> CallAsync(HttpMethod method, string path, string key, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null)
        {
            request.Content = TestDevice.JsonBody(body);
        }
        using var response = await Server.Http.SendAsync(request);
        return response.StatusCode == HttpStatusCode.NoContent ? (response.StatusCode, default) : await TestServer.ReadAsync(response);
    }

    private async Task<(string Id, string Secret)> RegisterAsync(string key, int port, string path, params string[] events)
    {
        var (status, body) = await CallAsync(HttpMethod.Post, "/v1/webhooks", key, new { url = $"http://127.0.0.1:{port}{path}", events });
        Assert.Equal(HttpStatusCode.Created, status);
        return (body.GetProperty("id").GetString()!, body.GetProperty("secret").GetString()!);
    }

    private async Task<string> ChallengeAsync(string key, TestDevice device, string decision)
    {
        var (_, created) = await CallAsync(HttpMethod.Post, "/v1/challenges", key,
            new { action = "payment.send", userId = device.Handle, amount = "9.99", currency = "EUR", requiresHuman = false, metadata = new { order = "A-1" } });
        using var decided = await device.DecideOnlyPendingAsync(decision);
        Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        return created.GetProperty("challengeId").GetString()!;
    }

    [Fact]
    public async Task A_decision_reaches_the_webhook_signed_as_standard_webhooks_specifies()
    {
        var (device, key) = await OwnerAsync();
        var port = Ports.Reserve();
        var (_, secret) = await RegisterAsync(key, port, "/ok", "challenge.*");
        using var cts = new CancellationTokenSource(Budget);
        await using var receiver = await NodeScript.StartAsync("webhook-receiver.mjs", [port.ToString(), secret], cts.Token);
        await receiver.ExpectAsync("LISTENING", cts.Token);

        var id = await ChallengeAsync(key, device, Decisions.Approve);
        var evt = JsonDocument.Parse(await receiver.ExpectAsync("EVENT ", cts.Token)).RootElement;
        Assert.Equal("challenge.approved", evt.GetProperty("type").GetString());
        var data = evt.GetProperty("data");
        Assert.Equal(id, data.GetProperty("challengeId").GetString());
        Assert.Equal("approved", data.GetProperty("status").GetString());
        Assert.Equal("9.99", data.GetProperty("amount").GetString());
        Assert.Equal("A-1", data.GetProperty("metadata").GetProperty("order").GetString());
        Assert.StartsWith("msg_", evt.GetProperty("id").GetString());

        var denied = await ChallengeAsync(key, device, Decisions.Deny);
        var second = JsonDocument.Parse(await receiver.ExpectAsync("EVENT ", cts.Token)).RootElement;
        Assert.Equal("challenge.denied", second.GetProperty("type").GetString());
        Assert.Equal(denied, second.GetProperty("data").GetProperty("challengeId").GetString());
    }

    [Fact]
    public async Task A_failing_receiver_is_retried_logged_and_delivered_by_a_manual_retry()
    {
        var (device, key) = await OwnerAsync();
        var port = Ports.Reserve();
        var (hook, secret) = await RegisterAsync(key, port, "/flaky", "challenge.approved");
        using var cts = new CancellationTokenSource(Budget);
        await using var receiver = await NodeScript.StartAsync("webhook-receiver.mjs", [port.ToString(), secret], cts.Token);
        await receiver.ExpectAsync("LISTENING", cts.Token);

        await ChallengeAsync(key, device, Decisions.Approve);
        var failed = JsonDocument.Parse(await receiver.ExpectAsync("FAILED ", cts.Token)).RootElement;
        var log = await WaitForDeliveryAsync(key, hook, d => d.GetProperty("attempts").GetInt32() == 1, cts.Token);
        Assert.Equal("pending", log.GetProperty("status").GetString());
        Assert.Equal(500, log.GetProperty("lastStatus").GetInt32());
        Assert.Equal(failed.GetProperty("id").GetString(), log.GetProperty("eventId").GetString());

        // The next attempt is due 5 s (± jitter) later: the clock moves, the worker's next poll sends it, the same event id.
        Server.Clock.Advance(TimeSpan.FromSeconds(20));
        var delivered = JsonDocument.Parse(await receiver.ExpectAsync("EVENT ", cts.Token)).RootElement;
        Assert.Equal(failed.GetProperty("id").GetString(), delivered.GetProperty("id").GetString());
        log = await WaitForDeliveryAsync(key, hook, d => d.GetProperty("status").GetString() == "delivered", cts.Token);
        Assert.Equal(2, log.GetProperty("attempts").GetInt32());

        // A manual retry sends it once more, now.
        var (retried, _) = await CallAsync(HttpMethod.Post, $"/v1/webhooks/{hook}/deliveries/{log.GetProperty("id").GetString()}/retry", key);
        Assert.Equal(HttpStatusCode.Accepted, retried);
        var again = JsonDocument.Parse(await receiver.ExpectAsync("EVENT ", cts.Token)).RootElement;
        Assert.Equal(failed.GetProperty("id").GetString(), again.GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("/redirect", "redirects are not followed")]
    [InlineData("/slow", "no answer within")]
    [InlineData("/fail", "answered 500")]
    public async Task Redirects_timeouts_and_errors_are_failures_with_their_reason_in_the_log(string path, string reason)
    {
        var (device, key) = await OwnerAsync();
        var port = Ports.Reserve();
        var (hook, secret) = await RegisterAsync(key, port, path, "*");
        using var cts = new CancellationTokenSource(Budget);
        await using var receiver = await NodeScript.StartAsync("webhook-receiver.mjs", [port.ToString(), secret], cts.Token);
        await receiver.ExpectAsync("LISTENING", cts.Token);
        await ChallengeAsync(key, device, Decisions.Approve);
        var log = await WaitForDeliveryAsync(key, hook, d => d.TryGetProperty("lastError", out _), cts.Token);
        Assert.Contains(reason, log.GetProperty("lastError").GetString());
        Assert.Equal("pending", log.GetProperty("status").GetString());
        var (_, endpoint) = await CallAsync(HttpMethod.Get, $"/v1/webhooks/{hook}", key);
        Assert.Equal("failing", endpoint.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_receiver_that_is_down_gets_every_event_once_it_is_back()
    {
        var (device, key) = await OwnerAsync();
        var port = Ports.Reserve();
        var (hook, secret) = await RegisterAsync(key, port, "/ok", "challenge.approved");
        using var cts = new CancellationTokenSource(Budget * 2);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await ChallengeAsync(key, device, Decisions.Approve));
        }
        await WaitForDeliveryAsync(key, hook, d => d.TryGetProperty("lastError", out _), cts.Token);
        await using var receiver = await NodeScript.StartAsync("webhook-receiver.mjs", [port.ToString(), secret], cts.Token);
        await receiver.ExpectAsync("LISTENING", cts.Token);
        // Held back while the endpoint failed, everything goes once a probe succeeds: the clock moves past every back-off.
        Server.Clock.Advance(TimeSpan.FromMinutes(1));
        var seen = new HashSet<string>();
        while (seen.Count < 3)
        {
            Server.Clock.Advance(TimeSpan.FromSeconds(20));
            var evt = JsonDocument.Parse(await receiver.ExpectAsync("EVENT ", cts.Token)).RootElement;
            seen.Add(evt.GetProperty("data").GetProperty("challengeId").GetString()!);
        }
        Assert.Equal(ids.Order(), seen.Order());
    }

    [Fact]
    public async Task An_endpoint_failing_for_five_days_is_disabled_its_owner_told_and_it_can_be_enabled_again()
    {
        await using var server = await TestServer.StartAsync(configure: o => o.Webhooks.AllowPrivateTargets = true);
        var device = await server.UserWithDeviceAsync();
        var key = (await server.Admin.CreateApiKeyAsync(device.Handle, "backend", "challenges:write webhooks:manage", CancellationToken.None)).Key;
        async Task<(HttpStatusCode Status, JsonElement Body)> Call(HttpMethod method, string path, object? body = null)
        {
            using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : TestDevice.JsonBody(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var response = await server.Http.SendAsync(request);
            return await TestServer.ReadAsync(response);
        }
        // Nothing listens on this port: every attempt is refused.
        var (_, hook) = await Call(HttpMethod.Post, "/v1/webhooks", new { url = $"http://127.0.0.1:{Ports.Reserve()}/gone", events = new[] { "challenge.*" } });
        var id = hook.GetProperty("id").GetString()!;
        async Task DecideOneAsync()
        {
            await Call(HttpMethod.Post, "/v1/challenges", new { action = "pay", userId = device.Handle, requiresHuman = false });
            using var decided = await device.DecideOnlyPendingAsync(Decisions.Approve);
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        async Task<JsonElement> EndpointWhenAsync(Func<JsonElement, bool> done)
        {
            using var cts = new CancellationTokenSource(Budget);
            while (true)
            {
                var (_, e) = await Call(HttpMethod.Get, $"/v1/webhooks/{id}");
                if (done(e))
                {
                    return e;
                }
                await Task.Delay(50, cts.Token);
            }
        }
        await DecideOneAsync();
        await EndpointWhenAsync(e => e.GetProperty("status").GetString() == "failing");
        server.Clock.Advance(TimeSpan.FromDays(4));
        await DecideOneAsync();
        Assert.Equal("failing", (await EndpointWhenAsync(e => e.TryGetProperty("failingSince", out _))).GetProperty("status").GetString());
        server.Clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
        await DecideOneAsync();
        var disabled = await EndpointWhenAsync(e => e.GetProperty("status").GetString() == "disabled");
        Assert.Contains("5 days", disabled.GetProperty("disabledReason").GetString());
        await server.Store.Database.SettleAuditAsync(default);
        var audit = await server.Store.Audit.ReadAsync(0, 1000, device.UserId, default);
        Assert.Contains(audit, row => System.Text.Encoding.UTF8.GetString(row.Entry).Contains("\"type\":\"webhook.disabled\"") &&
                                      System.Text.Encoding.UTF8.GetString(row.Entry).Contains(id));
        // Disabled: nothing more is queued for it, and enabling turns it back on.
        var (enabled, body) = await Call(HttpMethod.Post, $"/v1/webhooks/{id}/enable");
        Assert.Equal(HttpStatusCode.OK, enabled);
        Assert.Equal("active", body.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Without_the_operators_leave_loopback_and_private_targets_are_refused()
    {
        await using var strict = await TestServer.StartAsync();
        var device = await strict.UserWithDeviceAsync();
        var key = await strict.Admin.CreateApiKeyAsync(device.Handle, "backend", "webhooks:manage", CancellationToken.None);
        foreach (var url in new[] { "http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest", "http://localhost/x", "ftp://example.com/x" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks") { Content = TestDevice.JsonBody(new { url, events = new[] { "*" } }) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key.Key);
            using var response = await strict.Http.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{url}: {response.StatusCode}");
        }
        Assert.Empty(await strict.Store.Webhooks.ListEndpointsAsync(device.UserId, default));
    }

    [Fact]
    public async Task Unknown_events_and_a_missing_scope_are_refused()
    {
        var (_, key) = await OwnerAsync();
        var (status, problem) = await CallAsync(HttpMethod.Post, "/v1/webhooks", key, new { url = "http://127.0.0.1:9/x", events = new[] { "challenge.exploded" } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("unknown event", problem.GetProperty("detail").GetString());
        var device = await Server.UserWithDeviceAsync();
        var narrow = await Server.Admin.CreateApiKeyAsync(device.Handle, "narrow", "challenges:read", CancellationToken.None);
        Assert.Equal(HttpStatusCode.Forbidden, (await CallAsync(HttpMethod.Get, "/v1/webhooks", narrow.Key)).Status);
    }

    [Theory]
    [InlineData("ping")]
    [InlineData("push")]
    public async Task A_ciba_ping_or_push_agent_hears_of_the_decision_at_its_notification_endpoint(string mode)
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var port = Ports.Reserve();
        await Server.Admin.SetAgentDeliveryAsync(agent.ClientId, mode, $"http://127.0.0.1:{port}/ciba", CancellationToken.None);
        using var cts = new CancellationTokenSource(Budget);
        await using var receiver = await NodeScript.StartAsync("webhook-receiver.mjs", [port.ToString()], cts.Token);
        await receiver.ExpectAsync("LISTENING", cts.Token);

        // CIBA Core §7.1: a ping or push client must send client_notification_token.
        using (var missing = await Server.BcAuthorizeAsync(agent, new() { ["scope"] = "openid approve:action", ["login_hint"] = device.Handle }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        }
        using var asked = await Server.BcAuthorizeAsync(agent, new()
        {
            ["scope"] = "openid approve:action", ["login_hint"] = device.Handle, ["binding_message"] = "Ship it", ["client_notification_token"] = "cnt-" + mode + "-8f3a",
        });
        var authReqId = (await TestServer.ReadAsync(asked)).Body.GetProperty("auth_req_id").GetString()!;
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        var note = JsonDocument.Parse(await receiver.ExpectAsync("CIBA ", cts.Token)).RootElement;
        Assert.Equal($"Bearer cnt-{mode}-8f3a", note.GetProperty("authorization").GetString());
        var body = note.GetProperty("body");
        Assert.Equal(authReqId, body.GetProperty("auth_req_id").GetString());
        if (mode == "ping")
        {
            Assert.Single(body.EnumerateObject());
            using var token = await Server.TokenAsync(agent, authReqId);
            Assert.Equal(HttpStatusCode.OK, token.StatusCode);
        }
        else
        {
            // CIBA Core §10.3.1: the token response itself, with an ID token naming the request and binding the access token.
            Assert.Equal("Bearer", body.GetProperty("token_type").GetString());
            var idToken = body.GetProperty("id_token").GetString()!.Split('.')[1];
            var claims = JsonDocument.Parse(Assent.Protocol.Base64Url.Decode(idToken)).RootElement;
            Assert.Equal(authReqId, claims.GetProperty("urn:openid:params:jwt:claim:auth_req_id").GetString());
            var accessToken = body.GetProperty("access_token").GetString()!;
            var expected = Assent.Protocol.Base64Url.Encode(System.Security.Cryptography.SHA512.HashData(System.Text.Encoding.ASCII.GetBytes(accessToken))[..32]);
            Assert.Equal(expected, claims.GetProperty("at_hash").GetString());
            // Delivered once: the request is redeemed, polling gets nothing more.
            using var token = await Server.TokenAsync(agent, authReqId);
            Assert.Equal(HttpStatusCode.BadRequest, token.StatusCode);
        }
    }

    private async Task<JsonElement> WaitForDeliveryAsync(string key, string hook, Func<JsonElement, bool> done, CancellationToken ct)
    {
        while (true)
        {
            var (_, page) = await CallAsync(HttpMethod.Get, $"/v1/webhooks/{hook}/deliveries", key);
            var match = page.GetProperty("deliveries").EnumerateArray().FirstOrDefault(done);
            if (match.ValueKind == JsonValueKind.Object)
            {
                return match;
            }
            await Task.Delay(50, ct);
        }
    }
}
