using System.Net;
using System.Text.Json;

namespace Assent.Server.Tests.Storage;

[Collection(PostgresCollection.Name)]
public sealed class MultiNodeTests(PostgresCluster cluster)
{
    [Fact]
    public async Task Request_on_node_a_is_streamed_and_decided_on_node_b_and_wakes_the_waiting_agent_on_a()
    {
        var database = await cluster.CreateDatabaseAsync();
        // Nodes share the database and the key-encryption key (here: the same data directory's master.key).
        var shared = Directory.CreateTempSubdirectory("assent-nodes-").FullName;
        await using var a = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        await using var b = await TestServer.StartAsync(shared, configure: o => o.Database = database);

        var deviceOnA = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(deviceOnA.Handle);
        var deviceOnB = new TestDevice(b, deviceOnA.DeviceId, deviceOnA.Seed, deviceOnA.UserId, deviceOnA.Did, deviceOnA.Handle);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stream = await b.Http.SendAsync(deviceOnB.Signed(HttpMethod.Get, "/authenticator/stream"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cts.Token));
        Assert.Equal(": ready", await reader.ReadLineAsync(cts.Token));

        var authReqId = await a.AskAsync(agent, "Wire $9,000 to Globex");
        var data = await NextApprovalAsync(reader, cts.Token);
        Assert.Equal("Wire $9,000 to Globex", data.GetProperty("binding_message").GetString());

        var held = a.TokenAsync(agent, authReqId, wait: 30, cts.Token);
        await Task.Delay(300, cts.Token);
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
