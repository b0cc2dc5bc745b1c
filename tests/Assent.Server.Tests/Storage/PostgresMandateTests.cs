using System.Text.Json;
using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Tests.Storage;

/// <summary>
/// One mandate spent from two PostgreSQL nodes at once (docs/policies.md §6, docs/storage.md §5): the budget is spent in
/// the approval's own transaction, so no interleaving overspends it, and a revocation stops it at its commit.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresMandateTests(PostgresCluster cluster)
{
    private static async Task<(TestServer A, TestServer B)> TwoNodesAsync(PostgresCluster cluster)
    {
        var database = await cluster.CreateDatabaseAsync();
        var shared = Directory.CreateTempSubdirectory("assent-nodes-").FullName;
        // Requests a mandate does not cover wait for a human; a high cap keeps them from being refused meanwhile.
        var a = await TestServer.StartAsync(shared, configure: o => { o.Database = database; o.Limits.MaxPendingPerAgentPerUser = 1000; });
        var b = await TestServer.StartAsync(shared, configure: o => { o.Database = database; o.Limits.MaxPendingPerAgentPerUser = 1000; });
        return (a, b);
    }

    private static decimal Remaining(JsonElement claims) =>
        decimal.Parse(claims.GetProperty("mandate").GetProperty("remaining").GetString()!, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Two_hundred_payments_racing_on_two_nodes_never_overspend_and_exactly_those_that_fit_are_approved()
    {
        var (a, b) = await TwoNodesAsync(cluster);
        await using var _ = a;
        await using var __ = b;
        var owner = await a.UserWithDeviceAsync();

        // Equal payments: exactly total / amount of them fit.
        var even = await a.AgentAsync(owner.Handle);
        var evenId = await Mandating.ApprovedAsync(a, even, owner, "1.00", "150.00", "none");
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Mandating.PayAsync(i % 2 == 0 ? a : b, even, "1.00")));
        Assert.Equal(150, results.Count(r => r is not null));
        Assert.Equal(0m, results.Where(r => r is not null).Min(r => Remaining(r!.Value)));
        var stored = (await a.Service<MandateBook>().ShowAsync(evenId, owner.UserId, CancellationToken.None))!.Value;
        Assert.Equal(150, stored.Row.Mandate.Payments);
        Assert.Equal(15_000, stored.Row.Mandate.Spent);
        Assert.Equal(150, stored.Payments.Count);
        // Each payment's audit entry states what its window had left as it committed: 149.00 down to 0.00, each once.
        await a.Store.Database.SettleAuditAsync(CancellationToken.None);
        var remainders = (await a.Store.Audit.ReadAsync(0, 100_000, owner.UserId, CancellationToken.None))
            .Select(e => JsonDocument.Parse(e.Entry).RootElement)
            .Where(e => e.GetProperty("type").GetString() == AuditTypes.ApprovalApprovedByMandate)
            .Select(e => e.GetProperty("data").GetProperty("remaining").GetString()!)
            .Order().ToList();
        Assert.Equal(Enumerable.Range(0, 150).Select(n => MinorUnits.Format(n * 100, "USD")).Order().ToList(), remainders);

        // Uneven payments: the approved sum never exceeds the total, the store agrees with the tokens, and every payment
        // refused was refused because it no longer fitted: it is larger than what is left at the end.
        var other = await a.UserWithDeviceAsync();
        var uneven = await a.AgentAsync(other.Handle);
        var unevenId = await Mandating.ApprovedAsync(a, uneven, other, "3.00", "100.00", "none");
        var random = new Random(14);
        var amounts = Enumerable.Range(0, 200).Select(_ => MinorUnits.Format(random.Next(1, 301), "USD")).ToArray();
        var paid = await Task.WhenAll(amounts.Select((amount, i) => Mandating.PayAsync(i % 2 == 0 ? a : b, uneven, amount)));
        var approvedSum = amounts.Where((_, i) => paid[i] is not null).Sum(x => decimal.Parse(x, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(approvedSum <= 100m, $"approved {approvedSum} of 100.00");
        var after = (await a.Service<MandateBook>().ShowAsync(unevenId, other.UserId, CancellationToken.None))!.Value.Row.Mandate;
        Assert.Equal(approvedSum * 100, after.Spent);
        var left = 100m - approvedSum;
        Assert.All(amounts.Where((_, i) => paid[i] is null), x => Assert.True(decimal.Parse(x, System.Globalization.CultureInfo.InvariantCulture) > left,
            $"{x} was refused though {left} was left"));
        Assert.Contains(paid, p => p is null);
    }

    [Fact]
    public async Task Payments_of_v1_payments_racing_on_two_nodes_never_overspend_and_store_one_payment_row_each()
    {
        var (a, b) = await TwoNodesAsync(cluster);
        await using var _ = a;
        await using var __ = b;
        var (owner, agent, _) = await MandatePaying.PayerAsync(a);
        var id = await Mandating.ApprovedAsync(a, agent, owner, "0.03", "1.00", "none");
        var random = new Random(15);
        // 1 to 3 cents each, in USDC's 6 decimals.
        var cents = Enumerable.Range(0, 120).Select(_ => random.Next(1, 4)).ToArray();

        var answers = await Task.WhenAll(cents.Select((c, i) => MandatePaying.PayAsync(i % 2 == 0 ? a : b, agent, (c * 10_000).ToString())));

        Assert.All(answers, x => Assert.Equal(System.Net.HttpStatusCode.Created, x.Status));
        var covered = cents.Where((_, i) => MandatePaying.Covered(answers[i].Body)).ToArray();
        Assert.True(covered.Sum() <= 100, $"approved {covered.Sum()} cents of 100");
        var stored = (await a.Service<MandateBook>().ShowAsync(id, owner.UserId, CancellationToken.None))!.Value;
        Assert.Equal(covered.Sum(), stored.Row.Mandate.Spent);
        Assert.Equal(covered.Length, stored.Payments.Count);
        var left = 100 - covered.Sum();
        Assert.All(cents.Where((_, i) => !MandatePaying.Covered(answers[i].Body)), c => Assert.True(c > left, $"{c} cents was refused though {left} were left"));
        // Each covered payment is a stored, approved payment: one row of payments per row of mandate_payments.
        var listed = await a.Store.Payments.ListAsync(agent.ClientId, null, 200, CancellationToken.None);
        Assert.Equal(covered.Length, listed.Count(p => p.Approval.State is ApprovalState.Approved or ApprovalState.Redeemed));
    }

    [Fact]
    public async Task A_mandate_revoked_while_payments_race_on_two_nodes_approves_none_after_the_revocation_commits()
    {
        var (a, b) = await TwoNodesAsync(cluster);
        await using var _ = a;
        await using var __ = b;
        var owner = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(owner.Handle);
        var id = await Mandating.ApprovedAsync(a, agent, owner, "1.00", "100000.00", "none");

        using var stop = new CancellationTokenSource();
        var startedAfterRevocation = 0L;
        var revokedAt = long.MaxValue;
        var coveredAfter = 0;
        async Task PayUntilStoppedAsync(TestServer node)
        {
            while (!stop.IsCancellationRequested)
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var covered = await Mandating.PayAsync(node, agent, "0.01") is not null;
                if (started > Interlocked.Read(ref revokedAt))
                {
                    Interlocked.Increment(ref startedAfterRevocation);
                    if (covered)
                    {
                        Interlocked.Increment(ref coveredAfter);
                    }
                }
            }
        }
        var racers = Enumerable.Range(0, 8).Select(i => Task.Run(() => PayUntilStoppedAsync(i % 2 == 0 ? a : b))).ToArray();
        var book = a.Service<MandateBook>();
        while ((await book.ShowAsync(id, owner.UserId, CancellationToken.None))!.Value.Row.Mandate.Payments < 40)
        {
            await Task.Delay(10);
        }

        Assert.True(await b.Service<MandateBook>().RevokeAsync(id, owner.UserId, owner.DeviceId, CancellationToken.None));
        Interlocked.Exchange(ref revokedAt, System.Diagnostics.Stopwatch.GetTimestamp());
        var atRevocation = (await book.ShowAsync(id, owner.UserId, CancellationToken.None))!.Value.Row.Mandate.Payments;
        while (Interlocked.Read(ref startedAfterRevocation) < 40)
        {
            await Task.Delay(10);
        }
        await stop.CancelAsync();
        await Task.WhenAll(racers);

        Assert.Equal(0, coveredAfter);
        Assert.Equal(atRevocation, (await book.ShowAsync(id, owner.UserId, CancellationToken.None))!.Value.Row.Mandate.Payments);
    }

    [Fact]
    public async Task A_covered_payment_fans_out_its_approval_and_spending_once_and_the_last_one_the_exhaustion()
    {
        // On PostgreSQL a covered payment of a polling agent is one statement (docs/storage.md §5) whose outbox inserts are
        // guarded by the spend and, for mandate.exhausted, by the budget reaching zero (docs/storage.md §9).
        var database = await cluster.CreateDatabaseAsync();
        await using var server = await TestServer.StartAsync(configure: o => o.Database = database);
        var owner = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(owner.Handle);
        var now = server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await server.Store.Webhooks.CreateEndpointAsync(new WebhookEndpointRecord("whk_pg", owner.UserId, "https://hooks.example/pg", "*", new byte[32], now, 0,
            null, null, null, null, null), ["*"], new AuditEvent(AuditTypes.WebhookCreated, owner.UserId, owner.UserId, "whk_pg"), CancellationToken.None);
        var mandateId = await Mandating.ApprovedAsync(server, agent, owner, "1.00", "2.00", "none");

        Assert.NotNull(await Mandating.PayAsync(server, agent, "1.00"));
        var first = await server.Store.Webhooks.ListDeliveriesAsync("whk_pg", long.MaxValue, 100, CancellationToken.None);
        Assert.DoesNotContain(first, d => d.Type == EventTypes.MandateExhausted);
        Assert.NotNull(await Mandating.PayAsync(server, agent, "1.00"));
        Assert.Null(await Mandating.PayAsync(server, agent, "1.00"));

        var deliveries = await server.Store.Webhooks.ListDeliveriesAsync("whk_pg", long.MaxValue, 100, CancellationToken.None);
        Assert.Equal(deliveries.Count, deliveries.Select(d => d.EventId).Distinct().Count());
        var spent = deliveries.Where(d => d.Type == EventTypes.MandateSpent).Select(d => d.Subject).ToList();
        Assert.Equal(2, spent.Distinct().Count());
        Assert.Equal(2, spent.Count);
        // Each covered payment's request was approved without a human, and announced as such once.
        Assert.All(spent, payment => Assert.Single(deliveries, d => d.Type == EventTypes.ApprovalApproved && d.Subject == payment));
        Assert.Single(deliveries, d => d.Type == EventTypes.MandateExhausted && d.Subject == mandateId);
    }

    [Fact]
    public async Task A_node_that_paid_while_nobody_listened_fans_out_its_next_payment_to_a_webhook_another_node_created()
    {
        // While nobody listens a covered payment is made without its fan-outs, and only while the statement's own snapshot
        // sees nobody listening (docs/storage.md §9): a webhook another node created reaches this node's next payment.
        var (a, b) = await TwoNodesAsync(cluster);
        await using var _ = a;
        await using var __ = b;
        var owner = await a.UserWithDeviceAsync();
        var agent = await a.AgentAsync(owner.Handle);
        var mandateId = await Mandating.ApprovedAsync(a, agent, owner, "1.00", "3.00", "none");
        var silent = await Mandating.PayAsync(a, agent, "1.00");
        Assert.Equal(2.00m, Remaining(silent!.Value));

        var now = b.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await b.Store.Webhooks.CreateEndpointAsync(new WebhookEndpointRecord("whk_b", owner.UserId, "https://hooks.example/b", "*", new byte[32], now, 0,
            null, null, null, null, null), ["*"], new AuditEvent(AuditTypes.WebhookCreated, owner.UserId, owner.UserId, "whk_b"), CancellationToken.None);
        var heard = await Mandating.PayAsync(a, agent, "1.00");
        Assert.Equal(1.00m, Remaining(heard!.Value));
        var deliveries = await b.Store.Webhooks.ListDeliveriesAsync("whk_b", long.MaxValue, 100, CancellationToken.None);
        var spent = Assert.Single(deliveries, d => d.Type == EventTypes.MandateSpent);
        Assert.Single(deliveries, d => d.Type == EventTypes.ApprovalApproved && d.Subject == spent.Subject);

        // Once nobody listens again, the last payment is made (and stored) all the same, announced to nobody.
        Assert.True(await b.Store.Webhooks.TryDeleteEndpointAsync("whk_b", owner.UserId, now,
            new AuditEvent(AuditTypes.WebhookDeleted, owner.UserId, owner.UserId, "whk_b"), CancellationToken.None));
        Assert.Equal(0.00m, Remaining((await Mandating.PayAsync(a, agent, "1.00"))!.Value));
        Assert.Null(await Mandating.PayAsync(b, agent, "0.50"));
        Assert.Equal(2, (await b.Store.Webhooks.ListDeliveriesAsync("whk_b", long.MaxValue, 100, CancellationToken.None)).Count);
        var stored = (await a.Service<MandateBook>().ShowAsync(mandateId, owner.UserId, CancellationToken.None))!.Value;
        Assert.Equal(3, stored.Row.Mandate.Payments);
        Assert.Equal(3, stored.Payments.Count);
    }
}
