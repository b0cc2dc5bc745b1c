using System.Net;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;

namespace Assent.Server.Tests;

[Collection(SharedServerCollection.Name)]
public sealed class FlowTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    internal static async Task<JsonElement> VerifiedClaimsAsync(TestServer server, string token, string expectedTyp = "at+jwt")
    {
        Assert.True(Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out var error), error);
        Assert.Equal("EdDSA", parts!.Header.Alg);
        Assert.Equal(expectedTyp, parts.Header.Typ);
        var jwks = JsonSerializer.Deserialize<JwkSet>(await server.Http.GetStringAsync("/oauth/jwks"))!;
        var key = Assert.Single(jwks.Keys, k => k.Kid == parts.Header.Kid);
        Assert.True(key.TryGetEd25519(out var publicKey));
        Assert.True(Jws.VerifySignature(token, parts, publicKey), "token signature does not verify against the JWKS");
        return JsonDocument.Parse(parts.Payload).RootElement.Clone();
    }

    [Fact]
    public async Task Agent_asks_device_approves_and_agent_receives_a_token_carrying_the_device_signature()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        const string details = """[{"type":"payment","amount":"125.00","currency":"USD","recipient":"ACME Corp"}]""";
        var authReqId = await Server.AskAsync(agent, "Pay ACME Corp $125.00", details);

        var pending = Assert.Single(await device.PendingAsync());
        Assert.Equal("Pay ACME Corp $125.00", pending.GetProperty("binding_message").GetString());
        Assert.Equal("125.00", pending.GetProperty("authorization_details")[0].GetProperty("amount").GetString());
        var payloadBytes = Base64Url.Decode(pending.GetProperty("payload").GetString()!);
        Assert.True(ApprovalPayload.TryParse(payloadBytes, out var payload));
        Assert.Equal(device.Did, payload!.Sub);
        Assert.Equal(agent.ClientId, payload.ClientId);

        using var decided = await device.DecideOnlyPendingAsync(Decisions.Approve);
        Assert.Equal(HttpStatusCode.OK, decided.StatusCode);

        using var tokenResponse = await Server.TokenAsync(agent, authReqId);
        var (status, body) = await TestServer.ReadAsync(tokenResponse);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("no-store", tokenResponse.Headers.CacheControl?.ToString());
        Assert.Equal("Bearer", body.GetProperty("token_type").GetString());
        Assert.Equal("openid approve:action", body.GetProperty("scope").GetString());

        var claims = await VerifiedClaimsAsync(Server, body.GetProperty("access_token").GetString()!);
        Assert.Equal(Server.Options.Issuer, claims.GetProperty("iss").GetString());
        Assert.Equal(device.Did, claims.GetProperty("sub").GetString());
        Assert.Equal(agent.ClientId, claims.GetProperty("aud").GetString());
        Assert.Equal(agent.ClientId, claims.GetProperty("act").GetProperty("sub").GetString());
        Assert.Equal(["swk"], claims.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("Pay ACME Corp $125.00", claims.GetProperty("binding_message").GetString());
        Assert.Equal(payload.Req, claims.GetProperty("txn").GetString());
        Assert.Equal(300, claims.GetProperty("exp").GetInt64() - claims.GetProperty("iat").GetInt64());

        // The evidence lets anyone check, with the DID document alone, that the device signed this payload.
        var evidence = claims.GetProperty("evidence");
        Assert.Equal("ed25519", evidence.GetProperty("kind").GetString());
        Assert.Equal(payloadBytes, Base64Url.Decode(evidence.GetProperty("payload").GetString()!));
        var did = JsonDocument.Parse(await Server.Http.GetStringAsync($"/users/{device.UserId}/did.json")).RootElement;
        var method = Assert.Single(did.GetProperty("verificationMethod").EnumerateArray(),
            m => m.GetProperty("id").GetString() == evidence.GetProperty("device").GetString());
        var jwk = JsonSerializer.Deserialize<Jwk>(method.GetProperty("publicKeyJwk").GetRawText())!;
        Assert.True(jwk.TryGetEd25519(out var devicePublicKey));
        Assert.True(Ed25519.Verify(devicePublicKey, ApprovalPayload.SigningInput("approve", payloadBytes),
            Base64Url.Decode(evidence.GetProperty("sig").GetString()!)));

        var idClaims = await VerifiedClaimsAsync(Server, body.GetProperty("id_token").GetString()!, "JWT");
        Assert.Equal(authReqId, idClaims.GetProperty("urn:openid:params:jwt:claim:auth_req_id").GetString());
        Assert.Equal(agent.ClientId, idClaims.GetProperty("aud").GetString());
    }

    [Fact]
    public async Task Token_request_before_approval_returns_authorization_pending_then_slow_down_when_polling_too_fast()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);

        using var first = await Server.TokenAsync(agent, authReqId);
        Assert.Equal("authorization_pending", await TestServer.ErrorOf(first));
        Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);
        using var second = await Server.TokenAsync(agent, authReqId);
        Assert.Equal("slow_down", await TestServer.ErrorOf(second));
    }

    [Fact]
    public async Task Each_slow_down_adds_exactly_five_seconds_to_the_ciba_polling_interval()
    {
        // Moves its clock: its own server, not the shared one.
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(device.Handle);
        using var asked = await server.BcAuthorizeAsync(agent, new() { ["scope"] = "openid", ["login_hint"] = agent.Owner, ["binding_message"] = "Pace me" });
        var (_, body) = await TestServer.ReadAsync(asked);
        var interval = TimeSpan.FromSeconds(body.GetProperty("interval").GetInt32());
        var authReqId = body.GetProperty("auth_req_id").GetString()!;

        await AssertSlowDownGrowthAsync(server, interval, async () =>
        {
            using var response = await server.TokenAsync(agent, authReqId);
            return await TestServer.ErrorOf(response);
        });
    }

    /// <summary>
    /// CIBA Core §11 and RFC 8628 §3.5: a poll sooner than the interval is answered slow_down, and the interval grows by
    /// 5 s for this and every later poll. Walks the clock to one second short of, then exactly onto, each expected moment.
    /// </summary>
    internal static async Task AssertSlowDownGrowthAsync(TestServer server, TimeSpan interval, Func<Task<string>> poll)
    {
        var step = TimeSpan.FromSeconds(5);
        var second = TimeSpan.FromSeconds(1);
        Assert.Equal("authorization_pending", await poll());
        Assert.Equal("slow_down", await poll());                  // interval + 5 s from now on
        server.Clock.Advance(interval + step - second);
        Assert.Equal("slow_down", await poll());                  // 1 s early: interval + 10 s from now on
        server.Clock.Advance(interval + 2 * step - second);
        Assert.Equal("slow_down", await poll());                  // 1 s early again: interval + 15 s from now on
        server.Clock.Advance(interval + 3 * step);
        Assert.Equal("authorization_pending", await poll());     // on time: the interval stays
        server.Clock.Advance(interval + 3 * step);
        Assert.Equal("authorization_pending", await poll());
        server.Clock.Advance(interval + 3 * step - second);
        Assert.Equal("slow_down", await poll());
    }

    [Fact]
    public async Task Denied_request_answers_access_denied()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);
        using var decided = await device.DecideOnlyPendingAsync(Decisions.Deny);
        Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        using var token = await Server.TokenAsync(agent, authReqId);
        Assert.Equal("access_denied", await TestServer.ErrorOf(token));
    }

    [Fact]
    public async Task Auth_req_id_that_is_unknown_foreign_or_already_redeemed_is_invalid_grant()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var other = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);

        using (var unknown = await Server.TokenAsync(agent, Base64Url.Encode(new byte[32])))
        {
            Assert.Equal("invalid_grant", await TestServer.ErrorOf(unknown));
        }
        // A handle's length with its creation time forged or not base64url at all (docs/concepts.md §9): unknown, never a fault.
        foreach (var forged in new[] { authReqId[..8] + Base64Url.Encode(new byte[32]), "!" + authReqId[1..], authReqId[..50] + "*" })
        {
            Assert.Equal(authReqId.Length, forged.Length);
            using var response = await Server.TokenAsync(agent, forged);
            Assert.Equal("invalid_grant", await TestServer.ErrorOf(response));
        }
        using (var foreign = await Server.TokenAsync(other, authReqId))
        {
            Assert.Equal("invalid_grant", await TestServer.ErrorOf(foreign));
        }
        using (await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
        }
        using (var ok = await Server.TokenAsync(agent, authReqId))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using var again = await Server.TokenAsync(agent, authReqId);
        Assert.Equal("invalid_grant", await TestServer.ErrorOf(again));
    }

    [Fact]
    public async Task Prefer_wait_holds_the_token_request_and_answers_the_moment_the_device_decides()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);

        var held = Server.TokenAsync(agent, authReqId, wait: 30);
        await Server.WaitForWaitersAsync();
        Assert.False(held.IsCompleted, "the token request should be held while the request is pending");
        using (await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
        }
        var finished = await Task.WhenAny(held, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.Same(held, finished);
        using var response = await held;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("wait=30", string.Join(",", response.Headers.GetValues("Preference-Applied")));
    }

    [Fact]
    public async Task Prefer_wait_that_runs_out_answers_authorization_pending_and_may_be_repeated_at_once()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);
        using (var first = await Server.TokenAsync(agent, authReqId, wait: 1))
        {
            Assert.Equal("authorization_pending", await TestServer.ErrorOf(first));
        }
        using var second = await Server.TokenAsync(agent, authReqId, wait: 1);
        Assert.Equal("authorization_pending", await TestServer.ErrorOf(second));
    }

    [Fact]
    public async Task Fifty_parallel_redemptions_of_one_approved_request_yield_exactly_one_token()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);
        using (await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
        }
        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Server.TokenAsync(agent, authReqId)));
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        foreach (var r in responses.Where(r => r.StatusCode != HttpStatusCode.OK))
        {
            Assert.Equal("invalid_grant", await TestServer.ErrorOf(r));
        }
        foreach (var r in responses)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task Twenty_devices_deciding_at_once_yield_one_decision()
    {
        var first = await Server.UserWithDeviceAsync();
        var devices = new List<TestDevice> { first };
        for (var i = 1; i < 20; i++)
        {
            devices.Add(await Server.EnrollAsync((await Server.InviteAsync(first.Handle)).Code, $"device {i}"));
        }
        var agent = await Server.AgentAsync(first.Handle);
        var authReqId = await Server.AskAsync(agent);
        var pending = Assert.Single(await first.PendingAsync());
        var id = pending.GetProperty("id").GetString()!;
        var payload = pending.GetProperty("payload").GetString()!;

        // Signed beforehand, released together: the requests reach the server as close together as a client can send them.
        var decisions = devices.Select((d, i) => (Device: d, Decision: i % 2 == 0 ? "approve" : "deny")).ToList();
        var signed = decisions.Select(x => x.Device.SignDecision(x.Decision, payload)).ToList();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var racing = decisions.Select(async (x, i) =>
        {
            await start.Task;
            return await x.Device.PostDecisionAsync(id, x.Decision, signed[i]);
        }).ToList();
        start.SetResult();
        var results = await Task.WhenAll(racing);
        try
        {
            var won = Assert.Single(Enumerable.Range(0, results.Length), i => results[i].StatusCode == HttpStatusCode.OK);
            Assert.All(results.Where((_, i) => i != won), r => Assert.Equal(HttpStatusCode.Conflict, r.StatusCode));
            var decided = Assert.Single(await Server.Store.Approvals.ListDecisionsAsync(id, default));
            Assert.Equal(decisions[won].Device.DeviceId, decided.DeviceId);
            using var token = await Server.TokenAsync(agent, authReqId);
            Assert.Equal(decisions[won].Decision == "approve" ? HttpStatusCode.OK : HttpStatusCode.BadRequest, token.StatusCode);
        }
        finally
        {
            foreach (var r in results)
            {
                r.Dispose();
            }
        }
    }

    [Fact]
    public async Task Login_hint_may_be_the_users_did()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        using var response = await Server.BcAuthorizeAsync(agent, new Dictionary<string, string> { ["scope"] = "openid", ["login_hint"] = device.Did });
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("interval").GetInt32() <= 2);
        Assert.Equal(300, body.GetProperty("expires_in").GetInt32());
    }

    private Task<HttpResponseMessage> ClientCredentialsAsync(TestAgent agent, string? scope = null, string? resource = null)
    {
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = agent.ClientId,
            ["client_secret"] = agent.ClientSecret,
        };
        if (scope is not null)
        {
            form["scope"] = scope;
        }
        if (resource is not null)
        {
            form["resource"] = resource;
        }
        return Server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
    }

    [Fact]
    public async Task Client_credentials_grant_issues_a_client_jwt_for_the_agent_itself_with_nothing_of_an_approval()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);

        using var plain = await ClientCredentialsAsync(agent);
        var (status, body) = await TestServer.ReadAsync(plain);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body.TryGetProperty("scope", out _), body.ToString());
        var claims = await VerifiedClaimsAsync(Server, body.GetProperty("access_token").GetString()!, expectedTyp: "client+jwt");
        Assert.Equal(["iss", "sub", "aud", "client_id", "jti", "iat", "nbf", "exp"], claims.EnumerateObject().Select(p => p.Name));
        Assert.Equal(agent.ClientId, claims.GetProperty("sub").GetString());
        Assert.Equal(agent.ClientId, claims.GetProperty("aud").GetString());
        Assert.Equal(agent.ClientId, claims.GetProperty("client_id").GetString());

        using var forResource = await ClientCredentialsAsync(agent, resource: "https://api.example.com/");
        var (resourceStatus, resourceBody) = await TestServer.ReadAsync(forResource);
        Assert.Equal(HttpStatusCode.OK, resourceStatus);
        var resourceClaims = await VerifiedClaimsAsync(Server, resourceBody.GetProperty("access_token").GetString()!, expectedTyp: "client+jwt");
        Assert.Equal("https://api.example.com/", resourceClaims.GetProperty("aud").GetString());
        Assert.False(resourceClaims.TryGetProperty("scope", out _));
        using var badResource = await ClientCredentialsAsync(agent, resource: "not a uri");
        Assert.Equal("invalid_target", await TestServer.ErrorOf(badResource));
    }

    [Fact]
    public async Task Client_credentials_grant_refuses_every_scope_an_agent_could_ask_a_human_for()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle, scopes: "approve:action payments:write");

        foreach (var scope in new[] { "approve:action", "payments:write", "approve:action payments:write" })
        {
            using var refused = await ClientCredentialsAsync(agent, scope, resource: "https://api.example.com/");
            var (status, body) = await TestServer.ReadAsync(refused);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("invalid_scope", body.GetProperty("error").GetString());
            Assert.Contains("use CIBA", body.GetProperty("error_description").GetString());
        }
        using var tooMuch = await ClientCredentialsAsync(agent, "admin:everything");
        Assert.Equal("invalid_scope", await TestServer.ErrorOf(tooMuch));
    }

    [Fact]
    public async Task A_client_credentials_token_is_refused_at_userinfo_and_agents()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        using var issued = await ClientCredentialsAsync(agent);
        var token = (await TestServer.ReadAsync(issued)).Body.GetProperty("access_token").GetString()!;

        using var userinfo = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Get, "/userinfo", token));
        using var agents = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", token, new { name = "bot", scopes = new[] { "approve:action" } }));

        foreach (var response in new[] { userinfo, agents })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.StartsWith("Bearer realm=\"assent\", error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
        }
        Assert.Empty(await device.PendingAsync());
    }
}
