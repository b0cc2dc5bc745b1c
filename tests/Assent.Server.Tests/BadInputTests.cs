using System.Net;
using System.Text;
using Assent.Protocol;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

[Collection(SharedServerCollection.Name)]
public sealed class BadInputTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    private async Task<(TestDevice Device, TestAgent Agent)> SetupAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        return (device, await Server.AgentAsync(device.Handle));
    }

    private async Task<string> BcErrorAsync(TestAgent agent, Dictionary<string, string> form)
    {
        using var response = await Server.BcAuthorizeAsync(agent, form);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        return await TestServer.ErrorOf(response);
    }

    [Fact]
    public async Task Bc_authorize_without_openid_scope_is_invalid_scope()
    {
        var (_, agent) = await SetupAsync();
        Assert.Equal("invalid_scope", await BcErrorAsync(agent, new() { ["scope"] = "approve:action", ["login_hint"] = agent.Owner }));
        Assert.Equal("invalid_scope", await BcErrorAsync(agent, new() { ["login_hint"] = agent.Owner }));
    }

    [Fact]
    public async Task Bc_authorize_for_a_scope_the_agent_was_not_given_is_invalid_scope()
    {
        var (_, agent) = await SetupAsync();
        Assert.Equal("invalid_scope", await BcErrorAsync(agent, new() { ["scope"] = "openid admin:all", ["login_hint"] = agent.Owner }));
    }

    [Fact]
    public async Task Bc_authorize_for_an_unknown_user_is_unknown_user_id()
    {
        var (_, agent) = await SetupAsync();
        Assert.Equal("unknown_user_id", await BcErrorAsync(agent, new() { ["scope"] = "openid", ["login_hint"] = "nobody-here" }));
        Assert.Equal("unknown_user_id", await BcErrorAsync(agent, new() { ["scope"] = "openid", ["login_hint"] = "did:web:elsewhere.example:users:usr_x" }));
        Assert.Equal("invalid_request", await BcErrorAsync(agent, new() { ["scope"] = "openid" }));
    }

    [Theory]
    [InlineData(257)]
    [InlineData(-1)]
    public async Task Bc_authorize_with_an_undisplayable_binding_message_is_invalid_binding_message(int length)
    {
        var (_, agent) = await SetupAsync();
        var message = length > 0 ? new string('x', length) : "pay\u202Eevil";
        Assert.Equal("invalid_binding_message", await BcErrorAsync(agent, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner, ["binding_message"] = message }));
    }

    [Theory]
    [InlineData("[{\"type\":\"payment\"")]
    [InlineData("{\"type\":\"payment\"}")]
    [InlineData("[]")]
    [InlineData("[1]")]
    [InlineData("[{\"amount\":\"1\"}]")]
    [InlineData("[{\"type\":\"teleport\"}]")]
    public async Task Bc_authorize_with_bad_authorization_details_is_invalid_authorization_details(string details)
    {
        var (_, agent) = await SetupAsync();
        Assert.Equal("invalid_authorization_details", await BcErrorAsync(agent,
            new() { ["scope"] = "openid", ["login_hint"] = agent.Owner, ["authorization_details"] = details }));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("3601")]
    [InlineData("ten")]
    public async Task Bc_authorize_with_an_out_of_range_requested_expiry_is_invalid_request(string expiry)
    {
        var (_, agent) = await SetupAsync();
        Assert.Equal("invalid_request", await BcErrorAsync(agent, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner, ["requested_expiry"] = expiry }));
    }

    [Fact]
    public async Task Unknown_client_and_wrong_secret_get_401_invalid_client_and_nothing_is_created()
    {
        var (device, agent) = await SetupAsync();
        foreach (var who in new[] { agent with { ClientSecret = agent.ClientSecret + "x" }, agent with { ClientId = "agt_nobody" } })
        {
            using var response = await Server.BcAuthorizeAsync(who, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner });
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("invalid_client", await TestServer.ErrorOf(response));
            Assert.NotEmpty(response.Headers.WwwAuthenticate);
        }
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task Client_secret_post_works_and_using_two_methods_at_once_is_refused()
    {
        var (_, agent) = await SetupAsync();
        var form = new Dictionary<string, string>
        {
            ["scope"] = "openid", ["login_hint"] = agent.Owner, ["client_id"] = agent.ClientId, ["client_secret"] = agent.ClientSecret,
        };
        using (var ok = await Server.Http.PostAsync("/oauth/bc-authorize", new FormUrlEncodedContent(form)))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using var both = await Server.BcAuthorizeAsync(agent, form);
        Assert.Equal("invalid_request", await TestServer.ErrorOf(both));
    }

    [Theory]
    [InlineData("application/json", "{\"scope\":\"openid\"}")]
    [InlineData("application/x-www-form-urlencoded", "scope=openid&login_hint=OWNER&scope=openid")]
    [InlineData("application/x-www-form-urlencoded", "scope=openid&login_hint=OWNER&LONGNAME=1")]
    [InlineData("application/x-www-form-urlencoded", "scope=openid&login_hint=OWNER&MANYFIELDS")]
    public async Task A_json_body_and_malformed_forms_are_refused_with_invalid_request(string contentType, string body)
    {
        var (device, agent) = await SetupAsync();
        body = body.Replace("OWNER", agent.Owner, StringComparison.Ordinal)
            .Replace("LONGNAME", new string('n', 257), StringComparison.Ordinal) // names are limited to 256 characters
            .Replace("MANYFIELDS", string.Join('&', Enumerable.Range(0, 63).Select(i => $"f{i}=1")), StringComparison.Ordinal); // 65 fields, 64 allowed
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize") { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        request.Headers.Authorization = TestServer.Basic(agent);
        using var response = await Server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request", await TestServer.ErrorOf(response));
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task A_body_valid_but_for_its_size_is_refused_with_413_and_changes_nothing()
    {
        var (device, agent) = await SetupAsync();
        const int limit = 64 * 1024; // the documented default (docs/http-api.md §16), which the shared server keeps
        Assert.Equal(limit, Server.Options.MaxRequestBodyBytes);

        // OAuth ignores parameters it does not know (RFC 6749 §3.2): only the size is wrong.
        var form = new Dictionary<string, string> { ["scope"] = "openid", ["login_hint"] = agent.Owner, ["binding_message"] = "Size test" };
        using (var padded = await Server.BcAuthorizeAsync(agent, new(form) { ["padding"] = new string('a', limit) }))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, padded.StatusCode);
            Assert.Equal("invalid_request", await TestServer.ErrorOf(padded));
        }
        Assert.Empty(await device.PendingAsync());
        using (var small = await Server.BcAuthorizeAsync(agent, new(form) { ["padding"] = "a" }))
        {
            Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        }

        // JSON padded with whitespace is still the same valid enrolment.
        var invite = await Server.InviteAsync(device.Handle);
        var seed = Protocol.Crypto.Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Protocol.Crypto.Ed25519.PublicKeyFromSeed(seed));
        var proof = Base64Url.Encode(Protocol.Crypto.Ed25519.Sign(seed, Protocol.Devices.DeviceSignatures.EnrollmentSigningInput(invite.Code, publicKey)));
        var body = $"{{\"code\":\"{invite.Code}\",\"public_key\":\"{publicKey}\",\"name\":\"padded\",\"proof\":\"{proof}\"}}";
        using (var padded = await Server.Http.PostAsync("/authenticator/enroll", new StringContent(body + new string(' ', limit), Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, padded.StatusCode);
        }
        using (var enrolled = await Server.Http.PostAsync("/authenticator/enroll", new StringContent(body + "  ", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Created, enrolled.StatusCode); // the invite was not spent by the refused body
        }
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[]")]
    [InlineData("{\"code\":5}")]
    [InlineData("{\"code\":\"ABCD\"}")]
    public async Task Malformed_enrolment_bodies_get_400_problem_details(string body)
    {
        using var response = await Server.Http.PostAsync("/authenticator/enroll", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task An_enrolment_code_works_once()
    {
        var invite = await Server.InviteAsync("once-" + Guid.NewGuid().ToString("N")[..6]);
        await Server.EnrollAsync(invite.Code);
        var seed = Protocol.Crypto.Ed25519.NewSeed();
        var pub = Base64Url.Encode(Protocol.Crypto.Ed25519.PublicKeyFromSeed(seed));
        var proof = Protocol.Crypto.Ed25519.Sign(seed, Protocol.Devices.DeviceSignatures.EnrollmentSigningInput(invite.Code, pub));
        using var replay = await Server.Http.PostAsync("/authenticator/enroll", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["code"] = invite.Code, ["public_key"] = pub, ["proof"] = Base64Url.Encode(proof),
        }));
        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
        Assert.Contains("already used", await replay.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Forged_truncated_or_misdirected_decisions_are_refused_and_change_nothing()
    {
        var (device, agent) = await SetupAsync();
        var stranger = await Server.UserWithDeviceAsync();
        var authReqId = await Server.AskAsync(agent);
        var pending = Assert.Single(await device.PendingAsync());
        var id = pending.GetProperty("id").GetString()!;
        var payload = pending.GetProperty("payload").GetString()!;
        var good = device.SignDecision("approve", payload);

        var flipped = (byte[])good.Clone();
        flipped[10] ^= 1;
        using (var r = await device.PostDecisionAsync(id, "approve", flipped))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        using (var r = await device.PostDecisionAsync(id, "approve", good[..63]))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        // A signature over "deny" cannot be used to approve.
        using (var r = await device.PostDecisionAsync(id, "approve", device.SignDecision("deny", payload)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        // Another user's device, even with a valid signature of its own, decides nothing here.
        using (var r = await stranger.PostDecisionAsync(id, "approve", stranger.SignDecision("approve", payload)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }
        using (var r = await device.PostDecisionAsync(id, "maybe", good))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        }
        Assert.Equal(ApprovalState.Pending, (await Server.Store.Approvals.FindAsync(id, default))!.State);
        using (var r = await device.PostDecisionAsync(id, "approve", good))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        using (var r = await device.PostDecisionAsync(id, "approve", good))
        {
            Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
        }
        using var token = await Server.TokenAsync(agent, authReqId);
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
    }

    [Fact]
    public async Task A_revoked_device_can_decide_nothing_and_leaves_the_did_document()
    {
        var (device, agent) = await SetupAsync();
        var invite = await Server.InviteAsync(device.Handle);
        var second = await Server.EnrollAsync(invite.Code, "laptop");
        await Server.AskAsync(agent);
        var pending = Assert.Single(await device.PendingAsync());

        using (var revoke = await Server.Http.SendAsync(device.Signed(HttpMethod.Delete, $"/authenticator/devices/{second.DeviceId}")))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }
        var id = pending.GetProperty("id").GetString()!;
        using (var r = await second.PostDecisionAsync(id, "approve", second.SignDecision("approve", pending.GetProperty("payload").GetString()!)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }
        using (var r = await Server.Http.SendAsync(second.Signed(HttpMethod.Get, "/authenticator/approvals")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        var did = await Server.Http.GetStringAsync($"/users/{device.UserId}/did.json");
        Assert.Contains(device.DeviceId, did);
        Assert.DoesNotContain(second.DeviceId, did);
        Assert.Equal(ApprovalState.Pending, (await Server.Store.Approvals.FindAsync(id, default))!.State);
    }

    [Fact]
    public async Task Device_requests_with_a_bad_replayed_or_stale_signature_are_refused()
    {
        var (device, _) = await SetupAsync();
        var request = device.Signed(HttpMethod.Get, "/authenticator/approvals");
        var header = request.Headers.GetValues("Authorization").Single();
        using (var first = await Server.Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        var replay = new HttpRequestMessage(HttpMethod.Get, "/authenticator/approvals");
        replay.Headers.TryAddWithoutValidation("Authorization", header);
        using (var r = await Server.Http.SendAsync(replay))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        // Signed for another path: does not verify.
        var moved = new HttpRequestMessage(HttpMethod.Get, "/authenticator/devices");
        moved.Headers.TryAddWithoutValidation("Authorization", device.Signed(HttpMethod.Get, "/authenticator/approvals").Headers.GetValues("Authorization").Single());
        using (var r = await Server.Http.SendAsync(moved))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        var stale = new HttpRequestMessage(HttpMethod.Get, "/authenticator/approvals");
        stale.Headers.TryAddWithoutValidation("Authorization", Protocol.Devices.DeviceSignatures.SignRequest(device.DeviceId, device.Seed, "GET",
            "/authenticator/approvals", [], Server.Clock.GetUtcNow().AddMinutes(-10)));
        using (var r = await Server.Http.SendAsync(stale))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        using var none = await Server.Http.GetAsync("/authenticator/approvals");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
    }

    [Theory]
    [InlineData("password", "unsupported_grant_type")]
    [InlineData(null, "invalid_request")]
    public async Task Unsupported_grant_type_and_missing_grant_type_are_reported(string? grantType, string error)
    {
        var (_, agent) = await SetupAsync();
        var form = new Dictionary<string, string> { ["auth_req_id"] = "x" };
        if (grantType is not null)
        {
            form["grant_type"] = grantType;
        }
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = TestServer.Basic(agent);
        using var response = await Server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var (_, body) = await TestServer.ReadAsync(response);
        Assert.Equal(error, body.GetProperty("error").GetString());
        if (grantType is null)
        {
            Assert.Contains("grant_type", body.GetProperty("error_description").GetString());
        }
    }
}
