using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests.Storage;

/// <summary>Wallets and payments on PostgreSQL (docs/payments.md, docs/storage.md §3): made on one node, approved and signed on another.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresPaymentTests(PostgresCluster cluster)
{
    [Fact]
    public async Task A_payment_asked_on_one_node_is_approved_and_signed_on_another_once()
    {
        var database = await cluster.CreateDatabaseAsync();
        var shared = Directory.CreateTempSubdirectory("assent-nodes-").FullName;
        await using var a = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        await using var b = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        var alice = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(alice.Handle);
        var access = (await Session.SignInAsync(a, alice)).GetProperty("access_token").GetString()!;
        string? address = null;
        // Session tokens name their node's issuer (each test node has its own port): the human stays on node a.
        foreach (var (node, expected) in new[] { (a, HttpStatusCode.Created), (a, HttpStatusCode.OK) })
        {
            using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet");
            create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
            using var made = await node.Http.SendAsync(create);
            Assert.Equal(expected, made.StatusCode);
            var wallet = JsonDocument.Parse(await made.Content.ReadAsStringAsync()).RootElement.GetProperty("address").GetString();
            Assert.Equal(address ?? wallet, wallet);
            address = wallet;
        }

        using var pay = new HttpRequestMessage(HttpMethod.Post, "/v1/payments")
        {
            Content = TestDevice.JsonBody(new
            {
                url = "https://api.example/weather", status = 402,
                headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = PaymentTests.V2Header() },
            }),
        };
        pay.Headers.Authorization = TestServer.Basic(agent);
        using var asked = await a.Http.SendAsync(pay);
        Assert.Equal(HttpStatusCode.Created, asked.StatusCode);
        var id = JsonDocument.Parse(await asked.Content.ReadAsStringAsync()).RootElement.GetProperty("paymentId").GetString()!;
        using (var decided = await alice.On(b).DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }

        var headers = new List<string>();
        foreach (var node in new[] { b, a })
        {
            using var get = new HttpRequestMessage(HttpMethod.Get, $"/v1/payments/{id}");
            get.Headers.Authorization = TestServer.Basic(agent);
            using var read = await node.Http.SendAsync(get);
            var payment = JsonDocument.Parse(await read.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("approved", payment.GetProperty("status").GetString());
            Assert.Equal(address, payment.GetProperty("from").GetString());
            headers.Add(payment.GetProperty("header").GetProperty("value").GetString()!);
        }
        Assert.Equal(headers[0], headers[1]);

        using var list = new HttpRequestMessage(HttpMethod.Get, "/v1/payments");
        list.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        using var listed = await a.Http.SendAsync(list);
        var payments = JsonDocument.Parse(await listed.Content.ReadAsStringAsync()).RootElement.GetProperty("payments");
        Assert.Equal(id, Assert.Single(payments.EnumerateArray()).GetProperty("paymentId").GetString());
    }

    [Fact]
    public async Task The_list_reads_each_payments_mandate_in_its_one_query_on_PostgreSQL_too()
    {
        var database = await cluster.CreateDatabaseAsync();
        await using var server = await TestServer.StartAsync(configure: o => o.Database = database);
        var (owner, agent, _) = await MandatePaying.PayerAsync(server);
        var mandate = await Mandating.ApprovedAsync(server, agent, owner, "0.05", "0.10", "none");
        var (_, covered) = await MandatePaying.PayAsync(server, agent, "30000");
        var (_, pending) = await MandatePaying.PayAsync(server, agent, "60000");
        Assert.True(MandatePaying.Covered(covered), covered.ToString());
        Assert.Equal("pending", pending.GetProperty("status").GetString());

        using var list = new HttpRequestMessage(HttpMethod.Get, "/v1/payments");
        list.Headers.Authorization = TestServer.Basic(agent);
        using var listed = await server.Http.SendAsync(list);
        var payments = JsonDocument.Parse(await listed.Content.ReadAsStringAsync()).RootElement.GetProperty("payments").EnumerateArray()
            .ToDictionary(p => p.GetProperty("paymentId").GetString()!);

        Assert.Equal(2, payments.Count);
        var m = payments[covered.GetProperty("paymentId").GetString()!].GetProperty("mandate");
        Assert.Equal(mandate, m.GetProperty("id").GetString());
        Assert.Equal("0.03", m.GetProperty("charged").GetString());
        Assert.Equal("0.07", m.GetProperty("remaining").GetString());
        Assert.False(payments[pending.GetProperty("paymentId").GetString()!].TryGetProperty("mandate", out _));
    }
}
