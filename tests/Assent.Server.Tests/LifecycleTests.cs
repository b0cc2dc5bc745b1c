using System.Net;
using System.Text.Json;
using Assent.Protocol.Jose;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>Tests that need a server of their own: a moved clock, a restart, a rotation.</summary>
public sealed class LifecycleTests
{
    [Fact]
    public async Task A_request_past_its_expiry_answers_expired_token_and_cannot_be_decided()
    {
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(device.Handle);
        var authReqId = await server.AskAsync(agent);
        var pending = Assert.Single(await device.PendingAsync());

        server.Clock.Advance(TimeSpan.FromSeconds(301));

        using (var token = await server.TokenAsync(agent, authReqId))
        {
            Assert.Equal("expired_token", await TestServer.ErrorOf(token));
        }
        var id = pending.GetProperty("id").GetString()!;
        using (var late = await device.PostDecisionAsync(id, "approve", device.SignDecision("approve", pending.GetProperty("payload").GetString()!)))
        {
            Assert.Equal(HttpStatusCode.Gone, late.StatusCode);
        }
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task The_sweeper_expires_overdue_requests_wakes_waiters_and_audits_it()
    {
        await using var server = await TestServer.StartAsync(configure: o => o.SweepInterval = TimeSpan.FromMilliseconds(100));
        var device = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(device.Handle);
        var authReqId = await server.AskAsync(agent);
        var held = server.TokenAsync(agent, authReqId, wait: 30);
        await server.WaitForWaitersAsync();
        server.Clock.Advance(TimeSpan.FromSeconds(301));
        Assert.Same(held, await Task.WhenAny(held, Task.Delay(TimeSpan.FromSeconds(10))));
        using var response = await held;
        Assert.Equal("expired_token", await TestServer.ErrorOf(response));
        // The held request may answer from its own expiry check before the sweeper's next pass marks the row: wait for that pass.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var approval = await server.Store.Approvals.FindByHandleAsync(Ids.HandleKey(authReqId), default);
        while (approval!.State != ApprovalState.Expired && DateTime.UtcNow < until)
        {
            await Task.Delay(50);
            approval = await server.Store.Approvals.FindByHandleAsync(Ids.HandleKey(authReqId), default);
        }
        Assert.Equal(ApprovalState.Expired, approval.State);
        var entries = await server.Store.Audit.ReadAsync(0, 1000, null, default);
        Assert.Contains(entries, e => JsonDocument.Parse(e.Entry).RootElement.GetProperty("type").GetString() == AuditTypes.ApprovalExpired);
    }

    [Fact]
    public async Task A_pending_request_survives_a_restart_and_can_still_be_approved_and_redeemed()
    {
        var server = await TestServer.StartAsync();
        try
        {
            var device = await server.UserWithDeviceAsync();
            var agent = await server.AgentAsync(device.Handle);
            var authReqId = await server.AskAsync(agent);
            await server.RestartAsync();

            using (await device.DecideOnlyPendingAsync("approve"))
            {
            }
            using var token = await server.TokenAsync(agent, authReqId);
            var (status, body) = await TestServer.ReadAsync(token);
            Assert.Equal(HttpStatusCode.OK, status);
            await FlowTests.VerifiedClaimsAsync(server, body.GetProperty("access_token").GetString()!);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_request_asked_before_handles_carried_their_time_is_still_found_by_its_handle()
    {
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(device.Handle);
        var authReqId = await server.AskAsync(agent);
        var id = (await server.Store.Approvals.FindByHandleAsync(Ids.HandleKey(authReqId), default))!.Id;
        // The row as an earlier release stored it: a handle of 256 random bits, keyed by its SHA-256 alone.
        var earlier = Assent.Protocol.Base64Url.Encode(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(server.DataDirectory, StoreFactory.SqliteFileName)};Pooling=False"))
        {
            c.Open();
            using var update = c.CreateCommand();
            update.CommandText = "PRAGMA busy_timeout=10000; UPDATE approvals SET handle_hash = $h WHERE id = $id";
            update.Parameters.AddWithValue("$h", Ids.Hash(earlier));
            update.Parameters.AddWithValue("$id", id);
            Assert.Equal(1, update.ExecuteNonQuery());
        }
        // A new server instance, as after an upgrade: nothing of the request is held in memory, only the row.
        await server.RestartAsync();

        using (await device.DecideOnlyPendingAsync("approve"))
        {
        }
        using (var stale = await server.TokenAsync(agent, authReqId))
        {
            Assert.Equal("invalid_grant", await TestServer.ErrorOf(stale));
        }
        using var token = await server.TokenAsync(agent, earlier);
        var (status, body) = await TestServer.ReadAsync(token);
        Assert.Equal(HttpStatusCode.OK, status);
        await FlowTests.VerifiedClaimsAsync(server, body.GetProperty("access_token").GetString()!);
    }

    [Fact]
    public async Task Key_rotation_publishes_the_new_key_keeps_the_old_one_and_signs_with_the_new_one()
    {
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(device.Handle);
        var before = await IssueAsync(server, device, agent);
        var oldKid = KidOf(before);

        await server.Service<KeyRing>().RotateAsync(default);

        var jwks = JsonSerializer.Deserialize<JwkSet>(await server.Http.GetStringAsync("/oauth/jwks"))!;
        Assert.Equal(2, jwks.Keys.Count);
        Assert.All(jwks.Keys, k => Assert.Equal("sig", k.Use));
        Assert.DoesNotContain("\"alg\"", await server.Http.GetStringAsync("/oauth/jwks"));
        var after = await IssueAsync(server, device, agent);
        Assert.NotEqual(oldKid, KidOf(after));
        await FlowTests.VerifiedClaimsAsync(server, before);
        await FlowTests.VerifiedClaimsAsync(server, after);

        // Once every token the old key could have signed has expired, it leaves the JWKS.
        server.Clock.Advance(TimeSpan.FromMinutes(11));
        await server.Service<KeyRing>().RefreshAsync(default);
        var later = JsonSerializer.Deserialize<JwkSet>(await server.Http.GetStringAsync("/oauth/jwks"))!;
        Assert.DoesNotContain(later.Keys, k => k.Kid == oldKid);
    }

    [Fact]
    public async Task Signing_keys_are_stored_only_encrypted_and_a_wrong_master_key_refuses_to_start()
    {
        var server = await TestServer.StartAsync();
        var dir = server.DataDirectory;
        var keys = await server.Store.Keys.ListAsync(default);
        var current = server.Service<KeyRing>().Current;
        Assert.All(keys, k => Assert.False(k.EncryptedSeed.AsSpan().IndexOf(current.Seed) >= 0));
        var port = server.Port;
        await server.StopKeepingDataAsync();

        var masterFile = Path.Combine(dir, MasterKey.FileName);
        Assert.False(SecureFile.IsExposed(masterFile), "master.key must be readable by its owner only");
        File.Delete(masterFile);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => TestServer.StartAsync(dir, port));
        Assert.Contains("key-encryption key does not match", error.Message);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task The_first_start_prints_a_one_time_enrolment_code_for_the_admin()
    {
        await using var server = await TestServer.StartAsync();
        Assert.Contains("code:", server.Banner);
        Assert.Contains("/app/enroll?code=", server.Banner);
        var code = server.Banner.Split('\n').First(l => l.Trim().StartsWith("code:", StringComparison.Ordinal)).Split(':')[1].Trim();
        var admin = await server.EnrollAsync(code);
        Assert.Equal("admin", admin.Handle);
        Assert.True((await server.Store.Users.FindAsync(admin.UserId, default))!.IsAdmin);
        await server.RestartAsync();
        Assert.Equal("", server.Banner);
    }

    private static async Task<string> IssueAsync(TestServer server, TestDevice device, TestAgent agent)
    {
        var id = await server.AskAsync(agent);
        using (await device.DecideOnlyPendingAsync("approve"))
        {
        }
        using var token = await server.TokenAsync(agent, id);
        var (_, body) = await TestServer.ReadAsync(token);
        return body.GetProperty("access_token").GetString()!;
    }

    private static string KidOf(string token)
    {
        Assert.True(Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out _));
        return parts!.Header.Kid!;
    }
}
