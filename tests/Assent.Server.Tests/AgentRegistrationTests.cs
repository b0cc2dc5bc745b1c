using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests;

[Collection(SharedServerCollection.Name)]
public sealed class AgentRegistrationTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    private async Task<(TestDevice Device, string Access)> SignedInAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        return (device, (await Session.SignInAsync(Server, device)).GetProperty("access_token").GetString()!);
    }

    [Fact]
    public async Task Registering_an_agent_approved_on_the_device_returns_the_secret_once_and_the_agent_can_use_it()
    {
        var (device, access) = await SignedInAsync();
        var held = Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "deploy-bot", scopes = new[] { "approve:action" } }, wait: 30));

        JsonElement pending = default;
        for (var i = 0; i < 50 && pending.ValueKind == JsonValueKind.Undefined; i++)
        {
            pending = (await device.PendingAsync()).FirstOrDefault();
            await Task.Delay(pending.ValueKind == JsonValueKind.Undefined ? 50 : 0);
        }
        Assert.Equal("agent_registration", pending.GetProperty("kind").GetString());
        Assert.Equal("Register agent 'deploy-bot' with scopes approve:action openid", pending.GetProperty("binding_message").GetString());
        var details = pending.GetProperty("authorization_details")[0];
        Assert.Equal("agent_registration", details.GetProperty("type").GetString());
        Assert.Equal("deploy-bot", details.GetProperty("name").GetString());
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }

        using var created = await held.WaitAsync(TimeSpan.FromSeconds(10));
        var (status, body) = await TestServer.ReadAsync(created);
        Assert.Equal(HttpStatusCode.Created, status);
        var clientId = body.GetProperty("client_id").GetString()!;
        var secret = body.GetProperty("client_secret").GetString()!;
        Assert.StartsWith("agt_", clientId);
        Assert.StartsWith("sec_", secret);
        Assert.Equal("deploy-bot", body.GetProperty("name").GetString());
        Assert.Equal("approve:action openid", body.GetProperty("scopes").GetString());
        Assert.Equal(device.Handle, body.GetProperty("owner").GetString());

        using var again = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, created.Headers.Location!.ToString(), access));
        var (againStatus, againBody) = await TestServer.ReadAsync(again);
        Assert.Equal(HttpStatusCode.OK, againStatus);
        Assert.Equal(clientId, againBody.GetProperty("client_id").GetString());
        Assert.False(againBody.TryGetProperty("client_secret", out _));
        Assert.DoesNotContain(secret, againBody.GetRawText());

        var authReqId = await Server.AskAsync(new TestAgent(clientId, secret, device.Handle), "Deploy v2 to production");
        Assert.False(string.IsNullOrEmpty(authReqId));
    }

    [Fact]
    public async Task Registering_without_wait_answers_202_with_a_location_that_reports_pending_then_403_once_denied()
    {
        var (device, access) = await SignedInAsync();

        using var accepted = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "bot", scopes = "approve:action" }));
        var (status, body) = await TestServer.ReadAsync(accepted);
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal("pending", body.GetProperty("status").GetString());
        var id = body.GetProperty("request_id").GetString()!;
        Assert.Equal($"/agents/requests/{id}", accepted.Headers.Location!.ToString());

        using var stillPending = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, $"/agents/requests/{id}", access));
        Assert.Equal(HttpStatusCode.Accepted, stillPending.StatusCode);
        using (var denied = await device.DecideOnlyPendingAsync(Decisions.Deny))
        {
            Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        }
        using var refused = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, $"/agents/requests/{id}", access));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);

        var (other, otherAccess) = await SignedInAsync();
        using var notTheirs = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, $"/agents/requests/{id}", otherAccess));
        Assert.Equal(HttpStatusCode.NotFound, notTheirs.StatusCode);
        Assert.NotEqual(other.UserId, device.UserId);
    }

    [Fact]
    public async Task Agents_refuses_missing_malformed_forged_revoked_and_agent_tokens_with_401()
    {
        var (device, access) = await SignedInAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);
        using (var approved = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        }
        using var redeemed = await Server.TokenAsync(agent, authReqId);
        var agentToken = (await TestServer.ReadAsync(redeemed)).Body.GetProperty("access_token").GetString()!;
        var parts = access.Split('.');
        var forged = parts[0] + "." + parts[1] + "." + (parts[2][0] == 'A' ? 'B' : 'A') + parts[2][1..];
        var body = new { name = "bot", scopes = new[] { "approve:action" } };

        using var missing = await Server.Http.PostAsync("/agents", new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));
        using var malformed = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", "not-a-token", body));
        using var forgedResponse = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", forged, body));
        using var agentResponse = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", agentToken, body));
        using (var revoke = await Session.RevokeAsync(Server, access))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }
        using var revoked = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, body));

        foreach (var response in new[] { missing, malformed, forgedResponse, agentResponse, revoked })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.StartsWith("Bearer", response.Headers.WwwAuthenticate.ToString());
        }
        Assert.Contains("revoked", revoked.Headers.WwwAuthenticate.ToString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task A_name_the_owner_already_uses_for_an_active_agent_is_refused_by_both_paths_and_another_owner_may_use_it()
    {
        var (device, access) = await SignedInAsync();
        var (other, otherAccess) = await SignedInAsync();
        var first = await Server.AgentAsync(device.Handle, name: "deploy-bot");

        // Trimmed and compared without case.
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Server.Admin.CreateAgentAsync(device.Handle, " Deploy-BOT ", "approve:action", CancellationToken.None));
        Assert.Contains($"{device.Handle} already has an active agent named 'Deploy-BOT' ({first.ClientId})", e.Message);
        using var duplicate = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "DEPLOY-bot ", scopes = "approve:action" }));
        var (status, body) = await TestServer.ReadAsync(duplicate);
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Equal("application/problem+json", duplicate.Content.Headers.ContentType?.MediaType);
        Assert.Contains(first.ClientId, body.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());

        var (third, _) = await SignedInAsync();
        await Server.AgentAsync(third.Handle, name: "deploy-bot");
        using var elsewhere = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", otherAccess, new { name = "Deploy-Bot", scopes = "approve:action" }));
        Assert.Equal(HttpStatusCode.Accepted, elsewhere.StatusCode);
    }

    [Fact]
    public async Task A_registration_whose_name_was_taken_while_the_owner_decided_creates_nothing()
    {
        var (device, access) = await SignedInAsync();
        using var accepted = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "ci-bot", scopes = "approve:action" }));
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var taken = await Server.AgentAsync(device.Handle, name: "CI-bot");
        using (var approved = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        }

        using var answer = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, accepted.Headers.Location!.ToString(), access));

        var (status, body) = await TestServer.ReadAsync(answer);
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("already has an active agent named 'ci-bot'", body.GetProperty("detail").GetString());
        var id = accepted.Headers.Location!.ToString().Split('/')[^1];
        Assert.Null(await Server.Store.Clients.FindAsync("agt_" + id[(id.IndexOf('_') + 1)..], default));
        Assert.Equal(Assent.Server.Storage.ApprovalState.Approved, (await Server.Store.Approvals.FindAsync(id, default))!.State);
        Assert.NotNull(await Server.Store.Clients.FindAsync(taken.ClientId, default));
    }

    [Fact]
    public async Task Registering_with_a_bad_name_or_scope_is_a_400_and_raises_nothing()
    {
        var (device, access) = await SignedInAsync();

        using var noName = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { scopes = "approve:action" }));
        using var badScope = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "bot", scopes = new[] { "Bad Scope!" } }));
        using var badShape = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name = "bot", scopes = 5 }));

        Assert.Equal(HttpStatusCode.BadRequest, noName.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badScope.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badShape.StatusCode);
        Assert.Empty(await device.PendingAsync());
    }
}
