using System.Diagnostics;
using Assent.Client;
using Assent.Client.Authenticator;
using Assent.Protocol.Approvals;

namespace Assent.Bench;

/// <summary>
/// <see cref="AssentClient.ApproveAsync"/> on loopback against a server process: the time from the
/// device sending its decision to the method returning the token (its held <c>Prefer: wait</c> request answered).
/// </summary>
internal static class ApproveLatencyCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var count = args.Int("count", 300, 10, 10_000);
        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        try
        {
            var who = (await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, 1, ct))[0];
            using var http = BenchHttp.Create(baseUri);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            using var enrolling = new AuthenticatorClient(baseUri);
            var enrolled = await enrolling.EnrollAsync(who.InviteCode, "bench device", ct);
            using var device = new AuthenticatorClient(baseUri, enrolled.Key);
            using var agent = new AssentClient(new AssentClientOptions
            {
                Server = baseUri, ClientId = who.ClientId, ClientSecret = who.ClientSecret, UserDid = enrolled.UserDid,
            });
            Console.WriteLine($"approve-latency: {count} approvals, one at a time, server pid {server.Id}");

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var pending = System.Threading.Channels.Channel.CreateUnbounded<PendingRequest>();
            var streaming = Task.Run(async () =>
            {
                await foreach (var e in device.StreamAsync(stop.Token))
                {
                    if (e.Request is { } r)
                    {
                        await pending.Writer.WriteAsync(r, stop.Token);
                    }
                }
            }, stop.Token);

            var latencies = new List<double>(count);
            var decideOnly = new List<double>(count);
            for (var i = 0; i < count + 20; i++)
            {
                var approving = agent.ApproveAsync($"Bench approval {i}", new ApproveOptions { Scope = Provisioning.Scopes }, ct);
                var request = await pending.Reader.ReadAsync(ct);
                // Let the agent's held token request reach the server before the human taps.
                await Task.Delay(5, ct);
                var decided = Stopwatch.GetTimestamp();
                await device.DecideAsync(request, Decisions.Approve, ct);
                var decideAnswered = Stopwatch.GetTimestamp();
                var approval = await approving;
                var returned = Stopwatch.GetTimestamp();
                if (!approval.Approved)
                {
                    throw new InvalidOperationException($"approval {i} came back {approval.Status}");
                }
                if (i >= 20)
                {
                    latencies.Add(Stats.Milliseconds(returned - decided));
                    decideOnly.Add(Stats.Milliseconds(decideAnswered - decided));
                }
            }
            await stop.CancelAsync();
            try
            {
                await streaming;
            }
            catch (OperationCanceledException)
            {
            }
            latencies.Sort();
            decideOnly.Sort();
            Console.WriteLine($"  of which the decision POST itself: p50 {Stats.F(Stats.Percentile(decideOnly, 0.5))} ms, p99 {Stats.F(Stats.Percentile(decideOnly, 0.99))} ms");
            var (p50, p99) = (Stats.Percentile(latencies, 0.50), Stats.Percentile(latencies, 0.99));
            Console.WriteLine($"  decision sent -> ApproveAsync returned: p50 {Stats.F(p50)} ms, p99 {Stats.F(p99)} ms, max {Stats.F(latencies[^1])} ms (target p99 <= 10 ms)");
            Stats.Result("approve-latency", ("count", count.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("p50_ms", Stats.F(p50)), ("p99_ms", Stats.F(p99)));
            return 0;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }
}
