using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Server.Common;
using Assent.Server.Push;
using Assent.Server.Storage;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Tests;

/// <summary>
/// Its own server: pushes may go to loopback (the stand-in), one sender (so requests are pushed in the order they were
/// made) and a cap of three subscriptions per user.
/// </summary>
public sealed class PushServer : IAsyncLifetime
{
    public const int MaxSubscriptions = 3;

    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(configure: o =>
    {
        o.Push.AllowLoopback = true;
        o.Push.Senders = 1;
        o.Push.MaxSubscriptionsPerUser = MaxSubscriptions;
    });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Web Push to approvers (docs/concepts.md, "Web Push"): a subscription registered through the web app's API receives each new
/// request of its user, encrypted for it (RFC 8291) and signed with the server's VAPID key (RFC 8292). The push service
/// is tests/interop/push-service.mjs, a stand-in that decrypts with http_ece and checks the VAPID JWT with jose.
/// </summary>
public sealed class PushTests(PushServer fixture) : IClassFixture<PushServer>
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(20);

    private TestServer Server => fixture.Server;

    [Fact]
    public async Task A_new_request_is_pushed_to_the_users_subscription_encrypted_for_it_and_signed_with_vapid()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var service = await PushService.StartAsync(cts.Token);
        var alice = await Server.UserWithDeviceAsync();
        var bob = await Server.UserWithDeviceAsync();
        var cookie = await WebSessionCookieAsync(alice);
        var browser = BrowserSubscription.New();
        await service.RegisterAsync("alice", browser, 201, cts.Token);

        using (var subscribed = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, browser.Body(service.Endpoint("alice"))))
        {
            Assert.Equal(HttpStatusCode.Created, subscribed.StatusCode);
        }
        var status = await GetStatusAsync(cookie);
        var key = status.GetProperty("application_server_key").GetString()!;
        var listed = Assert.Single(status.GetProperty("subscriptions").EnumerateArray());
        Assert.Equal(alice.DeviceId, listed.GetProperty("device_id").GetString());
        Assert.True(listed.GetProperty("this_device").GetBoolean());
        // The capability URL is never served back: only the push service's origin.
        Assert.Equal(service.Origin, listed.GetProperty("push_service").GetString());

        // Bob's request first: it must reach nobody (one sender, so it is handled before Alice's).
        await Server.AskAsync(await Server.AgentAsync(bob.Handle), "Bob's request");
        var agent = await Server.AgentAsync(alice.Handle, name: "Payments bot");
        await Server.AskAsync(agent, "Pay invoice 42 to ACME", """[{"type":"payment","amount":"125.00","currency":"USD","recipient":"ACME"}]""");
        var approvalId = Assert.Single(await alice.PendingAsync()).GetProperty("id").GetString()!;

        var push = Assert.Single(await service.ReceivedAsync(1, cts.Token));
        Assert.Equal("alice", push.GetProperty("name").GetString());
        var vapid = push.GetProperty("vapid");
        Assert.True(vapid.GetProperty("ok").GetBoolean(), vapid.GetRawText());
        Assert.Equal(service.Origin, vapid.GetProperty("claims").GetProperty("aud").GetString());
        // The key the push was signed with is the one the browser subscribed with.
        Assert.Equal(key, push.GetProperty("vapid_key").GetString());
        Assert.Equal("aes128gcm", push.GetProperty("content_encoding").GetString());
        Assert.Equal("high", push.GetProperty("urgency").GetString());
        var ttl = int.Parse(push.GetProperty("ttl").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(ttl, 290, 300);
        Assert.False(push.TryGetProperty("decrypt_error", out var error), error.ToString());

        var payload = JsonDocument.Parse(push.GetProperty("payload").GetString()!).RootElement;
        Assert.Equal(approvalId, payload.GetProperty("id").GetString());
        Assert.Equal("Approval request from Payments bot", payload.GetProperty("title").GetString());
        Assert.Equal("125.00 USD\nPay invoice 42 to ACME", payload.GetProperty("body").GetString());
        Assert.Equal($"/app#/requests/{approvalId}", payload.GetProperty("url").GetString());
        // Only what the notification shows: no payload to sign, no scope, no handle.
        Assert.Equal(["body", "id", "title", "url"], payload.EnumerateObject().Select(p => p.Name).Order().ToArray());
    }

    [Fact]
    public async Task A_subscription_the_push_service_says_is_gone_is_removed()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var service = await PushService.StartAsync(cts.Token);
        var alice = await Server.UserWithDeviceAsync();
        var cookie = await WebSessionCookieAsync(alice);
        var browser = BrowserSubscription.New();
        await service.RegisterAsync("gone", browser, 410, cts.Token);
        using (var subscribed = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, browser.Body(service.Endpoint("gone"))))
        {
            Assert.Equal(HttpStatusCode.Created, subscribed.StatusCode);
        }

        await Server.AskAsync(await Server.AgentAsync(alice.Handle));
        await service.ReceivedAsync(1, cts.Token);

        while ((await Server.Store.PushSubscriptions.ListActiveAsync(alice.UserId, cts.Token)).Count > 0)
        {
            await Task.Delay(20, cts.Token);
        }
        Assert.Empty((await GetStatusAsync(cookie)).GetProperty("subscriptions").EnumerateArray());
    }

    [Fact]
    public async Task A_subscription_whose_push_service_fails_otherwise_is_kept()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var service = await PushService.StartAsync(cts.Token);
        var alice = await Server.UserWithDeviceAsync();
        var cookie = await WebSessionCookieAsync(alice);
        var browser = BrowserSubscription.New();
        await service.RegisterAsync("failing", browser, 500, cts.Token);
        using (var subscribed = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, browser.Body(service.Endpoint("failing"))))
        {
            Assert.Equal(HttpStatusCode.Created, subscribed.StatusCode);
        }
        var agent = await Server.AgentAsync(alice.Handle);
        var log = new CapturedLog();
        Server.Service<ILoggerFactory>().AddProvider(log);

        await Server.AskAsync(agent, "first");
        await service.ReceivedAsync(1, cts.Token);
        // One sender: the second push goes out only after the first one's answer was handled.
        await Server.AskAsync(agent, "second");
        var both = await service.ReceivedAsync(2, cts.Token);

        Assert.Equal(2, both.Length);
        Assert.Single((await GetStatusAsync(cookie)).GetProperty("subscriptions").EnumerateArray());
        // Logged with the push service's origin and the status; never the capability path, never the keys.
        var refused = log.Entries.Where(e => e.Category == typeof(PushNotifier).FullName && e.Level == LogLevel.Warning).Select(e => e.Message).ToArray();
        Assert.Contains(refused, m => m.Contains(service.Origin, StringComparison.Ordinal) && m.Contains("500", StringComparison.Ordinal));
        Assert.All(refused, m =>
        {
            Assert.DoesNotContain("/push/failing", m, StringComparison.Ordinal);
            Assert.DoesNotContain(Base64Url.Encode(browser.Auth), m, StringComparison.Ordinal);
            Assert.DoesNotContain(Base64Url.Encode(browser.PublicKey), m, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Subscribing_again_refreshes_the_same_subscription_and_unsubscribing_removes_it()
    {
        var alice = await Server.UserWithDeviceAsync();
        var cookie = await WebSessionCookieAsync(alice);
        var browser = BrowserSubscription.New();
        var endpoint = "http://127.0.0.1:9/push/refresh";
        string id;
        using (var first = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, browser.Body(endpoint)))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
            id = (await TestServer.ReadAsync(first)).Body.GetProperty("id").GetString()!;
        }
        using (var again = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, BrowserSubscription.New().Body(endpoint)))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.Equal(id, (await TestServer.ReadAsync(again)).Body.GetProperty("id").GetString());
        }
        var stored = Assert.Single(await Server.Store.PushSubscriptions.ListActiveAsync(alice.UserId, default));
        Assert.NotEqual(browser.Auth, stored.Auth);

        using (var off = await SendAsync(HttpMethod.Post, "/webauthn/push/unsubscribe", cookie, new { endpoint }))
        {
            Assert.Equal(HttpStatusCode.NoContent, off.StatusCode);
        }
        using (var twice = await SendAsync(HttpMethod.Post, "/webauthn/push/unsubscribe", cookie, new { endpoint }))
        {
            Assert.Equal(HttpStatusCode.NotFound, twice.StatusCode);
        }
        Assert.Empty(await Server.Store.PushSubscriptions.ListActiveAsync(alice.UserId, default));
    }

    [Fact]
    public async Task A_user_holds_at_most_the_configured_number_of_subscriptions_and_deletes_only_their_own()
    {
        var alice = await Server.UserWithDeviceAsync();
        var bob = await Server.UserWithDeviceAsync();
        var cookie = await WebSessionCookieAsync(alice);
        var ids = new List<string>();
        for (var i = 0; i < PushServer.MaxSubscriptions; i++)
        {
            using var created = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, BrowserSubscription.New().Body($"http://127.0.0.1:9/push/cap{i}"));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            ids.Add((await TestServer.ReadAsync(created)).Body.GetProperty("id").GetString()!);
        }
        using (var over = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, BrowserSubscription.New().Body("http://127.0.0.1:9/push/cap-over")))
        {
            Assert.Equal(HttpStatusCode.Conflict, over.StatusCode);
        }
        using (var foreign = await SendAsync(HttpMethod.Delete, $"/webauthn/push/subscriptions/{ids[0]}", await WebSessionCookieAsync(bob)))
        {
            Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        }
        Assert.Equal(PushServer.MaxSubscriptions, (await Server.Store.PushSubscriptions.ListActiveAsync(alice.UserId, default)).Count);
        using (var own = await SendAsync(HttpMethod.Delete, $"/webauthn/push/subscriptions/{ids[0]}", cookie))
        {
            Assert.Equal(HttpStatusCode.NoContent, own.StatusCode);
        }
        Assert.Equal(PushServer.MaxSubscriptions - 1, (await Server.Store.PushSubscriptions.ListActiveAsync(alice.UserId, default)).Count);
    }

    public static TheoryData<string, string, string?, string?> BadSubscriptions => new()
    {
        { "no endpoint", "", null, null },
        { "not https", "http://push.example/x", null, null },
        { "a private address", "https://10.1.2.3/push/x", null, null },
        { "a link-local address", "https://[fe80::1]/push/x", null, null },
        { "user info", "https://user:pw@push.example/x", null, null },
        { "too long", "https://push.example/" + new string('a', PushTargets.MaxEndpointLength), null, null },
        { "a compressed point", "https://push.example/x", Base64Url.Encode([0x02, .. new byte[32]]), null },
        { "a point off the curve", "https://push.example/x", Base64Url.Encode([0x04, .. Enumerable.Repeat((byte)1, 64)]), null },
        { "a short auth secret", "https://push.example/x", null, Base64Url.Encode(new byte[15]) },
        { "auth not base64url", "https://push.example/x", null, "!!!!" },
    };

    [Theory]
    [MemberData(nameof(BadSubscriptions))]
    public async Task A_bad_subscription_is_refused_with_400_and_stores_nothing(string why, string endpoint, string? p256dh, string? auth)
    {
        var alice = await Server.UserWithDeviceAsync();
        var cookie = await WebSessionCookieAsync(alice);
        var good = BrowserSubscription.New();
        var body = new { endpoint, keys = new { p256dh = p256dh ?? Base64Url.Encode(good.PublicKey), auth = auth ?? Base64Url.Encode(good.Auth) } };

        using var response = await SendAsync(HttpMethod.Post, "/webauthn/push/subscriptions", cookie, body);

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{why}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.Empty(await Server.Store.PushSubscriptions.ListActiveAsync(alice.UserId, default));
    }

    [Fact]
    public async Task Without_a_session_nothing_is_served_or_stored()
    {
        using var status = await Server.Http.GetAsync("/webauthn/push");
        Assert.Equal(HttpStatusCode.Unauthorized, status.StatusCode);
        using var subscribe = await Server.Http.PostAsync("/webauthn/push/subscriptions", TestDevice.JsonBody(BrowserSubscription.New().Body("http://127.0.0.1:9/push/anon")));
        Assert.Equal(HttpStatusCode.Unauthorized, subscribe.StatusCode);
    }

    [Fact]
    public void A_loopback_endpoint_is_refused_unless_the_operator_allows_it()
    {
        var options = new PushOptions();
        Assert.NotNull(PushTargets.EndpointProblem("http://127.0.0.1:9/push/x", options));
        Assert.NotNull(PushTargets.EndpointProblem("https://localhost/push/x", options));
        Assert.False(PushTargets.Allowed(IPAddress.Loopback, options));
        Assert.Null(PushTargets.EndpointProblem("https://push.example/x", options));
        options.AllowLoopback = true;
        Assert.Null(PushTargets.EndpointProblem("http://127.0.0.1:9/push/x", options));
        Assert.True(PushTargets.Allowed(IPAddress.Loopback, options));
        // Still no plain http elsewhere, and still no private network.
        Assert.NotNull(PushTargets.EndpointProblem("http://push.example/x", options));
        Assert.False(PushTargets.Allowed(IPAddress.Parse("192.168.1.10"), options));
    }

    [Fact]
    public async Task The_vapid_key_pair_is_made_once_and_every_node_loads_the_same_one()
    {
        var keys = Server.Service<VapidKeys>();
        var master = Keys.MasterKey.Load(Server.Options);
        // Another node on the same database: it loads the stored pair rather than making one.
        var other = await VapidKeys.LoadAsync(Server.Store.Meta, master, default);
        Assert.Equal(keys.PublicKey, other.PublicKey);
        Assert.Equal(keys.PrivateKey, other.PrivateKey);
        Assert.Equal(65, Base64Url.Decode(keys.PublicKey).Length);
        // Sealed at rest: the stored value does not contain the private scalar.
        var stored = (await Server.Store.Meta.GetAsync(VapidKeys.MetaKey, default))!;
        Assert.False(stored.AsSpan().IndexOf(Base64Url.Decode(keys.PrivateKey)) >= 0);
    }

    [Fact]
    public void The_notification_text_is_cut_short_and_never_splits_a_character()
    {
        var approval = new ApprovalRecord("apr_1", [], ApprovalKinds.DeviceLogin, "cli", "u", "openid", new string('x', 200) + "😀", null, null, [],
            ApprovalState.Pending, 0, 1);
        var payload = PushNotifier.Payload(approval, new string('n', 100));
        Assert.Equal("Sign-in request from " + new string('n', PushNotifier.MaxClientNameLength - 1) + "…", payload.Title);
        Assert.Equal(PushNotifier.MaxMessageLength, payload.Body.Length);
        Assert.Equal("x…", PushNotifier.Cut("x😀y", 3));
    }

    /// <summary>A web app session for the device's user, as a passkey sign-in would open it.</summary>
    private async Task<string> WebSessionCookieAsync(TestDevice device)
    {
        var token = Ids.OrderedHandle(Server.Clock.GetUtcNow());
        var now = Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await Server.Store.Sessions.CreateWebSessionAsync(new WebSessionRecord(Ids.HandleKey(token), device.UserId, device.DeviceId, now, now + 600_000), now,
            new AuditEvent(AuditTypes.SessionCreated, device.UserId, device.DeviceId, device.UserId), default);
        return $"{Server.Options.SessionCookieName}={token}";
    }

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string cookie, object? body = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = body is null ? null : TestDevice.JsonBody(body) };
        request.Headers.Add("Cookie", cookie);
        return Server.Http.SendAsync(request);
    }

    private async Task<JsonElement> GetStatusAsync(string cookie)
    {
        using var response = await SendAsync(HttpMethod.Get, "/webauthn/push", cookie);
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.OK, status);
        return body;
    }
}

/// <summary>Every log entry the server writes, whatever its level.</summary>
internal sealed class CapturedLog : ILoggerProvider
{
    public sealed record Entry(string Category, LogLevel Level, string Message);

    public System.Collections.Concurrent.ConcurrentQueue<Entry> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            log.Entries.Enqueue(new Entry(category, logLevel, formatter(state, exception)));
    }
}

/// <summary>What a browser makes when it subscribes (RFC 8291 §2): a P-256 key pair and a 16-byte authentication secret.</summary>
internal sealed record BrowserSubscription(byte[] PrivateKey, byte[] PublicKey, byte[] Auth)
{
    public static BrowserSubscription New()
    {
        using var ecdh = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var p = ecdh.ExportParameters(includePrivateParameters: true);
        return new(p.D!, [0x04, .. p.Q.X!, .. p.Q.Y!], RandomNumberGenerator.GetBytes(16));
    }

    /// <summary>As <c>PushSubscription.toJSON()</c> writes it.</summary>
    public object Body(string endpoint) => new
    {
        endpoint,
        expirationTime = (object?)null,
        keys = new { p256dh = Base64Url.Encode(PublicKey), auth = Base64Url.Encode(Auth) },
    };
}

/// <summary>tests/interop/push-service.mjs: a push service stand-in on a loopback port.</summary>
internal sealed class PushService : IAsyncDisposable
{
    private readonly NodeScript _node;
    private readonly HttpClient _http;

    private PushService(NodeScript node, int port)
    {
        _node = node;
        Origin = $"http://127.0.0.1:{port}";
        _http = new HttpClient { BaseAddress = new Uri(Origin), Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Origin { get; }

    public string Endpoint(string name) => $"{Origin}/push/{name}";

    public static async Task<PushService> StartAsync(CancellationToken ct)
    {
        var node = await NodeScript.StartAsync("push-service.mjs", [], ct);
        var line = await node.ExpectAsync("{\"listening\":", ct, keepPrefix: true);
        return new PushService(node, JsonDocument.Parse(line).RootElement.GetProperty("listening").GetInt32());
    }

    /// <summary>Hands the stand-in the browser's private key and auth secret, and what a push to it answers.</summary>
    public async Task RegisterAsync(string name, BrowserSubscription browser, int status, CancellationToken ct)
    {
        using var response = await _http.PutAsync($"/subscriptions/{name}",
            TestDevice.JsonBody(new { private_key = Base64Url.Encode(browser.PrivateKey), auth = Base64Url.Encode(browser.Auth), status }), ct);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
    }

    /// <summary>Waits until at least <paramref name="count"/> pushes arrived; returns all of them.</summary>
    public async Task<JsonElement[]> ReceivedAsync(int count, CancellationToken ct)
    {
        while (true)
        {
            var all = JsonDocument.Parse(await _http.GetStringAsync("/received", ct)).RootElement.EnumerateArray().Select(e => e.Clone()).ToArray();
            if (all.Length >= count)
            {
                return all;
            }
            await Task.Delay(20, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _node.DisposeAsync();
    }
}
