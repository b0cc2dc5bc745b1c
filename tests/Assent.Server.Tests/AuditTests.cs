using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Server.Audit;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

public sealed class AuditChainTests
{
    private static List<AuditRow> Chain(int n)
    {
        var rows = new List<AuditRow>();
        var prev = AuditChain.Genesis;
        for (var seq = 1; seq <= n; seq++)
        {
            var entry = AuditChain.Canonical(seq, 1_700_000_000_000 + seq, new AuditEvent("approval.created", "usr_1", "agt_1", "apr_" + seq));
            prev = AuditChain.Link(prev, entry);
            rows.Add(new AuditRow(seq, entry, prev));
        }
        return rows;
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(9L)]
    [InlineData(10L)]
    [InlineData(123_456_789_012L)]
    [InlineData(long.MaxValue)]
    public void An_entry_sealed_later_is_byte_for_byte_the_canonical_entry(long seq)
    {
        var e = new AuditEvent("approval.created", "usr_1", null, "apr_1", new Dictionary<string, string> { ["z"] = "1", ["a"] = "\"quoted\"" });
        Assert.Equal(AuditChain.Canonical(seq, 1_700_000_000_123, e), AuditChain.Seal(seq, AuditChain.Unsealed(1_700_000_000_123, e)));
    }

    [Fact]
    public void An_untouched_chain_verifies()
    {
        var result = AuditChain.Verify(Chain(10));
        Assert.True(result.Valid);
        Assert.Equal(10, result.Verified);
    }

    [Fact]
    public void An_edited_entry_is_detected()
    {
        var rows = Chain(10);
        var edited = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(rows[4].Entry).Replace("apr_5", "apr_X"));
        rows[4] = rows[4] with { Entry = edited };
        var result = AuditChain.Verify(rows);
        Assert.False(result.Valid);
        Assert.Equal(5, result.FailedAt);
    }

    [Fact]
    public void An_edited_entry_with_recomputed_hash_breaks_the_next_link()
    {
        var rows = Chain(10);
        var edited = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(rows[4].Entry).Replace("apr_5", "apr_X"));
        rows[4] = rows[4] with { Entry = edited, Hash = AuditChain.Link(rows[3].Hash, edited) };
        var result = AuditChain.Verify(rows);
        Assert.False(result.Valid);
        Assert.Equal(6, result.FailedAt);
    }

    [Fact]
    public void A_deleted_entry_is_detected()
    {
        var rows = Chain(10);
        rows.RemoveAt(3);
        Assert.False(AuditChain.Verify(rows).Valid);
        var renumbered = Chain(10);
        renumbered.RemoveAt(9);
        Assert.True(AuditChain.Verify(renumbered).Valid, "dropping the tail is only detectable against a signed checkpoint");
    }

    [Fact]
    public void An_inserted_entry_is_detected()
    {
        var rows = Chain(10);
        var forged = AuditChain.Canonical(4, 1, new AuditEvent("approval.approved", "usr_1", "dev_evil", "apr_4"));
        rows.Insert(3, new AuditRow(4, forged, AuditChain.Link(rows[2].Hash, forged)));
        Assert.False(AuditChain.Verify(rows).Valid);
    }

    [Fact]
    public void Reordered_entries_are_detected()
    {
        var rows = Chain(10);
        (rows[2], rows[3]) = (rows[3] with { Seq = 3 }, rows[2] with { Seq = 4 });
        Assert.False(AuditChain.Verify(rows).Valid);
    }
}

public sealed class AuditEndpointTests
{
    [Fact]
    public async Task Every_step_of_a_flow_is_audited_and_the_whole_chain_verifies_against_the_signed_checkpoint()
    {
        await using var server = await TestServer.StartAsync();
        var adminCode = server.Banner.Split('\n').First(l => l.Trim().StartsWith("code:", StringComparison.Ordinal)).Split(':')[1].Trim();
        var admin = await server.EnrollAsync(adminCode);
        var device = await server.UserWithDeviceAsync("carol");
        var agent = await server.AgentAsync("carol");
        var id = await server.AskAsync(agent);
        using (await device.DecideOnlyPendingAsync("approve"))
        {
        }
        using (await server.TokenAsync(agent, id))
        {
        }

        var all = await PageAsync(server, admin);
        var types = all.Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Contains(AuditTypes.KeyCreated, types);
        Assert.Contains(AuditTypes.UserInvited, types);
        Assert.Contains(AuditTypes.DeviceEnrolled, types);
        Assert.Contains(AuditTypes.AgentCreated, types);
        Assert.Contains(AuditTypes.ApprovalCreated, types);
        Assert.Contains(AuditTypes.ApprovalApproved, types);
        Assert.Contains(AuditTypes.ApprovalRedeemed, types);

        // A plain user sees only their own entries.
        var own = await PageAsync(server, device);
        Assert.All(own, e => Assert.Equal(device.UserId, e.GetProperty("user").GetString()));
        Assert.True(own.Count < all.Count);

        var rows = await server.Store.Audit.ReadAsync(0, 10_000, null, default);
        var verified = AuditChain.Verify(rows);
        Assert.True(verified.Valid, verified.Reason);

        var checkpoint = JsonDocument.Parse(await server.Http.GetStringAsync("/audit/checkpoint")).RootElement;
        Assert.Equal(rows.Count, checkpoint.GetProperty("size").GetInt64());
        Assert.Equal(Base64Url.Encode(verified.Head), checkpoint.GetProperty("head").GetString());
        var jws = checkpoint.GetProperty("signature").GetString()!;
        var claims = await FlowTests.VerifiedClaimsAsync(server, jws, AuditEndpoints.CheckpointType);
        Assert.Equal(rows.Count, claims.GetProperty("size").GetInt64());
        Assert.Equal(checkpoint.GetProperty("head").GetString(), claims.GetProperty("head").GetString());
    }

    [Fact]
    public async Task Paging_the_audit_log_yields_a_chain_that_passes_through_every_earlier_checkpoint_and_ends_at_the_latest()
    {
        await using var server = await TestServer.StartAsync();
        var adminCode = server.Banner.Split('\n').First(l => l.Trim().StartsWith("code:", StringComparison.Ordinal)).Split(':')[1].Trim();
        var admin = await server.EnrollAsync(adminCode);
        var checkpoints = new List<JsonElement> { await CheckpointAsync(server) };
        var device = await server.UserWithDeviceAsync("dave");
        var agent = await server.AgentAsync("dave");
        checkpoints.Add(await CheckpointAsync(server));
        for (var i = 0; i < 3; i++)
        {
            await server.AskAsync(agent, $"Request {i}");
            checkpoints.Add(await CheckpointAsync(server));
        }

        // Pages of two, each starting where the previous one's `next` points.
        var rows = new List<AuditRow>();
        long? after = 0;
        while (after is { } cursor)
        {
            using var response = await server.Http.SendAsync(admin.Signed(HttpMethod.Get, $"/audit?after={cursor}&limit=2"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            var entries = page.GetProperty("entries").EnumerateArray().ToList();
            Assert.True(entries.Count <= 2);
            rows.AddRange(entries.Select(e => new AuditRow(e.GetProperty("seq").GetInt64(),
                Base64Url.Decode(e.GetProperty("entry").GetString()!), Base64Url.Decode(e.GetProperty("hash").GetString()!))));
            after = page.TryGetProperty("next", out var next) ? next.GetInt64() : null;
            Assert.True(after is null || after == rows[^1].Seq, "next is the last sequence number of a full page");
        }

        var verified = AuditChain.Verify(rows);
        Assert.True(verified.Valid, verified.Reason);
        var latest = checkpoints[^1];
        Assert.Equal(latest.GetProperty("size").GetInt64(), rows.Count);
        Assert.Equal(latest.GetProperty("head").GetString(), Base64Url.Encode(verified.Head));
        Assert.True(checkpoints.Select(c => c.GetProperty("size").GetInt64()).Distinct().Count() == checkpoints.Count, "every step appended");
        foreach (var checkpoint in checkpoints)
        {
            var size = checkpoint.GetProperty("size").GetInt64();
            Assert.Equal(checkpoint.GetProperty("head").GetString(), Base64Url.Encode(rows[(int)size - 1].Hash));
            var claims = await FlowTests.VerifiedClaimsAsync(server, checkpoint.GetProperty("signature").GetString()!, AuditEndpoints.CheckpointType);
            Assert.Equal(size, claims.GetProperty("size").GetInt64());
            Assert.Equal(checkpoint.GetProperty("head").GetString(), claims.GetProperty("head").GetString());
        }
    }

    private static async Task<JsonElement> CheckpointAsync(TestServer server) =>
        JsonDocument.Parse(await server.Http.GetStringAsync("/audit/checkpoint")).RootElement.Clone();

    [Fact]
    public async Task The_audit_log_requires_a_signed_device_request()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Http.GetAsync("/audit");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    private static async Task<List<JsonElement>> PageAsync(TestServer server, TestDevice device)
    {
        using var response = await server.Http.SendAsync(device.Signed(HttpMethod.Get, "/audit?after=0&limit=1000"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return page.GetProperty("entries").EnumerateArray()
            .Select(e => JsonDocument.Parse(Base64Url.Decode(e.GetProperty("entry").GetString()!)).RootElement.Clone())
            .ToList();
    }
}
