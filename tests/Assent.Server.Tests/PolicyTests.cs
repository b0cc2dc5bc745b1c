using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Server.Approvals;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>
/// Policies and quorums (docs/policies.md) against a live server. Policies are server-wide, so every policy here is
/// bound to an agent or API key of its own test and cannot touch the requests of other tests sharing the server.
/// </summary>
public sealed class PolicyTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private TestServer Server => fixture.Server;

    private PolicyBook Book => Server.Service<PolicyBook>();

    private static string Name() => "t" + Guid.NewGuid().ToString("N")[..12];

    private static JsonElement Amount(string text) => JsonDocument.Parse(text).RootElement.Clone();

    private static string Payment(string amount, string currency = "USD") =>
        $$"""[{"type":"payment","amount":{{amount}},"currency":"{{currency}}","recipient":"ACME"}]""";

    private async Task<(TestDevice Device, string Key)> AdminWithKeyAsync(string scopes)
    {
        var invite = await Server.InviteAsync("p" + Guid.NewGuid().ToString("N")[..10], admin: true);
        var device = await Server.EnrollAsync(invite.Code);
        return (device, (await Server.Admin.CreateApiKeyAsync(device.Handle, "policy admin", scopes, CancellationToken.None)).Key);
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string key, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        }
        using var response = await Server.Http.SendAsync(request);
        return await TestServer.ReadAsync(response);
    }

    [Fact]
    public async Task A_policy_naming_an_unknown_user_or_an_impossible_quorum_is_refused_and_stores_nothing()
    {
        var (admin, key) = await AdminWithKeyAsync("policies:manage");
        var bob = await Server.UserWithDeviceAsync();
        var before = (await Book.ListAsync(CancellationToken.None)).Count;
        var name = Name();

        var (status, problem) = await SendAsync(HttpMethod.Post, "/v1/policies", key,
            new { name, agent = "agt_x", requires = "quorum", quorum = 2, approvers = new[] { admin.Handle, "nobody-here" } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("nobody-here", problem.GetProperty("detail").GetString());

        // Two of two named, but one named twice: one distinct approver cannot make a quorum of two.
        (status, problem) = await SendAsync(HttpMethod.Post, "/v1/policies", key,
            new { name, agent = "agt_x", requires = "quorum", quorum = 2, approvers = new[] { bob.Handle, bob.Handle } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("2 of 1", problem.GetProperty("detail").GetString());

        (status, _) = await SendAsync(HttpMethod.Post, "/v1/policies", key,
            new { name, agent = "agt_x", requires = "quorum", quorum = 0, approvers = new[] { bob.Handle } });
        Assert.Equal(HttpStatusCode.BadRequest, status);

        // An amount as a float-looking exponent is no exact decimal; bounds that can never both hold are refused.
        (status, _) = await SendAsync(HttpMethod.Post, "/v1/policies", key, new { name, currency = "USD", amountOver = "1e4", requires = "deny" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        (status, _) = await SendAsync(HttpMethod.Post, "/v1/policies", key, new { name, currency = "USD", amountOver = "100", amountAtMost = "100", requires = "deny" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        (status, _) = await SendAsync(HttpMethod.Post, "/v1/policies", key, new { name, amountOver = "100", requires = "deny" });
        Assert.Equal(HttpStatusCode.BadRequest, status);

        Assert.Equal(before, (await Book.ListAsync(CancellationToken.None)).Count);
        Assert.DoesNotContain(await Book.ListAsync(CancellationToken.None), p => p.Name == name);
    }

    [Fact]
    public async Task Only_an_administrators_key_with_policies_manage_may_manage_policies()
    {
        var owner = await Server.UserWithDeviceAsync();
        var plain = (await Server.Admin.CreateApiKeyAsync(owner.Handle, "not admin", "policies:manage", CancellationToken.None)).Key;
        var (status, _) = await SendAsync(HttpMethod.Get, "/v1/policies", plain);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        var (_, adminKeyWithoutScope) = await AdminWithKeyAsync("challenges:write");
        (status, _) = await SendAsync(HttpMethod.Post, "/v1/policies", adminKeyWithoutScope, new { name = Name(), requires = "deny", agent = "agt_x" });
        Assert.Equal(HttpStatusCode.Forbidden, status);
    }

    [Fact]
    public async Task The_first_matching_policy_wins_and_amount_thresholds_are_exact_at_the_boundary()
    {
        var bob = await Server.UserWithDeviceAsync();
        var carol = await Server.UserWithDeviceAsync();
        var agent = "agt_" + Name();
        var large = await Book.AddAsync(new PolicyDraft(Name(), 10, agent, null, "payment", "USD", Amount("\"10000\""), null, "quorum", 2,
            [bob.Handle, carol.Handle]), "test", CancellationToken.None);
        var payments = await Book.AddAsync(new PolicyDraft(Name(), 20, agent, null, "payment", null, null, null, "one", null, null), "test", CancellationToken.None);
        // Tried after both: never reached by a payment, since an earlier policy matches first.
        var everything = await Book.AddAsync(new PolicyDraft(Name(), 30, agent, null, null, null, null, null, "deny", null, null), "test", CancellationToken.None);

        async Task<string?> Meets(string? details) => (await Book.MatchAsync(agent, "openid payments:write", details, CancellationToken.None))?.Name;

        Assert.Equal(payments.Name, await Meets(Payment("\"10000.00\"")));
        Assert.Equal(payments.Name, await Meets(Payment("10000")));
        Assert.Equal(large.Name, await Meets(Payment("\"10000.01\"")));
        Assert.Equal(large.Name, await Meets(Payment("10000.01")));
        // Another currency is not compared with USD at all.
        Assert.Equal(payments.Name, await Meets(Payment("\"20000.00\"", "EUR")));
        // An amount that is no exact USD amount (an exponent, a third decimal) can never slip under the threshold.
        Assert.Equal(large.Name, await Meets(Payment("1e9")));
        Assert.Equal(large.Name, await Meets(Payment("\"5.001\"")));
        Assert.Equal(everything.Name, await Meets(null));
        Assert.Null(await Book.MatchAsync("agt_someone_else", "openid", Payment("\"99999.00\""), CancellationToken.None));

        // Removing the large-amount policy lets the next one match; the request names the exact version that applied.
        Assert.NotNull(await Book.RemoveAsync(large.Name, "test", CancellationToken.None));
        Assert.Equal(payments.Name, await Meets(Payment("\"10000.01\"")));
        Assert.Equal(1, payments.Version);
        var second = await Book.AddAsync(new PolicyDraft(payments.Name, 20, agent, null, "payment", null, null, null, "deny", null, null), "test", CancellationToken.None);
        Assert.Equal(2, second.Version);
        Assert.Equal(PolicyRequirements.Deny, (await Book.MatchAsync(agent, "openid", Payment("\"1.00\""), CancellationToken.None))!.Requires);
    }

    [Fact]
    public async Task A_deny_policy_refuses_the_ciba_request_with_access_denied_naming_it_and_creates_nothing()
    {
        var alice = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(alice.Handle);
        var policy = await Book.AddAsync(new PolicyDraft(Name(), 10, agent.ClientId, "payments:write", null, null, null, null, "deny", null, null), "test",
            CancellationToken.None);
        using var response = await Server.BcAuthorizeAsync(agent, new() { ["scope"] = "openid payments:write", ["login_hint"] = alice.Handle, ["binding_message"] = "Pay" });
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal("access_denied", body.GetProperty("error").GetString());
        Assert.Contains(policy.Label, body.GetProperty("error_description").GetString());
        Assert.Empty(await alice.PendingAsync());
        // A scope the policy does not name is unaffected.
        await Server.AskAsync(agent);
        Assert.Single(await alice.PendingAsync());
    }

    private async Task<(TestDevice Alice, TestDevice Bob, TestDevice Carol, TestAgent Agent, PolicyRecord Policy)> TreasuryAsync()
    {
        var alice = await Server.UserWithDeviceAsync();
        var bob = await Server.UserWithDeviceAsync();
        var carol = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(alice.Handle);
        var policy = await Book.AddAsync(new PolicyDraft(Name(), 10, agent.ClientId, null, "payment", "USD", Amount("\"10000\""), null, "quorum", 2,
            [alice.Handle, bob.Handle, carol.Handle]), "test", CancellationToken.None);
        return (alice, bob, carol, agent, policy);
    }

    private static async Task<HttpStatusCode> DecideAsync(TestDevice device, JsonElement pending, string decision)
    {
        using var response = await device.PostDecisionAsync(pending.GetProperty("id").GetString()!, decision,
            device.SignDecision(decision, pending.GetProperty("payload").GetString()!));
        return response.StatusCode;
    }

    [Fact]
    public async Task A_two_of_three_treasury_transfer_is_approved_at_the_second_distinct_user_and_its_token_names_every_approver()
    {
        var (alice, bob, carol, agent, policy) = await TreasuryAsync();
        var authReqId = await Server.AskAsync(agent, "Transfer 12,500 USD to ACME", Payment("\"12500.00\""), "openid payments:write");

        // The request goes to every approver's devices, and each sees the policy and where the quorum stands.
        var seen = (await alice.PendingAsync()).Single();
        Assert.Equal(policy.Label, seen.GetProperty("policy").GetString());
        Assert.Equal(2, seen.GetProperty("quorum").GetProperty("required").GetInt32());
        Assert.Equal(3, seen.GetProperty("quorum").GetProperty("waiting").GetArrayLength());
        Assert.Single(await bob.PendingAsync());
        Assert.Single(await carol.PendingAsync());

        Assert.Equal(HttpStatusCode.OK, await DecideAsync(alice, seen, Decisions.Approve));
        // The same user approving again counts once: still pending.
        Assert.Equal(HttpStatusCode.Conflict, await DecideAsync(alice, seen, Decisions.Approve));
        var atBob = (await bob.PendingAsync()).Single();
        var quorum = atBob.GetProperty("quorum");
        Assert.Equal([alice.Handle], quorum.GetProperty("approved").EnumerateArray().Select(e => e.GetString()));
        using (var pending = await Server.TokenAsync(agent, authReqId))
        {
            Assert.Equal("authorization_pending", await TestServer.ErrorOf(pending));
        }

        Assert.Equal(HttpStatusCode.OK, await DecideAsync(bob, atBob, Decisions.Approve));
        Assert.Empty(await carol.PendingAsync());
        using var token = await Server.TokenAsync(agent, authReqId);
        var (status, body) = await TestServer.ReadAsync(token);
        Assert.Equal(HttpStatusCode.OK, status);
        var claims = JsonDocument.Parse(Base64Url.Decode(body.GetProperty("access_token").GetString()!.Split('.')[1])).RootElement;
        Assert.Equal(alice.Did, claims.GetProperty("sub").GetString());
        Assert.Equal(policy.Label, claims.GetProperty("policy").GetString());
        Assert.Equal(new[] { alice.Did, bob.Did }.Order(), claims.GetProperty("approvers").EnumerateArray().Select(e => e.GetString()!).Order());
        var evidence = claims.GetProperty("evidence").EnumerateArray().ToList();
        Assert.Equal(2, evidence.Count);
        Assert.Single(evidence.Select(e => e.GetProperty("payload").GetString()).Distinct());
        Assert.Contains(evidence, e => e.GetProperty("device").GetString() == bob.Did + "#" + bob.DeviceId);
    }

    [Fact]
    public async Task Each_vote_that_leaves_a_quorum_open_reaches_the_other_approvers_open_streams_with_where_it_stands()
    {
        var (alice, bob, carol, agent, _) = await TreasuryAsync();
        await Server.AskAsync(agent, "Transfer 15,000 USD to ACME", Payment("\"15000.00\""), "openid payments:write");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var stream = await bob.OpenStreamAsync(cts.Token);
        var reader = stream.Reader;
        // Pending when the stream opened: announced before ": ready".
        var (type, shown) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        Assert.Empty(shown.GetProperty("quorum").GetProperty("approved").EnumerateArray());

        // Alice's vote leaves it open (2 of 3 needed): Bob's open card hears of it without a reload.
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(alice, shown, Decisions.Approve));
        (type, var again) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        Assert.Equal(shown.GetProperty("id").GetString(), again.GetProperty("id").GetString());
        Assert.Equal([alice.Handle], again.GetProperty("quorum").GetProperty("approved").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(new[] { bob.Handle, carol.Handle }.Order(), again.GetProperty("quorum").GetProperty("waiting").EnumerateArray().Select(e => e.GetString()!).Order());

        // Carol's denial leaves it open too (Bob can still make two): announced again, with her denial.
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(carol, shown, Decisions.Deny));
        (type, var third) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        Assert.Equal([carol.Handle], third.GetProperty("quorum").GetProperty("denied").EnumerateArray().Select(e => e.GetString()));

        // Bob's approval settles it: his stream now hears that, not another announcement.
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(bob, shown, Decisions.Approve));
        (type, var settled) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("settled", type);
        Assert.Equal("approved", settled.GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_quorum_request_that_expires_is_taken_off_every_approvers_open_stream()
    {
        var (_, bob, _, agent, _) = await TreasuryAsync();
        await Server.AskAsync(agent, "Transfer 16,000 USD to ACME", Payment("\"16000.00\""), "openid payments:write");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var stream = await bob.OpenStreamAsync(cts.Token);
        var reader = stream.Reader;
        var (type, shown) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);

        // Bob is an approver, not the request's user: the sweep still tells his stream.
        Server.Clock.Advance(TimeSpan.FromHours(1));
        await Server.Service<ApprovalService>().SweepAsync(CancellationToken.None);
        (type, var settled) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("settled", type);
        Assert.Equal(shown.GetProperty("id").GetString(), settled.GetProperty("id").GetString());
        Assert.Equal("expired", settled.GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_quorum_request_is_denied_once_the_quorum_can_no_longer_be_reached_and_outsiders_cannot_decide()
    {
        var (alice, bob, carol, agent, _) = await TreasuryAsync();
        var outsider = await Server.UserWithDeviceAsync();
        var authReqId = await Server.AskAsync(agent, "Transfer 50,000 USD", Payment("50000"), "openid payments:write");
        var pending = (await carol.PendingAsync()).Single();
        Assert.Empty(await outsider.PendingAsync());
        var id = pending.GetProperty("id").GetString()!;
        using (var seenByCarol = await Server.Http.SendAsync(carol.Signed(HttpMethod.Get, $"/authenticator/approvals/{id}")))
        {
            Assert.Equal(HttpStatusCode.OK, seenByCarol.StatusCode);
        }
        using (var seenByOutsider = await Server.Http.SendAsync(outsider.Signed(HttpMethod.Get, $"/authenticator/approvals/{id}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, seenByOutsider.StatusCode);
        }
        Assert.Equal(HttpStatusCode.Forbidden, await DecideAsync(outsider, pending, Decisions.Approve));

        Assert.Equal(HttpStatusCode.OK, await DecideAsync(carol, pending, Decisions.Deny));
        Assert.Single(await alice.PendingAsync());
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(bob, pending, Decisions.Deny));
        // Two of three denied: two approvals can no longer happen.
        using var token = await Server.TokenAsync(agent, authReqId);
        Assert.Equal("access_denied", await TestServer.ErrorOf(token));
        Assert.Empty(await alice.PendingAsync());
    }

    [Fact]
    public async Task A_revoked_devices_earlier_approval_of_a_pending_quorum_request_no_longer_counts()
    {
        var (alice, bob, carol, agent, _) = await TreasuryAsync();
        var laptop = await Server.EnrollAsync((await Server.InviteAsync(bob.Handle)).Code, "laptop");
        var authReqId = await Server.AskAsync(agent, "Transfer 20,000 USD", Payment("\"20000.00\""), "openid payments:write");
        var pending = (await bob.PendingAsync()).Single();
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(laptop, pending, Decisions.Approve));

        using (var revoke = await Server.Http.SendAsync(bob.Signed(HttpMethod.Delete, $"/authenticator/devices/{laptop.DeviceId}")))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }
        // Bob's approval went with his laptop: Carol's is the first that counts, so the request is still pending.
        var again = (await carol.PendingAsync()).Single();
        Assert.Empty(again.GetProperty("quorum").GetProperty("approved").EnumerateArray());
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(carol, again, Decisions.Approve));
        using (var stillPending = await Server.TokenAsync(agent, authReqId))
        {
            Assert.Equal("authorization_pending", await TestServer.ErrorOf(stillPending));
        }
        // Bob may decide again with the device he kept; that makes two.
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(bob, again, Decisions.Approve));
        using var token = await Server.TokenAsync(agent, authReqId);
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
        Assert.Empty(await alice.PendingAsync());
    }

    [Fact]
    public async Task A_challenge_with_a_quorum_goes_through_the_same_machinery_and_bad_quorums_are_refused()
    {
        var (admin, key) = await AdminWithKeyAsync("challenges:write challenges:read");
        var bob = await Server.UserWithDeviceAsync();
        var (status, problem) = await SendAsync(HttpMethod.Post, "/v1/challenges", key,
            new { action = "treasury.transfer", userId = admin.Handle, quorum = new { required = 2, approvers = new[] { admin.Handle, "ghost-user" } } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("ghost-user", problem.GetProperty("detail").GetString());
        (status, _) = await SendAsync(HttpMethod.Post, "/v1/challenges", key,
            new { action = "treasury.transfer", userId = admin.Handle, quorum = new { required = 3, approvers = new[] { admin.Handle, bob.Handle, bob.Did } } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Empty(await bob.PendingAsync());

        (status, var created) = await SendAsync(HttpMethod.Post, "/v1/challenges", key,
            new { action = "treasury.transfer", userId = admin.Handle, requiresHuman = false, quorum = new { required = 2, approvers = new[] { admin.Handle, bob.Handle } } });
        Assert.Equal(HttpStatusCode.Created, status);
        var id = created.GetProperty("challengeId").GetString()!;
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(bob, (await bob.PendingAsync()).Single(), Decisions.Approve));
        (_, var half) = await SendAsync(HttpMethod.Get, $"/v1/challenges/{id}", key);
        Assert.Equal("pending", half.GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(admin, (await admin.PendingAsync()).Single(), Decisions.Approve));
        (_, var approved) = await SendAsync(HttpMethod.Get, $"/v1/challenges/{id}", key);
        Assert.Equal("approved", approved.GetProperty("status").GetString());
        var claims = JsonDocument.Parse(Base64Url.Decode(approved.GetProperty("attestation").GetProperty("token").GetString()!.Split('.')[1])).RootElement;
        Assert.Equal(2, claims.GetProperty("approvers").GetArrayLength());
    }

    [Fact]
    public async Task Policies_are_managed_through_v1_and_audited()
    {
        var (_, key) = await AdminWithKeyAsync("policies:manage");
        var bob = await Server.UserWithDeviceAsync();
        var name = Name();
        var (status, added) = await SendAsync(HttpMethod.Post, "/v1/policies", key,
            new { name, position = 5, agent = "agt_" + name, type = "payment", currency = "USD", amountOver = 10000, requires = "quorum", quorum = 1, approvers = new[] { bob.Handle } });
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("10000.00", added.GetProperty("amountOver").GetString());
        Assert.Equal(bob.Handle, added.GetProperty("approvers")[0].GetString());

        (status, var tested) = await SendAsync(HttpMethod.Post, "/v1/policies/test", key,
            new { agent = "agt_" + name, authorizationDetails = JsonDocument.Parse(Payment("\"10000.01\"")).RootElement });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(name, tested.GetProperty("policy").GetProperty("name").GetString());
        (_, tested) = await SendAsync(HttpMethod.Post, "/v1/policies/test", key,
            new { agent = "agt_" + name, authorizationDetails = JsonDocument.Parse(Payment("\"10000.00\"")).RootElement });
        Assert.Equal("one", tested.GetProperty("requires").GetString());
        Assert.False(tested.TryGetProperty("policy", out _));

        (_, var list) = await SendAsync(HttpMethod.Get, "/v1/policies", key);
        Assert.Contains(list.GetProperty("policies").EnumerateArray(), p => p.GetProperty("name").GetString() == name);
        (status, _) = await SendAsync(HttpMethod.Delete, $"/v1/policies/{name}", key);
        Assert.Equal(HttpStatusCode.OK, status);
        (status, _) = await SendAsync(HttpMethod.Delete, $"/v1/policies/{name}", key);
        Assert.Equal(HttpStatusCode.NotFound, status);

        var entries = await Server.Store.Audit.ReadAsync(0, 100_000, null, CancellationToken.None);
        var types = entries.Select(e => JsonDocument.Parse(e.Entry).RootElement).Where(e => e.TryGetProperty("subject", out var s) && s.GetString() == name + "@1")
            .Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Equal([AuditTypes.PolicyAdded, AuditTypes.PolicyRemoved], types);
    }
}
