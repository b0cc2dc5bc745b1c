using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Server.Common;

namespace Assent.Server.Tests;

/// <summary>A server that trusts X-Forwarded-For from loopback, so each test can be a caller of its own address.</summary>
public sealed class ProxiedServer : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(configure: o => o.Limits.TrustedProxies = ["127.0.0.1", "::1"]);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The limits of docs/deployment.md §10, at their defaults, each as a caller meets it.</summary>
public sealed class LimitTests(ProxiedServer fixture) : IClassFixture<ProxiedServer>
{
    private static int _addresses;

    private TestServer Server => fixture.Server;

    /// <summary>A documentation address (RFC 5737) no other test uses.</summary>
    private static string NewAddress() => $"198.51.100.{Interlocked.Increment(ref _addresses)}";

    /// <summary>Moves the clock to just after the start of a window of every limit, so a test's attempts share one.</summary>
    private void StartOfWindows()
    {
        var window = TimeSpan.FromMinutes(30);
        var now = Server.Clock.GetUtcNow();
        Server.Clock.Advance(window - TimeSpan.FromTicks(now.UtcTicks % window.Ticks) + TimeSpan.FromSeconds(1));
    }

    private static T From<T>(string address, T request) where T : HttpRequestMessage
    {
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", address);
        return request;
    }

    private Task<HttpResponseMessage> BcAuthorizeAsync(TestAgent agent, string address, string? secret = null)
    {
        var request = From(address, new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["scope"] = "openid approve:action", ["login_hint"] = agent.Owner }),
        });
        request.Headers.Authorization = TestServer.Basic(agent with { ClientSecret = secret ?? agent.ClientSecret });
        return Server.Http.SendAsync(request);
    }

    private async Task<List<JsonElement>> AuditAsync(string type, string subject) =>
        (await Server.Store.Audit.ReadAsync(0, 100_000, null, default))
        .Select(r => JsonDocument.Parse(r.Entry).RootElement.Clone())
        .Where(e => e.GetProperty("type").GetString() == type && e.GetProperty("subject").GetString() == subject)
        .ToList();

    private static int RetryAfterSeconds(HttpResponseMessage response)
    {
        var delta = response.Headers.RetryAfter?.Delta;
        Assert.True(delta is not null, "no Retry-After with a delay in seconds");
        return (int)delta.Value.TotalSeconds;
    }

    [Fact]
    public async Task An_agent_with_20_requests_waiting_for_a_user_gets_429_until_one_is_decided_and_creates_nothing()
    {
        StartOfWindows();
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        for (var i = 0; i < 20; i++)
        {
            await Server.AskAsync(agent, $"Request {i}");
        }

        for (var i = 0; i < 3; i++)
        {
            using var refused = await Server.BcAuthorizeAsync(agent, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner, ["binding_message"] = "one more" });
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("too_many_requests", await TestServer.ErrorOf(refused));
            Assert.InRange(RetryAfterSeconds(refused), 1, 60);
            Assert.Equal("no-store", refused.Headers.CacheControl?.ToString());
        }
        var pending = await device.PendingAsync();
        Assert.Equal(20, pending.Length);
        Assert.DoesNotContain(pending, p => p.GetProperty("binding_message").GetString() == "one more");

        // The cap is per agent: another agent of the same user still asks.
        await Server.AskAsync(await Server.AgentAsync(device.Handle), "from another agent");
        // A decision frees a place.
        var first = pending[0];
        using (var denied = await device.PostDecisionAsync(first.GetProperty("id").GetString()!, Decisions.Deny,
                   device.SignDecision(Decisions.Deny, first.GetProperty("payload").GetString()!)))
        {
            Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        }
        await Server.AskAsync(agent, "after a decision");

        // Three refusals, one audit entry, in the user's own trail.
        var audited = Assert.Single(await AuditAsync("limit.refused", $"pending_requests:{agent.ClientId}:{device.UserId}"));
        Assert.Equal(device.UserId, audited.GetProperty("user").GetString());
        Assert.Equal("pending_requests", audited.GetProperty("data").GetProperty("limit").GetString());
    }

    [Fact]
    public async Task Failed_client_authentication_backs_off_then_locks_out_the_client_and_the_address_and_audits_each_once()
    {
        StartOfWindows();
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var address = NewAddress();

        for (var i = 1; i <= 9; i++)
        {
            using var wrong = await BcAuthorizeAsync(agent, address, "sec_wrong");
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            Assert.Null(wrong.Headers.RetryAfter);
        }
        using (var tenth = await BcAuthorizeAsync(agent, address, "sec_wrong"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, tenth.StatusCode);
            Assert.Equal(1, RetryAfterSeconds(tenth));
        }
        // Backed off: even the right secret is refused unchecked, and the attempt counts.
        using (var early = await BcAuthorizeAsync(agent, address))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, early.StatusCode);
            Assert.Equal("invalid_client", await TestServer.ErrorOf(early));
            Assert.Equal(2, RetryAfterSeconds(early));
        }
        Assert.Empty(await device.PendingAsync());
        Server.Clock.Advance(TimeSpan.FromSeconds(3));
        using (var waited = await BcAuthorizeAsync(agent, address))
        {
            Assert.Equal(HttpStatusCode.OK, waited.StatusCode);
        }

        // Hammering through the backoff ends, at 50 failures in the window, in a 15-minute lockout.
        HttpResponseMessage? last = null;
        for (var attempt = 12; attempt <= 50; attempt++)
        {
            last?.Dispose();
            last = await BcAuthorizeAsync(agent, address, "sec_wrong");
            Assert.Equal(HttpStatusCode.Unauthorized, last.StatusCode);
        }
        Assert.InRange(RetryAfterSeconds(last!), 890, 900);
        last!.Dispose();
        Server.Clock.Advance(TimeSpan.FromMinutes(10));
        using (var locked = await BcAuthorizeAsync(agent, address))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, locked.StatusCode);
            Assert.InRange(RetryAfterSeconds(locked), 290, 300);
        }
        // The address is locked out for every client it speaks for; another address is not.
        var neighbour = await Server.AgentAsync(device.Handle);
        using (var fromLockedAddress = await BcAuthorizeAsync(neighbour, address))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, fromLockedAddress.StatusCode);
        }
        using (var elsewhere = await BcAuthorizeAsync(neighbour, NewAddress()))
        {
            Assert.Equal(HttpStatusCode.OK, elsewhere.StatusCode);
        }
        Server.Clock.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));
        using (var after = await BcAuthorizeAsync(agent, address))
        {
            Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        }

        // One entry per key for the first refusal and one for the lockout, however many attempts were refused;
        // the agent's owner sees those of the agent.
        foreach (var subject in new[] { $"client_auth:client:{agent.ClientId}", $"client_auth:address:{address}" })
        {
            Assert.Single(await AuditAsync("limit.refused", subject));
            Assert.Single(await AuditAsync("limit.locked_out", subject));
        }
        Assert.Equal(device.UserId, (await AuditAsync("limit.locked_out", $"client_auth:client:{agent.ClientId}"))[0].GetProperty("user").GetString());
    }

    [Fact]
    public async Task An_unknown_client_id_is_counted_like_a_known_one()
    {
        StartOfWindows();
        var address = NewAddress();
        var nobody = new TestAgent("agt_nobody_" + Guid.NewGuid().ToString("N")[..8], "sec_guess", "alice");
        for (var i = 0; i < 10; i++)
        {
            using var wrong = await BcAuthorizeAsync(nobody, address);
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }
        using var refused = await BcAuthorizeAsync(nobody, NewAddress());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
    }

    private async Task<HttpResponseMessage> BindAsync(TestDevice device, string address, string userCode) =>
        await Server.Http.SendAsync(From(address, device.Signed(HttpMethod.Post, "/authenticator/device-login",
            Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { user_code = userCode })))));

    /// <summary>A user code no sign-in is waiting for.</summary>
    private static string WrongCode(int i) => "BCDF-" + new string(Ids.UserCodeAlphabet[i % 20], 3) + Ids.UserCodeAlphabet[i / 20 % 20];

    [Fact]
    public async Task Ten_wrong_user_codes_from_one_address_refuse_the_next_even_a_right_one_until_the_window_ends()
    {
        StartOfWindows();
        var address = NewAddress();
        var started = await Session.StartAsync(Server);
        var userCode = started.GetProperty("user_code").GetString()!;
        for (var i = 0; i < 10; i++)
        {
            // Each guess from a different user: the address alone is counted here.
            using var wrong = await BindAsync(await Server.UserWithDeviceAsync(), address, WrongCode(i));
            Assert.Equal(HttpStatusCode.NotFound, wrong.StatusCode);
        }
        var device = await Server.UserWithDeviceAsync();
        using (var refused = await BindAsync(device, address, userCode))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.InRange(RetryAfterSeconds(refused), 500, 600);
        }
        // Refused unchecked: the code is still unbound, and binds from elsewhere.
        using (var bound = await BindAsync(device, NewAddress(), userCode))
        {
            Assert.Equal(HttpStatusCode.Created, bound.StatusCode);
        }
        Assert.Single(await AuditAsync("limit.refused", $"user_code:address:{address}"));
    }

    [Fact]
    public async Task Ten_wrong_user_codes_for_one_account_from_many_addresses_refuse_the_next()
    {
        StartOfWindows();
        var device = await Server.UserWithDeviceAsync();
        for (var i = 0; i < 10; i++)
        {
            using var wrong = await BindAsync(device, NewAddress(), WrongCode(i + 100));
            Assert.Equal(HttpStatusCode.NotFound, wrong.StatusCode);
        }
        var userCode = (await Session.StartAsync(Server)).GetProperty("user_code").GetString()!;
        using (var refused = await BindAsync(device, NewAddress(), userCode))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }
        // The next window: that code has expired meanwhile (it lives as long), a new one binds.
        Server.Clock.Advance(TimeSpan.FromMinutes(10));
        userCode = (await Session.StartAsync(Server)).GetProperty("user_code").GetString()!;
        using (var later = await BindAsync(device, NewAddress(), userCode))
        {
            Assert.Equal(HttpStatusCode.Created, later.StatusCode);
        }
        Assert.Equal(device.UserId, Assert.Single(await AuditAsync("limit.refused", $"user_code:user:{device.UserId}")).GetProperty("user").GetString());
    }

    private async Task<HttpResponseMessage> EnrollAsync(string address, string code)
    {
        var seed = Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed));
        return await Server.Http.SendAsync(From(address, new HttpRequestMessage(HttpMethod.Post, "/authenticator/enroll")
        {
            Content = TestDevice.JsonBody(new Dictionary<string, string>
            {
                ["code"] = code,
                ["public_key"] = publicKey,
                ["proof"] = Base64Url.Encode(Ed25519.Sign(seed, DeviceSignatures.EnrollmentSigningInput(code, publicKey))),
            }),
        }));
    }

    private Task<HttpResponseMessage> RegistrationOptionsAsync(string address, string code) =>
        Server.Http.SendAsync(From(address, new HttpRequestMessage(HttpMethod.Post, "/webauthn/register/options")
        {
            Content = TestDevice.JsonBody(new Dictionary<string, string> { ["code"] = code }),
        }));

    [Fact]
    public async Task Ten_wrong_enrolment_codes_from_one_address_refuse_the_next_for_devices_and_passkeys_alike()
    {
        StartOfWindows();
        var address = NewAddress();
        var invite = await Server.InviteAsync("u" + Guid.NewGuid().ToString("N")[..10]);
        for (var i = 0; i < 10; i++)
        {
            // Guesses through either door count together.
            using var wrong = i % 2 == 0 ? await EnrollAsync(address, $"AAAA-BBBB-CCCC-{i:D4}") : await RegistrationOptionsAsync(address, $"AAAA-BBBB-CCCC-{i:D4}");
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }
        using (var refused = await EnrollAsync(address, invite.Code))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
        }
        using (var refusedOptions = await RegistrationOptionsAsync(address, invite.Code))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refusedOptions.StatusCode);
        }
        // Nothing was spent: the invite still enrols, from elsewhere.
        using (var enrolled = await EnrollAsync(NewAddress(), invite.Code))
        {
            Assert.Equal(HttpStatusCode.Created, enrolled.StatusCode);
        }
        Assert.Single(await AuditAsync("limit.refused", $"enrolment_code:address:{address}"));
    }

    [Theory]
    [InlineData("/oauth/device/code")]
    [InlineData("/webauthn/signin/options")]
    public async Task Thirty_unauthenticated_creations_a_minute_from_one_address_are_allowed_and_the_next_is_429(string path)
    {
        var address = NewAddress();
        HttpRequestMessage Request(string from) => From(from, new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = path.StartsWith("/oauth", StringComparison.Ordinal)
                ? new FormUrlEncodedContent(new Dictionary<string, string> { ["client_id"] = "assent-cli" })
                : new StringContent("{}", Encoding.UTF8, "application/json"),
        });
        var table = path.StartsWith("/oauth", StringComparison.Ordinal) ? "device_authorizations" : "webauthn_challenges";
        for (var i = 0; i < 30; i++)
        {
            using var ok = await Server.Http.SendAsync(Request(address));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        var rows = await CountRowsAsync(table);
        using (var refused = await Server.Http.SendAsync(Request(address)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.InRange(RetryAfterSeconds(refused), 1, 60);
            var (_, body) = await TestServer.ReadAsync(refused);
            if (table == "device_authorizations")
            {
                Assert.Equal("too_many_requests", body.GetProperty("error").GetString());
            }
            else
            {
                Assert.Equal(429, body.GetProperty("status").GetInt32());
            }
        }
        Assert.Equal(rows, await CountRowsAsync(table));
        // Another address has its own budget.
        using var elsewhere = await Server.Http.SendAsync(Request(NewAddress()));
        Assert.Equal(HttpStatusCode.OK, elsewhere.StatusCode);
    }

    private Task<long> CountRowsAsync(string table) =>
        Server.Store.Database.ReadAsync(async s => (await s.AllAsync($"SELECT COUNT(*) FROM {table}", r => r.GetInt64(0)))[0], default);

    [Fact]
    public async Task A_fifth_stream_of_one_device_ends_its_oldest_and_the_other_four_stay_live()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var streams = new List<(HttpResponseMessage Response, StreamReader Reader)>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                var response = await Server.Http.SendAsync(device.Signed(HttpMethod.Get, "/authenticator/stream"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
                streams.Add((response, reader));
                Assert.Equal(": ready", await reader.ReadLineAsync(cts.Token));
                Assert.Equal("", await reader.ReadLineAsync(cts.Token));
            }

            // The oldest ends, saying why (a comment; a keep-alive may come first).
            var rest = new List<string>();
            while (await streams[0].Reader.ReadLineAsync(cts.Token) is { } line)
            {
                rest.Add(line);
            }
            Assert.Equal(": superseded by a newer stream of this device", rest.Last(l => l.Length > 0));
            Assert.Equal(4, Server.Service<Approvals.ApprovalHub>().StreamCount(device.DeviceId));

            await Server.AskAsync(agent, "Heard by four streams");
            foreach (var (_, reader) in streams.Skip(1))
            {
                string? line;
                do
                {
                    line = await reader.ReadLineAsync(cts.Token);
                }
                while (line is not null && (line.Length == 0 || line.StartsWith(':')));
                Assert.Equal("event: approval", line);
            }
            Assert.Single(await AuditAsync("limit.refused", "streams:" + device.DeviceId));
        }
        finally
        {
            foreach (var (response, reader) in streams)
            {
                reader.Dispose();
                response.Dispose();
            }
        }
    }
}

/// <summary>Without trusted proxies, X-Forwarded-For is anyone's to write, so the limits ignore it.</summary>
public sealed class ForwardedForTests
{
    [Fact]
    public async Task Without_trusted_proxies_a_forged_X_Forwarded_For_does_not_escape_a_per_address_limit()
    {
        await using var server = await TestServer.StartAsync();
        for (var i = 0; i < 10; i++)
        {
            using var wrong = await server.Http.SendAsync(Forged(i, "/webauthn/register/options", "{\"code\":\"AAAA-BBBB-CCCC-DDDD\"}"));
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }
        using var refused = await server.Http.SendAsync(Forged(99, "/webauthn/register/options", "{\"code\":\"AAAA-BBBB-CCCC-DDDD\"}"));
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
    }

    private static HttpRequestMessage Forged(int i, string path, string json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", $"203.0.113.{i}");
        return request;
    }

    [Theory]
    [InlineData("not-an-address")]
    [InlineData("10.0.0.0/33")]
    public void A_trusted_proxy_that_is_not_an_address_or_network_stops_the_start(string proxy)
    {
        var options = new AssentOptions { Limits = { TrustedProxies = [proxy] } };
        Assert.Contains("TrustedProxies", options.Validate());
    }

    [Fact]
    public void Limits_out_of_range_stop_the_start()
    {
        Assert.Null(new AssentOptions().Validate());
        Assert.NotNull(new AssentOptions { Limits = { MaxPendingPerAgentPerUser = 0 } }.Validate());
        Assert.NotNull(new AssentOptions { Limits = { ClientAuthLockoutAfter = 10 } }.Validate());
        Assert.NotNull(new AssentOptions { Limits = { UserCodeWindow = TimeSpan.Zero } }.Validate());
        Assert.NotNull(new AssentOptions { Limits = { StreamsPerDevice = 0 } }.Validate());
    }
}
