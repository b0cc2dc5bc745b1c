using System.Diagnostics;
using System.Text.Json;
using Assent.Client.Verification;
using Assent.Protocol.Approvals;
using Assent.Protocol.OAuth;

namespace Assent.Client.Tests;

[Collection(IssuersCollection.Name)]
public sealed class ApproveTests(Issuers issuers)
{
    private static readonly JsonElement Payment =
        JsonDocument.Parse("""[{"type":"payment","amount":"125.00","currency":"EUR","recipient":"Zoë"}]""").RootElement.Clone();

    [Fact]
    public async Task Approved_request_returns_a_token_that_verifies_with_its_evidence()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        var human = Human.DecideAsync(user, Decisions.Approve);

        var approval = await client.ApproveAsync("Pay Zoë 125 EUR", new() { Scope = "payments:write", Details = Payment }, CancellationToken.None);
        await human;

        Assert.True(approval.Approved, approval.Status.ToString());
        Assert.NotNull(approval.IdToken);
        Assert.Equal("openid payments:write", approval.Scope);
        Assert.True(approval.ExpiresIn > 0);
        Assert.Equal("Pay Zoë 125 EUR", approval.Claims["binding_message"].GetString());
        using var verifier = new TokenVerifier(issuers.A.Issuer);
        var token = await verifier.VerifyAsync(approval.AccessToken!, new()
        {
            Scope = "payments:write",
            Audience = user.ClientId,
            CheckEvidence = true,
            ExpectedBindingMessage = "Pay Zoë 125 EUR",
            ExpectedAuthorizationDetails = new[] { new { recipient = "Zoë", currency = "EUR", amount = "125.00", type = "payment" } },
        }, CancellationToken.None);
        Assert.Equal(user.Did, token.Subject);
        Assert.Equal($"{user.Did}#{user.DeviceId}", token.EvidenceDevice);
        Assert.True(token.HasScope("openid"));
    }

    [Fact]
    public async Task Denied_request_is_a_result_not_an_exception()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        var human = Human.DecideAsync(user, Decisions.Deny);

        var approval = await client.ApproveAsync("Delete user alice@corp", new() { Scope = "approve:action" }, CancellationToken.None);
        await human;

        Assert.Equal(ApprovalStatus.Denied, approval.Status);
        Assert.False(approval.Approved);
        Assert.Null(approval.AccessToken);
    }

    [Fact]
    public async Task Request_nobody_decides_comes_back_expired()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);

        var approval = await client.ApproveAsync("Nobody will answer", new() { Expiry = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromSeconds(20) },
            CancellationToken.None);

        Assert.Equal(ApprovalStatus.Expired, approval.Status);
    }

    [Fact]
    public async Task Waiting_longer_than_the_timeout_throws_AssentTimeoutException()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        var clock = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<AssentTimeoutException>(() =>
            client.ApproveAsync("Too slow", new() { Timeout = TimeSpan.FromSeconds(1.5), Expiry = TimeSpan.FromMinutes(5) }, CancellationToken.None));

        Assert.NotNull(e.AuthReqId);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.4), TimeSpan.FromSeconds(6));
    }

    [Fact]
    public async Task Cancellation_stops_a_held_wait_promptly()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ApproveAsync("Cancelled", null, cts.Token));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), clock.Elapsed.ToString());
    }

    [Fact]
    public async Task Cancelling_the_wait_withdraws_the_request_from_the_device()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        using var cts = new CancellationTokenSource();
        var waiting = client.ApproveAsync("Withdrawn before anyone taps", null, cts.Token);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((await user.Device.ListPendingAsync(CancellationToken.None)).Count == 0)
        {
            Assert.True(DateTime.UtcNow < until, "the request never reached the device");
            await Task.Delay(20);
        }

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);

        // docs/sdk.md §3 step 7: withdrawn before the cancellation is rethrown, so the device has nothing left to decide.
        Assert.Empty(await user.Device.ListPendingAsync(CancellationToken.None));
    }

    [Fact]
    public async Task CancelAsync_withdraws_a_pending_request_and_leaves_a_decided_one_alone()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        var human = Human.DecideAsync(user, Decisions.Approve);
        var approval = await client.ApproveAsync("Decided before the withdrawal", null, CancellationToken.None);
        await human;
        Assert.True(approval.Approved);
        // Already decided (and redeemed): nothing changes, and it is no error.
        await client.CancelAsync(approval.AuthReqId, CancellationToken.None);

        var timedOut = await Assert.ThrowsAsync<AssentTimeoutException>(() =>
            client.ApproveAsync("Left pending by a timeout", new() { Timeout = TimeSpan.FromSeconds(1), Expiry = TimeSpan.FromMinutes(5) }, CancellationToken.None));
        Assert.Single(await user.Device.ListPendingAsync(CancellationToken.None));
        await client.CancelAsync(timedOut.AuthReqId!, CancellationToken.None);
        Assert.Empty(await user.Device.ListPendingAsync(CancellationToken.None));
        // Twice is harmless.
        await client.CancelAsync(timedOut.AuthReqId!, CancellationToken.None);
    }

    [Fact]
    public async Task Server_down_throws_AssentUnreachableException()
    {
        using var client = new AssentClient(new AssentClientOptions
        {
            Server = new Uri($"http://127.0.0.1:{Ports.Reserve()}"),
            ClientId = "agt_x",
            ClientSecret = "sec_x",
            UserDid = "alice",
        });

        await Assert.ThrowsAsync<AssentUnreachableException>(() => client.ApproveAsync("Anyone there?", null, CancellationToken.None));
    }

    [Fact]
    public async Task Wrong_secret_and_unregistered_scope_are_typed_OAuth_errors()
    {
        var user = await issuers.A.UserAsync();
        using var wrongSecret = new AssentClient(new AssentClientOptions
        {
            Server = issuers.A.BaseUri, ClientId = user.ClientId, ClientSecret = "sec_wrong", UserDid = user.Did,
        });
        using var client = issuers.A.ClientFor(user);

        var badClient = await Assert.ThrowsAsync<AssentOAuthException>(() => wrongSecret.ApproveAsync("x", null, CancellationToken.None));
        var badScope = await Assert.ThrowsAsync<AssentOAuthException>(() => client.ApproveAsync("x", new() { Scope = "admin:everything" }, CancellationToken.None));

        Assert.Equal(OAuthErrors.InvalidClient, badClient.Error);
        Assert.Equal(OAuthErrors.InvalidScope, badScope.Error);
    }

    [Fact]
    public async Task Without_Prefer_wait_the_client_polls_at_the_interval_and_discovers_once()
    {
        var user = await issuers.A.UserAsync();
        using var handler = new StripPrefer();
        using var http = new HttpClient(handler);
        using var client = issuers.A.ClientFor(user, http);
        var clock = Stopwatch.StartNew();
        var human = Human.DecideAsync(user, Decisions.Approve, TimeSpan.FromMilliseconds(300));

        var first = await client.ApproveAsync("Polled", null, CancellationToken.None);
        await human;

        Assert.True(first.Approved);
        // bc-authorize answers interval 2: the first poll is immediate, the next one 2 s later.
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.9), clock.Elapsed.ToString());
        Assert.Equal(2, handler.TokenRequests);
        Assert.Equal(1, handler.DiscoveryRequests);

        var denied = Human.DecideAsync(user, Decisions.Deny);
        Assert.Equal(ApprovalStatus.Denied, (await client.ApproveAsync("Again", null, CancellationToken.None)).Status);
        await denied;
        Assert.Equal(1, handler.DiscoveryRequests);
    }

    [Fact]
    public void Options_come_from_the_ASSENT_environment_variables()
    {
        Environment.SetEnvironmentVariable(AssentClientOptions.ServerVariable, "http://localhost:8400");
        Environment.SetEnvironmentVariable(AssentClientOptions.ClientIdVariable, "agt_env");
        Environment.SetEnvironmentVariable(AssentClientOptions.ClientSecretVariable, "sec_env");
        Environment.SetEnvironmentVariable(AssentClientOptions.UserDidVariable, "did:web:localhost%3A8400:users:usr_1");
        try
        {
            var options = AssentClientOptions.FromEnvironment();
            Assert.Equal(new Uri("http://localhost:8400"), options.Server);
            Assert.Equal("agt_env", options.ClientId);
            Assert.Equal("sec_env", options.ClientSecret);
            Assert.Equal("did:web:localhost%3A8400:users:usr_1", options.UserDid);
        }
        finally
        {
            foreach (var name in new[] { AssentClientOptions.ServerVariable, AssentClientOptions.ClientIdVariable, AssentClientOptions.ClientSecretVariable, AssentClientOptions.UserDidVariable })
            {
                Environment.SetEnvironmentVariable(name, null);
            }
        }
    }

    /// <summary>A proxy that drops <c>Prefer</c>, as some gateways do, and counts what passes.</summary>
    [Fact]
    public async Task A_token_request_answered_temporarily_unavailable_is_asked_again_after_Retry_After()
    {
        var user = await issuers.A.UserAsync();
        using var handler = new UnavailableTokenEndpoint(times: 2);
        using var http = new HttpClient(handler);
        using var client = issuers.A.ClientFor(user, http);
        var human = Human.DecideAsync(user, Decisions.Approve);

        var approval = await client.ApproveAsync("Through an outage", new() { Scope = "approve:action", Timeout = TimeSpan.FromSeconds(30) }, CancellationToken.None);
        await human;

        Assert.True(approval.Approved, approval.Status.ToString());
        Assert.Equal(2, handler.Refused);
    }

    /// <summary>The first <c>times</c> token requests meet a server whose database is down (docs/http-api.md §2.3).</summary>
    private sealed class UnavailableTokenEndpoint(int times) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _seen;
        private int _refused;

        public int Refused => _refused;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath == "/oauth/token" && Interlocked.Increment(ref _seen) <= times)
            {
                Interlocked.Increment(ref _refused);
                var response = new HttpResponseMessage(System.Net.HttpStatusCode.ServiceUnavailable)
                {
                    Content = new StringContent("""{"error":"temporarily_unavailable","error_description":"storage unavailable"}""", System.Text.Encoding.UTF8, "application/json"),
                    RequestMessage = request,
                };
                response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(1));
                return Task.FromResult(response);
            }
            return base.SendAsync(request, cancellationToken);
        }
    }

    private sealed class StripPrefer() : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _token;
        private int _discovery;

        public int TokenRequests => _token;

        public int DiscoveryRequests => _discovery;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Remove("Prefer");
            if (request.RequestUri!.AbsolutePath == "/oauth/token")
            {
                Interlocked.Increment(ref _token);
            }
            if (request.RequestUri.AbsolutePath == "/.well-known/openid-configuration")
            {
                Interlocked.Increment(ref _discovery);
            }
            return base.SendAsync(request, cancellationToken);
        }
    }
}
