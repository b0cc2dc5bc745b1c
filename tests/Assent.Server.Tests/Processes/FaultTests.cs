using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Tests.Storage;
using Xunit.Abstractions;

namespace Assent.Server.Tests.Processes;

/// <summary>
/// Database faults against real server processes and a real PostgreSQL cluster: a notification gap, an outage, a start
/// while the database is down, nodes starting together. Each ends with a ledger: every request created, decided and
/// redeemed is accounted for. Recovery times and the statuses clients saw are written to the test output.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FaultTests(PostgresCluster cluster, ITestOutputHelper output)
{
    private static Task<Provisioned> ProvisionAsync(string dataDirectory, string issuer, string? database) =>
        Provisioned.CreateAsync(dataDirectory, issuer, database, "fault agent");

    /// <summary>Room for every request a test keeps pending at once.</summary>
    private static void ManyPending(ProcessStartInfo start) => start.Environment["Assent__Limits__MaxPendingPerAgentPerUser"] = "5000";

    [Fact]
    public async Task Requests_created_on_one_node_while_another_node_was_deaf_reach_its_open_device_streams()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-fault-").FullName;
        var (portA, portB) = (Ports.Reserve(), Ports.Reserve());
        var issuer = $"http://localhost:{portA}";
        var setup = await ProvisionAsync(dir, issuer, database);
        await using var a = await ServerProcess.StartAsync(dir, portA, issuer, database, ManyPending);
        await using var b = await ServerProcess.StartAsync(dir, portB, issuer, database, ManyPending);
        var device = await ProcessDevice.EnrollAsync(a.Http, setup.InviteCode);

        // The device relies on its stream from node B alone, which stays open through the restart.
        using var streaming = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var stream = await DeviceStream.OpenAsync(b.Http, device, streaming.Token);

        // Agents keep asking on node A before, during and after PostgreSQL restarts.
        var statuses = new ConcurrentDictionary<int, int>();
        var created = new ConcurrentDictionary<string, string>(); // binding message → auth_req_id
        using var stop = new CancellationTokenSource();
        var restarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var afterRestart = 0;
        var agents = Enumerable.Range(0, 3).Select(i => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var message = $"gap {i}/{n}";
                var (status, id) = await AskAsync(a.Http, setup, message);
                statuses.AddOrUpdate(status, 1, (_, c) => c + 1);
                if (id is not null)
                {
                    created[message] = id;
                    if (restarted.Task.IsCompleted && Interlocked.Increment(ref afterRestart) >= 30)
                    {
                        await stop.CancelAsync();
                    }
                }
                await Task.Delay(10, CancellationToken.None);
            }
        })).ToList();
        await WaitUntilAsync(() => created.Count >= 10, TimeSpan.FromSeconds(30), "requests before the restart");
        await cluster.RestartAsync();
        var back = Stopwatch.StartNew();
        restarted.SetResult();
        await Task.WhenAll(agents);

        // Every request node A accepted reaches the device through node B.
        await WaitUntilAsync(() => created.Keys.All(stream.ByMessage.ContainsKey), TimeSpan.FromSeconds(30),
            () => $"requests never streamed by node B: {string.Join(", ", created.Keys.Where(m => !stream.ByMessage.ContainsKey(m)))}\n{b.Output}");
        output.WriteLine($"notification gap: every request on the stream {back.ElapsedMilliseconds} ms after PostgreSQL was back; " +
                         $"bc-authorize statuses on A: {Describe(statuses)}; {created.Count} created");

        // The ledger: each streamed request decided on B and redeemed on A exactly once.
        var decided = 0;
        foreach (var message in created.Keys)
        {
            using var response = await device.DecideAsync(b.Http, stream.ByMessage[message], "approve");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            decided++;
        }
        var tokens = new HashSet<string>();
        foreach (var authReqId in created.Values)
        {
            var token = await AgentCalls.TokenAsync(a.Http, setup.ClientId, setup.ClientSecret, authReqId, wait: 10);
            Assert.Equal(200, token.Status);
            Assert.True(tokens.Add(token.Token!));
        }
        Assert.Equal(created.Count, decided);
        await AssertLedgerAsync(dir, issuer, database, created.Count, created.Count, created.Count);
        await streaming.CancelAsync();
    }

    [Fact]
    public async Task A_postgresql_outage_is_answered_503_with_retry_after_and_logged_once_when_it_starts_and_once_when_it_ends()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-fault-").FullName;
        var port = Ports.Reserve();
        var issuer = $"http://localhost:{port}";
        var setup = await ProvisionAsync(dir, issuer, database);
        await using var node = await ServerProcess.StartAsync(dir, port, issuer, database);
        var device = await ProcessDevice.EnrollAsync(node.Http, setup.InviteCode);
        var before = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            before.Add(await AgentCalls.AskAsync(node.Http, setup.ClientId, setup.ClientSecret, "ops", $"before {i}"));
        }
        var pending = await device.PendingAsync(node.Http);
        Assert.Equal(5, pending.Length);

        await cluster.StopAsync("immediate");
        var statuses = new SortedDictionary<string, int>(StringComparer.Ordinal);
        try
        {
            // OAuth endpoints: RFC 6749 temporarily_unavailable with 503 and Retry-After.
            var (askStatus, askError, askRetry) = await OAuthAsync(node.Http, "/oauth/bc-authorize", setup,
                new() { ["scope"] = "openid", ["login_hint"] = "ops", ["binding_message"] = "during" }, wait: 0);
            var (tokenStatus, tokenError, tokenRetry) = await OAuthAsync(node.Http, "/oauth/token", setup,
                new() { ["grant_type"] = "urn:openid:params:grant-type:ciba", ["auth_req_id"] = before[0] }, wait: 0);
            var (heldStatus, heldError, heldRetry) = await OAuthAsync(node.Http, "/oauth/token", setup,
                new() { ["grant_type"] = "urn:openid:params:grant-type:ciba", ["auth_req_id"] = before[1] }, wait: 5);
            foreach (var (status, error, retry) in new[] { (askStatus, askError, askRetry), (tokenStatus, tokenError, tokenRetry), (heldStatus, heldError, heldRetry) })
            {
                Assert.Equal(503, status);
                Assert.Equal("temporarily_unavailable", error);
                Assert.True(retry > 0);
            }
            statuses["bc-authorize"] = askStatus;
            statuses["token"] = tokenStatus;
            statuses["token Prefer: wait=5"] = heldStatus;

            // Everything else: a problem document with 503 and Retry-After; liveness stays 200.
            using (var decided = await device.DecideAsync(node.Http, pending[0], "approve"))
            {
                await AssertUnavailableProblemAsync(decided);
                statuses["decision"] = (int)decided.StatusCode;
            }
            using (var health = await node.Http.GetAsync("/healthz"))
            {
                await AssertUnavailableProblemAsync(health);
                statuses["/healthz"] = (int)health.StatusCode;
            }
            using (var ready = await node.Http.GetAsync("/healthz/ready"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
                Assert.NotNull(ready.Headers.RetryAfter);
                Assert.Equal("unavailable", JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());
                statuses["/healthz/ready"] = (int)ready.StatusCode;
            }
            using (var live = await node.Http.GetAsync("/healthz/live"))
            {
                Assert.Equal(HttpStatusCode.OK, live.StatusCode);
                statuses["/healthz/live"] = (int)live.StatusCode;
            }
        }
        finally
        {
            await cluster.StartAsync();
        }
        var back = Stopwatch.StartNew();
        await WaitUntilAsync(() => Ready(node.Http), TimeSpan.FromSeconds(30), "/healthz/ready answering 200 again");
        var readyAfter = back.ElapsedMilliseconds;
        output.WriteLine($"PostgreSQL stopped (immediate): {string.Join(", ", statuses.Select(s => $"{s.Key} {s.Value}"))}; ready {readyAfter} ms after it started again");

        // The ledger: the requests made before the outage are decided and redeemed once each afterwards.
        foreach (var approval in await device.PendingAsync(node.Http))
        {
            using var decided = await device.DecideAsync(node.Http, approval, "approve");
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        foreach (var id in before)
        {
            Assert.Equal(200, (await AgentCalls.TokenAsync(node.Http, setup.ClientId, setup.ClientSecret, id, wait: 5)).Status);
            Assert.Equal("invalid_grant", (await AgentCalls.TokenAsync(node.Http, setup.ClientId, setup.ClientSecret, id, wait: 0)).Error);
        }
        await AssertLedgerAsync(dir, issuer, database, 5, 5, 5);

        // One line when the outage began and one when it ended; no stack trace for any refused request.
        await WaitUntilAsync(() => node.Output.Contains("storage available again", StringComparison.Ordinal), TimeSpan.FromSeconds(10), () => node.Output);
        var lines = node.Output.Split('\n');
        Assert.Single(lines, l => l.Contains("storage unavailable", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("storage available again", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Exception (0x", StringComparison.Ordinal) || l.Contains(" at Npgsql.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_nodes_started_while_postgresql_is_down_wait_for_it_and_make_one_signing_key_and_one_first_invite()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-fault-").FullName;
        var (portA, portB) = (Ports.Reserve(), Ports.Reserve());
        var issuer = $"http://localhost:{portA}";
        var waiting = new ConcurrentDictionary<int, bool>();
        Task<ServerProcess> StartNode(int port) => ServerProcess.StartAsync(dir, port, issuer, database, onLine: line =>
        {
            if (line.StartsWith("waiting for the database", StringComparison.Ordinal))
            {
                waiting[port] = true;
            }
        });

        await cluster.StopAsync();
        Task<ServerProcess> startingA, startingB;
        try
        {
            (startingA, startingB) = (StartNode(portA), StartNode(portB));
            // Both are up and retrying rather than exiting.
            await WaitUntilAsync(() => waiting.Count == 2 || startingA.IsFaulted || startingB.IsFaulted, TimeSpan.FromSeconds(60), "both nodes waiting for the database");
            Assert.False(startingA.IsCompleted || startingB.IsCompleted);
        }
        finally
        {
            await cluster.StartAsync();
        }
        var back = Stopwatch.StartNew();
        await using var a = await startingA;
        await using var b = await startingB;
        output.WriteLine($"start while PostgreSQL is down: both nodes listening {back.ElapsedMilliseconds} ms after it started");

        // One first-start of everything: one key, one first invite, printed by one node.
        await using (var store = await StoreFactory.OpenAsync(new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database }, TimeProvider.System, default))
        {
            Assert.Single(await store.Keys.ListAsync(default));
        }
        var banners = new[] { a.Output, b.Output };
        Assert.Single(banners, o => o.Contains("  code: ", StringComparison.Ordinal));
        // The other found the first user already there, or lost the claim to invite it and said so.
        var code = banners.Single(o => o.Contains("  code: ", StringComparison.Ordinal)).Split('\n').First(l => l.StartsWith("  code: ", StringComparison.Ordinal))[8..].Trim();

        // The ledger: the first user enrols with that code; flows asked on A, decided on B, redeemed on A.
        var device = await ProcessDevice.EnrollAsync(b.Http, code);
        CreatedAgent agent;
        await using (var store = await StoreFactory.OpenAsync(new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database }, TimeProvider.System, default))
        {
            agent = await new AdminOperations(store, new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database }, TimeProvider.System)
                .CreateAgentAsync("admin", "first agent", "approve:action", default);
        }
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await AgentCalls.AskAsync(a.Http, agent.ClientId, agent.ClientSecret, "admin", $"first {i}"));
        }
        foreach (var approval in await device.PendingAsync(b.Http))
        {
            using var decided = await device.DecideAsync(b.Http, approval, "approve");
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        foreach (var id in ids)
        {
            var token = await AgentCalls.TokenAsync(a.Http, agent.ClientId, agent.ClientSecret, id, wait: 5);
            Assert.Equal(200, token.Status);
        }
        var types = await AuditTypesAsync(dir, issuer, database);
        Assert.Equal(1, types.GetValueOrDefault(AuditTypes.KeyCreated));
        Assert.Equal(1, types.GetValueOrDefault(AuditTypes.UserInvited));
        await AssertLedgerAsync(dir, issuer, database, 5, 5, 5);
    }

    [Fact]
    public async Task Eight_nodes_initialising_an_empty_database_at_once_make_one_signing_key_and_one_first_invite()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-fault-").FullName;
        var options = new AssentOptions { Issuer = "http://localhost:8400", DataDirectory = dir, Database = database };
        var master = Keys.MasterKey.Load(options);
        var stores = new List<AssentStore>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                stores.Add(await StoreFactory.OpenAsync(options, TimeProvider.System, default));
            }
            // What each node does at start once its schema is there, all at the same moment.
            using var go = new SemaphoreSlim(0, 8);
            var starts = stores.Select(store => Task.Run(async () =>
            {
                await go.WaitAsync();
                var ring = new Keys.KeyRing(store.Keys, store.Meta, master, options, TimeProvider.System);
                await ring.InitializeAsync(default);
                var invite = await new AdminOperations(store, options, TimeProvider.System).InviteFirstAdminAsync(default);
                return (ring.Current.Kid, Invited: invite is not null);
            })).ToList();
            go.Release(8);
            var results = await Task.WhenAll(starts);

            Assert.Single(results.Select(r => r.Kid).Distinct());
            Assert.Single(results, r => r.Invited);
            Assert.Single(await stores[0].Keys.ListAsync(default));
        }
        finally
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync();
            }
        }
        var types = await AuditTypesAsync(dir, options.Issuer, database);
        Assert.Equal(1, types.GetValueOrDefault(AuditTypes.KeyCreated));
        Assert.Equal(1, types.GetValueOrDefault(AuditTypes.UserInvited));
    }

    [Fact]
    public async Task A_full_sqlite_disk_is_answered_503_and_not_ready_until_there_is_room_again()
    {
        // A disk that really fills: a small tmpfs, which only root may mount (the suite runs as root for PostgreSQL's sake).
        Assert.True(Environment.UserName == "root", "this test mounts a 24 MiB tmpfs and must run as root");
        var dir = Directory.CreateTempSubdirectory("assent-full-").FullName;
        await RunAsync("mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", dir);
        try
        {
            var port = Ports.Reserve();
            var issuer = $"http://localhost:{port}";
            var setup = await ProvisionAsync(dir, issuer, null);
            await using var node = await ServerProcess.StartAsync(dir, port, issuer);
            var device = await ProcessDevice.EnrollAsync(node.Http, setup.InviteCode);
            var created = new List<string>();
            for (var i = 0; i < 5; i++)
            {
                created.Add(await AgentCalls.AskAsync(node.Http, setup.ClientId, setup.ClientSecret, "ops", $"room {i}"));
            }

            // Fill the disk to the last byte.
            var filler = Path.Combine(dir, "filler");
            await using (var fill = new FileStream(filler, FileMode.CreateNew))
            {
                var chunk = new byte[64 * 1024];
                try
                {
                    while (true)
                    {
                        await fill.WriteAsync(chunk);
                        await fill.FlushAsync();
                    }
                }
                catch (IOException)
                {
                }
            }
            using (var ready = await node.Http.GetAsync("/healthz/ready"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
                Assert.NotNull(ready.Headers.RetryAfter);
            }
            // Requests go on until one finds no room: every answer is a success or a 503 saying to come back.
            var statuses = new SortedDictionary<int, int>();
            var refused = false;
            for (var n = 0; !refused; n++)
            {
                Assert.True(n < 2000, "no request was refused on a full disk");
                using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize")
                {
                    Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["scope"] = "openid", ["login_hint"] = "ops", ["binding_message"] = $"full {n}" }),
                };
                request.Headers.Authorization = AgentCalls.Basic(setup.ClientId, setup.ClientSecret);
                using var response = await node.Http.SendAsync(request);
                statuses[(int)response.StatusCode] = statuses.GetValueOrDefault((int)response.StatusCode) + 1;
                var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    created.Add(body.GetProperty("auth_req_id").GetString()!);
                    continue;
                }
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.Equal("temporarily_unavailable", body.GetProperty("error").GetString());
                Assert.NotNull(response.Headers.RetryAfter);
                refused = true;
            }

            File.Delete(filler);
            var back = Stopwatch.StartNew();
            await WaitUntilAsync(() => Ready(node.Http), TimeSpan.FromSeconds(30), "/healthz/ready answering 200 once there is room");
            output.WriteLine($"SQLite disk full: bc-authorize {string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}"))}, /healthz/ready 503; " +
                             $"ready {back.ElapsedMilliseconds} ms after the filler was deleted");

            // The ledger: every request accepted before or during the fault is pending, then decided and redeemed once.
            var pending = await device.PendingAsync(node.Http);
            Assert.Equal(created.Count, pending.Length);
            foreach (var approval in pending)
            {
                using var decided = await device.DecideAsync(node.Http, approval, "approve");
                Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
            }
            foreach (var id in created)
            {
                Assert.Equal(200, (await AgentCalls.TokenAsync(node.Http, setup.ClientId, setup.ClientSecret, id, wait: 5)).Status);
            }
            var lines = node.Output.Split('\n');
            Assert.Single(lines, l => l.Contains("storage unavailable", StringComparison.Ordinal));
            Assert.DoesNotContain(lines, l => l.Contains("Exception (0x", StringComparison.Ordinal));
            node.KillHard();
            await AssertLedgerAsync(dir, issuer, null, created.Count, created.Count, created.Count);
        }
        finally
        {
            await RunAsync("umount", "-l", dir);
        }
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    private static async Task<(int Status, string? Error, int RetryAfter)> OAuthAsync(HttpClient http, string path, Provisioned setup, Dictionary<string, string> form, int wait)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = AgentCalls.Basic(setup.ClientId, setup.ClientSecret);
        if (wait > 0)
        {
            request.Headers.TryAddWithoutValidation("Prefer", $"wait={wait}");
        }
        using var response = await http.SendAsync(request);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return ((int)response.StatusCode, body.TryGetProperty("error", out var e) ? e.GetString() : null, (int)(response.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0));
    }

    private static async Task AssertUnavailableProblemAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal(503, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetInt32());
    }

    private static bool Ready(HttpClient http)
    {
        try
        {
            using var response = http.GetAsync("/healthz/ready").GetAwaiter().GetResult();
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    private static async Task<Dictionary<string, int>> AuditTypesAsync(string dir, string issuer, string? database)
    {
        await using var store = await StoreFactory.OpenAsync(new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database }, TimeProvider.System, default);
        return (await store.Audit.ReadAsync(0, 1_000_000, null, default)).Select(r => JsonDocument.Parse(r.Entry).RootElement.GetProperty("type").GetString()!)
            .GroupBy(t => t).ToDictionary(g => g.Key, g => g.Count());
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {error}");
    }

    private static async Task<(int Status, string? Id)> AskAsync(HttpClient http, Provisioned setup, string message)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["scope"] = "openid", ["login_hint"] = "ops", ["binding_message"] = message }),
            };
            request.Headers.Authorization = AgentCalls.Basic(setup.ClientId, setup.ClientSecret);
            using var response = await http.SendAsync(request);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            return ((int)response.StatusCode, response.IsSuccessStatusCode ? body.GetProperty("auth_req_id").GetString() : null);
        }
        catch (HttpRequestException)
        {
            return (0, null);
        }
    }

    private static string Describe(IDictionary<int, int> statuses) =>
        string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(s.Key == 0 ? "connection failed" : s.Key.ToString(System.Globalization.CultureInfo.InvariantCulture))}×{s.Value}"));

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan deadline, string what) => await WaitUntilAsync(condition, deadline, () => what);

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan deadline, Func<string> what)
    {
        var until = Stopwatch.StartNew();
        while (!condition())
        {
            if (until.Elapsed > deadline)
            {
                Assert.Fail($"not within {deadline.TotalSeconds} s: {what()}");
            }
            await Task.Delay(50);
        }
    }

    /// <summary>The audit log agrees: so many requests created, approved and redeemed, and the chain verifies.</summary>
    private static async Task AssertLedgerAsync(string dir, string issuer, string? database, int createdCount, int approvedCount, int redeemedCount)
    {
        await using var store = await StoreFactory.OpenAsync(new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database }, TimeProvider.System, default);
        var rows = await store.Audit.ReadAsync(0, 1_000_000, null, default);
        var chain = AuditChain.Verify(rows);
        Assert.True(chain.Valid, chain.Reason);
        var types = rows.Select(r => JsonDocument.Parse(r.Entry).RootElement)
            .Where(e => e.GetProperty("subject").GetString() is { } s && s.StartsWith("apr_", StringComparison.Ordinal))
            .GroupBy(e => e.GetProperty("type").GetString()!).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(createdCount, types.GetValueOrDefault(AuditTypes.ApprovalCreated));
        Assert.Equal(approvedCount, types.GetValueOrDefault(AuditTypes.ApprovalApproved));
        Assert.Equal(redeemedCount, types.GetValueOrDefault(AuditTypes.ApprovalRedeemed));
    }
}

/// <summary>A device's event stream read in the background: the requests it was told are pending, less those it was told settled.</summary>
internal sealed class DeviceStream
{
    public ConcurrentDictionary<string, JsonElement> Pending { get; } = new(StringComparer.Ordinal);

    /// <summary>The same requests by binding message (the agent knows its auth_req_id, the device the request id).</summary>
    public ConcurrentDictionary<string, JsonElement> ByMessage { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, string> Settled { get; } = new(StringComparer.Ordinal);

    public static async Task<DeviceStream> OpenAsync(HttpClient http, ProcessDevice device, CancellationToken ct)
    {
        var response = await http.SendAsync(device.Signed(HttpMethod.Get, "/authenticator/stream"), HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        var stream = new DeviceStream();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Task.Run(async () =>
        {
            using (response)
            using (reader)
            {
                var type = "";
                try
                {
                    while (await reader.ReadLineAsync(ct) is { } line)
                    {
                        if (line == ": ready")
                        {
                            ready.TrySetResult();
                        }
                        else if (line.StartsWith("event: ", StringComparison.Ordinal))
                        {
                            type = line[7..];
                        }
                        else if (line.StartsWith("data: ", StringComparison.Ordinal))
                        {
                            var data = JsonDocument.Parse(line[6..]).RootElement.Clone();
                            var id = data.GetProperty("id").GetString()!;
                            if (type == "approval")
                            {
                                stream.Pending[id] = data;
                                if (data.TryGetProperty("binding_message", out var message) && message.GetString() is { } text)
                                {
                                    stream.ByMessage[text] = data;
                                }
                            }
                            else
                            {
                                stream.Settled[id] = data.GetProperty("state").GetString()!;
                            }
                        }
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
                {
                }
                ready.TrySetException(new EndOfStreamException("the stream ended before ': ready'"));
            }
        }, CancellationToken.None);
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
        return stream;
    }
}
