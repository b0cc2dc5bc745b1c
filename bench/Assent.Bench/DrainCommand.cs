using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Assent.Protocol.Approvals;

namespace Assent.Bench;

/// <summary>
/// A receiver outage and its backlog: with the receiver down, <c>--deliveries</c> challenges are created and approved
/// (one delivery each, to the one endpoint); then the receiver comes back and the time until it has read every one is
/// measured. Meanwhile one probe client creates and decides a challenge at <c>--probe-rate</c> per second throughout,
/// so the latency of new requests during the drain is compared with the same probe's latency when the server is idle
/// (just before the outage, and after the drain).
/// </summary>
internal static class DrainCommand
{
    private enum Phase
    {
        IdleBefore,
        Outage,
        Drain,
        IdleAfter,
    }

    private sealed record Probe(Phase Phase, double CreateMs, double DecideMs);

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var deliveries = args.Int("deliveries", 50_000, 1, 1_000_000);
        var users = args.Int("users", 32, 1, 1024);
        var probeRate = args.Int("probe-rate", 50, 1, 1000);
        var probeSeconds = TimeSpan.FromSeconds(args.Int("probe-seconds", 10, 1, 600));
        var warmup = TimeSpan.FromSeconds(args.Int("warmup", 10, 0, 600));

        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        using var http = BenchHttp.Create(baseUri);
        await using var receiver = new WebhookReceiver();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            // The last user is the probe's; the others carry the load.
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, users + 1, ct);
            var key = await V1Backend.ProvisionKeyAsync(dataDirectory, baseUri, ct);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            await receiver.StartAsync(ct);
            var backend = new V1Backend(http, key);
            await backend.AddWebhookAsync(receiver.Url, ct);
            var devices = await Task.WhenAll(provisioned.Select(p => BenchDevice.EnrollAsync(http, p.InviteCode, ct)));
            var probeDevice = devices[^1];
            var probeUser = provisioned[^1];
            var loadUsers = provisioned.Take(users).ToList();
            Console.WriteLine($"drain: {deliveries} deliveries queued while the receiver is down, {users} users; probe {probeRate}/s; server pid {server.Id}, " +
                              $"{Environment.ProcessorCount} cores");

            // Load devices approve what they hear at once; the probe device hands its requests to the probe loop.
            var probeHeard = new ConcurrentDictionary<string, TaskCompletionSource<byte[]>>(StringComparer.Ordinal);
            var loadIds = new ConcurrentBag<string>();
            long decided = 0, decisionErrors = 0;
            var (streams, ready) = V1Streams.Start(devices, async (device, id, payload) =>
            {
                if (device == probeDevice)
                {
                    probeHeard.GetOrAdd(id, _ => new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(payload);
                    return;
                }
                if (await device.PostDecisionAsync(id, device.Decision(Decisions.Approve, payload), stop.Token) == HttpStatusCode.OK)
                {
                    loadIds.Add(id);
                    Interlocked.Increment(ref decided);
                }
                else
                {
                    Interlocked.Increment(ref decisionErrors);
                }
            }, stop.Token);
            await Task.WhenAll(ready).WaitAsync(TimeSpan.FromSeconds(30), ct);

            var phase = Phase.IdleBefore;
            var probes = new ConcurrentBag<Probe>();
            long probeErrors = 0;
            var probing = Task.Run(async () =>
            {
                var interval = (long)(Stopwatch.Frequency / (double)probeRate);
                var next = Stopwatch.GetTimestamp();
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    while (Stopwatch.GetTimestamp() < next)
                    {
                        await Task.Delay(1, stop.Token);
                    }
                    next += interval;
                    var at = phase;
                    var t0 = Stopwatch.GetTimestamp();
                    var (status, id) = await backend.CreateChallengeAsync(probeUser.Handle, 1_000_000 + n, stop.Token);
                    var t1 = Stopwatch.GetTimestamp();
                    if (id is null)
                    {
                        Interlocked.Increment(ref probeErrors);
                        continue;
                    }
                    var payload = await probeHeard.GetOrAdd(id, _ => new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously)).Task
                        .WaitAsync(TimeSpan.FromSeconds(30), stop.Token);
                    var content = probeDevice.Decision(Decisions.Approve, payload);
                    var t2 = Stopwatch.GetTimestamp();
                    var decidedStatus = await probeDevice.PostDecisionAsync(id, content, stop.Token);
                    var t3 = Stopwatch.GetTimestamp();
                    if (decidedStatus != HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref probeErrors);
                        continue;
                    }
                    // A probe counts for a phase only if it began and ended in it.
                    if (phase == at)
                    {
                        probes.Add(new Probe(at, Stats.Milliseconds(t1 - t0), Stats.Milliseconds(t3 - t2)));
                    }
                }
            }, CancellationToken.None);

            // Warm-up (tiered JIT) under the same kind of load, delivered, then the idle probe.
            if (warmup > TimeSpan.Zero)
            {
                var warmEnd = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
                var warmed = 0;
                while (Stopwatch.GetTimestamp() < warmEnd)
                {
                    warmed += await V1Streams.CreateAsync(backend, loadUsers, 1000, 32, ct);
                }
                await WaitForAsync(() => loadIds.Count >= warmed && loadIds.All(id => receiver.TryGet(id, out _)), TimeSpan.FromSeconds(120), ct);
            }
            var warmIds = loadIds.Count;
            probes.Clear();
            await Task.Delay(probeSeconds, ct);

            phase = Phase.Outage;
            await receiver.StopAsync();
            var outageStarted = Stopwatch.GetTimestamp();
            await V1Streams.CreateAsync(backend, loadUsers, deliveries, 32, ct);
            await WaitForAsync(() => Interlocked.Read(ref decided) - warmIds >= deliveries, TimeSpan.FromSeconds(120), ct);
            var outageSeconds = Stats.Milliseconds(Stopwatch.GetTimestamp() - outageStarted) / 1000;
            var queued = loadIds.ToArray();
            var heardBefore = queued.Count(id => receiver.TryGet(id, out _));
            Console.WriteLine($"  outage: {deliveries} challenges created and approved in {Stats.F(outageSeconds, 1)} s " +
                              $"({heardBefore} of all {queued.Length} load challenges delivered before it)");

            var cpuBefore = server.CpuTime();
            await receiver.StartAsync(ct);
            var back = Stopwatch.GetTimestamp();
            phase = Phase.Drain;
            var all = await WaitForAsync(() => queued.All(id => receiver.TryGet(id, out _)), TimeSpan.FromSeconds(300), ct);
            phase = Phase.IdleAfter;
            var cpuDrain = server.CpuTime() - cpuBefore;
            var reads = queued.Select(id => receiver.TryGet(id, out var at) ? at : (long?)null).ToList();
            var unread = reads.Count(r => r is null);
            var lastRead = reads.Max() ?? back;
            var firstRead = reads.Where(r => r >= back).Min() ?? back;
            var drainSeconds = Stats.Milliseconds(lastRead - back) / 1000;
            await Task.Delay(probeSeconds, ct);
            await stop.CancelAsync();
            await Task.WhenAll(streams);
            try
            {
                await probing;
            }
            catch (OperationCanceledException)
            {
            }

            List<double> Of(Phase p, Func<Probe, double> f) => [.. probes.Where(x => x.Phase == p).Select(f).Order()];
            var lines = new List<(string Key, string Value)>
            {
                ("deliveries", deliveries.ToString(CultureInfo.InvariantCulture)),
                ("drain_s", Stats.F(drainSeconds, 1)),
                ("first_read_after_s", Stats.F(Stats.Milliseconds(firstRead - back) / 1000, 1)),
                ("delivered_per_s", Stats.F(queued.Length / drainSeconds, 0)),
            };
            Console.WriteLine($"  receiver back: all {queued.Length} read {Stats.F(drainSeconds, 1)} s later (first after {Stats.F(Stats.Milliseconds(firstRead - back) / 1000, 1)} s; " +
                              $"{Stats.F(queued.Length / drainSeconds, 0)}/s; server CPU {Stats.F(cpuDrain.TotalSeconds / drainSeconds * 100, 0)}% of one core){(all ? "" : $" -- {unread} NOT READ")} (target <= 60 s)");
            foreach (var (name, f) in new (string, Func<Probe, double>)[] { ("create", p => p.CreateMs), ("decide", p => p.DecideMs) })
            {
                var (before, drain, after) = (Of(Phase.IdleBefore, f), Of(Phase.Drain, f), Of(Phase.IdleAfter, f));
                Console.WriteLine($"  probe {name,-6} idle before p50 {Stats.F(Stats.Percentile(before, 0.5))} p99 {Stats.F(Stats.Percentile(before, 0.99))} ms ({before.Count}); " +
                                  $"drain p50 {Stats.F(Stats.Percentile(drain, 0.5))} p99 {Stats.F(Stats.Percentile(drain, 0.99))} ms ({drain.Count}); " +
                                  $"idle after p50 {Stats.F(Stats.Percentile(after, 0.5))} p99 {Stats.F(Stats.Percentile(after, 0.99))} ms ({after.Count}); " +
                                  $"drain/idle-after p50 {Stats.F(Stats.Percentile(drain, 0.5) / Stats.Percentile(after, 0.5))} p99 {Stats.F(Stats.Percentile(drain, 0.99) / Stats.Percentile(after, 0.99))}");
                lines.Add(($"{name}_idle_p50_ms", Stats.F(Stats.Percentile(after, 0.5))));
                lines.Add(($"{name}_idle_p99_ms", Stats.F(Stats.Percentile(after, 0.99))));
                lines.Add(($"{name}_drain_p50_ms", Stats.F(Stats.Percentile(drain, 0.5))));
                lines.Add(($"{name}_drain_p99_ms", Stats.F(Stats.Percentile(drain, 0.99))));
                lines.Add(($"{name}_ratio_p99", Stats.F(Stats.Percentile(drain, 0.99) / Stats.Percentile(after, 0.99))));
            }
            lines.Add(("errors", (decisionErrors + probeErrors).ToString(CultureInfo.InvariantCulture)));
            Console.WriteLine($"  POSTs read {receiver.Posts} for {receiver.Distinct} challenges; decision errors {decisionErrors}, probe errors {probeErrors}");
            Stats.Result("drain", [.. lines]);
            return all && decisionErrors + probeErrors == 0 ? 0 : 1;
        }
        finally
        {
            await stop.CancelAsync();
            Provisioning.Delete(dataDirectory);
        }
    }

    private static async Task<bool> WaitForAsync(Func<bool> done, TimeSpan limit, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > limit)
            {
                return false;
            }
            await Task.Delay(20, ct);
        }
        return true;
    }
}
