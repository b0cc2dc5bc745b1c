using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Tests.Storage;

namespace Assent.Server.Tests.Processes;

/// <summary>Real server processes killed with SIGKILL, and a database restarted under load.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CrashTests(PostgresCluster cluster)
{
    private static Task<Provisioned> ProvisionAsync(string dataDirectory, string issuer, string? database) =>
        Provisioned.CreateAsync(dataDirectory, issuer, database, "load agent");

    [Fact]
    public async Task Sqlite_server_killed_during_load_keeps_every_committed_decision_and_a_valid_audit_chain()
    {
        var dir = Directory.CreateTempSubdirectory("assent-crash-").FullName;
        var port = Ports.Reserve();
        var issuer = $"http://localhost:{port}";
        var setup = await ProvisionAsync(dir, issuer, null);
        var committed = new ConcurrentDictionary<string, string>();
        ProcessDevice device;
        // Set just before the kill: from then on, and only then, a loop may end on a failed or cancelled request.
        var killed = 0;
        async Task UntilKilledAsync(Func<Task> loop)
        {
            try
            {
                await loop();
            }
            catch (Exception e) when (Volatile.Read(ref killed) == 1 && e is HttpRequestException or IOException or OperationCanceledException)
            {
            }
        }
        await using (var node = await ServerProcess.StartAsync(dir, port, issuer))
        {
            device = await ProcessDevice.EnrollAsync(node.Http, setup.InviteCode);
            using var stop = new CancellationTokenSource();
            var agents = Enumerable.Range(0, 4).Select(i => Task.Run(() => UntilKilledAsync(async () =>
            {
                for (var n = 0; !stop.IsCancellationRequested && n < 2000; n++)
                {
                    // At the pending cap the agent waits for the deciders, as a real one would.
                    if (await AgentCalls.TryAskAsync(node.Http, setup.ClientId, setup.ClientSecret, "ops", $"load {i}/{n}", stop.Token) is null)
                    {
                        await Task.Delay(20, stop.Token);
                    }
                }
            }))).ToList();
            var deciders = Enumerable.Range(0, 2).Select(i => Task.Run(() => UntilKilledAsync(async () =>
            {
                for (var round = 0; !stop.IsCancellationRequested && round < 2000; round++)
                {
                    foreach (var approval in await device.PendingAsync(node.Http, stop.Token))
                    {
                        var decision = approval.GetProperty("id").GetString()!.GetHashCode(StringComparison.Ordinal) % 2 == 0 ? "approve" : "deny";
                        using var response = await device.DecideAsync(node.Http, approval, decision, stop.Token);
                        if (response.StatusCode == HttpStatusCode.OK)
                        {
                            committed[approval.GetProperty("id").GetString()!] = decision;
                        }
                        else
                        {
                            // The other decider took it first; anything else is a fault.
                            Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
                        }
                    }
                }
            }))).ToList();

            // Load until a good number of decisions committed (or a loop failed, which fails the test below).
            var loops = agents.Concat(deciders).ToList();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (committed.Count < 50 && DateTime.UtcNow < deadline && loops.All(t => !t.IsCompleted))
            {
                await Task.Delay(50);
            }
            Volatile.Write(ref killed, 1);
            node.KillHard();
            stop.Cancel();
            // An assertion that failed in a loop, or a transport error before the kill, fails the test here.
            await Task.WhenAll(loops);
        }
        Assert.NotEmpty(committed);

        await using (var restarted = await ServerProcess.StartAsync(dir, port, issuer))
        {
            foreach (var (id, decision) in committed)
            {
                var state = (await device.GetAsync(restarted.Http, id)).GetProperty("state").GetString();
                Assert.Equal(decision == "approve" ? "approved" : "denied", state);
            }
            restarted.KillHard();
        }
        await using var store = await StoreFactory.OpenAsync(new AssentOptions { Issuer = issuer, DataDirectory = dir }, TimeProvider.System, default);
        var chain = AuditChain.Verify(await store.Audit.ReadAsync(0, 1_000_000, null, default));
        Assert.True(chain.Valid, chain.Reason);
        Assert.True(chain.Verified > committed.Count);
    }

    [Fact]
    public async Task A_node_killed_while_agents_wait_loses_nothing_agents_finish_on_the_other_node_exactly_once()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-crash-").FullName;
        var (portA, portB) = (Ports.Reserve(), Ports.Reserve());
        var issuer = $"http://localhost:{portA}";
        var setup = await ProvisionAsync(dir, issuer, database);
        await using var a = await ServerProcess.StartAsync(dir, portA, issuer, database);
        await using var b = await ServerProcess.StartAsync(dir, portB, issuer, database);
        var device = await ProcessDevice.EnrollAsync(a.Http, setup.InviteCode);

        var ids = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            ids.Add(await AgentCalls.AskAsync(a.Http, setup.ClientId, setup.ClientSecret, "ops", $"task {i}"));
        }
        var held = ids.Select(id => AgentCalls.TokenAsync(a.Http, setup.ClientId, setup.ClientSecret, id, wait: 30)).ToList();
        await Task.Delay(500);
        Assert.All(held, t => Assert.False(t.IsCompleted));
        a.KillHard();
        foreach (var t in held)
        {
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => t);
        }

        var pending = await device.PendingAsync(b.Http);
        Assert.Equal(8, pending.Length);
        foreach (var approval in pending)
        {
            using var response = await device.DecideAsync(b.Http, approval, "approve");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        var tokens = new HashSet<string>();
        foreach (var id in ids)
        {
            var first = await AgentCalls.TokenAsync(b.Http, setup.ClientId, setup.ClientSecret, id, wait: 10);
            Assert.Equal(200, first.Status);
            Assert.True(tokens.Add(first.Token!));
            var second = await AgentCalls.TokenAsync(b.Http, setup.ClientId, setup.ClientSecret, id, wait: 0);
            Assert.Equal("invalid_grant", second.Error);
        }
        Assert.Equal(8, tokens.Count);

        // The dead node's audit events (stored unsealed with its writes) are in the one chain, which verifies.
        await using var store = await StoreFactory.OpenAsync(new AssentOptions { Issuer = issuer, DataDirectory = dir, Database = database }, TimeProvider.System, default);
        var rows = await store.Audit.ReadAsync(0, 1_000_000, null, default);
        var chain = AuditChain.Verify(rows);
        Assert.True(chain.Valid, chain.Reason);
        var types = rows.Select(r => JsonDocument.Parse(r.Entry).RootElement)
            .Where(e => e.GetProperty("subject").GetString() is { } s && s.StartsWith("apr_", StringComparison.Ordinal))
            .GroupBy(e => e.GetProperty("type").GetString()).ToDictionary(g => g.Key!, g => g.Count());
        Assert.Equal(8, types[AuditTypes.ApprovalCreated]);
        Assert.Equal(8, types[AuditTypes.ApprovalApproved]);
        Assert.Equal(8, types[AuditTypes.ApprovalRedeemed]);
    }

    [Fact]
    public async Task Nodes_recover_by_themselves_when_postgresql_restarts_under_load()
    {
        var database = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("assent-crash-").FullName;
        var port = Ports.Reserve();
        var issuer = $"http://localhost:{port}";
        var setup = await ProvisionAsync(dir, issuer, database);
        await using var node = await ServerProcess.StartAsync(dir, port, issuer, database);
        var device = await ProcessDevice.EnrollAsync(node.Http, setup.InviteCode);

        async Task<bool> FlowAsync(int n)
        {
            var id = await AgentCalls.AskAsync(node.Http, setup.ClientId, setup.ClientSecret, "ops", $"flow {n}");
            var waiting = AgentCalls.TokenAsync(node.Http, setup.ClientId, setup.ClientSecret, id, wait: 20);
            foreach (var approval in await device.PendingAsync(node.Http))
            {
                using var _ = await device.DecideAsync(node.Http, approval, "approve");
            }
            var result = await waiting;
            return result.Status == 200;
        }

        Assert.True(await FlowAsync(0));
        using var stop = new CancellationTokenSource();
        // Flows that fail while PostgreSQL is down are expected; each is counted with the moment it started.
        var failures = new ConcurrentQueue<(DateTime Started, string Why)>();
        var succeededAfter = new ConcurrentQueue<DateTime>();
        var load = Task.Run(async () =>
        {
            for (var n = 1; !stop.IsCancellationRequested && n < 5000; n++)
            {
                var started = DateTime.UtcNow;
                try
                {
                    if (await FlowAsync(n))
                    {
                        succeededAfter.Enqueue(started);
                    }
                    else
                    {
                        failures.Enqueue((started, $"flow {n}: no token"));
                    }
                }
                catch (Exception e) when (e is HttpRequestException or Xunit.Sdk.XunitException)
                {
                    failures.Enqueue((started, $"flow {n}: {e.Message}"));
                }
            }
        });
        while (succeededAfter.IsEmpty && !load.IsCompleted)
        {
            await Task.Delay(50);
        }
        await cluster.RestartAsync();
        var restarted = DateTime.UtcNow;

        // Without anyone touching the node, complete flows succeed again shortly after.
        DateTime? recoveredAt = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (recoveredAt is null && DateTime.UtcNow < deadline)
        {
            try
            {
                if (await FlowAsync(-1))
                {
                    recoveredAt = DateTime.UtcNow;
                }
            }
            catch (Exception e) when (e is HttpRequestException or Xunit.Sdk.XunitException)
            {
                await Task.Delay(200);
            }
        }
        Assert.True(recoveredAt is not null, "the node did not recover after PostgreSQL restarted:\n" + node.Output);
        // The load goes on until three of its flows that began after the recovery have succeeded.
        var more = DateTime.UtcNow.AddSeconds(30);
        while (succeededAfter.Count(t => t > recoveredAt) < 3 && DateTime.UtcNow < more && !load.IsCompleted)
        {
            await Task.Delay(50);
        }
        stop.Cancel();
        await load;
        Assert.True(succeededAfter.Count(t => t > recoveredAt) >= 3, "the load did not go on after the recovery:\n" + node.Output);
        // Failures belong to the outage alone: none of a flow begun after the recovery was seen.
        var late = failures.Where(f => f.Started > recoveredAt).Select(f => f.Why).ToList();
        Assert.True(late.Count == 0, $"{late.Count} of {failures.Count} failed flows began after the recovery:\n{string.Join('\n', late)}");
        Assert.True(succeededAfter.Count(t => t < restarted) >= 1, "the load ran before the restart");
        using var health = await node.Http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}
