using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Assent.Server.Approvals;
using Assent.Server.Payments;
using Assent.Server.Storage;
using Nethereum.Signer.EIP712;

namespace Assent.Server.Tests;

/// <summary>What the tests of mandate-covered payments share: a payer with a wallet, and a payment posted as the agent received its 402.</summary>
internal static class MandatePaying
{
    public const string Seller = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    /// <summary>A user with a device and a wallet, and an agent of theirs that may pay; the wallet's address.</summary>
    public static async Task<(TestDevice Owner, TestAgent Agent, string Wallet)> PayerAsync(TestServer s)
    {
        var owner = await s.UserWithDeviceAsync();
        var agent = await s.AgentAsync(owner.Handle);
        var access = (await Session.SignInAsync(s, owner)).GetProperty("access_token").GetString()!;
        using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/wallet");
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        using var response = await s.Http.SendAsync(create);
        var (status, wallet) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.Created, status);
        return (owner, agent, wallet.GetProperty("address").GetString()!);
    }

    /// <summary>Posts an x402 v2 402 asking <paramref name="atomic"/> of Base Sepolia USDC (6 decimals) for <paramref name="payTo"/>.</summary>
    public static async Task<(HttpStatusCode Status, JsonElement Body)> PayAsync(TestServer s, TestAgent agent, string atomic, string payTo = Seller)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/payments")
        {
            Content = TestDevice.JsonBody(new
            {
                url = "https://api.example/weather", status = 402,
                headers = new Dictionary<string, string> { ["payment-required"] = PaymentTests.V2Header(amount: atomic, payTo: payTo) },
            }),
        };
        request.Headers.Authorization = TestServer.Basic(agent);
        using var response = await s.Http.SendAsync(request);
        return await TestServer.ReadAsync(response);
    }

    /// <summary>Whether the payment was approved by a mandate at once: approved, signed, naming the mandate.</summary>
    public static bool Covered(JsonElement payment) =>
        payment.GetProperty("status").GetString() == "approved" && payment.TryGetProperty("header", out _) && payment.TryGetProperty("mandate", out _);
}

/// <summary>
/// Payments of <c>/v1/payments</c> inside a spending mandate (docs/policies.md §6, docs/payments.md §1): approved and signed
/// at once with no human, the budget spent in the approval's own transaction; outside the mandate, an ordinary request.
/// </summary>
public sealed class PaymentMandateTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task A_payment_inside_a_mandate_is_signed_with_no_human_and_names_the_mandate_in_its_answer_and_audit()
    {
        var (owner, agent, wallet) = await MandatePaying.PayerAsync(Server);
        // The payee listed in lower case: an EVM address is the same address whatever its EIP-55 checksum case.
        var id = await Mandating.ApprovedAsync(Server, agent, owner, "0.05", "0.10", "day", [MandatePaying.Seller.ToLowerInvariant()]);

        var (status, paid) = await MandatePaying.PayAsync(Server, agent, "10000");

        Assert.Equal(HttpStatusCode.Created, status);
        Assert.True(MandatePaying.Covered(paid), paid.ToString());
        Assert.Empty(await owner.PendingAsync());
        var mandate = paid.GetProperty("mandate");
        Assert.Equal(id, mandate.GetProperty("id").GetString());
        Assert.Equal("0.01", mandate.GetProperty("charged").GetString());
        Assert.Equal("0.09", mandate.GetProperty("remaining").GetString());
        // The header is a real EIP-3009 authorization of the owner's wallet for what was asked.
        var sent = JsonDocument.Parse(Convert.FromBase64String(paid.GetProperty("header").GetProperty("value").GetString()!)).RootElement;
        var auth = sent.GetProperty("payload").GetProperty("authorization");
        Assert.Equal("10000", auth.GetProperty("value").GetString());
        var typed = Wallets.TransferWithAuthorization("USDC", "2", 84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", new Eip3009Authorization(wallet,
            MandatePaying.Seller, 10000, long.Parse(auth.GetProperty("validAfter").GetString()!), long.Parse(auth.GetProperty("validBefore").GetString()!),
            auth.GetProperty("nonce").GetString()!));
        Assert.Equal(wallet, new Eip712TypedDataSigner().RecoverFromSignatureV4(typed, sent.GetProperty("payload").GetProperty("signature").GetString()!),
            ignoreCase: true);

        // The mandate lists it with what remained; the audit names the mandate for the approval and for the signature.
        var shown = (await Server.Service<MandateBook>().ShowAsync(id, owner.UserId, CancellationToken.None))!.Value;
        var row = Assert.Single(shown.Payments);
        Assert.Equal(paid.GetProperty("paymentId").GetString(), row.ApprovalId);
        Assert.Equal(MandatePaying.Seller, row.Payee);
        await Server.Store.Database.SettleAuditAsync(CancellationToken.None);
        var audit = (await Server.Store.Audit.ReadAsync(0, 100_000, owner.UserId, CancellationToken.None))
            .Select(e => System.Text.Encoding.UTF8.GetString(e.Entry)).ToList();
        Assert.Contains(audit, e => e.Contains(AuditTypes.ApprovalApprovedByMandate, StringComparison.Ordinal) && e.Contains(id, StringComparison.Ordinal));
        Assert.Contains(audit, e => e.Contains(PaymentAuditTypes.PaymentSigned, StringComparison.Ordinal) && e.Contains(id, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Over_the_per_payment_or_the_total_or_to_another_payee_a_payment_goes_to_the_human_unsigned()
    {
        var (owner, agent, _) = await MandatePaying.PayerAsync(Server);
        await Mandating.ApprovedAsync(Server, agent, owner, "0.05", "0.10", "day", [MandatePaying.Seller]);

        var (_, over) = await MandatePaying.PayAsync(Server, agent, "50001");
        Assert.Equal("pending", over.GetProperty("status").GetString());
        Assert.False(over.TryGetProperty("header", out _));
        var (_, other) = await MandatePaying.PayAsync(Server, agent, "10000", payTo: "0x1111111111111111111111111111111111111111");
        Assert.Equal("pending", other.GetProperty("status").GetString());
        // A fraction of a cent is charged a whole cent: a mandate never lets more go than it states.
        var (_, small) = await MandatePaying.PayAsync(Server, agent, "1");
        Assert.True(MandatePaying.Covered(small), small.ToString());
        Assert.Equal("0.01", small.GetProperty("mandate").GetProperty("charged").GetString());
        Assert.Equal("0.09", small.GetProperty("mandate").GetProperty("remaining").GetString());
        var (_, first) = await MandatePaying.PayAsync(Server, agent, "50000");
        Assert.True(MandatePaying.Covered(first), first.ToString());
        Assert.Equal("0.04", first.GetProperty("mandate").GetProperty("remaining").GetString());
        var (_, beyond) = await MandatePaying.PayAsync(Server, agent, "50000");
        Assert.Equal("pending", beyond.GetProperty("status").GetString());
        Assert.False(beyond.TryGetProperty("mandate", out _));

        Assert.Equal(3, (await owner.PendingAsync()).Length);
    }

    [Fact]
    public async Task A_revoked_mandate_covers_no_payment()
    {
        var (owner, agent, _) = await MandatePaying.PayerAsync(Server);
        var id = await Mandating.ApprovedAsync(Server, agent, owner, "1.00", "5.00", "none");
        Assert.True(MandatePaying.Covered((await MandatePaying.PayAsync(Server, agent, "10000")).Body));

        Assert.True(await Server.Service<MandateBook>().RevokeAsync(id, owner.UserId, owner.DeviceId, CancellationToken.None));

        var (_, after) = await MandatePaying.PayAsync(Server, agent, "10000");
        Assert.Equal("pending", after.GetProperty("status").GetString());
        Assert.Single(await owner.PendingAsync());
    }

    [Fact]
    public async Task Payments_racing_against_one_mandate_never_overspend_it()
    {
        await using var server = await TestServer.StartAsync(configure: o => o.Limits.MaxPendingPerAgentPerUser = 1000);
        var (owner, agent, _) = await MandatePaying.PayerAsync(server);
        var id = await Mandating.ApprovedAsync(server, agent, owner, "0.01", "0.25", "none");

        var answers = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => MandatePaying.PayAsync(server, agent, "10000")));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.Created, a.Status));
        Assert.Equal(25, answers.Count(a => MandatePaying.Covered(a.Body)));
        Assert.Equal(35, answers.Count(a => a.Body.GetProperty("status").GetString() == "pending"));
        var stored = (await server.Service<MandateBook>().ShowAsync(id, owner.UserId, CancellationToken.None))!.Value;
        Assert.Equal(25, stored.Row.Mandate.Payments);
        Assert.Equal(25, stored.Row.Mandate.Spent);
        Assert.Equal(25, stored.Payments.Count);
    }
}
