using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Assent.Protocol.Approvals;

namespace Assent.Bench;

/// <summary>
/// Full approval flows at saturation: each agent asks (bc-authorize) and at once holds a token
/// request with <c>Prefer: wait=30</c>; its user's device hears the request on its SSE stream,
/// signs and posts the decision; the held token request answers. Approve→token latency runs from
/// just before the decision is sent to the token's arrival.
/// </summary>
internal static class FlowsCommand
{
    private const int WaitSeconds = 30;

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var agents = args.Int("agents", 32, 1, 1024);
        var measure = TimeSpan.FromSeconds(args.Int("seconds", 20, 1, 600));
        var warmup = TimeSpan.FromSeconds(args.Int("warmup", 5, 0, 600));

        var engine = args.String("engine") ?? "sqlite";
        if (engine is not ("sqlite" or "postgres"))
        {
            throw new UsageException("--engine is sqlite or postgres");
        }
        var nodeCount = args.Int("nodes", 1, 1, 8);
        if (engine == "sqlite" && nodeCount != 1)
        {
            throw new UsageException("SQLite is one node; use --engine postgres for --nodes > 1");
        }

        var dataDirectory = Provisioning.NewDataDirectory();
        var nodeUris = Enumerable.Range(0, nodeCount).Select(_ => new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}")).ToList();
        // One deployment, one issuer: the first node's address stands for the load balancer's.
        var issuer = nodeUris[0];
        await using var postgres = engine == "postgres" ? await BenchPostgres.StartAsync() : null;
        var database = postgres?.ConnectionString;
        var https = nodeUris.Select(u => BenchHttp.Create(u)).ToList();
        var servers = new List<ServerProcess>();
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, issuer, agents, ct, database);
            foreach (var (uri, client) in nodeUris.Zip(https))
            {
                servers.Add(await ServerProcess.StartAsync(dataDirectory, uri, client, ct, database, issuer));
            }
            Console.WriteLine($"flows: engine {engine}, {nodeCount} node(s), {agents} agents and devices, warm-up {warmup.TotalSeconds:0} s, measured {measure.TotalSeconds:0} s, " +
                              $"server pids {string.Join(',', servers.Select(s => s.Id))}, {Environment.ProcessorCount} cores");
            // With several nodes an agent talks to one node and its user's device to the next one,
            // so every decision has to cross nodes to wake the waiting agent.
            HttpClient AgentNode(int i) => https[i % nodeCount];
            HttpClient DeviceNode(int i) => https[(i + 1) % nodeCount];

            var devices = await Task.WhenAll(provisioned.Select((p, i) => BenchDevice.EnrollAsync(DeviceNode(i), p.InviteCode, ct)));

            // Everything stops by itself: the loops at `stop`, every request at `hard`.
            using var hard = CancellationTokenSource.CreateLinkedTokenSource(ct);
            hard.CancelAfter(warmup + measure + TimeSpan.FromSeconds(WaitSeconds + 30));
            using var streamsDone = CancellationTokenSource.CreateLinkedTokenSource(hard.Token);

            var decisionSentAt = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
            long decisionErrors = 0;
            var decisionAnswers = new ConcurrentBag<(long At, double LatencyMs)>();
            var askAnswers = new ConcurrentBag<(long At, double LatencyMs)>();
            var ready = devices.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
            var streams = devices.Select((device, i) => Task.Run(async () =>
            {
                try
                {
                    await device.StreamAsync(async (id, payload, token) =>
                    {
                        var content = device.Decision(Decisions.Approve, payload);
                        var sentAt = Stopwatch.GetTimestamp();
                        decisionSentAt[id] = sentAt;
                        if (await device.PostDecisionAsync(id, content, token) != HttpStatusCode.OK)
                        {
                            Interlocked.Increment(ref decisionErrors);
                        }
                        var answeredAt = Stopwatch.GetTimestamp();
                        decisionAnswers.Add((answeredAt, Stats.Milliseconds(answeredAt - sentAt)));
                    }, ready[i], streamsDone.Token);
                }
                catch (OperationCanceledException) when (streamsDone.IsCancellationRequested)
                {
                }
            })).ToArray();
            await Task.WhenAll(ready.Select(r => r.Task)).WaitAsync(TimeSpan.FromSeconds(30), ct);

            var started = Stopwatch.GetTimestamp();
            var windowStart = started + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
            var windowEnd = windowStart + (long)(measure.TotalSeconds * Stopwatch.Frequency);
            long flowErrors = 0;
            var completions = new ConcurrentBag<(long At, double LatencyMs)>();
            var loops = provisioned.Select((p, i) => Task.Run(async () =>
            {
                var agent = new BenchAgent(AgentNode(i), p);
                var n = 0;
                while (Stopwatch.GetTimestamp() < windowEnd && !hard.IsCancellationRequested)
                {
                    var askedAt = Stopwatch.GetTimestamp();
                    var authReqId = await agent.AskAsync($"Bench flow {i}.{n++}", null, hard.Token);
                    var askAnsweredAt = Stopwatch.GetTimestamp();
                    askAnswers.Add((askAnsweredAt, Stats.Milliseconds(askAnsweredAt - askedAt)));
                    var (status, body) = await agent.TokenAsync(authReqId, WaitSeconds, hard.Token);
                    var at = Stopwatch.GetTimestamp();
                    if (status != HttpStatusCode.OK || !decisionSentAt.TryRemove(BenchAgent.TransactionOf(body), out var sent))
                    {
                        if (Interlocked.Increment(ref flowErrors) <= 3)
                        {
                            Console.Error.WriteLine($"  flow error: token answered {(int)status}: {body}");
                        }
                        continue;
                    }
                    completions.Add((at, Stats.Milliseconds(at - sent)));
                }
            })).ToArray();

            await Task.Delay(warmup, ct);
            if (postgres is not null)
            {
                // Steady state: from here on, new WAL segments reuse old ones (see CheckpointAsync).
                await postgres.CheckpointAsync(ct);
            }
            TimeSpan ServersCpu() => servers.Aggregate(TimeSpan.Zero, (sum, s) => sum + s.CpuTime());
            var cpuStart = ServersCpu();
            var databaseCpuStart = postgres?.CpuTime();
            var walStart = postgres is null ? 0 : await postgres.WalBytesAsync(ct);
            var driverCpuStart = Process.GetCurrentProcess().TotalProcessorTime;
            var measuredFrom = Stopwatch.GetTimestamp();
            await Task.Delay(measure, ct);
            var measuredTo = Stopwatch.GetTimestamp();
            var cpuEnd = ServersCpu();
            var databaseCpuEnd = postgres?.CpuTime();
            var walEnd = postgres is null ? 0 : await postgres.WalBytesAsync(ct);
            var driverCpuEnd = Process.GetCurrentProcess().TotalProcessorTime;
            var (rss, peak) = servers.Select(s => s.Memory()).Aggregate((0L, 0L), (sum, m) => (sum.Item1 + m.Rss, sum.Item2 + m.Peak));

            await Task.WhenAll(loops);
            await streamsDone.CancelAsync();
            await Task.WhenAll(streams);

            var inWindow = completions.Where(c => c.At >= measuredFrom && c.At < measuredTo).Select(c => c.LatencyMs).Order().ToList();
            var seconds = Stats.Milliseconds(measuredTo - measuredFrom) / 1000;
            var flowsPerSecond = inWindow.Count / seconds;
            var serverCpuMsPerFlow = inWindow.Count == 0 ? double.NaN : (cpuEnd - cpuStart).TotalMilliseconds / inWindow.Count;
            var driverCpuMsPerFlow = inWindow.Count == 0 ? double.NaN : (driverCpuEnd - driverCpuStart).TotalMilliseconds / inWindow.Count;

            Console.WriteLine($"  flows in window      {inWindow.Count} in {Stats.F(seconds)} s = {Stats.F(flowsPerSecond, 1)} flows/s (all flows {completions.Count}, errors {flowErrors}, decision errors {decisionErrors})");
            Console.WriteLine($"  approve->token       p50 {Stats.F(Stats.Percentile(inWindow, 0.50))} ms, p99 {Stats.F(Stats.Percentile(inWindow, 0.99))} ms, max {Stats.F(inWindow.Count == 0 ? double.NaN : inWindow[^1])} ms");
            // Where the time goes: the device's decision request alone, and the agent's bc-authorize.
            List<double> Window(ConcurrentBag<(long At, double LatencyMs)> all) =>
                all.Where(c => c.At >= measuredFrom && c.At < measuredTo).Select(c => c.LatencyMs).Order().ToList();
            var decided = Window(decisionAnswers);
            var asked = Window(askAnswers);
            Console.WriteLine($"  decision answered    p50 {Stats.F(Stats.Percentile(decided, 0.50))} ms, p99 {Stats.F(Stats.Percentile(decided, 0.99))} ms; bc-authorize p50 {Stats.F(Stats.Percentile(asked, 0.50))} ms, p99 {Stats.F(Stats.Percentile(asked, 0.99))} ms");
            Console.WriteLine($"  server CPU per flow  {Stats.F(serverCpuMsPerFlow, 3)} ms ({Stats.F((cpuEnd - cpuStart).TotalSeconds / seconds * 100, 0)}% of one core); driver {Stats.F(driverCpuMsPerFlow, 3)} ms");
            var figures = new List<(string Key, string Value)>
            {
                ("engine", engine),
                ("nodes", nodeCount.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("flows_per_s", Stats.F(flowsPerSecond, 1)),
                ("approve_token_p50_ms", Stats.F(Stats.Percentile(inWindow, 0.50))),
                ("approve_token_p99_ms", Stats.F(Stats.Percentile(inWindow, 0.99))),
                ("server_cpu_ms_per_flow", Stats.F(serverCpuMsPerFlow, 3)),
                ("driver_cpu_ms_per_flow", Stats.F(driverCpuMsPerFlow, 3)),
                ("server_rss_mb", Stats.Mb(rss)),
            };
            if (postgres is not null)
            {
                // The database's share: its CPU and the write-ahead log it wrote, per flow in the window.
                var databaseCpu = databaseCpuEnd!.Value - databaseCpuStart!.Value;
                var databaseCpuMsPerFlow = inWindow.Count == 0 ? double.NaN : databaseCpu.TotalMilliseconds / inWindow.Count;
                var walKibPerFlow = inWindow.Count == 0 ? double.NaN : (walEnd - walStart) / 1024.0 / inWindow.Count;
                Console.WriteLine($"  PostgreSQL           CPU {Stats.F(databaseCpuMsPerFlow, 3)} ms per flow ({Stats.F(databaseCpu.TotalSeconds / seconds * 100, 0)}% of one core), " +
                                  $"WAL {Stats.F(walKibPerFlow)} KiB per flow");
                figures.Add(("database_cpu_ms_per_flow", Stats.F(databaseCpuMsPerFlow, 3)));
                figures.Add(("wal_kib_per_flow", Stats.F(walKibPerFlow)));
            }
            Console.WriteLine($"  server RSS           {Stats.Mb(rss)} MB (peak {Stats.Mb(peak)} MB)");
            figures.Add(("errors", (flowErrors + decisionErrors).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            // One result name per configuration, so bench/run.sh takes medians per configuration.
            Stats.Result(engine == "sqlite" ? "flows" : $"flows_{engine}_{nodeCount}n", [.. figures]);
            return flowErrors + decisionErrors == 0 && inWindow.Count > 0 ? 0 : 1;
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
}
