using System.Net;
using System.Text.Json;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Storage.Postgres;
using Npgsql;

namespace Assent.Server.Tests.Storage;

[Collection(PostgresCollection.Name)]
public sealed class MultiNodeTests(PostgresCluster cluster)
{
    /// <summary>Two nodes of one deployment: one fresh database and one key-encryption key (the same data directory's master.key).</summary>
    private async Task<Nodes> TwoNodesAsync(Action<AssentOptions>? configure = null, ManualClock? clock = null)
    {
        var database = await cluster.CreateDatabaseAsync();
        var shared = Directory.CreateTempSubdirectory("assent-nodes-").FullName;
        void Configure(AssentOptions o)
        {
            o.Database = database;
            configure?.Invoke(o);
        }
        var a = await TestServer.StartAsync(shared, clock: clock, configure: Configure);
        try
        {
            return new Nodes(a, await TestServer.StartAsync(shared, clock: clock, configure: Configure));
        }
        catch
        {
            await a.DisposeAsync();
            throw;
        }
    }

    private sealed record Nodes(TestServer A, TestServer B) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await B.DisposeAsync();
            await A.DisposeAsync();
        }
    }

    [Fact]
    public async Task Request_on_node_a_is_streamed_and_decided_on_node_b_and_wakes_the_waiting_agent_on_a()
    {
        await using var nodes = await TwoNodesAsync();
        var (a, b) = (nodes.A, nodes.B);

        var deviceOnA = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(deviceOnA.Handle);
        var deviceOnB = deviceOnA.On(b);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stream = await b.Http.SendAsync(deviceOnB.Signed(HttpMethod.Get, "/authenticator/stream"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cts.Token));
        Assert.Equal(": ready", await reader.ReadLineAsync(cts.Token));

        var authReqId = await a.AskAsync(agent, "Wire $9,000 to Globex");
        var data = await NextApprovalAsync(reader, cts.Token);
        Assert.Equal("Wire $9,000 to Globex", data.GetProperty("binding_message").GetString());

        var held = a.TokenAsync(agent, authReqId, wait: 30, cts.Token);
        await a.WaitForWaitersAsync();
        Assert.False(held.IsCompleted);
        using (var decided = await deviceOnB.PostDecisionAsync(data.GetProperty("id").GetString()!, "approve",
                   deviceOnB.SignDecision("approve", data.GetProperty("payload").GetString()!)))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        Assert.Same(held, await Task.WhenAny(held, Task.Delay(TimeSpan.FromSeconds(10), cts.Token)));
        using var token = await held;
        var (status, body) = await TestServer.ReadAsync(token);
        Assert.Equal(HttpStatusCode.OK, status);
        // Either node's JWKS verifies it: the key ring is shared through the database.
        await FlowTests.VerifiedClaimsAsync(b, body.GetProperty("access_token").GetString()!);

        using var again = await b.TokenAsync(agent, authReqId);
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(again));
    }

    [Fact]
    public async Task A_signed_device_request_replayed_to_another_node_is_refused()
    {
        await using var nodes = await TwoNodesAsync();
        var (a, b) = (nodes.A, nodes.B);
        var device = await a.UserWithDeviceAsync();

        using var original = device.Signed(HttpMethod.Get, "/authenticator/approvals");
        using (var r = await a.Http.SendAsync(original))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        // The same bytes, captured and sent to the other node within the clock-skew window.
        using var replay = new HttpRequestMessage(HttpMethod.Get, "/authenticator/approvals");
        replay.Headers.TryAddWithoutValidation("Authorization", original.Headers.Authorization!.ToString());
        using (var r = await b.Http.SendAsync(replay))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains("already used", await r.Content.ReadAsStringAsync());
        }
        // A fresh request from the device still works on either node.
        using (var r = await b.Http.SendAsync(device.On(b).Signed(HttpMethod.Get, "/authenticator/approvals")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
    }

    [Fact]
    public async Task Two_nodes_share_the_failed_client_authentication_counter_and_the_pending_cap()
    {
        // One clock for the deployment, at the start of a counting window.
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        clock.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(clock.GetUtcNow().UtcTicks % TimeSpan.FromMinutes(5).Ticks) + TimeSpan.FromSeconds(1));
        await using var nodes = await TwoNodesAsync(o => o.Limits.MaxPendingPerAgentPerUser = 3, clock);
        var (a, b) = (nodes.A, nodes.B);
        var device = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(device.Handle);

        // The cap: two requests on A and one on B fill it, for both nodes.
        await a.AskAsync(agent, "one");
        await a.AskAsync(agent, "two");
        await b.AskAsync(agent, "three");
        foreach (var node in new[] { a, b })
        {
            using var refused = await node.BcAuthorizeAsync(agent, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner });
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("too_many_requests", await TestServer.ErrorOf(refused));
        }
        Assert.Equal(3, (await device.PendingAsync()).Length);

        // Failed client authentication: nine wrong secrets on A and the tenth on B back the client off, on B too.
        var wrong = agent with { ClientSecret = "sec_wrong" };
        for (var i = 0; i < 9; i++)
        {
            using var failed = await a.BcAuthorizeAsync(wrong, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner });
            Assert.Equal(HttpStatusCode.Unauthorized, failed.StatusCode);
            Assert.Null(failed.Headers.RetryAfter);
        }
        using (var tenth = await b.BcAuthorizeAsync(wrong, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner }))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, tenth.StatusCode);
            Assert.NotNull(tenth.Headers.RetryAfter);
        }
        using (var token = await b.TokenAsync(agent, "unused"))
        {
            // B saw one failure only, yet refuses even the right secret: the count is the deployment's.
            Assert.Equal(HttpStatusCode.Unauthorized, token.StatusCode);
            Assert.NotNull(token.Headers.RetryAfter);
        }
    }

    [Fact]
    public async Task Two_nodes_writing_at_once_build_one_verifiable_audit_chain()
    {
        var database = PostgresDatabase.ToConnectionString(await cluster.CreateDatabaseAsync());
        await using var a = new AssentStore(new PostgresDatabase(NpgsqlDataSource.Create(database), TimeProvider.System));
        await using var b = new AssentStore(new PostgresDatabase(NpgsqlDataSource.Create(database), TimeProvider.System));
        await a.MigrateAsync(default);
        await b.MigrateAsync(default);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var user = await a.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), "chain", false, now), new InviteRecord(Ids.Hash("code"), "", now + 60_000, null),
            new AuditEvent(AuditTypes.UserInvited, null, "test", null), default);

        Task Write(AssentStore store, int i)
        {
            var approval = new ApprovalRecord(Ids.New("apr"), Ids.Hash(Guid.NewGuid().ToString()), ApprovalKinds.Ciba, "agt_x", user.Id, "openid", $"n{i}",
                null, null, [1], ApprovalState.Pending, now, now + 60_000);
            return store.Approvals.CreateAsync(approval, new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "agt_x", approval.Id), default);
        }
        await Task.WhenAll(Enumerable.Range(0, 150).SelectMany(i => new[] { Write(a, i), Write(b, i) }));

        // Reading seals first: every committed event is in the chain at once, from either node.
        var (size, head) = await b.Audit.ReadHeadAsync(default);
        Assert.Equal(301, size);
        var rows = await a.Audit.ReadAsync(0, 1000, null, default);
        var chain = AuditChain.Verify(rows);
        Assert.True(chain.Valid, chain.Reason);
        Assert.Equal(301, chain.Verified);
        Assert.Equal(head, chain.Head);
        Assert.Equal(300, rows.Count(r => JsonDocument.Parse(r.Entry).RootElement.GetProperty("type").GetString() == AuditTypes.ApprovalCreated));
        Assert.Equal(rows.Count, rows.Select(r => r.Seq).Distinct().Count());
    }

    [Fact]
    public async Task The_sealer_vacuums_its_queue_of_pending_audit_entries_itself()
    {
        var database = PostgresDatabase.ToConnectionString(await cluster.CreateDatabaseAsync());
        // The sealer vacuums after every VacuumEveryRows entries it deleted (10,000 by default): here after 100.
        await using var store = new AssentStore(new PostgresDatabase(NpgsqlDataSource.Create(database), TimeProvider.System) { VacuumEveryRows = 100 });
        await store.MigrateAsync(default);

        // More than that many entries, arriving over several seal passes as under load.
        for (var round = 0; round < 15; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => store.Audit.AppendAsync(new AuditEvent(AuditTypes.AgentCreated, null, "test", null), default)));
            await Task.Delay(50);
        }

        // A manual VACUUM is recorded as last_vacuum; autovacuum (about once a minute) would set last_autovacuum.
        await using var probe = NpgsqlDataSource.Create(database);
        DateTime? vacuumed = null;
        for (var attempt = 0; attempt < 100 && vacuumed is null; attempt++)
        {
            await using var query = probe.CreateCommand("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'audit_pending'");
            vacuumed = await query.ExecuteScalarAsync() as DateTime?;
            if (vacuumed is null)
            {
                await Task.Delay(100);
            }
        }
        Assert.NotNull(vacuumed);
        var chain = AuditChain.Verify(await store.Audit.ReadAsync(0, 10_000, null, default));
        Assert.True(chain.Valid, chain.Reason);
    }

    [Fact]
    public async Task A_new_request_announced_to_other_nodes_carries_the_request_unless_it_is_too_big()
    {
        var database = PostgresDatabase.ToConnectionString(await cluster.CreateDatabaseAsync());
        await using var store = new PostgresDatabase(NpgsqlDataSource.Create(database), TimeProvider.System);
        var small = new ApprovalRecord("apr_1", [7, 7], ApprovalKinds.Ciba, "agt_x", "usr_1", "openid", "hello | there", "[{\"type\":\"x\"}]", null, [1, 2, 3],
            ApprovalState.Pending, 1, 2);
        var payload = store.Payload(ApprovalNotice.Created(small));
        var parts = payload.Split('|', 6);
        Assert.Equal([store.NodeId, "created", "apr_1", "usr_1", "pending"], parts[..5]);
        var carried = PostgresListener.AnnouncedIn(parts[5])!;
        Assert.Equal(small, carried with { HandleHash = small.HandleHash, Payload = small.Payload });
        Assert.Equal(small.Payload, carried.Payload);
        Assert.Empty(carried.HandleHash);

        var big = small with { AuthorizationDetails = "[{\"type\":\"x\",\"blob\":\"" + new string('a', 9000) + "\"}]" };
        Assert.Equal(5, store.Payload(ApprovalNotice.Created(big)).Split('|', 6).Length);
        Assert.Null(PostgresListener.AnnouncedIn("{not json"));
    }

    private static async Task<JsonElement> NextApprovalAsync(StreamReader reader, CancellationToken ct)
    {
        var isApproval = false;
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                isApproval = line == "event: approval";
            }
            else if (isApproval && line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return JsonDocument.Parse(line[6..]).RootElement.Clone();
            }
        }
        throw new EndOfStreamException();
    }
}
