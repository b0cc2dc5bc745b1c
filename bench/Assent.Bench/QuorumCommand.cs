using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Bench;

/// <summary>
/// What a quorum costs (docs/policies.md §3): the whole flow, request to token, for a request that needs 2 of 3 users'
/// CLI devices, both approving the moment it reaches them, beside the same flow with one approver, in one run on one
/// server. Each agent i has a policy: its payments over 100 USD need 2 of users i, i+1 and i+2; the devices of i and
/// i+1 approve, i+2's only watches (it hears the request and each vote, as an approver would). Both phases are open
/// loops at <c>--rate</c> (each flow timed from when it was due), so the figures compare two flows at one load rather
/// than two saturations.
/// <para>
/// Phases one after the other meet different moments of a shared machine: a stall of a few tens of milliseconds in one
/// 10 s phase moves its p99 by as much, either way (on a day with the hypervisor stealing CPU, rounds read +34 and -4 ms).
/// So a last phase runs both flows in one window, twice <c>--seconds</c> long: operation k of the open loop is a quorum
/// flow when its agent and its turn add up to an odd number, so neighbours in time alternate and each flow gets half of
/// <c>--rate</c>. Its flows are timed from when they were sent (the driver's lateness falls on both alike).
/// </para>
/// </summary>
internal static class QuorumCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var users = args.Int("users", 32, 3, 1024);
        var rate = args.Int("rate", 200, 1, 10_000);
        var measure = TimeSpan.FromSeconds(args.Int("seconds", 10, 1, 600));
        var warmup = TimeSpan.FromSeconds(args.Int("warmup", 5, 0, 600));
        // Rounds of both flows, single then quorum: the first flow measured also pays the JIT's warm-up (its p99 was 16-50 ms
        // in a first round and 5-6 ms in the next), so a comparison reads from a later round; each round is printed.
        var rounds = args.Int("rounds", 2, 1, 20);
        var serverDll = args.String("server-dll");

        var dataDirectory = Provisioning.NewDataDirectory();
        var uri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        using var http = BenchHttp.Create(uri);
        ServerProcess? server = null;
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, uri, users, ct);
            await AddPoliciesAsync(dataDirectory, uri, provisioned, ct);
            server = await ServerProcess.StartAsync(dataDirectory, uri, http, ct, null, uri, serverDll);
            Console.WriteLine($"quorum: {users} users and agents, open loop at {rate}/s, warm-up {warmup.TotalSeconds:0} s, each phase {measure.TotalSeconds:0} s, " +
                              $"server {serverDll ?? "this build"}, {Environment.ProcessorCount} cores");
            var devices = await Task.WhenAll(provisioned.Select(p => BenchDevice.EnrollAsync(http, p.InviteCode, ct)));

            using var hard = CancellationTokenSource.CreateLinkedTokenSource(ct);
            hard.CancelAfter((2 * rounds + 1) * (MandatesCommand.SettleLimit + warmup + 2 * measure) + TimeSpan.FromMinutes(2));
            using var streamsDone = CancellationTokenSource.CreateLinkedTokenSource(hard.Token);
            var ready = devices.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
            long refused = 0;
            var streams = devices.Select((device, j) => Task.Run(async () =>
            {
                // A quorum request is announced again after each vote: each device decides it once.
                var decided = new HashSet<string>(StringComparer.Ordinal);
                try
                {
                    await device.StreamAsync(async (id, payload, token) =>
                    {
                        if (!ApprovesHere(payload, j, users) || !decided.Add(id))
                        {
                            return;
                        }
                        var status = await device.PostDecisionAsync(id, device.Decision(Decisions.Approve, payload), token);
                        if (status != HttpStatusCode.OK)
                        {
                            Interlocked.Increment(ref refused);
                        }
                    }, ready[j], streamsDone.Token);
                }
                catch (OperationCanceledException) when (streamsDone.IsCancellationRequested)
                {
                }
            })).ToArray();
            await Task.WhenAll(ready.Select(r => r.Task)).WaitAsync(TimeSpan.FromSeconds(30), ct);

            long failed = 0;
            TimeSpan Cpu() => server.CpuTime();
            async Task<(long At, double Ms)?> FlowAsync(int i, string message, string? details, int approvers)
            {
                var agent = new BenchAgent(http, provisioned[i]);
                var started = Stopwatch.GetTimestamp();
                var (status, body) = await agent.TokenAsync(await agent.AskAsync(message, null, hard.Token, details), 30, hard.Token);
                var at = Stopwatch.GetTimestamp();
                // A token for the wrong number of approvers (the policy not applied, say) measures the wrong flow.
                if (status != HttpStatusCode.OK || BenchAgent.ApproversOf(body) != approvers)
                {
                    if (Interlocked.Increment(ref failed) <= 3)
                    {
                        Console.Error.WriteLine($"  no token: {(int)status} {body}");
                    }
                    return null;
                }
                return (at, Stats.Milliseconds(at - started));
            }
            // Agent i's 50 USD payment needs its own user; its 150 USD payment, its quorum (AddPoliciesAsync).
            Task<(long At, double Ms)?> SingleAsync(int i, int n) => FlowAsync(i, $"Single {i}.{n}", Payment("50.00"), 1);
            Task<(long At, double Ms)?> QuorumAsync(int i, int n) => FlowAsync(i, $"Quorum {i}.{n}", Payment("150.00"), 2);
            MandatesCommand.Phase single = null!, quorum = null!;
            for (var round = 1; round <= rounds; round++)
            {
                single = await MandatesCommand.PhaseAsync("single", [server], warmup, measure, users, rate, Cpu, SingleAsync, hard.Token);
                quorum = await MandatesCommand.PhaseAsync("quorum", [server], warmup, measure, users, rate, Cpu, QuorumAsync, hard.Token);
                Console.WriteLine($"  round {round} of {rounds}:");
                Console.WriteLine($"    single approver  {Stats.F(single.Rate, 1)}/s, p50 {Stats.F(single.P50)} ms, p99 {Stats.F(single.P99)} ms, server CPU {Stats.F(single.CpuMsPerOp, 3)} ms/flow");
                Console.WriteLine($"    2 of 3 at once   {Stats.F(quorum.Rate, 1)}/s, p50 {Stats.F(quorum.P50)} ms, p99 {Stats.F(quorum.P99)} ms, server CPU {Stats.F(quorum.CpuMsPerOp, 3)} ms/flow");
                Console.WriteLine($"    quorum adds      p50 {Stats.F(quorum.P50 - single.P50)} ms, p99 {Stats.F(quorum.P99 - single.P99)} ms (so far no token: {failed}, decisions refused: {refused})");
            }

            var mixed = new ConcurrentBag<(bool Quorum, long At, double Ms)>();
            var together = await MandatesCommand.PhaseAsync("mixed", [server], warmup, 2 * measure, users, rate, Cpu, async (i, n) =>
            {
                var isQuorum = (i + n) % 2 == 1;
                var one = await (isQuorum ? QuorumAsync(i, n) : SingleAsync(i, n));
                if (one is { } o)
                {
                    mixed.Add((isQuorum, o.At, o.Ms));
                }
                return one;
            }, hard.Token);
            List<double> InWindow(bool isQuorum) =>
                [.. mixed.Where(m => m.Quorum == isQuorum && m.At >= together.Window.From && m.At < together.Window.To).Select(m => m.Ms).Order()];
            var (mixedSingle, mixedQuorum) = (InWindow(false), InWindow(true));
            var (singleP50, singleP99) = (Stats.Percentile(mixedSingle, 0.50), Stats.Percentile(mixedSingle, 0.99));
            var (quorumP50, quorumP99) = (Stats.Percentile(mixedQuorum, 0.50), Stats.Percentile(mixedQuorum, 0.99));
            Console.WriteLine($"  one window of {2 * measure.TotalSeconds:0} s, both flows alternating at {rate}/s together (timed from sent):");
            Console.WriteLine($"    single approver  {mixedSingle.Count} flows, p50 {Stats.F(singleP50)} ms, p99 {Stats.F(singleP99)} ms");
            Console.WriteLine($"    2 of 3 at once   {mixedQuorum.Count} flows, p50 {Stats.F(quorumP50)} ms, p99 {Stats.F(quorumP99)} ms");
            Console.WriteLine($"    quorum adds      p50 {Stats.F(quorumP50 - singleP50)} ms, p99 {Stats.F(quorumP99 - singleP99)} ms; {together.Machine}");
            await streamsDone.CancelAsync();
            await Task.WhenAll(streams);

            // The machine-readable line: the last round's.
            Stats.Result("quorum", ("single_per_s", Stats.F(single.Rate, 1)), ("single_p50_ms", Stats.F(single.P50)), ("single_p99_ms", Stats.F(single.P99)),
                ("quorum_per_s", Stats.F(quorum.Rate, 1)), ("quorum_p50_ms", Stats.F(quorum.P50)), ("quorum_p99_ms", Stats.F(quorum.P99)),
                ("added_p99_ms", Stats.F(quorum.P99 - single.P99)), ("single_cpu_ms", Stats.F(single.CpuMsPerOp, 3)), ("quorum_cpu_ms", Stats.F(quorum.CpuMsPerOp, 3)),
                ("mixed_single_p99_ms", Stats.F(singleP99)), ("mixed_quorum_p99_ms", Stats.F(quorumP99)), ("mixed_added_p99_ms", Stats.F(quorumP99 - singleP99)),
                ("no_token", failed.ToString(CultureInfo.InvariantCulture)));
            return failed == 0 ? 0 : 1;
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
            Provisioning.Delete(dataDirectory);
        }
    }

    private static string Payment(string amount) => $$"""[{"type":"payment","amount":"{{amount}}","currency":"USD","payee":"bench"}]""";

    /// <summary>Agent i's payments over 100 USD need 2 of users i, i+1 and i+2 (written before the server starts, as <c>assent policy add</c> does).</summary>
    private static async Task AddPoliciesAsync(string dataDirectory, Uri issuer, IReadOnlyList<Provisioned> provisioned, CancellationToken ct)
    {
        var options = new AssentOptions { Issuer = issuer.ToString().TrimEnd('/'), DataDirectory = dataDirectory };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, ct);
        var book = new PolicyBook(store.Policies, store.Users, TimeProvider.System);
        var over = JsonDocument.Parse("\"100\"").RootElement.Clone();
        for (var i = 0; i < provisioned.Count; i++)
        {
            var approvers = Enumerable.Range(i, 3).Select(k => provisioned[k % provisioned.Count].Handle).ToList();
            await book.AddAsync(new PolicyDraft($"bench-quorum-{i}", null, provisioned[i].ClientId, null, "payment", "USD", over, null, "quorum", 2, approvers), "bench", ct);
        }
    }

    /// <summary>Whether device <paramref name="j"/> approves this request: its own single-approver requests, and as one of the first two of a quorum's three.</summary>
    private static bool ApprovesHere(byte[] payload, int j, int users)
    {
        using var doc = JsonDocument.Parse(payload);
        var message = doc.RootElement.GetProperty("binding_message").GetString() ?? "";
        if (!message.StartsWith("Quorum ", StringComparison.Ordinal))
        {
            return true;
        }
        var i = int.Parse(message.AsSpan(7, message.IndexOf('.', StringComparison.Ordinal) - 7), CultureInfo.InvariantCulture);
        return j == i || j == (i + 1) % users;
    }
}
