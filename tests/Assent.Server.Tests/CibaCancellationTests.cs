using System.Net;
using System.Text.Json;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests;

/// <summary>
/// docs/http-api.md §8.1: an agent withdraws its own pending CIBA request by revoking the auth_req_id (RFC 7009,
/// token_type_hint=auth_req_id); the approver's devices stop showing it at once.
/// </summary>
[Collection(SharedServerCollection.Name)]
public sealed class CibaCancellationTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    [Fact]
    public async Task Revoking_a_pending_auth_req_id_withdraws_it_from_the_device_and_answers_the_held_token_request()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var stream = await Server.Http.SendAsync(device.Signed(HttpMethod.Get, "/authenticator/stream"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cts.Token));
        Assert.Equal(": ready", await reader.ReadLineAsync(cts.Token));

        var authReqId = await Server.AskAsync(agent, "Deploy api to production");
        var (type, data) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        var id = data.GetProperty("id").GetString()!;
        var payload = data.GetProperty("payload").GetString()!;
        var held = Server.TokenAsync(agent, authReqId, wait: 30, ct: cts.Token);
        await Server.WaitForWaitersAsync();

        using (var revoked = await RevokeAsync(agent, authReqId, "auth_req_id"))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        // The device's stream drops the card, its list no longer shows it, and the agent's held request ends at once.
        (type, data) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("settled", type);
        Assert.Equal(id, data.GetProperty("id").GetString());
        Assert.Equal("cancelled", data.GetProperty("state").GetString());
        Assert.Empty(await device.PendingAsync());
        using var answer = await held;
        Assert.Equal("access_denied", await TestServer.ErrorOf(answer));
        Assert.Contains("withdrawn", (await TestServer.ReadAsync(answer)).Body.GetProperty("error_description").GetString(), StringComparison.Ordinal);

        // Nothing left to decide: a device's signature arrives too late.
        using var late = await device.PostDecisionAsync(id, Decisions.Approve, device.SignDecision(Decisions.Approve, payload));
        Assert.NotEqual(HttpStatusCode.OK, late.StatusCode);
    }

    [Fact]
    public async Task Revoking_without_a_hint_withdraws_too_and_revoking_twice_is_harmless()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent, "Rotate the signing key");
        Assert.Single(await device.PendingAsync());

        using (var first = await RevokeAsync(agent, authReqId, hint: null))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        Assert.Empty(await device.PendingAsync());
        using (var second = await RevokeAsync(agent, authReqId, "auth_req_id"))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }
        using var token = await Server.TokenAsync(agent, authReqId);
        Assert.Equal("access_denied", await TestServer.ErrorOf(token));
    }

    [Fact]
    public async Task Another_client_cannot_withdraw_a_request_it_did_not_make()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var stranger = await Server.AgentAsync(device.Handle, name: "stranger");
        var authReqId = await Server.AskAsync(agent, "Transfer the domain");

        using (var revoked = await RevokeAsync(stranger, authReqId, "auth_req_id"))
        {
            // RFC 7009 §2.2: answered alike whether or not the token was this client's; nothing changed.
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }
        Assert.Single(await device.PendingAsync());
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var token = await Server.TokenAsync(agent, authReqId);
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
    }

    [Fact]
    public async Task A_decided_request_cannot_be_withdrawn()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent, "Open the vault");
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }

        using (var revoked = await RevokeAsync(agent, authReqId, "auth_req_id"))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }
        // Still what the human decided: approved, redeemable once.
        using var token = await Server.TokenAsync(agent, authReqId);
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
    }

    [Fact]
    public async Task An_unknown_token_type_hint_is_refused_and_changes_nothing()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent, "Restart the cluster");

        using var revoked = await RevokeAsync(agent, authReqId, "device_code");
        Assert.Equal(HttpStatusCode.BadRequest, revoked.StatusCode);
        Assert.Equal("unsupported_token_type", await TestServer.ErrorOf(revoked));
        Assert.Single(await device.PendingAsync());
    }

    private Task<HttpResponseMessage> RevokeAsync(TestAgent agent, string token, string? hint)
    {
        var form = new Dictionary<string, string> { ["token"] = token };
        if (hint is not null)
        {
            form["token_type_hint"] = hint;
        }
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/revoke") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = TestServer.Basic(agent);
        return Server.Http.SendAsync(request);
    }
}
