using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Server.Payments;

namespace Assent.Server.Tests;

/// <summary>
/// MPP 402s (docs/payments.md §2–§5) without a paid server: what is refused before anyone is asked (malformed or
/// hostile challenges, methods not paid), the preference between x402 and MPP, a challenge posted twice, and Stripe
/// failing after the approval. The reference server's side is in <see cref="MppInteropTests"/>.
/// </summary>
public sealed class MppTests(MppInteropServer fixture) : IClassFixture<MppInteropServer>
{
    private const string BaseSepoliaUsdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    private const string Seller = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    private TestServer Server => fixture.Server;

    private async Task<(TestDevice Device, TestAgent Agent)> PayerAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var access = (await Session.SignInAsync(Server, device)).GetProperty("access_token").GetString()!;
        using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet");
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        using var created = await Server.Http.SendAsync(create);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (device, agent);
    }

    private static string B64Url(string json) => Protocol.Base64Url.Encode(Encoding.UTF8.GetBytes(json));

    private static string EvmRequest(string amount = "10000") => B64Url(JsonSerializer.Serialize(new
    {
        amount, currency = BaseSepoliaUsdc, recipient = Seller, methodDetails = new { chainId = 84532, credentialTypes = new[] { "authorization" }, decimals = 6 },
    }));

    private static string StripeRequest() => B64Url("""{"amount":"50","currency":"usd","methodDetails":{"networkId":"profile_seller","paymentMethodTypes":["card"]}}""");

    private static string Challenge(string method = "evm", string? request = null, string? id = null, string realm = "api.example") =>
        $"Payment id=\"{id ?? Guid.NewGuid().ToString("N")}\", realm=\"{realm}\", method=\"{method}\", intent=\"charge\", " +
        $"request=\"{request ?? EvmRequest()}\", expires=\"{DateTimeOffset.UtcNow.AddMinutes(5):yyyy-MM-ddTHH:mm:ss.fffZ}\"";

    private async Task<(HttpStatusCode Status, JsonElement Body)> AskAsync(TestAgent agent, Dictionary<string, string> headers, string? max = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/payments")
        {
            Content = TestDevice.JsonBody(new { url = "https://api.example/weather", status = 402, headers, max }),
        };
        request.Headers.Authorization = TestServer.Basic(agent);
        using var response = await Server.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "Payment id=\"a\", realm=\"r\", method=\"evm\", intent=\"charge\", request=\"" + new string('A', 20000) + "\"", "characters long" },
        { Challenge(request: "!!not-base64!!"), "not base64url" },
        { Challenge(request: B64Url("{\"amount\": ")), "not JSON" },
        { Challenge(request: B64Url("[1, 2]")), "not a JSON object" },
        { "Payment id=\"a\", realm=\"r\", method=\"evm\", intent=\"charge\", request=\"" + EvmRequest() + "\", description=\"unterminated", "unterminated" },
        { "Payment id=\"a\", id=\"b\", realm=\"r\", method=\"evm\", intent=\"charge\", request=\"" + EvmRequest() + "\"", "twice" },
        { Challenge(method: "EVM"), "lowercase" },
        { "Payment realm=\"r\", method=\"evm\", intent=\"charge\", request=\"" + EvmRequest() + "\"", "lacks one of id" },
        { Challenge().Replace("expires=\"", "expires=\"yesterday", StringComparison.Ordinal), "RFC 3339" },
        { string.Join(", ", Enumerable.Range(0, 17).Select(i => Challenge(id: $"c{i}"))), "at most 16" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task A_malformed_or_hostile_challenge_is_a_clear_400_and_nobody_is_asked(string header, string says)
    {
        var (device, agent) = await PayerAsync();
        var (status, body) = await AskAsync(agent, new() { ["WWW-Authenticate"] = header });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("MPP", body.GetProperty("detail").GetString());
        Assert.Contains(says, body.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task A_challenge_with_a_method_or_chain_not_paid_here_is_refused_naming_what_was_offered()
    {
        var (device, agent) = await PayerAsync();
        var offered = string.Join(", ", Challenge(method: "tempo"), Challenge(request: B64Url(
            """{"amount":"10000","currency":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","recipient":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","methodDetails":{"chainId":1,"credentialTypes":["authorization"]}}""")));
        var (status, body) = await AskAsync(agent, new() { ["WWW-Authenticate"] = "Bearer realm=\"api\", " + offered });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Equal("Nothing payable", body.GetProperty("title").GetString());
        Assert.Contains("method 'tempo'", body.GetProperty("detail").GetString());
        Assert.Contains("chain 1 is not one this server pays on", body.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task Absurd_amounts_are_refused_before_anyone_is_asked()
    {
        var (device, agent) = await PayerAsync();
        var (status, body) = await AskAsync(agent, new() { ["WWW-Authenticate"] = Challenge(request: EvmRequest(new string('9', 70))) });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("absurd amount", body.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task A_402_offering_x402_and_mpp_is_paid_by_the_preferred_protocol()
    {
        var (_, agent) = await PayerAsync();
        var options = Server.Service<PaymentOptions>();
        Dictionary<string, string> Both() => new() { ["PAYMENT-REQUIRED"] = PaymentTests.V2Header(), ["WWW-Authenticate"] = Challenge() };
        var (status, mpp) = await AskAsync(agent, Both());
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("mpp", mpp.GetProperty("protocol").GetString());
        options.PreferredProtocol = "x402";
        try
        {
            var (again, x402) = await AskAsync(agent, Both());
            Assert.Equal(HttpStatusCode.Created, again);
            Assert.Equal("x402/v2", x402.GetProperty("protocol").GetString());
            // The preferred protocol offering nothing payable, the other is paid.
            var (fallback, other) = await AskAsync(agent, new() { ["PAYMENT-REQUIRED"] = PaymentTests.V2Header(network: "eip155:1"), ["WWW-Authenticate"] = Challenge() });
            Assert.Equal(HttpStatusCode.Created, fallback);
            Assert.Equal("mpp", other.GetProperty("protocol").GetString());
            // An unreadable x402 offer does not stop readable MPP challenges from being paid.
            var (broken, mppOnly) = await AskAsync(agent, new() { ["PAYMENT-REQUIRED"] = "%%%not-base64%%%", ["WWW-Authenticate"] = Challenge() });
            Assert.Equal(HttpStatusCode.Created, broken);
            Assert.Equal("mpp", mppOnly.GetProperty("protocol").GetString());
        }
        finally
        {
            options.PreferredProtocol = Mpp.Protocol;
        }
    }

    [Fact]
    public async Task The_approver_sees_the_challenge_hash_as_the_nonce_and_the_same_challenge_pays_once()
    {
        var (device, agent) = await PayerAsync();
        var challenge = Challenge(id: "challenge-once", realm: "api.example");
        var (status, _) = await AskAsync(agent, new() { ["WWW-Authenticate"] = challenge });
        Assert.Equal(HttpStatusCode.Created, status);
        var pending = Assert.Single(await device.PendingAsync());
        var seen = JsonDocument.Parse(Protocol.Base64Url.Decode(pending.GetProperty("payload").GetString()!)).RootElement.GetProperty("authorization_details")[0];
        // mppx: keccak256(utf8(id ‖ realm)).
        Assert.Equal("0x" + Convert.ToHexStringLower(new Nethereum.Util.Sha3Keccack().CalculateHash(Encoding.UTF8.GetBytes("challenge-onceapi.example"))),
            seen.GetProperty("nonce").GetString());
        Assert.Equal("mpp", seen.GetProperty("protocol").GetString());
        Assert.Equal("0.01", seen.GetProperty("amount").GetString());
        Assert.Equal(Seller, seen.GetProperty("pay_to").GetString());
        var (again, body) = await AskAsync(agent, new() { ["WWW-Authenticate"] = challenge });
        Assert.Equal(HttpStatusCode.Conflict, again);
        Assert.Contains("pays once", body.GetProperty("detail").GetString());
        Assert.Single(await device.PendingAsync());
    }

    [Fact]
    public async Task A_stripe_charge_needs_no_wallet_but_an_evm_charge_does()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var stripe = Server.Service<PaymentOptions>().Stripe;
        (stripe.SecretKey, stripe.PaymentMethod) = ("sk_test_configured", "pm_card_visa");
        try
        {
            var (evm, refusal) = await AskAsync(agent, new() { ["WWW-Authenticate"] = Challenge() });
            Assert.Equal(HttpStatusCode.Conflict, evm);
            Assert.Contains("assent wallet create", refusal.GetProperty("detail").GetString());
            var (card, payment) = await AskAsync(agent, new() { ["WWW-Authenticate"] = Challenge(method: "stripe", request: StripeRequest()) });
            Assert.Equal(HttpStatusCode.Created, card);
            Assert.Equal("stripe:pm_card_visa", payment.GetProperty("from").GetString());
            Assert.Single(await device.PendingAsync());
        }
        finally
        {
            (stripe.SecretKey, stripe.PaymentMethod) = (null, null);
        }
    }

    [Fact]
    public async Task Nothing_differing_from_the_approval_is_minted_and_a_receipt_must_be_an_mpp_receipt()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var stripe = Server.Service<PaymentOptions>().Stripe;
        (stripe.SecretKey, stripe.PaymentMethod) = ("sk_test_configured", "pm_card_visa");
        string id;
        try
        {
            var (status, payment) = await AskAsync(agent, new() { ["WWW-Authenticate"] = Challenge(method: "stripe", request: StripeRequest()) });
            Assert.Equal(HttpStatusCode.Created, status);
            id = payment.GetProperty("paymentId").GetString()!;
        }
        finally
        {
            (stripe.SecretKey, stripe.PaymentMethod) = (null, null);
        }
        var view = (await Server.Store.Payments.FindAsync(id, CancellationToken.None))!;
        var p = view.Payment;
        Assert.True(PaymentEndpoints.Approved(view.Approval, p));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { PayTo = "profile_other" }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { AmountAtomic = "51" }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { Asset = "eur" }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { ValidBefore = p.ValidBefore + 60 }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { Wallet = "stripe:pm_other" }));

        foreach (var (name, value, says) in new[]
        {
            ("PAYMENT-RESPONSE", Protocol.Base64Url.Encode("{}"u8), "Payment-Receipt"),
            ("Payment-Receipt", "%%%", "base64url of a JSON receipt"),
            ("Payment-Receipt", Protocol.Base64Url.Encode("[1]"u8), "base64url of a JSON receipt"),
        })
        {
            using var post = new HttpRequestMessage(HttpMethod.Post, $"/v1/payments/{id}/receipt") { Content = TestDevice.JsonBody(new { name, value }) };
            post.Headers.Authorization = TestServer.Basic(agent);
            using var answer = await Server.Http.SendAsync(post);
            Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
            Assert.Contains(says, await answer.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public void Keccak_of_nothing_is_the_known_answer() =>
        Assert.Equal("0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", Mpp.ChallengeHash("", ""));

    [Fact]
    public async Task Stripe_charges_are_refused_when_no_stripe_account_is_configured_and_a_stripe_failure_after_approval_is_a_502()
    {
        var (device, agent) = await PayerAsync();
        var stripe = Server.Service<PaymentOptions>().Stripe;
        var (status, body) = await AskAsync(agent, new() { ["WWW-Authenticate"] = Challenge(method: "stripe", request: StripeRequest()) });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("Stripe charges are not configured", body.GetProperty("detail").GetString());

        // Configured, but Stripe cannot be reached: the approval stands, nothing is signed, and the agent is told why.
        using var closed = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        (stripe.SecretKey, stripe.PaymentMethod, stripe.ApiBase) = ("sk_test_unreachable", "pm_card_visa", new Uri($"http://127.0.0.1:{port}"));
        try
        {
            var (created, payment) = await AskAsync(agent, new() { ["WWW-Authenticate"] = Challenge(method: "stripe", request: StripeRequest()) });
            Assert.Equal(HttpStatusCode.Created, created);
            var id = payment.GetProperty("paymentId").GetString()!;
            var pending = Assert.Single(await device.PendingAsync());
            var payload = pending.GetProperty("payload").GetString()!;
            var seen = JsonDocument.Parse(Protocol.Base64Url.Decode(payload)).RootElement.GetProperty("authorization_details")[0];
            Assert.Equal("stripe", seen.GetProperty("method").GetString());
            Assert.Equal("0.50", seen.GetProperty("amount").GetString());
            Assert.Equal("USD", seen.GetProperty("currency").GetString());
            Assert.Equal("profile_seller", seen.GetProperty("pay_to").GetString());
            using var decided = await device.PostDecisionAsync(id, Decisions.Approve, device.SignDecision(Decisions.Approve, payload));
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
            using var get = new HttpRequestMessage(HttpMethod.Get, $"/v1/payments/{id}");
            get.Headers.Authorization = TestServer.Basic(agent);
            using var read = await Server.Http.SendAsync(get);
            Assert.Equal(HttpStatusCode.BadGateway, read.StatusCode);
            Assert.Contains("Stripe is unreachable", await read.Content.ReadAsStringAsync());
            Assert.DoesNotContain(await Server.Store.Audit.ReadAsync(0, 1000, device.UserId, CancellationToken.None),
                r => Encoding.UTF8.GetString(r.Entry).Contains("payment.signed", StringComparison.Ordinal));
        }
        finally
        {
            (stripe.SecretKey, stripe.PaymentMethod) = (null, null);
        }
    }
}
