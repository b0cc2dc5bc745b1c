using System.Net;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests;

/// <summary>An agent asks its owner; anyone else only once they consented on their own device (docs/concepts.md §3.1).</summary>
[Collection(SharedServerCollection.Name)]
public sealed class ConsentTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    private Task<HttpResponseMessage> AskAsync(TestAgent agent, string loginHint, string message = "Deploy v2 to production", string? details = null)
    {
        var form = new Dictionary<string, string> { ["scope"] = "openid approve:action", ["login_hint"] = loginHint, ["binding_message"] = message };
        if (details is not null)
        {
            form["authorization_details"] = details;
        }
        return Server.BcAuthorizeAsync(agent, form);
    }

    private async Task<List<JsonElement>> AuditOfAsync(string userId, string type) =>
        (await Server.Store.Audit.ReadAsync(0, 100_000, userId, default))
        .Select(r => JsonDocument.Parse(r.Entry).RootElement.Clone())
        .Where(e => e.GetProperty("type").GetString() == type)
        .ToList();

    private static async Task<JsonElement> WaitForPendingAsync(TestDevice device)
    {
        for (var i = 0; i < 100; i++)
        {
            if ((await device.PendingAsync()).FirstOrDefault() is { ValueKind: JsonValueKind.Object } pending)
            {
                return pending;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("no request reached the device");
    }

    private static async Task<HttpResponseMessage> DecideAsync(TestDevice device, JsonElement request, string decision) =>
        await device.PostDecisionAsync(request.GetProperty("id").GetString()!, decision, device.SignDecision(decision, request.GetProperty("payload").GetString()!));

    /// <summary>Bob (signed in) asks alice to let his agent ask her; alice decides on her device. Returns the final answer.</summary>
    private async Task<HttpResponseMessage> ConsentAsync(string bobAccess, TestAgent agent, TestDevice alice, string decision)
    {
        var held = Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, $"/agents/{agent.ClientId}/consents", bobAccess, new { user = alice.Handle }, wait: 30));
        var pending = await WaitForPendingAsync(alice);
        using (var decided = await DecideAsync(alice, pending, decision))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        return await held.WaitAsync(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task An_agent_asking_a_user_other_than_its_owner_is_refused_audited_and_raises_nothing()
    {
        var bob = await Server.UserWithDeviceAsync();
        var alice = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(bob.Handle, name: "alice-bot");

        using var byHandle = await AskAsync(agent, alice.Handle);
        using var byDid = await AskAsync(agent, alice.Did);
        using var own = await AskAsync(agent, bob.Handle);

        foreach (var refused in new[] { byHandle, byDid })
        {
            var (status, body) = await TestServer.ReadAsync(refused);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("unauthorized_client", body.GetProperty("error").GetString());
            Assert.StartsWith("this agent may ask only its owner;", body.GetProperty("error_description").GetString());
        }
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        Assert.Empty(await alice.PendingAsync());
        Assert.Empty(await Server.Store.Approvals.ListHistoryAsync(alice.UserId, 10, default));
        // Audited under the user asked, once per agent and user however often it tries.
        var audited = Assert.Single(await AuditOfAsync(alice.UserId, "agent.refused_foreign_user"));
        Assert.Equal(agent.ClientId, audited.GetProperty("actor").GetString());
        Assert.Equal(bob.UserId, audited.GetProperty("data").GetProperty("owner").GetString());
    }

    [Fact]
    public async Task Once_the_user_approves_a_consent_on_her_device_the_agent_may_ask_her_and_once_she_revokes_it_not_any_more()
    {
        var bob = await Server.UserWithDeviceAsync();
        var alice = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(bob.Handle, name: "deploy-bot");
        var bobAccess = (await Session.SignInAsync(Server, bob)).GetProperty("access_token").GetString()!;

        var held = Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, $"/agents/{agent.ClientId}/consents", bobAccess, new { user = alice.Handle }, wait: 30));
        var asked = await WaitForPendingAsync(alice);
        Assert.Equal("agent_consent", asked.GetProperty("kind").GetString());
        Assert.Equal($"Allow {bob.Handle}'s agent 'deploy-bot' ({agent.ClientId}) to ask you for approvals", asked.GetProperty("binding_message").GetString());
        var details = Assert.Single(asked.GetProperty("authorization_details").EnumerateArray());
        Assert.Equal("agent_consent", details.GetProperty("type").GetString());
        Assert.Equal(agent.ClientId, details.GetProperty("client_id").GetString());
        Assert.Equal("deploy-bot", details.GetProperty("agent_name").GetString());
        Assert.Equal(bob.Handle, details.GetProperty("owner").GetString());
        // What her device signs says the same.
        Assert.True(ApprovalPayload.TryParse(Base64Url.Decode(asked.GetProperty("payload").GetString()!), out var payload));
        Assert.Equal(alice.Did, payload!.Sub);
        using (var decided = await DecideAsync(alice, asked, Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var granted = await held.WaitAsync(TimeSpan.FromSeconds(20));
        var (grantedStatus, grantedBody) = await TestServer.ReadAsync(granted);
        Assert.Equal(HttpStatusCode.Created, grantedStatus);
        Assert.Equal("granted", grantedBody.GetProperty("status").GetString());
        Assert.Equal(alice.Handle, grantedBody.GetProperty("user").GetString());

        // Now the agent may ask her, and she sees whose agent it is.
        using (var ask = await AskAsync(agent, alice.Handle, "Restart the billing service"))
        {
            Assert.Equal(HttpStatusCode.OK, ask.StatusCode);
        }
        var request = await WaitForPendingAsync(alice);
        Assert.Equal(agent.ClientId, request.GetProperty("client_id").GetString());
        Assert.Equal("deploy-bot", request.GetProperty("client_name").GetString());
        Assert.Equal(bob.Handle, request.GetProperty("client_owner").GetString());
        (await DecideAsync(alice, request, Decisions.Deny)).Dispose();

        using (var listed = await Server.Http.SendAsync(alice.Signed(HttpMethod.Get, "/authenticator/consents")))
        {
            var (status, body) = await TestServer.ReadAsync(listed);
            Assert.Equal(HttpStatusCode.OK, status);
            var consent = Assert.Single(body.GetProperty("consents").EnumerateArray());
            Assert.Equal(agent.ClientId, consent.GetProperty("client_id").GetString());
            Assert.Equal("deploy-bot", consent.GetProperty("agent_name").GetString());
            Assert.Equal(bob.Handle, consent.GetProperty("owner").GetString());
            Assert.True(consent.GetProperty("active").GetBoolean());
            Assert.Equal(asked.GetProperty("id").GetString(), consent.GetProperty("approval_id").GetString());
        }
        Assert.Single(await AuditOfAsync(alice.UserId, "consent.granted"));

        // Revoked on her device: the very next request is refused, without waiting for any cache.
        using (var revoked = await Server.Http.SendAsync(alice.Signed(HttpMethod.Delete, $"/authenticator/consents/{agent.ClientId}")))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        }
        using (var refused = await AskAsync(agent, alice.Handle))
        {
            Assert.Equal("unauthorized_client", await TestServer.ErrorOf(refused));
        }
        using (var again = await Server.Http.SendAsync(alice.Signed(HttpMethod.Delete, $"/authenticator/consents/{agent.ClientId}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }
        using (var status = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, granted.Headers.Location!.ToString(), bobAccess)))
        {
            Assert.Equal("revoked", (await TestServer.ReadAsync(status)).Body.GetProperty("status").GetString());
        }
        Assert.Single(await AuditOfAsync(alice.UserId, "consent.revoked"));
        Assert.Empty(await alice.PendingAsync());
    }

    [Fact]
    public async Task Only_the_users_own_device_can_consent_and_a_denial_or_another_users_device_grants_nothing()
    {
        var bob = await Server.UserWithDeviceAsync();
        var alice = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(bob.Handle);
        var bobAccess = (await Session.SignInAsync(Server, bob)).GetProperty("access_token").GetString()!;

        using var started = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, $"/agents/{agent.ClientId}/consents", bobAccess, new { user = alice.Handle }));
        var (startedStatus, startedBody) = await TestServer.ReadAsync(started);
        Assert.Equal(HttpStatusCode.Accepted, startedStatus);
        var requestId = startedBody.GetProperty("request_id").GetString()!;
        var location = started.Headers.Location!.ToString();
        Assert.Equal($"/agents/{agent.ClientId}/consents/{requestId}", location);

        // Bob's device signs alice's request: refused, whatever it signs.
        var request = await WaitForPendingAsync(alice);
        using (var forged = await bob.PostDecisionAsync(requestId, Decisions.Approve, bob.SignDecision(Decisions.Approve, request.GetProperty("payload").GetString()!)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        }
        // Asking again answers the same pending request rather than raise another.
        using (var again = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, $"/agents/{agent.ClientId}/consents", bobAccess, new { user = alice.Handle })))
        {
            Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
            Assert.Equal(requestId, (await TestServer.ReadAsync(again)).Body.GetProperty("request_id").GetString());
        }
        Assert.Single(await alice.PendingAsync());
        using (var stillPending = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, location, bobAccess)))
        {
            Assert.Equal(HttpStatusCode.Accepted, stillPending.StatusCode);
        }
        using (var refused = await AskAsync(agent, alice.Handle))
        {
            Assert.Equal("unauthorized_client", await TestServer.ErrorOf(refused));
        }

        // Alice denies: nothing is granted.
        using (var denied = await DecideAsync(alice, request, Decisions.Deny))
        {
            Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        }
        using (var answer = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, location, bobAccess)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, answer.StatusCode);
        }
        using (var refused = await AskAsync(agent, alice.Handle))
        {
            Assert.Equal("unauthorized_client", await TestServer.ErrorOf(refused));
        }
        Assert.Empty(await AuditOfAsync(alice.UserId, "consent.granted"));

        // Only the agent's owner may ask for consents to it, for someone else, and only while signed in.
        var carol = await Server.UserWithDeviceAsync();
        var carolAccess = (await Session.SignInAsync(Server, carol)).GetProperty("access_token").GetString()!;
        using (var notTheirs = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, $"/agents/{agent.ClientId}/consents", carolAccess, new { user = carol.Handle })))
        {
            Assert.Equal(HttpStatusCode.NotFound, notTheirs.StatusCode);
        }
        using (var notTheirs = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, location, carolAccess)))
        {
            Assert.Equal(HttpStatusCode.NotFound, notTheirs.StatusCode);
        }
        using (var self = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, $"/agents/{agent.ClientId}/consents", bobAccess, new { user = bob.Handle })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, self.StatusCode);
        }
        using (var anonymous = await Server.Http.PostAsync($"/agents/{agent.ClientId}/consents", TestDevice.JsonBody(new { user = alice.Handle })))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }
        Assert.Empty(await carol.PendingAsync());
    }

    [Fact]
    public async Task Alices_consent_lets_only_that_agent_ask_her_and_a_denied_consent_can_be_asked_for_again()
    {
        var bob = await Server.UserWithDeviceAsync();
        var alice = await Server.UserWithDeviceAsync();
        var allowed = await Server.AgentAsync(bob.Handle);
        var other = await Server.AgentAsync(bob.Handle);
        var bobAccess = (await Session.SignInAsync(Server, bob)).GetProperty("access_token").GetString()!;

        using (var denied = await ConsentAsync(bobAccess, allowed, alice, Decisions.Deny))
        {
            Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        }
        using (var granted = await ConsentAsync(bobAccess, allowed, alice, Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.Created, granted.StatusCode);
        }
        using (var already = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, $"/agents/{allowed.ClientId}/consents", bobAccess, new { user = alice.Handle })))
        {
            Assert.Equal(HttpStatusCode.OK, already.StatusCode);
            Assert.Equal("granted", (await TestServer.ReadAsync(already)).Body.GetProperty("status").GetString());
        }

        using var ask = await AskAsync(allowed, alice.Handle);
        using var otherAsk = await AskAsync(other, alice.Handle);
        Assert.Equal(HttpStatusCode.OK, ask.StatusCode);
        Assert.Equal("unauthorized_client", await TestServer.ErrorOf(otherAsk));
    }

    [Theory]
    [InlineData("agent_consent")]
    [InlineData("agent_registration")]
    public async Task An_agent_cannot_send_the_details_of_a_request_only_the_server_raises(string type)
    {
        var bob = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(bob.Handle);

        using var response = await AskAsync(agent, bob.Handle, "Allow bob's agent to ask you for approvals",
            $$"""[{"type":"{{type}}","client_id":"agt_x","agent_name":"alice-bot","owner":"alice","name":"alice-bot","scopes":["openid"]}]""");

        var (status, body) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_authorization_details", body.GetProperty("error").GetString());
        Assert.Contains("raised by this server only", body.GetProperty("error_description").GetString());
        Assert.Empty(await bob.PendingAsync());
        using var discovery = await Server.Http.GetAsync("/.well-known/openid-configuration");
        Assert.DoesNotContain(type, (await TestServer.ReadAsync(discovery)).Body.GetProperty("authorization_details_types_supported").EnumerateArray()
            .Select(e => e.GetString()));
    }

    [Fact]
    public async Task The_request_view_names_the_owner_of_the_agent_beside_its_name_and_client_id()
    {
        var bob = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(bob.Handle, name: "billing-bot");

        using (var ask = await AskAsync(agent, bob.Handle, "Refund order 42"))
        {
            Assert.Equal(HttpStatusCode.OK, ask.StatusCode);
        }
        var pending = await WaitForPendingAsync(bob);
        (await DecideAsync(bob, pending, Decisions.Approve)).Dispose();
        using var one = await Server.Http.SendAsync(bob.Signed(HttpMethod.Get, $"/authenticator/approvals/{pending.GetProperty("id").GetString()}"));
        using var history = await Server.Http.SendAsync(bob.Signed(HttpMethod.Get, "/authenticator/history"));

        foreach (var view in new[] { pending, (await TestServer.ReadAsync(one)).Body, (await TestServer.ReadAsync(history)).Body.GetProperty("approvals")[0] })
        {
            Assert.Equal(agent.ClientId, view.GetProperty("client_id").GetString());
            Assert.Equal("billing-bot", view.GetProperty("client_name").GetString());
            Assert.Equal(bob.Handle, view.GetProperty("client_owner").GetString());
        }
    }
}
