using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Tests.Storage;
using Xunit.Abstractions;

namespace Assent.Server.Tests.Processes;

/// <summary>
/// Webhook delivery (docs/webhooks.md §4) under faults, with real server processes and the real receiver of
/// tests/interop/webhook-receiver.mjs (signatures checked by the third-party <c>standardwebhooks</c> package): a node
/// killed with deliveries queued and with deliveries in flight, two PostgreSQL nodes sharing one outbox, a receiver that
/// hangs up. Each ends with a ledger: the receiver's arrivals per webhook-id against the delivery log's attempts.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DeliveryFaultTests(PostgresCluster cluster, ITestOutputHelper output)
{
    private const string Scopes = "challenges:write challenges:read webhooks:manage";

    /// <summary>Loopback receivers allowed; one attempt may take 10 s, so a held answer of a few seconds is a success.</summary>
    private static Action<ProcessStartInfo> Webhooks(int maxInFlight = 64) => start =>
    {
        start.Environment["Assent__Webhooks__AllowPrivateTargets"] = "true";
        start.Environment["Assent__Webhooks__Timeout"] = "00:00:10";
        start.Environment["Assent__Webhooks__MaxInFlight"] = maxInFlight.ToString(CultureInfo.InvariantCulture);
        start.Environment["Assent__Limits__MaxPendingPerAgentPerUser"] = "5000";
    };

    [Fact]
    public async Task A_server_killed_with_deliveries_queued_and_in_flight_delivers_every_event_after_restart_and_none_twice_in_one_attempt()
    {
        var dir = Directory.CreateTempSubdirectory("assent-delivery-").FullName;
        var (port, receiverPort) = (Ports.Reserve(), Ports.Reserve());
        var issuer = $"http://localhost:{port}";
        var (invite, key) = await ProvisionAsync(dir, issuer, null);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        ProcessDevice device;
        string hook, secret;

        // 1. The receiver is down: five decisions queue their deliveries, the first attempts fail, and the server is killed.
        await using (var node = await ServerProcess.StartAsync(dir, port, issuer, configure: Webhooks()))
        {
            device = await ProcessDevice.EnrollAsync(node.Http, invite);
            // The receiver holds every answer 3 s: long enough that a kill finds the attempts in flight, well within the 10 s timeout.
            (hook, secret) = await RegisterAsync(node.Http, key, $"http://127.0.0.1:{receiverPort}/slow?ms=3000");
            for (var i = 0; i < 5; i++)
            {
                await ApproveChallengeAsync(node.Http, key, device, $"queued {i}");
            }
            await WaitUntilAsync(async () => (await LogAsync(node.Http, key, hook)).Any(d => d.Error is not null), TimeSpan.FromSeconds(30),
                () => "a failed first attempt in the delivery log\n" + node.Output);
            node.KillHard();
        }
        var afterFirstKill = await StoredLogAsync(dir, issuer, null, hook);
        Assert.Equal(5, afterFirstKill.Count);
        Assert.All(afterFirstKill.Values, d => Assert.Equal(DeliveryState.Pending, d.State));
        Assert.Contains(afterFirstKill.Values, d => d.Attempts > 0);

        // 2. The receiver is up; the restarted server sends the queued five and three new events, and is killed while the
        //    receiver holds their answers.
        await using var receiver = await Receiver.StartAsync(receiverPort, secret, cts.Token);
        IReadOnlyList<Arrival> beforeSecondKill;
        await using (var node = await ServerProcess.StartAsync(dir, port, issuer, configure: Webhooks()))
        {
            for (var i = 0; i < 3; i++)
            {
                await ApproveChallengeAsync(node.Http, key, device, $"in flight {i}");
            }
            var events = (await LogAsync(node.Http, key, hook)).Select(d => d.EventId).ToList();
            Assert.Equal(8, events.Count);
            await WaitUntilAsync(() => Task.FromResult(events.All(receiver.Arrived)), TimeSpan.FromSeconds(60),
                () => $"every event at the receiver before the second kill\n{receiver.Output}\n{node.Output}");
            node.KillHard();
            beforeSecondKill = receiver.Arrivals;
        }
        var afterSecondKill = await StoredLogAsync(dir, issuer, null, hook);

        // 3. Restarted with the receiver up: every event is delivered. An attempt whose outcome the kill lost is made again
        //    once its lease has run out (the timeout and 30 s), so this takes about 40 s.
        await using (var node = await ServerProcess.StartAsync(dir, port, issuer, configure: Webhooks()))
        {
            var log = await WaitUntilAsync(() => LogAsync(node.Http, key, hook), l => l.Count == 8 && l.All(d => d.Status == "delivered"),
                TimeSpan.FromSeconds(120), l => $"every delivery delivered: {Describe(l)}\n{receiver.Output}\n{node.Output}");
            var all = receiver.Arrivals;
            var afterRestart = all.Skip(beforeSecondKill.Count).ToList();
            output.WriteLine($"arrivals: {beforeSecondKill.Count} before the second kill, {afterRestart.Count} after the restart; log: {Describe(log)}");

            var lost = 0;
            foreach (var d in log)
            {
                // Attempts recorded by the first server (the three events of the second phase did not exist yet).
                var first = afterFirstKill.TryGetValue(d.EventId, out var queued) ? queued.Attempts : 0;
                var second = afterSecondKill[d.EventId].Attempts;
                var inFlight = beforeSecondKill.Count(a => a.Id == d.EventId);
                var resent = afterRestart.Count(a => a.Id == d.EventId);
                // Every event arrived, and in the second phase once: one attempt at a time, none sent twice.
                Assert.True(inFlight + resent >= 1, $"{d.EventId} never arrived");
                Assert.True(inFlight <= 1, $"{d.EventId} arrived {inFlight} times before the second kill");
                // What the second server recorded of its attempts: arrivals, less at most the one the kill cut off.
                var recorded = second - first;
                Assert.True(inFlight - recorded is 0 or 1, $"{d.EventId}: {inFlight} arrivals, {recorded} recorded attempts before the second kill");
                lost += inFlight - recorded;
                // After the restart, each attempt arrived once and each arrival is a recorded attempt: nothing twice.
                Assert.True(resent == d.Attempts - second, $"{d.EventId}: {resent} arrivals after the restart, {d.Attempts - second} attempts recorded");
                // Sent again only when the kill had lost its outcome; an event already delivered was not sent again.
                Assert.Equal(afterSecondKill[d.EventId].State == DeliveryState.Delivered ? 0 : 1, resent);
            }
            // The second kill did cut attempts off in flight (else this test proved nothing about them).
            Assert.True(lost >= 1, "no attempt was in flight at the second kill");
            Assert.All(all, a => Assert.Equal(1, a.Open));
        }
    }

    [Fact]
    public async Task Two_postgresql_nodes_sharing_queued_deliveries_attempt_each_one_on_one_node_at_a_time()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-delivery-").FullName;
        var (portA, portB, receiverPort) = (Ports.Reserve(), Ports.Reserve(), Ports.Reserve());
        var issuer = $"http://localhost:{portA}";
        var (invite, key) = await ProvisionAsync(dir, issuer, database);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        // Four attempts in flight per node: more than four open at the receiver at once means both nodes were sending.
        const int inFlight = 4;
        await using var a = await ServerProcess.StartAsync(dir, portA, issuer, database, Webhooks(inFlight));
        await using var b = await ServerProcess.StartAsync(dir, portB, issuer, database, Webhooks(inFlight));
        var device = await ProcessDevice.EnrollAsync(a.Http, invite);
        var (hook, secret) = await RegisterAsync(a.Http, key, $"http://127.0.0.1:{receiverPort}/slow?ms=1000");
        await using var receiver = await Receiver.StartAsync(receiverPort, secret, cts.Token);

        // Forty challenges, half asked on each node, then decided at once on both: the outbox holds far more than the
        // eight attempts the nodes may have in flight, and each node's commits wake it while the other polls.
        const int count = 40;
        var nodes = new[] { a, b };
        for (var i = 0; i < count; i++)
        {
            await CreateChallengeAsync(nodes[i % 2].Http, key, $"shared {i}");
        }
        var pending = new ConcurrentQueue<JsonElement>(await device.PendingAsync(a.Http));
        Assert.Equal(count, pending.Count);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            while (pending.TryDequeue(out var approval))
            {
                using var decided = await device.DecideAsync(nodes[w % 2].Http, approval, "approve");
                Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
            }
        })));

        var log = await WaitUntilAsync(() => LogAsync(b.Http, key, hook), l => l.Count == count && l.All(d => d.Status == "delivered"),
            TimeSpan.FromSeconds(90), l => $"every delivery delivered: {Describe(l)}\n{receiver.Output}\nA:\n{a.Output}\nB:\n{b.Output}");
        var arrivals = receiver.Arrivals;
        output.WriteLine($"{arrivals.Count} arrivals; at most {arrivals.Max(x => x.Total)} open at once; log: {Describe(log)}");

        // No webhook-id arrived while an attempt of it was still open: one node at a time.
        Assert.All(arrivals, x => Assert.True(x.Open == 1, $"{x.Id} arrived while {x.Open - 1} attempt(s) of it were in flight"));
        // Every arrival is an attempt in the log and every attempt arrived: each event once, by whichever node claimed it.
        Assert.Equal(log.Sum(d => d.Attempts), arrivals.Count);
        Assert.All(log, d => Assert.Equal(1, d.Attempts));
        Assert.Equal(log.Select(d => d.EventId).Order(StringComparer.Ordinal), arrivals.Select(x => x.Id).Order(StringComparer.Ordinal));
        // Both nodes were sending at once (one node never has more than four in flight), and together never more than eight.
        Assert.InRange(arrivals.Max(x => x.Total), inFlight + 1, 2 * inFlight);
    }

    [Fact]
    public async Task A_backlog_after_an_outage_is_claimed_at_the_paced_rate_while_fresh_deliveries_are_not()
    {
        var dir = Directory.CreateTempSubdirectory("assent-delivery-").FullName;
        var (port, receiverPort) = (Ports.Reserve(), Ports.Reserve());
        var issuer = $"http://localhost:{port}";
        var (invite, key) = await ProvisionAsync(dir, issuer, null);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        const int perSecond = 10, count = 40;
        await using var node = await ServerProcess.StartAsync(dir, port, issuer, configure: start =>
        {
            Webhooks()(start);
            start.Environment["Assent__Webhooks__BacklogPerSecond"] = perSecond.ToString(CultureInfo.InvariantCulture);
        });
        var device = await ProcessDevice.EnrollAsync(node.Http, invite);
        var (hook, secret) = await RegisterAsync(node.Http, key, $"http://127.0.0.1:{receiverPort}/ok");

        // The receiver is down: the first deliveries are handed over and attempted at once, unpaced, and fail; the rest are
        // held back while the endpoint is probed.
        for (var i = 0; i < count; i++)
        {
            await ApproveChallengeAsync(node.Http, key, device, $"backlog {i}");
        }
        await WaitUntilAsync(() => LogAsync(node.Http, key, hook), l => l.Count == count && l.Any(d => d.Attempts >= 1), TimeSpan.FromSeconds(30),
            l => $"every delivery queued and one failed while the receiver is down: {Describe(l)}\n{node.Output}");

        // Back: a probe succeeds, the rest is released and claimed from the backlog, at most perSecond a second after a
        // burst of perSecond. Unpaced, they all arrive within a fraction of a second.
        await using var receiver = await Receiver.StartAsync(receiverPort, secret, cts.Token);
        await WaitUntilAsync(() => Task.FromResult(receiver.Arrivals.Count >= 3), TimeSpan.FromSeconds(40), () => receiver.Output + "\n" + node.Output);

        // A fresh decision meanwhile is handed over and sent at once, ahead of the backlog still waiting for its budget.
        var queued = (await LogAsync(node.Http, key, hook)).Select(d => d.EventId).ToHashSet(StringComparer.Ordinal);
        await ApproveChallengeAsync(node.Http, key, device, "fresh");
        var fresh = (await LogAsync(node.Http, key, hook)).Single(d => !queued.Contains(d.EventId)).EventId;
        await WaitUntilAsync(() => LogAsync(node.Http, key, hook), l => l.Count == count + 1 && l.All(d => d.Status == "delivered"), TimeSpan.FromSeconds(60),
            l => $"every delivery delivered: {Describe(l)}\n{receiver.Output}\n{node.Output}");
        var arrivals = receiver.Arrivals;
        Assert.Equal(count + 1, arrivals.Select(x => x.Id).Distinct().Count());
        var backlog = arrivals.Where(x => x.Id != fresh).ToList();
        var freshAt = arrivals.First(x => x.Id == fresh).At;
        Assert.True(freshAt < backlog[^1].At, $"the fresh delivery waited behind the backlog: {string.Join(", ", arrivals.Select(x => x.Id == fresh ? "FRESH" : "b"))}");
        // The pace is read off the server's own attempt times (each recorded when its answer came), not off the arrivals:
        // a receiver stalled at the start (this process shares the machine with the rest of the suite) receives the first
        // ones late and the rest in a catch-up burst, shortening the arrivals' span though the server kept its pace. The
        // probe answered first and released the rest; each of them was claimed after that, with a permit from the budget.
        var done = (await LogAsync(node.Http, key, hook)).Where(d => d.EventId != fresh).Select(d => d.LastAttemptAt!.Value).Order().ToList();
        var span = done[^1] - done[0];
        output.WriteLine($"{done.Count - 1} backlog attempts over {span.TotalMilliseconds:F0} ms after the probe's " +
            $"(arrivals over {Stopwatch.GetElapsedTime(backlog[1].At, backlog[^1].At).TotalMilliseconds:F0} ms); " +
            $"the fresh one arrived {arrivals.TakeWhile(x => x.Id != fresh).Count() + 1} of {arrivals.Count}");
        // After the probe, count - 1 remain; a burst of at most perSecond of them may go at once, the rest at perSecond a second.
        var least = TimeSpan.FromSeconds((count - 1.0 - perSecond) / perSecond * 0.8);
        Assert.True(span >= least, $"the backlog was attempted over {span.TotalMilliseconds:F0} ms, faster than {perSecond}/s allows (>= {least.TotalMilliseconds:F0} ms)");
    }

    [Fact]
    public async Task A_receiver_closing_the_connection_without_an_answer_is_a_failure_with_its_reason_retried_later()
    {
        var dir = Directory.CreateTempSubdirectory("assent-delivery-").FullName;
        var (port, receiverPort) = (Ports.Reserve(), Ports.Reserve());
        var issuer = $"http://localhost:{port}";
        var (invite, key) = await ProvisionAsync(dir, issuer, null);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await using var node = await ServerProcess.StartAsync(dir, port, issuer, configure: Webhooks());
        var device = await ProcessDevice.EnrollAsync(node.Http, invite);
        var (hook, secret) = await RegisterAsync(node.Http, key, $"http://127.0.0.1:{receiverPort}/close");
        await using var receiver = await Receiver.StartAsync(receiverPort, secret, cts.Token);
        await ApproveChallengeAsync(node.Http, key, device, "hung up on");

        var first = await WaitUntilAsync(() => LogAsync(node.Http, key, hook), l => l.Count == 1 && l[0].Attempts == 1, TimeSpan.FromSeconds(30),
            l => $"one failed attempt in the log: {Describe(l)}\n{receiver.Output}\n{node.Output}");
        var failed = first[0];
        Assert.Equal("pending", failed.Status);
        Assert.Null(failed.LastStatus);
        Assert.True(failed.Error is not null && failed.Error.Contains("closed the connection without an answer", StringComparison.Ordinal),
            $"lastError: {failed.Error}");
        await WaitUntilAsync(() => Task.FromResult(receiver.Arrivals.Count == 1), TimeSpan.FromSeconds(10), () => receiver.Output);
        Assert.Equal(failed.EventId, receiver.Arrivals[0].Id);
        var (_, endpoint) = await CallAsync(node.Http, HttpMethod.Get, $"/v1/webhooks/{hook}", key);
        Assert.Equal("failing", endpoint.GetProperty("status").GetString());

        // Retried later, on the schedule (5 s ± 20 % after the first attempt), not at once: the same event id, a second failure.
        var second = await WaitUntilAsync(() => LogAsync(node.Http, key, hook), l => l[0].Attempts == 2, TimeSpan.FromSeconds(30),
            l => $"a second attempt in the log: {Describe(l)}\n{receiver.Output}\n{node.Output}");
        Assert.Equal("pending", second[0].Status);
        Assert.Equal(failed.Error, second[0].Error);
        Assert.True(second[0].LastAttemptAt - failed.LastAttemptAt >= TimeSpan.FromSeconds(4),
            $"retried {(second[0].LastAttemptAt - failed.LastAttemptAt)?.TotalMilliseconds} ms after the first attempt");
        await WaitUntilAsync(() => Task.FromResult(receiver.Arrivals.Count == 2), TimeSpan.FromSeconds(10), () => receiver.Output);
        Assert.Equal(new[] { failed.EventId, failed.EventId }, receiver.Arrivals.Select(x => x.Id));
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    /// <summary>The user "ops" (invited, to enrol a device) and an API key of theirs, made offline before a server starts.</summary>
    private static async Task<(string InviteCode, string Key)> ProvisionAsync(string dir, string issuer, string? database)
    {
        var options = new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, default);
        var admin = new AdminOperations(store, options, TimeProvider.System);
        var invite = await admin.InviteAsync("ops", admin: false, default);
        var key = await admin.CreateApiKeyAsync("ops", "backend", Scopes, default);
        return (invite.Code, key.Key);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> CallAsync(HttpClient http, HttpMethod method, string path, string key, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        }
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private static async Task<(string Id, string Secret)> RegisterAsync(HttpClient http, string key, string url)
    {
        var (status, body) = await CallAsync(http, HttpMethod.Post, "/v1/webhooks", key, new { url, events = new[] { "challenge.approved" } });
        Assert.True(status == HttpStatusCode.Created, body.ToString());
        return (body.GetProperty("id").GetString()!, body.GetProperty("secret").GetString()!);
    }

    private static async Task CreateChallengeAsync(HttpClient http, string key, string message)
    {
        var (status, body) = await CallAsync(http, HttpMethod.Post, "/v1/challenges", key,
            new { action = "payment.send", userId = "ops", amount = "9.99", currency = "EUR", requiresHuman = false, message });
        Assert.True(status == HttpStatusCode.Created, body.ToString());
    }

    /// <summary>A challenge asked and approved on the device: its challenge.approved event is queued in the same commit.</summary>
    private static async Task ApproveChallengeAsync(HttpClient http, string key, ProcessDevice device, string message)
    {
        await CreateChallengeAsync(http, key, message);
        var approval = Assert.Single(await device.PendingAsync(http));
        using var decided = await device.DecideAsync(http, approval, "approve");
        Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
    }

    private sealed record Delivery(string EventId, string Status, int Attempts, int? LastStatus, string? Error, DateTimeOffset? LastAttemptAt);

    /// <summary>The endpoint's delivery log, as <c>GET /v1/webhooks/{id}/deliveries</c> shows it.</summary>
    private static async Task<IReadOnlyList<Delivery>> LogAsync(HttpClient http, string key, string hook)
    {
        var (status, page) = await CallAsync(http, HttpMethod.Get, $"/v1/webhooks/{hook}/deliveries?limit=200", key);
        Assert.Equal(HttpStatusCode.OK, status);
        return page.GetProperty("deliveries").EnumerateArray().Select(d => new Delivery(
            d.GetProperty("eventId").GetString()!,
            d.GetProperty("status").GetString()!,
            d.GetProperty("attempts").GetInt32(),
            d.TryGetProperty("lastStatus", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : null,
            d.TryGetProperty("lastError", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null,
            d.TryGetProperty("lastAttemptAt", out var t) && t.ValueKind == JsonValueKind.String ? DateTimeOffset.Parse(t.GetString()!, CultureInfo.InvariantCulture) : null))
            .ToList();
    }

    /// <summary>The delivery log read from the database while no server runs: what a killed server had committed.</summary>
    private static async Task<Dictionary<string, DeliveryRecord>> StoredLogAsync(string dir, string issuer, string? database, string hook)
    {
        await using var store = await StoreFactory.OpenAsync(new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database }, TimeProvider.System, default);
        return (await store.Webhooks.ListDeliveriesAsync(hook, long.MaxValue, 200, default)).ToDictionary(d => d.EventId);
    }

    private static string Describe(IReadOnlyList<Delivery> log) =>
        string.Join(", ", log.Select(d => $"{d.EventId} {d.Status}×{d.Attempts}{(d.Error is null ? "" : $" ({d.Error})")}"));

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan deadline, Func<string> what) =>
        await WaitUntilAsync(condition, ok => ok, deadline, _ => what());

    /// <summary>Reads until what is read satisfies <paramref name="done"/>, and returns it.</summary>
    private static async Task<T> WaitUntilAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan deadline, Func<T, string> what)
    {
        var until = Stopwatch.StartNew();
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }
            if (until.Elapsed > deadline)
            {
                Assert.Fail($"not within {deadline.TotalSeconds} s: {what(value)}");
            }
            await Task.Delay(100);
        }
    }
}

/// <summary>
/// One webhook at the receiver: its webhook-id, and how many requests with that id (<see cref="Open"/>) and in all
/// (<see cref="Total"/>) were unanswered, this one included; <see cref="At"/> is when the test read it (a Stopwatch timestamp).
/// </summary>
internal sealed record Arrival(string Id, int Open, int Total, long At);

/// <summary>tests/interop/webhook-receiver.mjs read in the background: every line it printed, and its arrivals in order.</summary>
internal sealed class Receiver : IAsyncDisposable
{
    private readonly NodeScript _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<Arrival> _arrivals = new();
    private readonly Task _reading;

    private Receiver(NodeScript script)
    {
        _script = script;
        _reading = Task.Run(ReadAsync);
    }

    public IReadOnlyList<Arrival> Arrivals => [.. _arrivals];

    public string Output => string.Join('\n', _lines);

    public bool Arrived(string eventId) => _arrivals.Any(a => a.Id == eventId);

    public static async Task<Receiver> StartAsync(int port, string secret, CancellationToken ct)
    {
        var receiver = new Receiver(await NodeScript.StartAsync("webhook-receiver.mjs", [port.ToString(CultureInfo.InvariantCulture), secret], ct));
        await receiver._listening.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _script.DisposeAsync();
        await _reading;
        _stop.Dispose();
    }

    private async Task ReadAsync()
    {
        try
        {
            while (await _script.ReadLineAsync(_stop.Token) is { } line)
            {
                _lines.Enqueue(line);
                if (line.StartsWith("LISTENING", StringComparison.Ordinal))
                {
                    _listening.TrySetResult();
                }
                else if (line.StartsWith("ARRIVED ", StringComparison.Ordinal))
                {
                    var a = JsonDocument.Parse(line["ARRIVED ".Length..]).RootElement;
                    _arrivals.Enqueue(new Arrival(a.GetProperty("id").GetString()!, a.GetProperty("open").GetInt32(), a.GetProperty("total").GetInt32(), Stopwatch.GetTimestamp()));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        _listening.TrySetException(new InvalidOperationException("the receiver exited before listening:\n" + Output));
    }
}
