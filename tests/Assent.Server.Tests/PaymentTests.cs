using System.Net;
using System.Net.Http.Headers;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Assent.Server.Payments;
using Nethereum.Signer.EIP712;

namespace Assent.Server.Tests;

/// <summary>Agent payments (docs/payments.md): wallets, x402 v1 and v2 402s, approval, EIP-3009 signing, receipts, refusals.</summary>
public sealed class PaymentTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private const string BaseSepoliaUsdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    private const string Seller = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    private TestServer Server => fixture.Server;

    private async Task<(TestDevice Device, TestAgent Agent, string Wallet)> PayerAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var access = (await Session.SignInAsync(Server, device)).GetProperty("access_token").GetString()!;
        using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet");
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        var (status, wallet) = await SendAsync(create);
        Assert.Equal(HttpStatusCode.Created, status);
        using var again = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet");
        again.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        var (againStatus, same) = await SendAsync(again);
        Assert.Equal(HttpStatusCode.OK, againStatus);
        Assert.Equal(wallet.GetProperty("address").GetString(), same.GetProperty("address").GetString());
        return (device, agent, wallet.GetProperty("address").GetString()!);
    }

    internal static string V2Header(string amount = "10000", string network = "eip155:84532", string asset = BaseSepoliaUsdc, string payTo = Seller,
        string scheme = "exact", string? extraName = "USDC") =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            x402Version = 2,
            error = "Payment required",
            resource = new { url = "https://api.example/weather", description = "Weather report", mimeType = "application/json" },
            accepts = new object[]
            {
                new
                {
                    scheme, network, amount, asset, payTo, maxTimeoutSeconds = 60,
                    extra = extraName is null ? null : new { name = extraName, version = "2" },
                },
            },
        })));

    private static object V2Request(string header, string? max = null) => new
    {
        url = "https://api.example/weather",
        status = 402,
        headers = new Dictionary<string, string> { ["payment-required"] = header, ["content-type"] = "application/json" },
        body = "{}",
        max,
    };

    private HttpRequestMessage Pay(TestAgent agent, object body, string? wait = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/payments") { Content = TestDevice.JsonBody(body) };
        request.Headers.Authorization = TestServer.Basic(agent);
        if (wait is not null)
        {
            request.Headers.Add("Prefer", wait);
        }
        return request;
    }

    private HttpRequestMessage Get(TestAgent agent, string id)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/payments/{id}");
        request.Headers.Authorization = TestServer.Basic(agent);
        return request;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpRequestMessage request)
    {
        using (request)
        using (var response = await Server.Http.SendAsync(request))
        {
            return await TestServer.ReadAsync(response);
        }
    }

    [Fact]
    public async Task An_approved_x402_v2_payment_returns_a_PAYMENT_SIGNATURE_whose_EIP712_signature_recovers_to_the_wallet_and_matches_the_approval()
    {
        var (device, agent, wallet) = await PayerAsync();
        var header = V2Header();
        var (status, created) = await SendAsync(Pay(agent, V2Request(header, max: "0.05")));
        Assert.Equal(HttpStatusCode.Created, status);
        var id = created.GetProperty("paymentId").GetString()!;
        Assert.StartsWith("pay_", id);
        Assert.Equal("pending", created.GetProperty("status").GetString());
        Assert.Equal("0.01", created.GetProperty("amount").GetString());
        Assert.Equal("USDC", created.GetProperty("currency").GetString());
        Assert.False(created.TryGetProperty("header", out _));

        // What the human is shown: the amount in USDC, the payee, the resource, and every signed field.
        var pending = Assert.Single(await device.PendingAsync());
        var payload = JsonDocument.Parse(Protocol.Base64Url.Decode(pending.GetProperty("payload").GetString()!)).RootElement;
        var detail = payload.GetProperty("authorization_details")[0];
        Assert.Equal("payment", detail.GetProperty("type").GetString());
        Assert.Equal("x402/v2", detail.GetProperty("protocol").GetString());
        Assert.Equal("0.01", detail.GetProperty("amount").GetString());
        Assert.Equal(Seller, detail.GetProperty("pay_to").GetString());
        Assert.Equal("https://api.example/weather", detail.GetProperty("resource").GetString());
        Assert.Equal($"Pay 0.01 USDC to {Seller}", payload.GetProperty("binding_message").GetString());
        using (var approve = await device.DecideOnlyPendingAsync("approve"))
        {
            Assert.Equal(HttpStatusCode.OK, approve.StatusCode);
        }

        var (_, paid) = await SendAsync(Get(agent, id));
        Assert.Equal("approved", paid.GetProperty("status").GetString());
        Assert.Equal("PAYMENT-SIGNATURE", paid.GetProperty("header").GetProperty("name").GetString());
        var sent = JsonDocument.Parse(Convert.FromBase64String(paid.GetProperty("header").GetProperty("value").GetString()!)).RootElement;
        Assert.Equal(2, sent.GetProperty("x402Version").GetInt32());
        var offered = JsonDocument.Parse(Convert.FromBase64String(header)).RootElement;
        Assert.Equal(offered.GetProperty("accepts")[0].GetRawText(), sent.GetProperty("accepted").GetRawText());
        Assert.Equal(offered.GetProperty("resource").GetRawText(), sent.GetProperty("resource").GetRawText());
        var auth = sent.GetProperty("payload").GetProperty("authorization");
        Assert.Equal(wallet, auth.GetProperty("from").GetString());
        Assert.Equal(Seller, auth.GetProperty("to").GetString());
        Assert.Equal("10000", auth.GetProperty("value").GetString());
        Assert.Equal(detail.GetProperty("nonce").GetString(), auth.GetProperty("nonce").GetString());
        Assert.Equal(detail.GetProperty("valid_before").GetInt64().ToString(), auth.GetProperty("validBefore").GetString());
        Assert.Equal(detail.GetProperty("valid_after").GetInt64().ToString(), auth.GetProperty("validAfter").GetString());

        var signature = sent.GetProperty("payload").GetProperty("signature").GetString()!;
        var typed = Wallets.TransferWithAuthorization("USDC", "2", 84532, BaseSepoliaUsdc, new Eip3009Authorization(wallet, Seller, 10000,
            long.Parse(auth.GetProperty("validAfter").GetString()!), long.Parse(auth.GetProperty("validBefore").GetString()!), auth.GetProperty("nonce").GetString()!));
        Assert.Equal(wallet, new Eip712TypedDataSigner().RecoverFromSignatureV4(typed, signature), ignoreCase: true);
        var bytes = Convert.FromHexString(signature[2..]);
        Assert.Equal(65, bytes.Length);
        Assert.Contains(bytes[64], new byte[] { 27, 28 });
        Assert.True(new BigInteger(bytes.AsSpan(32, 32), isUnsigned: true, isBigEndian: true) <=
            BigInteger.Parse("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0", System.Globalization.NumberStyles.HexNumber));

        // A second read signs nothing new: the same bytes, and one signature in the audit.
        var (_, again) = await SendAsync(Get(agent, id));
        Assert.Equal(paid.GetProperty("header").GetProperty("value").GetString(), again.GetProperty("header").GetProperty("value").GetString());
        var signed = await AuditOfAsync(device, "payment.signed");
        Assert.Single(signed, e => e.GetProperty("subject").GetString() == id);

        // The receipt is posted back and audited; the payment is then paid.
        var receipt = Convert.ToBase64String(Encoding.UTF8.GetBytes("""{"success":true,"transaction":"0xabc","network":"eip155:84532","payer":"x"}"""));
        using var post = new HttpRequestMessage(HttpMethod.Post, $"/v1/payments/{id}/receipt")
        {
            Content = TestDevice.JsonBody(new { name = "PAYMENT-RESPONSE", value = receipt }),
        };
        post.Headers.Authorization = TestServer.Basic(agent);
        var (receiptStatus, withReceipt) = await SendAsync(post);
        Assert.Equal(HttpStatusCode.OK, receiptStatus);
        Assert.Equal("paid", withReceipt.GetProperty("status").GetString());
        Assert.False(withReceipt.TryGetProperty("header", out _));
        Assert.Contains(await AuditOfAsync(device, "payment.receipt"), e => e.GetProperty("subject").GetString() == id);
    }

    private async Task<JsonElement[]> AuditOfAsync(TestDevice device, string type)
    {
        var rows = await Server.Store.Audit.ReadAsync(0, 1000, device.UserId, CancellationToken.None);
        return rows.Select(r => JsonDocument.Parse(r.Entry).RootElement.Clone()).Where(e => e.GetProperty("type").GetString() == type).ToArray();
    }

    [Fact]
    public async Task An_x402_v1_body_is_paid_with_an_X_PAYMENT_header()
    {
        var (device, agent, wallet) = await PayerAsync();
        var body = JsonSerializer.Serialize(new
        {
            x402Version = 1,
            error = "X-PAYMENT header is required",
            accepts = new[]
            {
                new
                {
                    scheme = "exact", network = "base-sepolia", maxAmountRequired = "1500000", resource = "https://api.example/report", description = "A report",
                    mimeType = "application/json", payTo = Seller, maxTimeoutSeconds = 60, asset = BaseSepoliaUsdc, extra = new { name = "USDC", version = "2" },
                },
            },
        });
        var (status, created) = await SendAsync(Pay(agent, new { url = "https://api.example/report", status = 402, body }));
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("1.50", created.GetProperty("amount").GetString());
        Assert.Equal("x402/v1", created.GetProperty("protocol").GetString());
        using (await device.DecideOnlyPendingAsync("approve"))
        {
        }
        var (_, paid) = await SendAsync(Get(agent, created.GetProperty("paymentId").GetString()!));
        Assert.Equal("X-PAYMENT", paid.GetProperty("header").GetProperty("name").GetString());
        var sent = JsonDocument.Parse(Convert.FromBase64String(paid.GetProperty("header").GetProperty("value").GetString()!)).RootElement;
        Assert.Equal(1, sent.GetProperty("x402Version").GetInt32());
        Assert.Equal("base-sepolia", sent.GetProperty("network").GetString());
        Assert.Equal(wallet, sent.GetProperty("payload").GetProperty("authorization").GetProperty("from").GetString());
    }

    [Fact]
    public async Task A_denied_payment_has_no_header_and_nothing_is_signed()
    {
        var (device, agent, _) = await PayerAsync();
        var (_, created) = await SendAsync(Pay(agent, V2Request(V2Header())));
        var id = created.GetProperty("paymentId").GetString()!;
        using (await device.DecideOnlyPendingAsync("deny"))
        {
        }
        var (_, denied) = await SendAsync(Get(agent, id));
        Assert.Equal("denied", denied.GetProperty("status").GetString());
        Assert.False(denied.TryGetProperty("header", out _));
        Assert.DoesNotContain(await AuditOfAsync(device, "payment.signed"), e => e.GetProperty("subject").GetString() == id);
    }

    [Fact]
    public async Task Over_the_maximum_is_refused_before_any_approval_is_asked()
    {
        var (device, agent, _) = await PayerAsync();
        var (status, problem) = await SendAsync(Pay(agent, V2Request(V2Header(amount: "2000000"), max: "1.99")));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("2.00 USDC", problem.GetProperty("detail").GetString());
        Assert.Contains("1.99", problem.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Theory]
    [InlineData("exact", "eip155:1", BaseSepoliaUsdc, "network 'eip155:1'")]
    [InlineData("upto", "eip155:84532", BaseSepoliaUsdc, "scheme 'upto'")]
    [InlineData("exact", "eip155:84532", "0x0000000000000000000000000000000000000001", "asset 0x0000000000000000000000000000000000000001")]
    public async Task A_402_offering_nothing_payable_is_refused_naming_what_was_offered(string scheme, string network, string asset, string named)
    {
        var (device, agent, _) = await PayerAsync();
        var (status, problem) = await SendAsync(Pay(agent, V2Request(V2Header(scheme: scheme, network: network, asset: asset))));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains(named, problem.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    public static TheoryData<string, object> Malicious() => new()
    {
        { "not base64", new { url = "https://a.example/", status = 402, headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = "%%%not-base64%%%" } } },
        { "not JSON", new { url = "https://a.example/", status = 402, headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = Convert.ToBase64String("{nope"u8.ToArray()) } } },
        { "uint256", new { url = "https://a.example/", status = 402, headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = V2Header(amount: new string('9', 79)) } } },
        { "absurd", new { url = "https://a.example/", status = 402, headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = V2Header(amount: "1" + new string('0', 30)) } } },
        { "at most 16384", new { url = "https://a.example/", status = 402, headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = new string('A', 20_000) } } },
        { "64 headers", new { url = "https://a.example/", status = 402, headers = Enumerable.Range(0, 70).ToDictionary(i => $"x-h{i}", i => "v") } },
        { "status must be 402", new { url = "https://a.example/", status = 200, headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = V2Header() } } },
        { "MPP", new { url = "https://a.example/", status = 402, headers = new Dictionary<string, string> { ["WWW-Authenticate"] = "Payment id=\"x\", method=\"evm\"" } } },
        { "EVM address", new { url = "https://a.example/", status = 402, headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = V2Header(payTo: "0xnot") } } },
    };

    [Theory]
    [MemberData(nameof(Malicious))]
    public async Task A_malformed_or_hostile_402_gets_a_clear_4xx_and_asks_nobody(string said, object body)
    {
        var (device, agent, _) = await PayerAsync();
        var (status, problem) = await SendAsync(Pay(agent, body));
        Assert.True((int)status is >= 400 and < 500, $"{status}");
        Assert.Contains(said, problem.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task An_agent_without_payments_write_or_an_owner_without_a_wallet_is_refused()
    {
        var device = await Server.UserWithDeviceAsync();
        var (status, problem) = await SendAsync(Pay(await Server.AgentAsync(device.Handle, "approve:action"), V2Request(V2Header())));
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("payments:write", problem.GetProperty("detail").GetString());
        (status, problem) = await SendAsync(Pay(await Server.AgentAsync(device.Handle), V2Request(V2Header())));
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("assent wallet create", problem.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task Nothing_is_signed_for_a_payment_that_differs_from_what_the_approval_holds()
    {
        var (_, agent, _) = await PayerAsync();
        var (_, created) = await SendAsync(Pay(agent, V2Request(V2Header())));
        var view = (await Server.Service<Assent.Server.Storage.IPaymentStore>().FindAsync(created.GetProperty("paymentId").GetString()!, CancellationToken.None))!;
        Assert.True(PaymentEndpoints.Approved(view.Approval, view.Payment));
        var p = view.Payment;
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { PayTo = "0x1111111111111111111111111111111111111111" }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { AmountAtomic = "10001" }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { ValidBefore = p.ValidBefore + 1 }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { Nonce = "0x" + new string('0', 64) }));
        Assert.False(PaymentEndpoints.Approved(view.Approval, p with { Asset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" }));
    }

    [Fact]
    public void Token_amounts_convert_exactly_both_ways()
    {
        Assert.Equal("0.01", TokenAmount.ToHuman(10000, 6));
        Assert.Equal("1.50", TokenAmount.ToHuman(1500000, 6));
        Assert.Equal("0.000001", TokenAmount.ToHuman(1, 6));
        Assert.Equal("123456789.123457", TokenAmount.ToHuman(BigInteger.Parse("123456789123457"), 6));
        Assert.Equal(new BigInteger(500000), TokenAmount.FromHuman("0.5", 6));
        Assert.Null(TokenAmount.FromHuman("0.0000001", 6));
        Assert.Null(TokenAmount.FromHuman("1e3", 6));
        Assert.Null(TokenAmount.FromHuman("-1", 6));
    }
}
