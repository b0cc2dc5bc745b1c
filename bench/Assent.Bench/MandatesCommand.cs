using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;

namespace Assent.Bench;

/// <summary>
/// Mandate-covered payments (docs/policies.md §6) at saturation, beside plain human flows on the same server in the same
/// run. Each agent's user signs a mandate once; then every agent loops: bc-authorize a 0.01 USD payment, then
/// <c>/oauth/token</c>, which answers at once with <c>amr:["mandate"]</c> (request → token, no human). The plain phase
/// runs <c>flows</c>' loop (ask, held token request, the device approves from its stream) for the same time, timed the
/// same way: from the request to the token. With
/// <c>--shared</c> every agent loop spends one mandate (one agent's credentials), spread over the nodes; the run then
/// checks that the mandate's reported remainder equals its total less what the tokens it issued spent (no overspend,
/// no lost update). With <c>--payments</c> the covered loop is agent payments instead (docs/payments.md §11): each agent posts
/// an x402 v2 402 for 0.01 USDC to <c>POST /v1/payments</c> and gets the signed <c>PAYMENT-SIGNATURE</c> in the answer,
/// timed from the request to that answer; then a <c>handler</c> phase pays a loopback paid server
/// (<see cref="PaidServerStandIn"/>) through the SDK's <c>AssentPaymentHandler</c>, a whole paid request (402, payment, retry,
/// receipt), and reports what the handler adds beyond the paid server's own time (the mandate decides: no human). With
/// <c>--oidc-provider</c> a last phase asks a peer from outside the project, on the same machine, for tokens without a human
/// as well: node-oidc-provider's client credentials grant (<see cref="OidcProviderPeer"/>), one request each, timed the same way. Every phase also reports the server's CPU (and PostgreSQL's) per operation in
/// its measured window. <c>--server-dll</c> serves with another build (the previous commit) for a side-by-side ratio.
/// </summary>
internal static class MandatesCommand
{
    private const string Total = "1000000.00";

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var agents = args.Int("agents", 32, 1, 1024);
        var measure = TimeSpan.FromSeconds(args.Int("seconds", 10, 1, 600));
        var engine = args.String("engine") ?? "sqlite";
        // Two nodes, PostgreSQL and the driver saturate the cores, and the JIT's background tier-up then lags: in the
        // window after a 10 s warm-up, a node still spent a quarter to 40% of its CPU compiling (perf), and the shared
        // mandate ran at 490-560/s against 770-850/s after 40 s. So PostgreSQL runs warm up for 40 s unless told.
        var warmup = TimeSpan.FromSeconds(args.Int("warmup", engine == "postgres" ? 40 : 10, 0, 600));
        var nodeCount = args.Int("nodes", 1, 1, 8);
        var shared = args.Flag("shared");
        var payments = args.Flag("payments");
        var serverDll = args.String("server-dll");
        // A peer from outside the project on the same machine: node-oidc-provider's client credentials grant (OidcProviderPeer).
        var withPeer = args.Flag("oidc-provider");
        // Open loop: operations sent at this combined rate, spread over the agents, each timed from when it was due, so a
        // server that falls behind shows its queue in the percentiles (closed loops at saturation time mostly their queue).
        var rate = args.Int("rate", 0, 0, 100_000);
        // The handler phase (--payments): open loop at --handler-rate (default --rate), else closed loop over --handler-agents (default --agents).
        var handlerRate = args.Int("handler-rate", rate, 0, 100_000);
        var handlerAgents = args.Int("handler-agents", agents, 1, agents);
        // In-run comparison of the receipt's post-back: agents 0, 2, 4, … wait for it (WaitForReceipt), the others do not.
        var receiptSplit = args.Flag("handler-receipt-split");
        if (receiptSplit && (shared || handlerAgents < 2))
        {
            throw new UsageException("--handler-receipt-split needs at least two --handler-agents and no --shared");
        }
        if (engine is not ("sqlite" or "postgres") || (engine == "sqlite" && nodeCount != 1))
        {
            throw new UsageException("--engine is sqlite (one node) or postgres");
        }

        var dataDirectory = Provisioning.NewDataDirectory();
        var nodeUris = Enumerable.Range(0, nodeCount).Select(_ => new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}")).ToList();
        await using var postgres = engine == "postgres" ? await BenchPostgres.StartAsync() : null;
        var https = nodeUris.Select(u => BenchHttp.Create(u)).ToList();
        var servers = new List<ServerProcess>();
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, nodeUris[0], agents, ct, postgres?.ConnectionString, payments);
            foreach (var uri in nodeUris)
            {
                servers.Add(await ServerProcess.StartAsync(dataDirectory, uri, https[nodeUris.IndexOf(uri)], ct, postgres?.ConnectionString, nodeUris[0], serverDll));
            }
            TimeSpan Cpu() => servers.Aggregate(postgres?.CpuTime() ?? TimeSpan.Zero, (sum, server) => sum + server.CpuTime());
            Console.WriteLine($"mandates: engine {engine}, {nodeCount} node(s), {agents} agents, {(shared ? "one shared mandate" : "a mandate each")}, " +
                              $"{(payments ? "x402 payments" : "CIBA payments")}, server {serverDll ?? "this build"}, " +
                              $"{(rate > 0 ? $"open loop at {rate}/s, " : "")}warm-up {warmup.TotalSeconds:0} s, each phase {measure.TotalSeconds:0} s, {Environment.ProcessorCount} cores");
            HttpClient Node(int i) => https[i % nodeCount];
            var devices = await Task.WhenAll(provisioned.Select((p, i) => BenchDevice.EnrollAsync(Node(i + 1), p.InviteCode, ct)));

            using var hard = CancellationTokenSource.CreateLinkedTokenSource(ct);
            hard.CancelAfter(2 * (SettleLimit + warmup + measure) + TimeSpan.FromMinutes(2));
            using var streamsDone = CancellationTokenSource.CreateLinkedTokenSource(hard.Token);
            var ready = devices.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
            var streams = devices.Select((device, i) => Task.Run(async () =>
            {
                try
                {
                    await device.StreamAsync(async (id, payload, token) =>
                    {
                        await device.PostDecisionAsync(id, device.Decision(Decisions.Approve, payload), token);
                    }, ready[i], streamsDone.Token);
                }
                catch (OperationCanceledException) when (streamsDone.IsCancellationRequested)
                {
                }
            })).ToArray();
            await Task.WhenAll(ready.Select(r => r.Task)).WaitAsync(TimeSpan.FromSeconds(30), ct);

            // Each user signs a mandate for their agent (with --shared only the first is used).
            var expires = DateTimeOffset.UtcNow.AddDays(30).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            var mandate = $$"""[{"type":"mandate","currency":"USD","per_payment":"1.00","total":"{{Total}}","period":"none","expires_at":"{{expires}}"}]""";
            await Task.WhenAll(provisioned.Take(shared ? 1 : agents).Select(async (p, i) =>
            {
                var agent = new BenchAgent(Node(i), p);
                var (status, body) = await agent.TokenAsync(await agent.AskAsync("Bench mandate", null, hard.Token, mandate), 30, hard.Token);
                if (status != HttpStatusCode.OK)
                {
                    throw new InvalidOperationException($"the mandate was not approved: {body}");
                }
            }));

            const string payment = """[{"type":"payment","amount":"0.01","currency":"USD","payee":"bench"}]""";
            long covered = 0, errors = 0;
            var minRemaining = decimal.MaxValue;
            var gate = new object();
            var coveredLatency = await PhaseAsync("mandate", servers, warmup, measure, agents, rate, Cpu, async (i, n) =>
            {
                var agent = new BenchAgent(Node(i), provisioned[shared ? 0 : i]);
                var started = Stopwatch.GetTimestamp();
                var (status, body) = payments
                    ? await agent.PayAsync(X402Body, hard.Token)
                    : await agent.TokenAsync(await agent.AskAsync($"Pay {i}.{n}", null, hard.Token, payment), null, hard.Token);
                var at = Stopwatch.GetTimestamp();
                if (status != (payments ? HttpStatusCode.Created : HttpStatusCode.OK) || (payments ? PaidRemaining(body) : Remaining(body)) is not { } left)
                {
                    if (Interlocked.Increment(ref errors) <= 3)
                    {
                        Console.Error.WriteLine($"  not covered: {(int)status} {body}");
                    }
                    return null;
                }
                Interlocked.Increment(ref covered);
                lock (gate)
                {
                    minRemaining = Math.Min(minRemaining, left);
                }
                return (at, Stats.Milliseconds(at - started));
            }, hard.Token);

            HandlerFigures? handlerLatency = null;
            long handlerErrors = 0;
            if (payments)
            {
                // The SDK's handler paying a loopback paid server: the whole paid request, less the paid server's own time. Open loop at
                // --handler-rate (default --rate): each paid request timed from when it was due, so only a handler that falls behind
                // shows a queue; closed loop (rate 0) with --handler-agents loops (1: one agent paying sequentially; default --agents,
                // which at 32 is saturation, where the added time is mostly queueing).
                await using var paid = await PaidServerStandIn.StartAsync(hard.Token);
                var clients = provisioned.Take(shared ? 1 : handlerAgents).Select((p, i) => new HttpClient(new Assent.Client.AssentPaymentHandler(
                    new Assent.Client.AssentClientOptions { Server = nodeUris[i % nodeCount], ClientId = p.ClientId, ClientSecret = p.ClientSecret, HttpClient = Node(i) },
                    new SocketsHttpHandler { UseProxy = false, UseCookies = false, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
                {
                    WaitForReceipt = receiptSplit && i % 2 == 0,
                })).ToList();
                var figures = new ConcurrentBag<(long At, double Total, double Own, bool Waited)>();
                try
                {
                    var started = Stopwatch.GetTimestamp();
                    var from = started + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
                    var to = from + (long)(measure.TotalSeconds * Stopwatch.Frequency);
                    var cpuWindow = Task.Run(async () =>
                    {
                        await Task.Delay(warmup, hard.Token);
                        var (server, bench) = (Cpu(), Process.GetCurrentProcess().TotalProcessorTime);
                        await Task.Delay(measure, hard.Token);
                        return (Server: Cpu() - server, Bench: Process.GetCurrentProcess().TotalProcessorTime - bench);
                    }, hard.Token);
                    async Task<(long At, double Ms)?> PaidRequestAsync(int i, int n)
                    {
                        var call = $"{i}.{n}";
                        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(paid.Uri, "/paid"));
                        request.Headers.Add(PaidServerStandIn.CallHeader, call);
                        // Open loop: from when it was due (OpenLoopAsync's schedule: operation k = n * agents + i at k / rate s).
                        var due = handlerRate > 0
                            ? started + (long)(((long)n * handlerAgents + i) * (double)Stopwatch.Frequency / handlerRate)
                            : Stopwatch.GetTimestamp();
                        HttpStatusCode status;
                        try
                        {
                            using var response = await clients[shared ? 0 : i].SendAsync(request, hard.Token);
                            await response.Content.ReadAsStringAsync(hard.Token);
                            status = response.StatusCode;
                        }
                        catch (Assent.Client.AssentPaymentException e)
                        {
                            if (Interlocked.Increment(ref handlerErrors) <= 3)
                            {
                                Console.Error.WriteLine($"  not paid: {e.Message}");
                            }
                            return null;
                        }
                        var at = Stopwatch.GetTimestamp();
                        paid.OwnTime.TryRemove(call, out var own);
                        if (status != HttpStatusCode.OK)
                        {
                            Interlocked.Increment(ref handlerErrors);
                            return null;
                        }
                        figures.Add((at, Stats.Milliseconds(at - due), Stats.Milliseconds(own), receiptSplit && i % 2 == 0));
                        return (at, Stats.Milliseconds(at - due - own));
                    }
                    if (handlerRate > 0)
                    {
                        await OpenLoopAsync("handler", started, from, to, handlerAgents, handlerRate, PaidRequestAsync, new(), hard.Token);
                    }
                    else
                    {
                        await Task.WhenAll(Enumerable.Range(0, handlerAgents).Select(i => Task.Run(async () =>
                        {
                            for (var n = 0; Stopwatch.GetTimestamp() < to && !hard.IsCancellationRequested; n++)
                            {
                                await PaidRequestAsync(i, n);
                            }
                        }, hard.Token)));
                    }
                    var window = figures.Where(f => f.At >= from && f.At < to).ToList();
                    var cpuUsed = await cpuWindow;
                    List<double> Sorted(Func<(long At, double Total, double Own, bool Waited), double> of) => [.. window.Select(of).Order()];
                    var (added, total, ownTime) = (Sorted(f => f.Total - f.Own), Sorted(f => f.Total), Sorted(f => f.Own));
                    handlerLatency = new HandlerFigures(handlerRate > 0 ? $"open loop at {handlerRate}/s over {handlerAgents} agent(s)" : $"closed loop, {handlerAgents} agent(s)",
                        window.Count / measure.TotalSeconds, Stats.Percentile(added, 0.50), Stats.Percentile(added, 0.99), Stats.Percentile(total, 0.50),
                        Stats.Percentile(total, 0.99), Stats.Percentile(ownTime, 0.50), Stats.Percentile(ownTime, 0.99),
                        window.Count == 0 ? 0 : cpuUsed.Server.TotalMilliseconds / window.Count, window.Count == 0 ? 0 : cpuUsed.Bench.TotalMilliseconds / window.Count);
                    if (receiptSplit)
                    {
                        // The same run, the same moments: only whether the paid answer waited for its receipt's post-back differs.
                        List<double> Added(bool waited) => [.. window.Where(f => f.Waited == waited).Select(f => f.Total - f.Own).Order()];
                        var (waiting, background) = (Added(true), Added(false));
                        handlerLatency = handlerLatency with
                        {
                            ReceiptSplit = (Stats.Percentile(waiting, 0.50), Stats.Percentile(waiting, 0.99), waiting.Count,
                                Stats.Percentile(background, 0.50), Stats.Percentile(background, 0.99), background.Count),
                        };
                    }
                }
                finally
                {
                    clients.ForEach(c => c.Dispose());
                }
            }

            var plainLatency = await PhaseAsync("plain", servers, warmup, measure, agents, rate, Cpu, async (i, n) =>
            {
                // The whole flow, request to token, as for a mandate: ask, hold the token request, the device approves.
                var agent = new BenchAgent(Node(i), provisioned[i]);
                var started = Stopwatch.GetTimestamp();
                var (status, body) = await agent.TokenAsync(await agent.AskAsync($"Plain {i}.{n}", null, hard.Token), 30, hard.Token);
                var at = Stopwatch.GetTimestamp();
                return status == HttpStatusCode.OK ? (at, Stats.Milliseconds(at - started)) : null;
            }, hard.Token);
            await streamsDone.CancelAsync();
            await Task.WhenAll(streams);

            // The peer: a token without a human from node-oidc-provider, one request each (no budget, no audit, nothing on disk).
            Phase? peerLatency = null;
            long peerErrors = 0;
            if (withPeer)
            {
                await using var peer = await OidcProviderPeer.StartAsync(hard.Token);
                peerLatency = await PhaseAsync("peer", [], warmup, measure, agents, rate, peer.CpuTime, async (_, _) =>
                {
                    var token = await peer.ClientCredentialsAsync(hard.Token);
                    if (token is null)
                    {
                        Interlocked.Increment(ref peerErrors);
                    }
                    return token;
                }, hard.Token);
            }

            var (mandateRate, mandateP50, mandateP99, mandateCpu, mandateOwnP50, mandateOwnP99) = coveredLatency;
            var (plainRate, plainP50, plainP99, plainCpu, _, _) = plainLatency;
            Console.WriteLine($"  mandate {(payments ? "POST /v1/payments" : "request->token")}  {Stats.F(mandateRate, 1)}/s, p50 {Stats.F(mandateP50)} ms, " +
                              $"p99 {Stats.F(mandateP99)} ms, server CPU {Stats.F(mandateCpu, 3)} ms/op (not covered: {errors})");
            // The server's own time (Server-Timing, summed over the operation's requests): without the driver's and the
            // kernel's share, which the figures above hold (a driver sharing the cores waits its turn too).
            Console.WriteLine($"    server's own time     p50 {Stats.F(mandateOwnP50)} ms, p99 {Stats.F(mandateOwnP99)} ms; {coveredLatency.OwnTail}; {coveredLatency.Machine}");
            if (handlerLatency is { } h)
            {
                Console.WriteLine($"  AssentPaymentHandler    {h.Mode}: {Stats.F(h.Rate, 1)} paid requests/s, added beyond the paid server's time: p50 {Stats.F(h.AddedP50)} ms, " +
                                  $"p99 {Stats.F(h.AddedP99)} ms; whole paid request p50 {Stats.F(h.TotalP50)} ms, p99 {Stats.F(h.TotalP99)} ms; paid server's own p50 " +
                                  $"{Stats.F(h.OwnP50, 3)} ms, p99 {Stats.F(h.OwnP99, 3)} ms; server CPU {Stats.F(h.ServerCpu, 3)} ms/op, bench process CPU (handler and paid server) " +
                                  $"{Stats.F(h.BenchCpu, 3)} ms/op (not paid: {handlerErrors})");
                if (h.ReceiptSplit is { } split)
                {
                    Console.WriteLine($"  receipt split           added, waiting for the receipt: p50 {Stats.F(split.WaitP50)} ms, p99 {Stats.F(split.WaitP99)} ms ({split.WaitCount}); " +
                                      $"receipt in the background: p50 {Stats.F(split.BackgroundP50)} ms, p99 {Stats.F(split.BackgroundP99)} ms ({split.BackgroundCount})");
                }
            }
            Console.WriteLine($"  plain request->token    {Stats.F(plainRate, 1)}/s, p50 {Stats.F(plainP50)} ms, p99 {Stats.F(plainP99)} ms, server CPU {Stats.F(plainCpu, 3)} ms/op");
            Console.WriteLine($"  ratio mandate/plain     throughput {Stats.F(mandateRate / plainRate)}x, p99 {Stats.F(mandateP99 / plainP99)}x");
            if (peerLatency is { } pl)
            {
                Console.WriteLine($"  peer client_credentials {Stats.F(pl.Rate, 1)}/s, p50 {Stats.F(pl.P50)} ms, p99 {Stats.F(pl.P99)} ms, CPU {Stats.F(pl.CpuMsPerOp, 3)} ms/op " +
                                  $"(node-oidc-provider, one request, a JWT access token, in memory, one Node process; refused: {peerErrors})");
                Console.WriteLine($"  ratio mandate/peer      throughput {Stats.F(mandateRate / pl.Rate)}x, CPU per op {Stats.F(mandateCpu / pl.CpuMsPerOp)}x, p99 {Stats.F(mandateP99 / pl.P99)}x");
            }
            var overspent = false;
            if (shared)
            {
                // Every payment spent 0.01: the lowest remainder a token reported must be the total less all of them.
                var expected = decimal.Parse(Total, CultureInfo.InvariantCulture) - (covered * 0.01m);
                overspent = minRemaining != expected;
                Console.WriteLine($"  shared mandate          {covered} payments, lowest remaining {minRemaining}, expected {expected}: {(overspent ? "MISMATCH" : "consistent")}");
            }
            Stats.Result((payments ? "payments" : "mandates") + (engine == "sqlite" ? "" : $"_{engine}_{nodeCount}n"),
                ("mandate_per_s", Stats.F(mandateRate, 1)), ("mandate_p50_ms", Stats.F(mandateP50)), ("mandate_p99_ms", Stats.F(mandateP99)),
                ("mandate_cpu_ms_per_op", Stats.F(mandateCpu, 3)), ("mandate_own_p50_ms", Stats.F(mandateOwnP50)), ("mandate_own_p99_ms", Stats.F(mandateOwnP99)), ("plain_cpu_ms_per_op", Stats.F(plainCpu, 3)),
                ("plain_per_s", Stats.F(plainRate, 1)), ("plain_p99_ms", Stats.F(plainP99)), ("ratio_throughput", Stats.F(mandateRate / plainRate)),
                ("ratio_p99", Stats.F(mandateP99 / plainP99)),
                ("peer_per_s", peerLatency is null ? "-" : Stats.F(peerLatency.Rate, 1)), ("peer_p99_ms", peerLatency is null ? "-" : Stats.F(peerLatency.P99)),
                ("peer_cpu_ms_per_op", peerLatency is null ? "-" : Stats.F(peerLatency.CpuMsPerOp, 3)),
                ("ratio_peer_throughput", peerLatency is null ? "-" : Stats.F(mandateRate / peerLatency.Rate)),
                ("ratio_peer_cpu", peerLatency is null ? "-" : Stats.F(mandateCpu / peerLatency.CpuMsPerOp)),
                ("not_covered", errors.ToString(CultureInfo.InvariantCulture)));
            if (handlerLatency is { } hr)
            {
                Stats.Result("payments_handler", ("loop", hr.Mode.Replace(' ', '_')), ("per_s", Stats.F(hr.Rate, 1)), ("added_p50_ms", Stats.F(hr.AddedP50)),
                    ("added_p99_ms", Stats.F(hr.AddedP99)), ("total_p50_ms", Stats.F(hr.TotalP50)), ("total_p99_ms", Stats.F(hr.TotalP99)),
                    ("own_p99_ms", Stats.F(hr.OwnP99, 3)), ("cpu_ms_per_op", Stats.F(hr.ServerCpu, 3)), ("bench_cpu_ms_per_op", Stats.F(hr.BenchCpu, 3)),
                    ("not_paid", handlerErrors.ToString(CultureInfo.InvariantCulture)));
                if (hr.ReceiptSplit is { } rs)
                {
                    Stats.Result("payments_handler_receipt_split", ("wait_added_p50_ms", Stats.F(rs.WaitP50)), ("wait_added_p99_ms", Stats.F(rs.WaitP99)),
                        ("background_added_p50_ms", Stats.F(rs.BackgroundP50)), ("background_added_p99_ms", Stats.F(rs.BackgroundP99)));
                }
            }
            return errors == 0 && handlerErrors == 0 && peerErrors == 0 && !overspent ? 0 : 1;
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
            foreach (var client in https)
            {
                client.Dispose();
            }
            Provisioning.Delete(dataDirectory);
        }
    }

    /// <summary>A phase's measured window: operations per second, latency percentiles (ms), the servers' CPU per operation and
    /// the server's own time per operation (<see cref="ServerTimes"/>; NaN from a build without it).</summary>
    internal sealed record Phase(double Rate, double P50, double P99, double CpuMsPerOp, double OwnP50, double OwnP99)
    {
        /// <summary>How the server's slowest operations cluster in time (<see cref="ServerTimes.Tail"/>).</summary>
        public string OwnTail { get; init; } = "n/a";

        /// <summary>The machine's idle and stolen shares in the window (<see cref="Stats.Machine"/>).</summary>
        public string Machine { get; init; } = "machine n/a";

        /// <summary>The measured window's bounds (<see cref="Stopwatch"/> ticks), for a caller that sorts the operations itself.</summary>
        public (long From, long To) Window { get; init; }
    }

    /// <summary>
    /// Runs <paramref name="agents"/> loops of <paramref name="step"/> through a warm-up and a measured window; rate, latency
    /// percentiles, <paramref name="cpu"/> (the servers' CPU time) per operation and the server's own time per operation in the window.
    /// </summary>
    internal static async Task<Phase> PhaseAsync(string name, IReadOnlyList<ServerProcess> servers, TimeSpan warmup, TimeSpan measure, int agents,
        int rate, Func<TimeSpan> cpu, Func<int, int, Task<(long At, double Ms)?>> step, CancellationToken ct)
    {
        // First the runtime's compilation of what this phase runs, in closed loop, however long it takes; then the fixed warm-up.
        var settled = await ServerProcess.SettleAsync(servers, agents, step, SettleLimit, ct);
        Console.WriteLine($"  ({name}: {settled}, then {warmup.TotalSeconds:0} s of warm-up)");
        var started = Stopwatch.GetTimestamp();
        var from = started + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var to = from + (long)(measure.TotalSeconds * Stopwatch.Frequency);
        var done = new ConcurrentBag<(long At, double Ms)>();
        var own = new ConcurrentBag<(long At, double Ms)>();
        var cpuWindow = Task.Run(async () =>
        {
            await Task.Delay(warmup, ct);
            var (before, machine) = (cpu(), Stats.MachineTicks());
            await Task.Delay(measure, ct);
            return (Cpu: cpu() - before, Machine: Stats.Machine(machine, Stats.MachineTicks()));
        }, ct);
        if (rate > 0)
        {
            await OpenLoopAsync(name, started, from, to, agents, rate, step, done, ct, own);
        }
        else
        {
            await Task.WhenAll(Enumerable.Range(0, agents).Select(i => Task.Run(async () =>
            {
                var n = 0;
                while (Stopwatch.GetTimestamp() < to && !ct.IsCancellationRequested)
                {
                    var tally = ServerTimes.Begin();
                    if (await step(i, n++) is { } one)
                    {
                        done.Add(one);
                        own.Add((one.At, tally.Ms));
                    }
                }
            }, ct)));
        }
        var window = done.Where(d => d.At >= from && d.At < to).Select(d => d.Ms).Order().ToList();
        var ownOps = own.Where(d => d.At >= from && d.At < to).ToList();
        List<double> ownWindow = [.. ownOps.Select(d => d.Ms).Order()];
        var cpuUsed = await cpuWindow;
        _ = name;
        return new Phase(window.Count / measure.TotalSeconds, Stats.Percentile(window, 0.50), Stats.Percentile(window, 0.99),
            window.Count == 0 ? 0 : cpuUsed.Cpu.TotalMilliseconds / window.Count, ServerTimes.Percentile(ownWindow, 0.50), ServerTimes.Percentile(ownWindow, 0.99))
        {
            OwnTail = ServerTimes.Tail(ownOps),
            Machine = cpuUsed.Machine,
            Window = (from, to),
        };
    }

    /// <summary>The longest a phase waits for the servers' compilation to end (<see cref="ServerProcess.SettleAsync"/>).</summary>
    internal static readonly TimeSpan SettleLimit = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Sends operation k when it is due (k / <paramref name="rate"/> seconds after <paramref name="started"/>), by agent
    /// k mod <paramref name="agents"/>, without waiting for earlier ones; each is timed from when it was due, not from
    /// when it went out, so time spent queued behind a slow server counts. At most 4,096 in flight: past that, sending
    /// waits (and what waits is late, which its time shows). Then prints the driver's own lateness (due → sent) for
    /// <paramref name="name"/>: it counts in the percentiles, so a driver starved of CPU shows there; and, beside it, the
    /// measured window (<paramref name="from"/> to <paramref name="to"/>) timed from sent instead, without that lateness.
    /// <paramref name="own"/>, when given, gets each operation's server time (<see cref="ServerTimes"/>).
    /// </summary>
    private static async Task OpenLoopAsync(string name, long started, long from, long to, int agents, int rate, Func<int, int, Task<(long At, double Ms)?>> step,
        ConcurrentBag<(long At, double Ms)> done, CancellationToken ct, ConcurrentBag<(long At, double Ms)>? own = null)
    {
        var late = new ConcurrentBag<double>();
        var fromSent = new ConcurrentBag<double>();
        using var slots = new SemaphoreSlim(4096);
        var running = new List<Task>();
        await Pacer.RunAsync(started, rate, to, long.MaxValue, (k, due) =>
        {
            slots.Wait(ct);
            var (agent, n) = ((int)(k % agents), (int)(k / agents));
            running.Add(Task.Run(async () =>
            {
                try
                {
                    var sent = Stopwatch.GetTimestamp();
                    late.Add(Stats.Milliseconds(sent - due));
                    var tally = ServerTimes.Begin();
                    if (await step(agent, n) is { } one)
                    {
                        done.Add((one.At, Stats.Milliseconds(one.At - due)));
                        own?.Add((one.At, tally.Ms));
                        if (one.At >= from && one.At < to)
                        {
                            fromSent.Add(Stats.Milliseconds(one.At - sent));
                        }
                    }
                }
                finally
                {
                    slots.Release();
                }
            }, ct));
        }, ct);
        await Task.WhenAll(running);
        List<double> sorted = [.. late.Order()];
        List<double> server = [.. fromSent.Order()];
        // Beside the figures timed from the due time: the measured window's operations timed from when they went out, which
        // leave out the driver's own lateness (a starved driver's share of a stall).
        Console.WriteLine($"  ({name}: sent after due p50 {Stats.F(Stats.Percentile(sorted, 0.5))} ms, p99 {Stats.F(Stats.Percentile(sorted, 0.99))} ms; " +
                          $"from sent: p50 {Stats.F(Stats.Percentile(server, 0.5))} ms, p99 {Stats.F(Stats.Percentile(server, 0.99))} ms)");
    }

    /// <summary>The handler phase's figures: added = whole paid request less the paid server's own time (ms), and CPU per paid request.</summary>
    private sealed record HandlerFigures(string Mode, double Rate, double AddedP50, double AddedP99, double TotalP50, double TotalP99, double OwnP50, double OwnP99,
        double ServerCpu, double BenchCpu)
    {
        /// <summary>With <c>--handler-receipt-split</c>: added p50, p99 and count of the paid requests that waited for their receipt, then of those that did not.</summary>
        public (double WaitP50, double WaitP99, int WaitCount, double BackgroundP50, double BackgroundP99, int BackgroundCount)? ReceiptSplit { get; init; }
    }

    /// <summary>What a paid server's 402 looks like to <c>POST /v1/payments</c>: x402 v2, 0.01 USDC on Base Sepolia (docs/payments.md §2).</summary>
    private static readonly string X402Body =
        "{\"url\":\"https://api.example/bench\",\"status\":402,\"headers\":{\"PAYMENT-REQUIRED\":\"" + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(
            """{"x402Version":2,"resource":{"url":"https://api.example/bench","description":"Bench"},"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}}]}""")) +
        "\"}}";

    /// <summary>What the covering mandate had left, when the payment came back signed and covered; null otherwise.</summary>
    private static decimal? PaidRemaining(string paymentResponse)
    {
        using var payment = JsonDocument.Parse(paymentResponse);
        return payment.RootElement.TryGetProperty("header", out _) && payment.RootElement.TryGetProperty("mandate", out var m)
            ? decimal.Parse(m.GetProperty("remaining").GetString()!, CultureInfo.InvariantCulture)
            : null;
    }

    private static decimal? Remaining(string tokenResponse)
    {
        using var response = JsonDocument.Parse(tokenResponse);
        var jwt = response.RootElement.GetProperty("access_token").GetString()!;
        using var claims = JsonDocument.Parse(Base64Url.Decode(jwt.Split('.')[1]));
        return claims.RootElement.TryGetProperty("mandate", out var m)
            ? decimal.Parse(m.GetProperty("remaining").GetString()!, CultureInfo.InvariantCulture)
            : null;
    }
}
