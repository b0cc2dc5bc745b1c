using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Assent.Server.Tests.Storage;

/// <summary>MPP payments on PostgreSQL (docs/payments.md §5.1): one challenge posted on two nodes at once becomes one payment.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresMppTests(PostgresCluster cluster)
{
    [Fact]
    public async Task One_challenge_posted_to_two_nodes_at_once_is_one_payment_and_one_conflict()
    {
        var database = await cluster.CreateDatabaseAsync();
        var shared = Directory.CreateTempSubdirectory("assent-nodes-").FullName;
        await using var a = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        await using var b = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        var alice = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(alice.Handle);
        var access = (await Session.SignInAsync(a, alice)).GetProperty("access_token").GetString()!;
        using (var create = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet"))
        {
            create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
            using var made = await a.Http.SendAsync(create);
            Assert.Equal(HttpStatusCode.Created, made.StatusCode);
        }
        var request = Protocol.Base64Url.Encode(Encoding.UTF8.GetBytes(
            """{"amount":"10000","currency":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","recipient":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","methodDetails":{"chainId":84532,"credentialTypes":["authorization"],"decimals":6}}"""));
        var challenge = $"Payment id=\"pg-once\", realm=\"api.example\", method=\"evm\", intent=\"charge\", request=\"{request}\", " +
            $"expires=\"{DateTimeOffset.UtcNow.AddMinutes(5):yyyy-MM-ddTHH:mm:ss.fffZ}\"";

        async Task<HttpStatusCode> AskAsync(TestServer node)
        {
            using var pay = new HttpRequestMessage(HttpMethod.Post, "/v1/payments")
            {
                Content = TestDevice.JsonBody(new { url = "https://api.example/weather", status = 402, headers = new Dictionary<string, string> { ["WWW-Authenticate"] = challenge } }),
            };
            pay.Headers.Authorization = TestServer.Basic(agent);
            using var asked = await node.Http.SendAsync(pay);
            return asked.StatusCode;
        }

        var answers = await Task.WhenAll(AskAsync(a), AskAsync(b));
        Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Conflict], answers.Order());
        Assert.Single(await alice.PendingAsync());
    }
}
