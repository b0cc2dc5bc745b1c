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
    private sealed record Provisioned(string InviteCode, string ClientId, string ClientSecret);

    private static async Task<Provisioned> ProvisionAsync(string dataDirectory, string issuer, string? database)
    {
        var options = new AssentOptions { Issuer = issuer, DataDirectory = dataDirectory, Database = database };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, default);
        var admin = new AdminOperations(store, options, TimeProvider.System);
        var invite = await admin.InviteAsync("ops", admin: false, default);
        var agent = await admin.CreateAgentAsync("ops", "load agent", "approve:action", default);
        return new Provisioned(invite.Code, agent.ClientId, agent.ClientSecret);
    }

    [Fact]
    public async Task Sqlite_server_killed_during_load_keeps_every_committed_decision_and_a_valid_audit_chain()
    {
        var dir = Directory.CreateTempSubdirectory("assent-crash-").FullName;
        var port = TestServer.FreePort();
        var issuer = $"http://localhost:{port}";
        var setup = await ProvisionAsync(dir, issuer, null);
        var committed = new ConcurrentDictionary<string, string>();
        ProcessDevice device;
        await using (var node = await ServerProcess.StartAsync(dir, port, issuer))
        {
            device = await ProcessDevice.EnrollAsync(node.Http, setup.InviteCode);
            using var stop = new CancellationTokenSource();
            var agents = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
            {
                for (var n = 0; !stop.IsCancellationRequested && n < 2000; n++)
                {
                    await AgentCalls.AskAsync(node.Http, setup.ClientId, setup.ClientSecret, "ops", $"load {i}/{n}", stop.Token);
                }
            })).ToList();
            var deciders = Enumerable.Range(0, 2).Select(i => Task.Run(async () =>
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
                    }
                }
            })).ToList();

            await Task.Delay(TimeSpan.FromSeconds(3));
            node.KillHard();
            stop.Cancel();
            foreach (var t in agents.Concat(deciders))
            {
                // Each loop ends by failing against the dead server or by seeing the stop signal.
                try
                {
                    await t;
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or Xunit.Sdk.XunitException)
                {
                }
            }
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
        var (portA, portB) = (TestServer.FreePort(), TestServer.FreePort());
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
        var port = TestServer.FreePort();
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
        var errors = 0;
        var load = Task.Run(async () =>
        {
            for (var n = 1; !stop.IsCancellationRequested && n < 5000; n++)
            {
                try
                {
                    await FlowAsync(n);
                }
                catch (Exception e) when (e is HttpRequestException or Xunit.Sdk.XunitException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        });
        await Task.Delay(1000);
        await cluster.RestartAsync();

        // Without anyone touching the node, complete flows succeed again shortly after.
        var recovered = false;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!recovered && DateTime.UtcNow < deadline)
        {
            try
            {
                recovered = await FlowAsync(-1);
            }
            catch (Exception e) when (e is HttpRequestException or Xunit.Sdk.XunitException)
            {
                await Task.Delay(200);
            }
        }
        stop.Cancel();
        await load;
        Assert.True(recovered, "the node did not recover after PostgreSQL restarted:\n" + node.Output);
        using var health = await node.Http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}
