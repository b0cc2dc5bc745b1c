using System.Net;
using System.Net.Http.Headers;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Client;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests;

/// <summary>
/// Agent payments against the x402 authors' own reference servers (tests/interop/x402-servers.mjs): @x402/express with
/// @x402/core's facilitator and @x402/evm's exact scheme (v2), x402-express with x402's facilitator (v1); only the
/// chain is a stand-in, a USDC model that checks signatures, windows, nonces and balances as FiatToken does.
/// </summary>
public sealed class PaymentInteropTests(InteropServer fixture) : IClassFixture<InteropServer>
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(60);
    private static readonly BigInteger CurveOrder =
        BigInteger.Parse("0FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", System.Globalization.NumberStyles.HexNumber);
    private const string Seller = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    private TestServer Server => fixture.Server;

    private sealed record Payer(TestDevice Device, TestAgent Agent, string Wallet);

    private async Task<Payer> PayerAsync(HttpClient chain)
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var access = (await Session.SignInAsync(Server, device)).GetProperty("access_token").GetString()!;
        using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet");
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        using var created = await Server.Http.SendAsync(create);
        var wallet = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("address").GetString()!;
        using var mint = await chain.PostAsync($"/_chain/mint?address={wallet}&amount=1000000", null);
        mint.EnsureSuccessStatusCode();
        return new Payer(device, agent, wallet);
    }

    private static async Task<BigInteger> BalanceAsync(HttpClient chain, string address) =>
        BigInteger.Parse(JsonDocument.Parse(await chain.GetStringAsync($"/_chain/balance?address={address}")).RootElement.GetProperty("balance").GetString()!);

    private AssentClientOptions Options(Payer payer) => new()
    {
        Server = Server.BaseUri, ClientId = payer.Agent.ClientId, ClientSecret = payer.Agent.ClientSecret, MaxWait = TimeSpan.FromSeconds(5),
    };

    /// <summary>Approves the payment the handler asks for as soon as it is pending; returns what the approver saw.</summary>
    private static async Task<JsonElement> ApproveWhenAskedAsync(TestDevice device, string decision, CancellationToken ct)
    {
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if ((await device.PendingAsync()) is [var one])
            {
                using var decided = await device.PostDecisionAsync(one.GetProperty("id").GetString()!, decision,
                    device.SignDecision(decision, one.GetProperty("payload").GetString()!));
                Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
                return JsonDocument.Parse(Protocol.Base64Url.Decode(one.GetProperty("payload").GetString()!)).RootElement.GetProperty("authorization_details")[0].Clone();
            }
            await Task.Delay(50, ct);
        }
    }

    [Theory]
    [InlineData("/v2/weather", "x402/v2", "PAYMENT-SIGNATURE")]
    [InlineData("/v1/weather", "x402/v1", "X-PAYMENT")]
    public async Task The_reference_server_accepts_a_payment_the_owner_approved_and_settles_it_on_the_chain(string path, string protocol, string header)
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var node = await NodeScript.StartAsync("x402-servers.mjs", [], cts.Token);
        using var chain = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{await node.ExpectAsync("READY ", cts.Token)}") };
        var payer = await PayerAsync(chain);
        var sellerBefore = await BalanceAsync(chain, Seller);
        string? paymentId = null, sentHeader = null;
        var handler = new AssentPaymentHandler(Options(payer)) { MaxAmount = "0.05", OnPaid = p => (paymentId, sentHeader) = (p.PaymentId, p.Header!.Name) };
        using var http = new HttpClient(handler)
        {
            BaseAddress = chain.BaseAddress,
        };
        var approval = ApproveWhenAskedAsync(payer.Device, Decisions.Approve, cts.Token);
        using var paid = await http.GetAsync(path, cts.Token);
        var seen = await approval;

        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        Assert.Equal("sunny", JsonDocument.Parse(await paid.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("report").GetString());
        Assert.Equal(protocol, seen.GetProperty("protocol").GetString());
        Assert.Equal("0.01", seen.GetProperty("amount").GetString());
        Assert.Equal(Seller, seen.GetProperty("pay_to").GetString());
        Assert.Equal(sellerBefore + 10000, await BalanceAsync(chain, Seller));
        Assert.Equal(990000, await BalanceAsync(chain, payer.Wallet));

        // The receipt was posted back (while the paid answer was already here, docs/sdk.md §10): the payment is paid, and the
        // signature and the receipt are in the owner's audit.
        await handler.ReceiptsPostedAsync(cts.Token);
        using var get = new HttpRequestMessage(HttpMethod.Get, $"/v1/payments/{paymentId}");
        get.Headers.Authorization = TestServer.Basic(payer.Agent);
        using var read = await Server.Http.SendAsync(get, cts.Token);
        var payment = JsonDocument.Parse(await read.Content.ReadAsStringAsync(cts.Token)).RootElement;
        Assert.Equal("paid", payment.GetProperty("status").GetString());
        var audit = (await Server.Store.Audit.ReadAsync(0, 1000, payer.Device.UserId, CancellationToken.None))
            .Select(r => JsonDocument.Parse(r.Entry).RootElement.GetProperty("type").GetString()).ToList();
        Assert.Contains("payment.signed", audit);
        Assert.Contains("payment.receipt", audit);
        Assert.Equal(header, sentHeader);
    }

    [Fact]
    public async Task A_denied_payment_signs_nothing_and_the_handler_says_denied()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var node = await NodeScript.StartAsync("x402-servers.mjs", [], cts.Token);
        using var chain = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{await node.ExpectAsync("READY ", cts.Token)}") };
        var payer = await PayerAsync(chain);
        using var http = new HttpClient(new AssentPaymentHandler(Options(payer))) { BaseAddress = chain.BaseAddress };
        var denial = ApproveWhenAskedAsync(payer.Device, Decisions.Deny, cts.Token);
        var e = await Assert.ThrowsAsync<AssentPaymentException>(() => http.GetAsync("/v2/weather", cts.Token));
        await denial;
        Assert.Equal(PaymentOutcome.Denied, e.Outcome);
        Assert.Equal(1000000, await BalanceAsync(chain, payer.Wallet));
        Assert.DoesNotContain(await Server.Store.Audit.ReadAsync(0, 1000, payer.Device.UserId, CancellationToken.None),
            r => JsonDocument.Parse(r.Entry).RootElement.GetProperty("type").GetString() == "payment.signed");
    }

    [Fact]
    public async Task Over_the_maximum_the_handler_is_refused_before_anyone_is_asked()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var node = await NodeScript.StartAsync("x402-servers.mjs", [], cts.Token);
        using var chain = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{await node.ExpectAsync("READY ", cts.Token)}") };
        var payer = await PayerAsync(chain);
        using var http = new HttpClient(new AssentPaymentHandler(Options(payer)) { MaxAmount = "0.015" }) { BaseAddress = chain.BaseAddress };
        var e = await Assert.ThrowsAsync<AssentPaymentException>(() => http.GetAsync("/v2/dearer", cts.Token));
        Assert.Equal(PaymentOutcome.Refused, e.Outcome);
        Assert.Contains("0.02 USDC", e.Message);
        Assert.Empty(await payer.Device.PendingAsync());
    }

    /// <summary>
    /// One approved authorization, not sent by the handler: the reference verification refuses it altered (high s,
    /// v 0/1) or sent for another payee or price, accepts it unchanged, and refuses it replayed.
    /// </summary>
    [Fact]
    public async Task The_reference_verification_refuses_altered_misdirected_and_replayed_authorizations()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var node = await NodeScript.StartAsync("x402-servers.mjs", [], cts.Token);
        using var chain = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{await node.ExpectAsync("READY ", cts.Token)}") };
        var payer = await PayerAsync(chain);
        using var unpaid = await chain.GetAsync("/v2/weather", cts.Token);
        Assert.Equal(HttpStatusCode.PaymentRequired, unpaid.StatusCode);
        using var ask = new HttpRequestMessage(HttpMethod.Post, "/v1/payments")
        {
            Content = TestDevice.JsonBody(new
            {
                url = new Uri(chain.BaseAddress!, "/v2/weather").AbsoluteUri, status = 402,
                headers = new Dictionary<string, string> { ["PAYMENT-REQUIRED"] = unpaid.Headers.GetValues("PAYMENT-REQUIRED").Single() },
            }),
        };
        ask.Headers.Authorization = TestServer.Basic(payer.Agent);
        ask.Headers.Add("Prefer", "wait=10");
        var approval = ApproveWhenAskedAsync(payer.Device, Decisions.Approve, cts.Token);
        using var asked = await Server.Http.SendAsync(ask, cts.Token);
        await approval;
        var created = JsonDocument.Parse(await asked.Content.ReadAsStringAsync(cts.Token)).RootElement;
        if (!created.TryGetProperty("header", out var h))
        {
            using var get = new HttpRequestMessage(HttpMethod.Get, $"/v1/payments/{created.GetProperty("paymentId").GetString()}");
            get.Headers.Authorization = TestServer.Basic(payer.Agent);
            using var read = await Server.Http.SendAsync(get, cts.Token);
            h = JsonDocument.Parse(await read.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("header").Clone();
        }
        var signed = h.GetProperty("value").GetString()!;

        async Task<HttpStatusCode> SendAsync(string path, string value)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.TryAddWithoutValidation("PAYMENT-SIGNATURE", value);
            using var response = await chain.SendAsync(request, cts.Token);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.PaymentRequired, await SendAsync("/v2/weather", WithSignature(signed, HighS)));
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendAsync("/v2/weather", WithSignature(signed, RecoveryIdV)));
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendAsync("/v2/other-payee", signed));
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendAsync("/v2/dearer", signed));
        Assert.Equal(1000000, await BalanceAsync(chain, payer.Wallet));
        Assert.Equal(HttpStatusCode.OK, await SendAsync("/v2/weather", signed));
        Assert.Equal(990000, await BalanceAsync(chain, payer.Wallet));
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendAsync("/v2/weather", signed));
        Assert.Equal(990000, await BalanceAsync(chain, payer.Wallet));
    }

    /// <summary>The same signature with s replaced by n − s and v flipped: valid ECDSA for the same key, refused by USDC (EIP-2).</summary>
    private static byte[] HighS(byte[] sig)
    {
        var s = new BigInteger(sig.AsSpan(32, 32), isUnsigned: true, isBigEndian: true);
        var high = (CurveOrder - s).ToByteArray(isUnsigned: true, isBigEndian: true);
        var copy = sig.ToArray();
        Array.Clear(copy, 32, 32);
        high.CopyTo(copy, 64 - high.Length);
        copy[64] = (byte)(copy[64] == 27 ? 28 : 27);
        return copy;
    }

    /// <summary>The same signature with v as the bare recovery id (0/1), which USDC's ecrecover refuses.</summary>
    private static byte[] RecoveryIdV(byte[] sig)
    {
        var copy = sig.ToArray();
        copy[64] -= 27;
        return copy;
    }

    private static string WithSignature(string header, Func<byte[], byte[]> alter)
    {
        var payload = JsonNode.Parse(Convert.FromBase64String(header))!;
        var signature = Convert.FromHexString(payload["payload"]!["signature"]!.GetValue<string>()[2..]);
        payload["payload"]!["signature"] = "0x" + Convert.ToHexStringLower(alter(signature));
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(payload.ToJsonString()));
    }
}
