using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Client;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>
/// The SDK's <c>AssentPaymentHandler</c> against this server, with the paid server a stand-in inner handler (docs/sdk.md §10,
/// docs/payments.md §1): the payment a mandate covers, the retry, and the receipt — posted while the paid answer is already
/// with the caller, or before it is returned — kept and audited. The list and a read name the mandate of each payment it approved.
/// </summary>
public sealed class PaymentHandlerTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private TestServer Server => fixture.Server;

    /// <summary>A paid server: 402 with an x402 v2 <c>PAYMENT-REQUIRED</c> until the request carries <c>PAYMENT-SIGNATURE</c>, then 200 with a receipt.</summary>
    private sealed class PaidServer(string transaction) : HttpMessageHandler
    {
        public string Receipt { get; } = Convert.ToBase64String(Encoding.UTF8.GetBytes(
            $$"""{"success":true,"transaction":"{{transaction}}","network":"eip155:84532","payer":"0x0000000000000000000000000000000000000001"}"""));

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            if (request.Headers.Contains("PAYMENT-SIGNATURE"))
            {
                var paid = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("""{"report":"sunny"}""", Encoding.UTF8, "application/json") };
                paid.Headers.TryAddWithoutValidation("PAYMENT-RESPONSE", Receipt);
                return Task.FromResult(paid);
            }
            var required = new HttpResponseMessage(HttpStatusCode.PaymentRequired) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            required.Headers.TryAddWithoutValidation("PAYMENT-REQUIRED", PaymentTests.V2Header());
            return Task.FromResult(required);
        }
    }

    private AssentClientOptions Options(TestAgent agent) => new()
    {
        Server = Server.BaseUri, ClientId = agent.ClientId, ClientSecret = agent.ClientSecret, MaxWait = TimeSpan.FromSeconds(5),
    };

    private async Task<JsonElement> ReadAsync(TestAgent agent, string path)
    {
        using var get = new HttpRequestMessage(HttpMethod.Get, path);
        get.Headers.Authorization = TestServer.Basic(agent);
        using var response = await Server.Http.SendAsync(get);
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.OK, status);
        return body;
    }

    private async Task<List<string>> AuditAsync(TestDevice owner)
    {
        await Server.Store.Database.SettleAuditAsync(CancellationToken.None);
        return [.. (await Server.Store.Audit.ReadAsync(0, 100_000, owner.UserId, CancellationToken.None)).Select(e => Encoding.UTF8.GetString(e.Entry))];
    }

    [Fact]
    public async Task A_paid_answer_is_returned_before_its_receipt_is_posted_and_the_receipt_is_still_kept_and_audited()
    {
        var (owner, agent, _) = await MandatePaying.PayerAsync(Server);
        await Mandating.ApprovedAsync(Server, agent, owner, "0.05", "1.00", "none");
        var paidServer = new PaidServer("0x00000000000000000000000000000000000000000000000000000000000000b1");
        string? id = null;
        var handler = new AssentPaymentHandler(Options(agent), paidServer) { OnPaid = p => id = p.PaymentId };
        using (var http = new HttpClient(handler))
        {
            using var paid = await http.GetAsync("https://api.example/weather");
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
            Assert.Equal("sunny", JsonDocument.Parse(await paid.Content.ReadAsStringAsync()).RootElement.GetProperty("report").GetString());

            // The receipt is posted in the background; once posted, the payment is paid with it.
            await handler.ReceiptsPostedAsync();
            var payment = await ReadAsync(agent, $"/v1/payments/{id}");
            Assert.Equal("paid", payment.GetProperty("status").GetString());
            Assert.Equal(paidServer.Receipt, payment.GetProperty("receipt").GetString());
        }
        Assert.Contains(await AuditAsync(owner), e => e.Contains(PaymentAuditTypes.PaymentReceipt, StringComparison.Ordinal) &&
            e.Contains(id!, StringComparison.Ordinal) && e.Contains("00b1", StringComparison.Ordinal));

        // Disposing the handler waits for a receipt still being posted: nothing is lost by not waiting for it.
        string? second = null;
        using (var http = new HttpClient(new AssentPaymentHandler(Options(agent), new PaidServer("0x" + new string('0', 62) + "b2")) { OnPaid = p => second = p.PaymentId }))
        {
            using var paid = await http.GetAsync("https://api.example/weather");
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        }
        Assert.Equal("paid", (await ReadAsync(agent, $"/v1/payments/{second}")).GetProperty("status").GetString());
        Assert.Contains(await AuditAsync(owner), e => e.Contains(PaymentAuditTypes.PaymentReceipt, StringComparison.Ordinal) &&
            e.Contains(second!, StringComparison.Ordinal) && e.Contains("00b2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_WaitForReceipt_the_paid_answer_is_returned_once_its_receipt_is_kept()
    {
        var (owner, agent, _) = await MandatePaying.PayerAsync(Server);
        await Mandating.ApprovedAsync(Server, agent, owner, "0.05", "1.00", "none");
        string? id = null;
        using var http = new HttpClient(new AssentPaymentHandler(Options(agent), new PaidServer("0x" + new string('0', 62) + "c1"))
        {
            WaitForReceipt = true, OnPaid = p => id = p.PaymentId,
        });

        using var paid = await http.GetAsync("https://api.example/weather");

        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        Assert.Equal("paid", (await ReadAsync(agent, $"/v1/payments/{id}")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task The_list_and_a_read_name_the_mandate_of_each_payment_it_approved_and_no_other()
    {
        var (owner, agent, _) = await MandatePaying.PayerAsync(Server);
        var mandate = await Mandating.ApprovedAsync(Server, agent, owner, "0.05", "0.10", "none", [MandatePaying.Seller]);
        // Signed in first: signing in approves the one pending request there is.
        var access = (await Session.SignInAsync(Server, owner)).GetProperty("access_token").GetString()!;
        var (_, first) = await MandatePaying.PayAsync(Server, agent, "10000");
        // Over the per-payment limit: the owner approves it on the device, no mandate involved.
        var (_, human) = await MandatePaying.PayAsync(Server, agent, "60000");
        Assert.Equal("pending", human.GetProperty("status").GetString());
        using (var decided = await owner.DecideOnlyPendingAsync("approve"))
        {
            Assert.True(decided.IsSuccessStatusCode);
        }
        var (_, second) = await MandatePaying.PayAsync(Server, agent, "20000");
        var (_, pending) = await MandatePaying.PayAsync(Server, agent, "70000");
        Assert.True(MandatePaying.Covered(first) && MandatePaying.Covered(second), $"{first} {second}");
        string Id(JsonElement p) => p.GetProperty("paymentId").GetString()!;
        var expected = new Dictionary<string, (string Charged, string Remaining)?>
        {
            [Id(first)] = ("0.01", "0.09"), [Id(human)] = null, [Id(second)] = ("0.02", "0.07"), [Id(pending)] = null,
        };

        void Check(JsonElement p)
        {
            var want = expected[Id(p)];
            if (want is { } w)
            {
                Assert.True(p.TryGetProperty("mandate", out var m), p.ToString());
                Assert.Equal(mandate, m.GetProperty("id").GetString());
                Assert.Equal(w.Charged, m.GetProperty("charged").GetString());
                Assert.Equal(w.Remaining, m.GetProperty("remaining").GetString());
            }
            else
            {
                Assert.False(p.TryGetProperty("mandate", out _), p.ToString());
            }
        }

        // The agent's list, and the owner's (session token): every payment, each with its own mandate or none.
        var listed = (await ReadAsync(agent, "/v1/payments")).GetProperty("payments").EnumerateArray().ToList();
        Assert.Equal(expected.Keys.Order(), listed.Select(Id).Order());
        listed.ForEach(Check);
        Assert.Equal("approved", listed.Single(p => Id(p) == Id(human)).GetProperty("status").GetString());
        using var mine = new HttpRequestMessage(HttpMethod.Get, "/v1/payments");
        mine.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        using var answer = await Server.Http.SendAsync(mine);
        var (status, owners) = await TestServer.ReadAsync(answer);
        Assert.Equal(HttpStatusCode.OK, status);
        var ownersList = owners.GetProperty("payments").EnumerateArray().ToList();
        Assert.Equal(expected.Keys.Order(), ownersList.Select(Id).Order());
        ownersList.ForEach(Check);

        // A read of each, long after the covering answer, names the same.
        foreach (var id in expected.Keys)
        {
            Check(await ReadAsync(agent, $"/v1/payments/{id}"));
        }
    }
}
