using System.Net;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Server.Approvals;

namespace Assent.Server.Tests.Storage;

/// <summary>A quorum on two PostgreSQL nodes (docs/policies.md §3, docs/storage.md §5): racing approvers, and a revocation on another node.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresPolicyTests(PostgresCluster cluster)
{
    private static string Payment(string amount) => $$"""[{"type":"payment","amount":"{{amount}}","currency":"USD"}]""";

    private static async Task<HttpStatusCode> DecideAsync(TestDevice device, JsonElement pending, string decision)
    {
        using var response = await device.PostDecisionAsync(pending.GetProperty("id").GetString()!, decision,
            device.SignDecision(decision, pending.GetProperty("payload").GetString()!));
        return response.StatusCode;
    }

    /// <summary>Two nodes of one deployment: one PostgreSQL database, one shared data directory; both stopped on dispose.</summary>
    private sealed record Nodes(TestServer A, TestServer B) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await B.DisposeAsync();
            await A.DisposeAsync();
        }
    }

    private async Task<Nodes> TwoNodesAsync()
    {
        var database = await cluster.CreateDatabaseAsync();
        var shared = Directory.CreateTempSubdirectory("assent-nodes-").FullName;
        var a = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        try
        {
            return new Nodes(a, await TestServer.StartAsync(shared, configure: o => o.Database = database));
        }
        catch
        {
            await a.DisposeAsync();
            throw;
        }
    }

    /// <summary>Alice, Bob and Carol, Alice's agent, and a policy named <paramref name="policy"/>: its payments over 10,000 USD need 2 of the 3.</summary>
    private static async Task<(TestDevice Alice, TestDevice Bob, TestDevice Carol, TestAgent Agent)> TreasuryAsync(TestServer a, string policy)
    {
        var alice = await a.UserWithDeviceAsync();
        var bob = await a.UserWithDeviceAsync();
        var carol = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(alice.Handle);
        await a.Service<PolicyBook>().AddAsync(new PolicyDraft(policy, 10, agent.ClientId, null, "payment", "USD",
            JsonDocument.Parse("\"10000\"").RootElement.Clone(), null, "quorum", 2, [alice.Handle, bob.Handle, carol.Handle]), "test", CancellationToken.None);
        return (alice, bob, carol, agent);
    }

    [Fact]
    public async Task Two_approvers_deciding_at_once_on_two_nodes_make_the_quorum_and_a_device_revoked_on_the_other_node_stops_counting()
    {
        await using var nodes = await TwoNodesAsync();
        var (a, b) = (nodes.A, nodes.B);
        var (alice, bob, carol, agent) = await TreasuryAsync(a, "treasury-large");

        var first = await a.AskAsync(agent, "Transfer 12,500 USD", Payment("12500.00"), "openid payments:write");
        var atBob = (await bob.On(b).PendingAsync()).Single();
        var atCarol = (await carol.PendingAsync()).Single();
        var decided = await Task.WhenAll(DecideAsync(bob.On(b), atBob, Decisions.Approve), DecideAsync(carol, atCarol, Decisions.Approve));
        Assert.All(decided, s => Assert.Equal(HttpStatusCode.OK, s));
        using (var token = await b.TokenAsync(agent, first))
        {
            var (status, body) = await TestServer.ReadAsync(token);
            Assert.Equal(HttpStatusCode.OK, status);
            var claims = JsonDocument.Parse(Base64Url.Decode(body.GetProperty("access_token").GetString()!.Split('.')[1])).RootElement;
            Assert.Equal(2, claims.GetProperty("approvers").GetArrayLength());
            Assert.Equal("treasury-large@1", claims.GetProperty("policy").GetString());
        }

        var laptop = await a.EnrollAsync((await a.InviteAsync(bob.Handle)).Code, "laptop");
        var second = await a.AskAsync(agent, "Transfer 20,000 USD", Payment("20000.00"), "openid payments:write");
        var pending = (await laptop.PendingAsync()).Single();
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(laptop, pending, Decisions.Approve));
        using (var revoke = await b.Http.SendAsync(bob.On(b).Signed(HttpMethod.Delete, $"/authenticator/devices/{laptop.DeviceId}")))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(carol.On(b), pending, Decisions.Approve));
        using var stillPending = await a.TokenAsync(agent, second);
        Assert.Equal("authorization_pending", await TestServer.ErrorOf(stillPending));
    }

    [Fact]
    public async Task A_co_approvers_stream_on_another_node_hears_of_the_quorum_request_and_of_each_vote_live()
    {
        await using var nodes = await TwoNodesAsync();
        var (a, b) = (nodes.A, nodes.B);
        var (alice, bob, carol, agent) = await TreasuryAsync(a, "treasury-live");

        // Bob's stream is on node b; nobody else's is. The request is alice's, created on node a.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stream = await bob.On(b).OpenStreamAsync(cts.Token);
        var reader = stream.Reader;
        Assert.Equal(": ready", await reader.ReadLineAsync(cts.Token));
        await a.AskAsync(agent, "Transfer 30,000 USD", Payment("30000.00"), "openid payments:write");
        var (type, shown) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        Assert.Empty(shown.GetProperty("quorum").GetProperty("approved").EnumerateArray());

        Assert.Equal(HttpStatusCode.OK, await DecideAsync(alice, shown, Decisions.Approve));
        (type, var again) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        Assert.Equal(shown.GetProperty("id").GetString(), again.GetProperty("id").GetString());
        Assert.Equal([alice.Handle], again.GetProperty("quorum").GetProperty("approved").EnumerateArray().Select(e => e.GetString()));

        // Carol's vote on node a settles it: Bob's open card on node b hears so at once, not on his next reconnect.
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(carol, shown, Decisions.Approve));
        (type, var settled) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("settled", type);
        Assert.Equal(shown.GetProperty("id").GetString(), settled.GetProperty("id").GetString());
        Assert.Equal("approved", settled.GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_co_approvers_stream_on_another_node_hears_a_quorum_request_cancelled_or_expired()
    {
        await using var nodes = await TwoNodesAsync();
        var (a, b) = (nodes.A, nodes.B);
        var (_, bob, _, agent) = await TreasuryAsync(a, "treasury-ends");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stream = await bob.On(b).OpenStreamAsync(cts.Token);
        var reader = stream.Reader;
        Assert.Equal(": ready", await reader.ReadLineAsync(cts.Token));

        // Withdrawn by its agent on node a (RFC 7009 revocation of the auth_req_id, docs/http-api.md §8.1).
        var cancelled = await a.AskAsync(agent, "Transfer 40,000 USD", Payment("40000.00"), "openid payments:write");
        var (type, shown) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        using (var revoke = new HttpRequestMessage(HttpMethod.Post, "/oauth/revoke") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = cancelled }) })
        {
            revoke.Headers.Authorization = TestServer.Basic(agent);
            using var revoked = await a.Http.SendAsync(revoke, cts.Token);
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }
        (type, var settled) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("settled", type);
        Assert.Equal(shown.GetProperty("id").GetString(), settled.GetProperty("id").GetString());
        Assert.Equal("cancelled", settled.GetProperty("state").GetString());

        // Left to expire: node a's sweep expires it, and Bob on node b hears that too.
        await a.AskAsync(agent, "Transfer 50,000 USD", Payment("50000.00"), "openid payments:write");
        (type, shown) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        a.Clock.Advance(TimeSpan.FromHours(1));
        await a.Service<ApprovalService>().SweepAsync(CancellationToken.None);
        (type, settled) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("settled", type);
        Assert.Equal(shown.GetProperty("id").GetString(), settled.GetProperty("id").GetString());
        Assert.Equal("expired", settled.GetProperty("state").GetString());
    }
}
