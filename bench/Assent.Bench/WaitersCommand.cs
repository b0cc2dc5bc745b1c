using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace Assent.Bench;

/// <summary>
/// Many agents held at once: <c>--count</c> pending requests, each with a token request held by
/// <c>Prefer: wait=60</c> on its own connection. While they are held, other traffic (discovery,
/// bc-authorize, a plain token poll) is timed and the server's memory read; they stay held for
/// <c>--seconds</c> and none may be answered early. Then every waiter is cancelled and the server stopped.
/// </summary>
internal static class WaitersCommand
{
    private const int WaitSeconds = 60;
    private const int RampBatch = 250;

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var count = args.Int("count", 10_000, 1, 50_000);
        var users = Math.Min(count, args.Int("users", 100, 1, 10_000));
        var hold = TimeSpan.FromSeconds(args.Int("seconds", 20, 5, 40));
        var probe = TimeSpan.FromSeconds(Math.Min(args.Int("probe", 10, 1, 50), hold.TotalSeconds - 2));
        var probeLoops = args.Int("probe-loops", 4, 1, 64);

        // Each waiter is one socket in the driver and one in the server: both processes need the fds.
        var (soft, _) = OpenFileLimit();
        if (soft < count + 1_000)
        {
            Console.Error.WriteLine($"the open-file limit is {soft}; {count} waiters need at least {count + 1_000}: raise it first (ulimit -n 65536)");
            return 69;
        }

        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, users, ct);
            using var http = BenchHttp.Create(baseUri);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            Console.WriteLine($"waiters: {count} held token requests over {users} agents, hold {hold.TotalSeconds:0} s, probe {probe.TotalSeconds:0} s x {probeLoops} loops, server pid {server.Id}, fd limit {soft}");
            var agents = provisioned.Select(p => new BenchAgent(http, p)).ToArray();

            // Requests outlive the whole run, so none expires while held.
            var pending = new (BenchAgent Agent, string AuthReqId)[count];
            var created = Stopwatch.StartNew();
            await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = ct }, async (i, token) =>
            {
                var agent = agents[i % agents.Length];
                pending[i] = (agent, await agent.AskAsync($"Bench waiter {i}", 900, token));
            });
            Console.WriteLine($"  created {count} pending requests in {Stats.F(created.Elapsed.TotalSeconds)} s");
            var (baseline, _) = server.Memory();

            // Waiters get their own client: a fresh pool, so one new connection each, counted as it opens.
            var connected = 0;
            using var waiterHttp = BenchHttp.Create(baseUri, () => Interlocked.Increment(ref connected));
            using var cancelWaiters = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cancelWaiters.CancelAfter(TimeSpan.FromSeconds(WaitSeconds - 5));
            var answered = 0;
            var unexpected = 0;
            var waiters = new List<Task>(count);
            var ramp = Stopwatch.StartNew();
            for (var start = 0; start < count; start += RampBatch)
            {
                for (var i = start; i < Math.Min(count, start + RampBatch); i++)
                {
                    var (agent, authReqId) = pending[i];
                    var waiterAgent = new BenchAgent(waiterHttp, agent.Who);
                    waiters.Add(Task.Run(async () =>
                    {
                        try
                        {
                            var (status, _) = await waiterAgent.TokenAsync(authReqId, WaitSeconds, cancelWaiters.Token);
                            Interlocked.Increment(ref answered);
                            if (status != HttpStatusCode.BadRequest)
                            {
                                Interlocked.Increment(ref unexpected);
                            }
                        }
                        catch (Exception) when (cancelWaiters.IsCancellationRequested)
                        {
                        }
                        catch (HttpRequestException e)
                        {
                            Interlocked.Increment(ref unexpected);
                            Console.Error.WriteLine($"waiter failed: {e.Message}");
                        }
                    }, CancellationToken.None));
                }
                // Let the server's accept queue drain before the next batch (its backlog is finite).
                var target = Math.Min(count, start + RampBatch);
                var batchStarted = Stopwatch.StartNew();
                while (Volatile.Read(ref connected) < target && batchStarted.Elapsed < TimeSpan.FromSeconds(5))
                {
                    await Task.Delay(5, ct);
                }
            }
            Console.WriteLine($"  opened {Volatile.Read(ref connected)} waiter connections in {Stats.F(ramp.Elapsed.TotalSeconds)} s");
            var heldFrom = Stopwatch.GetTimestamp();
            await Task.Delay(TimeSpan.FromSeconds(2), ct);

            // Other traffic while they are held.
            var discovery = new List<double>();
            var ask = new List<double>();
            var poll = new List<double>();
            var probeEnd = Stopwatch.GetTimestamp() + (long)(probe.TotalSeconds * Stopwatch.Frequency);
            var probes = Enumerable.Range(0, probeLoops).Select(loop => Task.Run(async () =>
            {
                var agent = agents[loop % agents.Length];
                var (d, a, p) = (new List<double>(), new List<double>(), new List<double>());
                var n = 0;
                while (Stopwatch.GetTimestamp() < probeEnd)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    using (var response = await http.GetAsync("/.well-known/openid-configuration", ct))
                    {
                        await response.Content.ReadAsByteArrayAsync(ct);
                        response.EnsureSuccessStatusCode();
                    }
                    var t1 = Stopwatch.GetTimestamp();
                    var authReqId = await agent.AskAsync($"Bench probe {loop}.{n++}", 60, ct);
                    var t2 = Stopwatch.GetTimestamp();
                    var (status, _) = await agent.TokenAsync(authReqId, null, ct);
                    var t3 = Stopwatch.GetTimestamp();
                    if (status != HttpStatusCode.BadRequest)
                    {
                        throw new InvalidOperationException($"a plain poll of a pending request answered {(int)status}");
                    }
                    d.Add(Stats.Milliseconds(t1 - t0));
                    a.Add(Stats.Milliseconds(t2 - t1));
                    p.Add(Stats.Milliseconds(t3 - t2));
                }
                lock (discovery)
                {
                    discovery.AddRange(d);
                    ask.AddRange(a);
                    poll.AddRange(p);
                }
            }, ct)).ToArray();
            await Task.WhenAll(probes);
            var (rss, peak) = server.Memory();
            // Keep holding for the rest of --seconds: none may be answered before its wait runs out.
            var holdLeft = hold - TimeSpan.FromSeconds(Stats.Milliseconds(Stopwatch.GetTimestamp() - heldFrom) / 1000);
            if (holdLeft > TimeSpan.Zero)
            {
                await Task.Delay(holdLeft, ct);
            }
            var held = count - Volatile.Read(ref answered);
            var heldFor = Stats.Milliseconds(Stopwatch.GetTimestamp() - heldFrom) / 1000;

            await cancelWaiters.CancelAsync();
            await Task.WhenAll(waiters);

            var all = discovery.Concat(ask).Concat(poll).Order().ToList();
            discovery.Sort();
            ask.Sort();
            poll.Sort();
            Console.WriteLine($"  held                 {held} of {count} waiters for {Stats.F(heldFor, 1)} s ({Volatile.Read(ref unexpected)} unexpected answers)");
            Console.WriteLine($"  server RSS           {Stats.Mb(rss)} MB with waiters held (before waiters {Stats.Mb(baseline)} MB, peak {Stats.Mb(peak)} MB)");
            Console.WriteLine($"  other requests p99   {Stats.F(Stats.Percentile(all, 0.99))} ms over {all.Count} requests (p50 {Stats.F(Stats.Percentile(all, 0.50))} ms)");
            Console.WriteLine($"    discovery          p50 {Stats.F(Stats.Percentile(discovery, 0.50))} ms, p99 {Stats.F(Stats.Percentile(discovery, 0.99))} ms");
            Console.WriteLine($"    bc-authorize       p50 {Stats.F(Stats.Percentile(ask, 0.50))} ms, p99 {Stats.F(Stats.Percentile(ask, 0.99))} ms");
            Console.WriteLine($"    token poll         p50 {Stats.F(Stats.Percentile(poll, 0.50))} ms, p99 {Stats.F(Stats.Percentile(poll, 0.99))} ms");
            Stats.Result("waiters",
                ("held", held.ToString(CultureInfo.InvariantCulture)),
                ("server_rss_mb", Stats.Mb(rss)),
                ("server_rss_baseline_mb", Stats.Mb(baseline)),
                ("other_p50_ms", Stats.F(Stats.Percentile(all, 0.50))),
                ("other_p99_ms", Stats.F(Stats.Percentile(all, 0.99))),
                ("discovery_p99_ms", Stats.F(Stats.Percentile(discovery, 0.99))),
                ("bc_authorize_p99_ms", Stats.F(Stats.Percentile(ask, 0.99))),
                ("token_poll_p99_ms", Stats.F(Stats.Percentile(poll, 0.99))),
                ("unexpected", Volatile.Read(ref unexpected).ToString(CultureInfo.InvariantCulture)));
            return held == count && Volatile.Read(ref unexpected) == 0 ? 0 : 1;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }

    /// <summary>RLIMIT_NOFILE as /proc/self/limits shows it.</summary>
    private static (long Soft, long Hard) OpenFileLimit()
    {
        var line = File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var parts = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (Parse(parts[0]), Parse(parts[1]));

        static long Parse(string s) => s == "unlimited" ? long.MaxValue : long.Parse(s, CultureInfo.InvariantCulture);
    }
}
