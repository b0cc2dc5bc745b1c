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
    private sealed record Provisioned(string InviteCode, string ClientId, string ClientSecret);

    private static async Task<Provisioned> ProvisionAsync(string dataDirectory, string issuer, string? database)
    {
        var options = new AssentOptions { Issuer = issuer, DataDirectory = dataDirectory, Database = database };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, default);
        var admin = new AdminOperations(store, options, TimeProvider.System);
        var invite = await admin.InviteAsync("ops", admin: false, default);
        var agent = await admin.CreateAgentAsync("ops", "fault agent", "approve:action", default);
        return new Provisioned(invite.Code, agent.ClientId, agent.ClientSecret);
    }

    /// <summary>Room for every request a test keeps pending at once.</summary>
    private static void ManyPending(ProcessStartInfo start) => start.Environment["Assent__Limits__MaxPendingPerAgentPerUser"] = "5000";

    [Fact]
    public async Task Requests_created_on_one_node_while_another_node_was_deaf_reach_its_open_device_streams()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-fault-").FullName;
        var (portA, portB) = (TestServer.FreePort(), TestServer.FreePort());
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

    // ---- helpers ----------------------------------------------------------------------------------------------

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
