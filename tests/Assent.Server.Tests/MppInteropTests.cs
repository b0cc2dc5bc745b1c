using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Assent.Client;
using Assent.Protocol.Approvals;
using Assent.Server.Payments;

namespace Assent.Server.Tests;

/// <summary>A server of its own for the MPP interop tests: they point its Stripe settings at each run's Stripe stand-in.</summary>
public sealed class MppInteropServer : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// MPP payments against the protocol authors' own server (tests/interop/mpp/mpp-servers.mjs): mppx's <c>evm</c> and
/// <c>stripe</c> charge methods verify what Assent sends, unchanged; only the chain (a USDC model behind viem's custom
/// transport) and Stripe's API (a stand-in the official <c>stripe</c> package talks to) are replaced.
/// </summary>
public sealed class MppInteropTests(MppInteropServer fixture) : IClassFixture<MppInteropServer>
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(90);
    private const string Seller = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    // The stand-in's keys (mpp-servers.mjs): the operator's test key and saved card, which mint tokens.
    private const string OperatorKey = "sk_test_assent_operator";
    private const string OperatorCard = "pm_card_visa";

    private TestServer Server => fixture.Server;

    private sealed record Payer(TestDevice Device, TestAgent Agent, string Wallet);

    private sealed class Run(NodeScript node, HttpClient paid) : IAsyncDisposable
    {
        public HttpClient Paid => paid;

        public async ValueTask DisposeAsync()
        {
            paid.Dispose();
            await node.DisposeAsync();
        }
    }

    /// <summary>Starts mppx with its stand-ins and points this server's Stripe settings at the stand-in.</summary>
    private async Task<Run> StartAsync(CancellationToken ct)
    {
        await MppPackages.EnsureAsync(ct);
        var node = await NodeScript.StartAsync(Path.Combine("mpp", "mpp-servers.mjs"), [], ct);
        var port = await node.ExpectAsync("READY ", ct);
        var stripe = Server.Service<PaymentOptions>().Stripe;
        stripe.ApiBase = new Uri($"http://127.0.0.1:{port}");
        stripe.SecretKey = OperatorKey;
        stripe.PaymentMethod = OperatorCard;
        return new Run(node, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") });
    }

    private async Task<Payer> PayerAsync(HttpClient world)
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var access = (await Session.SignInAsync(Server, device)).GetProperty("access_token").GetString()!;
        using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet");
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        using var created = await Server.Http.SendAsync(create);
        var wallet = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("address").GetString()!;
        using var mint = await world.PostAsync($"/_chain/mint?address={wallet}&amount=1000000", null);
        mint.EnsureSuccessStatusCode();
        return new Payer(device, agent, wallet);
    }

    private AssentClientOptions Options(Payer payer) => new()
    {
        Server = Server.BaseUri, ClientId = payer.Agent.ClientId, ClientSecret = payer.Agent.ClientSecret, MaxWait = TimeSpan.FromSeconds(5),
    };

    private static async Task<BigInteger> BalanceAsync(HttpClient world, string address) =>
        BigInteger.Parse(JsonDocument.Parse(await world.GetStringAsync($"/_chain/balance?address={address}")).RootElement.GetProperty("balance").GetString()!);

    private static async Task<JsonElement> JsonAsync(HttpClient world, string path) => JsonDocument.Parse(await world.GetStringAsync(path)).RootElement.Clone();

    /// <summary>Approves (or denies) the one payment pending for the device as soon as it is asked; returns what the approver saw.</summary>
    private static async Task<JsonElement> DecideWhenAskedAsync(TestDevice device, string decision, CancellationToken ct)
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

    /// <summary>Asks Assent to pay a fresh 402 of <paramref name="path"/> and approves it: the credential header (name, value) and what the approver saw.</summary>
    private async Task<(string Name, string Value, JsonElement Seen)> ApprovedCredentialAsync(HttpClient world, Payer payer, string path, CancellationToken ct)
    {
        using var unpaid = await world.GetAsync(path, ct);
        Assert.Equal(HttpStatusCode.PaymentRequired, unpaid.StatusCode);
        using var ask = new HttpRequestMessage(HttpMethod.Post, "/v1/payments")
        {
            Content = TestDevice.JsonBody(new
            {
                url = new Uri(world.BaseAddress!, path).AbsoluteUri, status = 402,
                headers = new Dictionary<string, string> { ["WWW-Authenticate"] = string.Join(", ", unpaid.Headers.NonValidated["WWW-Authenticate"]) },
            }),
        };
        ask.Headers.Authorization = TestServer.Basic(payer.Agent);
        var approval = DecideWhenAskedAsync(payer.Device, Decisions.Approve, ct);
        using var asked = await Server.Http.SendAsync(ask, ct);
        Assert.Equal(HttpStatusCode.Created, asked.StatusCode);
        var seen = await approval;
        var id = JsonDocument.Parse(await asked.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("paymentId").GetString()!;
        using var get = new HttpRequestMessage(HttpMethod.Get, $"/v1/payments/{id}");
        get.Headers.Authorization = TestServer.Basic(payer.Agent);
        using var read = await Server.Http.SendAsync(get, ct);
        var header = JsonDocument.Parse(await read.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("header");
        return (header.GetProperty("name").GetString()!, header.GetProperty("value").GetString()!, seen);
    }

    private static async Task<HttpStatusCode> SendWithAsync(HttpClient world, string path, string name, string value, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation(name, value);
        using var response = await world.SendAsync(request, ct);
        return response.StatusCode;
    }

    [Fact]
    public async Task The_mppx_server_accepts_an_evm_charge_the_owner_approved_and_settles_it_on_the_chain()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var run = await StartAsync(cts.Token);
        var payer = await PayerAsync(run.Paid);
        string? paymentId = null, sentHeader = null;
        var handler = new AssentPaymentHandler(Options(payer)) { MaxAmount = "0.05", OnPaid = p => (paymentId, sentHeader) = (p.PaymentId, p.Header!.Name) };
        using var http = new HttpClient(handler)
        {
            BaseAddress = run.Paid.BaseAddress,
        };
        var approval = DecideWhenAskedAsync(payer.Device, Decisions.Approve, cts.Token);
        using var paid = await http.GetAsync("/mpp/evm/weather", cts.Token);
        var seen = await approval;

        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        Assert.Equal("evm", JsonDocument.Parse(await paid.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("method").GetString());
        // The 402 offered x402 v2 too (mppx's compatibility header); MPP is preferred by default.
        Assert.Equal("Authorization", sentHeader);
        Assert.Equal("mpp", seen.GetProperty("protocol").GetString());
        Assert.Equal("evm", seen.GetProperty("method").GetString());
        Assert.Equal("0.01", seen.GetProperty("amount").GetString());
        Assert.Equal("USDC", seen.GetProperty("currency").GetString());
        Assert.Equal(Seller, seen.GetProperty("pay_to").GetString());
        Assert.Equal("Weather report", seen.GetProperty("description").GetString());
        Assert.Equal(990000, await BalanceAsync(run.Paid, payer.Wallet));
        var transfer = Assert.Single((await JsonAsync(run.Paid, "/_chain/transfers")).EnumerateArray());
        // The nonce on chain is the one the approver saw (the challenge hash).
        Assert.Equal(seen.GetProperty("nonce").GetString(), transfer.GetProperty("nonce").GetString());

        // The receipt is posted back while the paid answer is already here (docs/sdk.md §10).
        await handler.ReceiptsPostedAsync(cts.Token);
        using var get = new HttpRequestMessage(HttpMethod.Get, $"/v1/payments/{paymentId}");
        get.Headers.Authorization = TestServer.Basic(payer.Agent);
        using var read = await Server.Http.SendAsync(get, cts.Token);
        var payment = JsonDocument.Parse(await read.Content.ReadAsStringAsync(cts.Token)).RootElement;
        Assert.Equal("paid", payment.GetProperty("status").GetString());
        Assert.Equal("mpp", payment.GetProperty("protocol").GetString());
        var audit = (await Server.Store.Audit.ReadAsync(0, 1000, payer.Device.UserId, CancellationToken.None)).Select(r => JsonDocument.Parse(r.Entry).RootElement).ToList();
        Assert.Contains(audit, e => e.GetProperty("type").GetString() == "payment.signed");
        var receipt = Assert.Single(audit, e => e.GetProperty("type").GetString() == "payment.receipt");
        Assert.Contains("Payment-Receipt", receipt.GetRawText());
        Assert.Contains("evm", receipt.GetRawText());
    }

    [Fact]
    public async Task The_mppx_server_accepts_a_stripe_charge_paid_with_a_token_limited_to_what_was_approved()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var run = await StartAsync(cts.Token);
        var payer = await PayerAsync(run.Paid);
        var handler = new AssentPaymentHandler(Options(payer)) { MaxAmount = "1.00" };
        using var http = new HttpClient(handler) { BaseAddress = run.Paid.BaseAddress };
        var approval = DecideWhenAskedAsync(payer.Device, Decisions.Approve, cts.Token);
        using var paid = await http.GetAsync("/mpp/stripe/weather", cts.Token);
        var seen = await approval;

        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        Assert.Equal("stripe", JsonDocument.Parse(await paid.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("method").GetString());
        Assert.Equal("mpp", seen.GetProperty("protocol").GetString());
        Assert.Equal("stripe", seen.GetProperty("method").GetString());
        Assert.Equal("0.50", seen.GetProperty("amount").GetString());
        Assert.Equal("USD", seen.GetProperty("currency").GetString());
        Assert.Equal("profile_seller", seen.GetProperty("pay_to").GetString());
        // The token was minted on the operator's card for exactly the approved amount, currency, seller and validity.
        var token = Assert.Single((await JsonAsync(run.Paid, "/_stripe/tokens")).EnumerateArray());
        Assert.Equal(OperatorCard, token.GetProperty("payment_method").GetString());
        Assert.Equal("usd", token.GetProperty("usage_limits").GetProperty("currency").GetString());
        Assert.Equal(50, token.GetProperty("usage_limits").GetProperty("max_amount").GetInt64());
        Assert.Equal(seen.GetProperty("valid_before").GetInt64(), token.GetProperty("usage_limits").GetProperty("expires_at").GetInt64());
        Assert.Equal("profile_seller", token.GetProperty("seller_details").GetProperty("network_id").GetString());
        var intent = Assert.Single((await JsonAsync(run.Paid, "/_stripe/payment_intents")).EnumerateArray());
        Assert.Equal(50, intent.GetProperty("amount").GetInt64());
        Assert.Equal(token.GetProperty("id").GetString(), intent.GetProperty("shared_payment_granted_token").GetString());
        // A Stripe charge needs no wallet balance: the chain saw nothing.
        Assert.Equal(1000000, await BalanceAsync(run.Paid, payer.Wallet));
        await handler.ReceiptsPostedAsync(cts.Token);
        var audit = (await Server.Store.Audit.ReadAsync(0, 1000, payer.Device.UserId, CancellationToken.None)).Select(r => Encoding.UTF8.GetString(r.Entry)).ToList();
        Assert.Contains(audit, e => e.Contains("payment.signed", StringComparison.Ordinal) && e.Contains("spt_sha256", StringComparison.Ordinal));
        Assert.Contains(audit, e => e.Contains("payment.receipt", StringComparison.Ordinal) && e.Contains(intent.GetProperty("id").GetString()!, StringComparison.Ordinal));
    }

    /// <summary>
    /// One approved evm credential, sent by hand: mppx refuses it for another payee or price, accepts it once, refuses it
    /// replayed (the chain refuses the nonce); a second one is refused once the challenge has expired.
    /// </summary>
    [Fact]
    public async Task The_mppx_server_refuses_evm_credentials_misdirected_repriced_replayed_or_expired()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var run = await StartAsync(cts.Token);
        var payer = await PayerAsync(run.Paid);
        var (name, value, _) = await ApprovedCredentialAsync(run.Paid, payer, "/mpp/evm/weather", cts.Token);

        Assert.Equal(HttpStatusCode.PaymentRequired, await SendWithAsync(run.Paid, "/mpp/evm/other-payee", name, value, cts.Token));
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendWithAsync(run.Paid, "/mpp/evm/dearer", name, value, cts.Token));
        Assert.Equal(1000000, await BalanceAsync(run.Paid, payer.Wallet));
        Assert.Equal(HttpStatusCode.OK, await SendWithAsync(run.Paid, "/mpp/evm/weather", name, value, cts.Token));
        Assert.Equal(990000, await BalanceAsync(run.Paid, payer.Wallet));
        Assert.NotEqual(HttpStatusCode.OK, await SendWithAsync(run.Paid, "/mpp/evm/weather", name, value, cts.Token));
        Assert.Equal(990000, await BalanceAsync(run.Paid, payer.Wallet));

        var (name2, value2, _) = await ApprovedCredentialAsync(run.Paid, payer, "/mpp/evm/weather", cts.Token);
        using var later = await run.Paid.PostAsync("/_time/advance?seconds=900", null, cts.Token);
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendWithAsync(run.Paid, "/mpp/evm/weather", name2, value2, cts.Token));
        Assert.Equal(990000, await BalanceAsync(run.Paid, payer.Wallet));
    }

    [Fact]
    public async Task The_mppx_server_refuses_stripe_credentials_for_another_seller_or_price_replayed_or_expired()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var run = await StartAsync(cts.Token);
        var payer = await PayerAsync(run.Paid);
        var (name, value, _) = await ApprovedCredentialAsync(run.Paid, payer, "/mpp/stripe/weather", cts.Token);

        Assert.Equal(HttpStatusCode.PaymentRequired, await SendWithAsync(run.Paid, "/mpp/stripe/other-seller", name, value, cts.Token));
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendWithAsync(run.Paid, "/mpp/stripe/dearer", name, value, cts.Token));
        Assert.Empty((await JsonAsync(run.Paid, "/_stripe/payment_intents")).EnumerateArray());
        Assert.Equal(HttpStatusCode.OK, await SendWithAsync(run.Paid, "/mpp/stripe/weather", name, value, cts.Token));
        Assert.NotEqual(HttpStatusCode.OK, await SendWithAsync(run.Paid, "/mpp/stripe/weather", name, value, cts.Token));
        Assert.Single((await JsonAsync(run.Paid, "/_stripe/payment_intents")).EnumerateArray());

        var (name2, value2, _) = await ApprovedCredentialAsync(run.Paid, payer, "/mpp/stripe/weather", cts.Token);
        using var later = await run.Paid.PostAsync("/_time/advance?seconds=900", null, cts.Token);
        Assert.Equal(HttpStatusCode.PaymentRequired, await SendWithAsync(run.Paid, "/mpp/stripe/weather", name2, value2, cts.Token));
        Assert.Single((await JsonAsync(run.Paid, "/_stripe/payment_intents")).EnumerateArray());
    }

    [Theory]
    [InlineData("/mpp/evm/weather", "0.005", "0.01 USDC")]
    [InlineData("/mpp/stripe/weather", "0.40", "0.50 USD")]
    [InlineData("/mpp/both", "0.005", "0.01 USDC (Base Sepolia) or 0.50 USD (Stripe)")]
    public async Task Over_the_maximum_nothing_is_asked_signed_or_minted(string path, string max, string asked)
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var run = await StartAsync(cts.Token);
        var payer = await PayerAsync(run.Paid);
        using var http = new HttpClient(new AssentPaymentHandler(Options(payer)) { MaxAmount = max }) { BaseAddress = run.Paid.BaseAddress };
        var e = await Assert.ThrowsAsync<AssentPaymentException>(() => http.GetAsync(path, cts.Token));
        Assert.Equal(PaymentOutcome.Refused, e.Outcome);
        Assert.Contains(asked, e.Message);
        Assert.Empty(await payer.Device.PendingAsync());
        Assert.Empty((await JsonAsync(run.Paid, "/_stripe/tokens")).EnumerateArray());
        Assert.Empty((await JsonAsync(run.Paid, "/_chain/transfers")).EnumerateArray());
    }

    [Fact]
    public async Task A_denied_stripe_charge_mints_nothing_and_the_handler_says_denied()
    {
        using var cts = new CancellationTokenSource(Budget);
        await using var run = await StartAsync(cts.Token);
        var payer = await PayerAsync(run.Paid);
        using var http = new HttpClient(new AssentPaymentHandler(Options(payer))) { BaseAddress = run.Paid.BaseAddress };
        var denial = DecideWhenAskedAsync(payer.Device, Decisions.Deny, cts.Token);
        var e = await Assert.ThrowsAsync<AssentPaymentException>(() => http.GetAsync("/mpp/stripe/weather", cts.Token));
        await denial;
        Assert.Equal(PaymentOutcome.Denied, e.Outcome);
        Assert.Empty((await JsonAsync(run.Paid, "/_stripe/tokens")).EnumerateArray());
    }
}

/// <summary>The MPP interop packages (tests/interop/mpp, apart from the others: mppx wants a viem older than theirs), installed from the committed lockfile once.</summary>
internal static class MppPackages
{
    private static readonly SemaphoreSlim Lock = new(1, 1);

    public static async Task EnsureAsync(CancellationToken ct)
    {
        var directory = Path.Combine(NodeScript.InteropDirectory, "mpp");
        await Lock.WaitAsync(ct);
        try
        {
            var manifest = Path.Combine(directory, "node_modules", "mppx", "package.json");
            if (File.Exists(manifest) && JsonDocument.Parse(await File.ReadAllTextAsync(manifest, ct)).RootElement.GetProperty("version").GetString() == "0.11.0")
            {
                return;
            }
            var info = new ProcessStartInfo("npm") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "ci", "--no-audit", "--no-fund" })
            {
                info.ArgumentList.Add(arg);
            }
            using var npm = Process.Start(info)!;
            var stdout = npm.StandardOutput.ReadToEndAsync(ct);
            var stderr = npm.StandardError.ReadToEndAsync(ct);
            await npm.WaitForExitAsync(ct);
            Assert.True(npm.ExitCode == 0, $"npm ci in {directory} failed ({npm.ExitCode}):\n{await stdout}\n{await stderr}");
        }
        finally
        {
            Lock.Release();
        }
    }
}
