using Assent.Server.Keys;

namespace Assent.Server.Tests.Storage;

/// <summary>Key rotation on two PostgreSQL nodes at once (docs/deployment.md §3): one key stays current, for every algorithm.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresKeyRotationTests(PostgresCluster cluster)
{
    [Fact]
    public async Task Rotations_racing_on_two_nodes_leave_exactly_one_current_key_per_algorithm()
    {
        var database = await cluster.CreateDatabaseAsync();
        var shared = Directory.CreateTempSubdirectory("assent-nodes-").FullName;
        await using var a = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        await using var b = await TestServer.StartAsync(shared, configure: o => o.Database = database);
        // An ES256 key in use, so that rotations rotate it too.
        await a.Service<KeyRing>().JoseKeyAsync("ES256", CancellationToken.None);

        // Read committed, unserialized: a rotation's retiring UPDATE misses the key another rotation committed meanwhile.
        const int perNode = 12;
        var rings = new[] { a.Service<KeyRing>(), b.Service<KeyRing>() };
        var kids = await Task.WhenAll(Enumerable.Range(0, 2 * perNode).Select(i => Task.Run(() => rings[i % 2].RotateAsync(CancellationToken.None))));
        Assert.Equal(2 * perNode, kids.Distinct(StringComparer.Ordinal).Count());

        var keys = await a.Store.Keys.ListAsync(CancellationToken.None);
        Assert.Equal(2 * perNode + 1, keys.Count);
        var current = Assert.Single(keys, k => k.RetiredAt is null);
        Assert.Contains(current.Kid, kids);
        var jose = await a.Store.JoseKeys.ListAsync(CancellationToken.None);
        Assert.Equal(2 * perNode + 1, jose.Count(k => k.Alg == "ES256"));
        Assert.Single(jose, k => k.Alg == "ES256" && k.RetiredAt is null);
    }
}
