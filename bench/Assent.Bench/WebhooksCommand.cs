using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Assent.Protocol.Approvals;

namespace Assent.Bench;

/// <summary>
/// Decision → webhook received. Challenges are created first (an administrator's API key, spread over
/// <c>--users</c> users whose devices hear them on their streams); then the devices decide them at <c>--rate</c>
/// per second, open loop, and the driver's own receiver notes when each challenge's event is read. Two latencies per
/// decision: from the decision's answer arriving, and from its request being sent. The reference in the same run is
/// the decision request's own round trip.
/// </summary>
internal static class WebhooksCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var users = args.Int("users", 32, 1, 1024);
        var rate = args.Int("rate", 500, 1, 100_000);
        var measure = TimeSpan.FromSeconds(args.Int("seconds", 20, 1, 600));
        var warmup = TimeSpan.FromSeconds(args.Int("warmup", 10, 0, 600));
        var total = (int)(rate * (warmup + measure).TotalSeconds);

        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        using var http = BenchHttp.Create(baseUri);
        await using var receiver = new WebhookReceiver();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, users, ct);
            var key = await V1Backend.ProvisionKeyAsync(dataDirectory, baseUri, ct);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            await receiver.StartAsync(ct);
            var backend = new V1Backend(http, key);
            await backend.AddWebhookAsync(receiver.Url, ct);
            var devices = await Task.WhenAll(provisioned.Select(p => BenchDevice.EnrollAsync(http, p.InviteCode, ct)));
            Console.WriteLine($"webhooks: {total} challenges over {users} users decided at {rate}/s ({warmup.TotalSeconds:0} s warm-up, {measure.TotalSeconds:0} s measured), " +
                              $"server pid {server.Id}, {Environment.ProcessorCount} cores");

            var heard = new ConcurrentQueue<HeardChallenge>();
            var (streams, ready) = V1Streams.Start(devices, (d, id, payload) =>
            {
                heard.Enqueue(new HeardChallenge(d, id, payload));
                return Task.CompletedTask;
            }, stop.Token);
            await Task.WhenAll(ready).WaitAsync(TimeSpan.FromSeconds(30), ct);

            var created = await V1Streams.CreateAsync(backend, provisioned, total, 32, ct);
            var deadline = Stopwatch.StartNew();
            while (heard.Count < created && deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(50, ct);
            }
            Console.WriteLine($"  {created} challenges created, {heard.Count} heard by the devices in {Stats.F(deadline.Elapsed.TotalSeconds, 1)} s more");

            var order = heard.ToArray();
            var sent = new long[order.Length];
            var answered = new long[order.Length];
            long decisionErrors = 0;
            var started = Stopwatch.GetTimestamp();
            var cpuStart = TimeSpan.Zero;
            var measuredFrom = (int)(rate * warmup.TotalSeconds);
            var pacing = Paced.RunAsync(order.Length, rate, 1024, async i =>
            {
                var h = order[i];
                if (i == measuredFrom)
                {
                    cpuStart = server.CpuTime();
                }
                var content = h.Device.Decision(Decisions.Approve, h.Payload);
                sent[i] = Stopwatch.GetTimestamp();
                var status = await h.Device.PostDecisionAsync(h.Id, content, stop.Token);
                answered[i] = Stopwatch.GetTimestamp();
                if (status != HttpStatusCode.OK && Interlocked.Increment(ref decisionErrors) <= 3)
                {
                    Console.Error.WriteLine($"  decision answered {(int)status}");
                }
            }, ct);
            await pacing;
            var decidedIn = Stats.Milliseconds(Stopwatch.GetTimestamp() - started) / 1000;
            var cpuEnd = server.CpuTime();
            deadline.Restart();
            while (receiver.Distinct < order.Length && deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(20, ct);
            }
            await stop.CancelAsync();
            await Task.WhenAll(streams);

            var fromAnswer = new List<double>();
            var fromSend = new List<double>();
            var decision = new List<double>();
            var missing = 0;
            for (var i = measuredFrom; i < order.Length; i++)
            {
                decision.Add(Stats.Milliseconds(answered[i] - sent[i]));
                if (!receiver.TryGet(order[i].Id, out var at))
                {
                    missing++;
                    continue;
                }
                fromAnswer.Add(Stats.Milliseconds(at - answered[i]));
                fromSend.Add(Stats.Milliseconds(at - sent[i]));
            }
            fromAnswer.Sort();
            fromSend.Sort();
            decision.Sort();
            var measured = order.Length - measuredFrom;
            var earlier = fromAnswer.Count(x => x < 0);
            Console.WriteLine($"  decided {order.Length} in {Stats.F(decidedIn, 1)} s = {Stats.F(order.Length / decidedIn, 0)}/s; measured the last {measured}; " +
                              $"webhooks missing {missing}, POSTs {receiver.Posts} for {receiver.Distinct} challenges; decision errors {decisionErrors}");
            Console.WriteLine($"  decision answered -> webhook read  p50 {Stats.F(Stats.Percentile(fromAnswer, 0.5))} ms, p99 {Stats.F(Stats.Percentile(fromAnswer, 0.99))} ms, " +
                              $"max {Stats.F(fromAnswer.Count == 0 ? double.NaN : fromAnswer[^1])} ms (target p50 <= 5, p99 <= 25; {earlier} read before the answer arrived)");
            Console.WriteLine($"  decision sent -> webhook read      p50 {Stats.F(Stats.Percentile(fromSend, 0.5))} ms, p99 {Stats.F(Stats.Percentile(fromSend, 0.99))} ms, " +
                              $"max {Stats.F(fromSend.Count == 0 ? double.NaN : fromSend[^1])} ms");
            Console.WriteLine($"  decision round trip (reference)    p50 {Stats.F(Stats.Percentile(decision, 0.5))} ms, p99 {Stats.F(Stats.Percentile(decision, 0.99))} ms; " +
                              $"ratio sent->webhook / round trip: p50 {Stats.F(Stats.Percentile(fromSend, 0.5) / Stats.Percentile(decision, 0.5))}, " +
                              $"p99 {Stats.F(Stats.Percentile(fromSend, 0.99) / Stats.Percentile(decision, 0.99))}");
            Console.WriteLine($"  server CPU {Stats.F((cpuEnd - cpuStart).TotalMilliseconds / measured, 3)} ms per decision and its delivery " +
                              $"({Stats.F((cpuEnd - cpuStart).TotalSeconds / (measured / (double)rate) * 100, 0)}% of one core)");
            Stats.Result("webhooks",
                ("rate", rate.ToString(CultureInfo.InvariantCulture)),
                ("answer_webhook_p50_ms", Stats.F(Stats.Percentile(fromAnswer, 0.5))),
                ("answer_webhook_p99_ms", Stats.F(Stats.Percentile(fromAnswer, 0.99))),
                ("sent_webhook_p50_ms", Stats.F(Stats.Percentile(fromSend, 0.5))),
                ("sent_webhook_p99_ms", Stats.F(Stats.Percentile(fromSend, 0.99))),
                ("decision_p50_ms", Stats.F(Stats.Percentile(decision, 0.5))),
                ("decision_p99_ms", Stats.F(Stats.Percentile(decision, 0.99))),
                ("ratio_p99", Stats.F(Stats.Percentile(fromSend, 0.99) / Stats.Percentile(decision, 0.99))),
                ("missing", missing.ToString(CultureInfo.InvariantCulture)),
                ("errors", decisionErrors.ToString(CultureInfo.InvariantCulture)));
            return missing == 0 && decisionErrors == 0 ? 0 : 1;
        }
        finally
        {
            await stop.CancelAsync();
            Provisioning.Delete(dataDirectory);
        }
    }
}

/// <summary>Device streams and challenge creation shared by the webhook modes.</summary>
internal static class V1Streams
{
    /// <summary>Opens every device's stream; <paramref name="onChallenge"/> gets each pending request it hears.</summary>
    public static (Task[] Streams, Task[] Ready) Start(IReadOnlyList<BenchDevice> devices, Func<BenchDevice, string, byte[], Task> onChallenge, CancellationToken ct)
    {
        var ready = devices.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var streams = devices.Select((device, i) => Task.Run(async () =>
        {
            try
            {
                await device.StreamAsync((id, payload, _) => onChallenge(device, id, payload), ready[i], ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
        }, CancellationToken.None)).ToArray();
        return (streams, ready.Select(r => r.Task).ToArray());
    }

    /// <summary>Creates <paramref name="total"/> challenges round-robin over the users from <paramref name="clients"/> loops; returns how many were created.</summary>
    public static async Task<int> CreateAsync(V1Backend backend, IReadOnlyList<Provisioned> users, int total, int clients, CancellationToken ct)
    {
        var next = -1;
        var created = 0;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            for (var n = Interlocked.Increment(ref next); n < total; n = Interlocked.Increment(ref next))
            {
                var (status, id) = await backend.CreateChallengeAsync(users[n % users.Count].Handle, n, ct);
                if (id is null)
                {
                    throw new InvalidOperationException($"POST /v1/challenges answered {(int)status}");
                }
                Interlocked.Increment(ref created);
            }
        }, ct)));
        return created;
    }
}
