using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace Assent.Bench;

/// <summary>
/// <c>POST /v1/challenges</c> at saturation from <c>--clients</c> concurrent clients with one administrator's API key,
/// client i challenging users i, i + clients, … of <c>--users</c> in turn (the CIBA reference likewise, with each user's
/// agent). Nothing is decided, so pending requests pile up; the cap on pending requests per key (or agent) and user is
/// raised by the bench server, and checking it reads that pair's pending requests, so more users keep each pile small
/// as a real deployment's would be. Beside it, in the same server and the same run, the reference: CIBA
/// <c>POST /oauth/bc-authorize</c> from as many agents (the same kind of work: one new pending request). The two
/// alternate in rounds so drift on a shared machine falls on both.
/// </summary>
internal static class ChallengesCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var clients = args.Int("clients", 32, 1, 1024);
        var users = args.Int("users", 32, clients, 100_000);
        var round = TimeSpan.FromSeconds(args.Int("seconds", 10, 1, 600));
        var rounds = args.Int("rounds", 2, 1, 20);
        var warmup = TimeSpan.FromSeconds(args.Int("warmup", 10, 0, 600));

        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        using var http = BenchHttp.Create(baseUri);
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, users, ct);
            var key = await V1Backend.ProvisionKeyAsync(dataDirectory, baseUri, ct);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            var backend = new V1Backend(http, key);
            var agents = provisioned.Select(p => new BenchAgent(http, p)).ToList();
            Console.WriteLine($"challenges: {clients} clients over {users} users, {rounds} rounds of {round.TotalSeconds:0} s each way after {warmup.TotalSeconds:0} s warm-up, " +
                              $"server pid {server.Id}, {Environment.ProcessorCount} cores; pending cap per key and user raised to 100000 by the bench server");

            long errors = 0;
            // One closed loop per client for `length`; returns the latencies (ms) of the answers that came back right.
            async Task<List<double>> LoopAsync(Func<int, int, Task<bool>> call, TimeSpan length)
            {
                var end = Stopwatch.GetTimestamp() + (long)(length.TotalSeconds * Stopwatch.Frequency);
                var all = await Task.WhenAll(Enumerable.Range(0, clients).Select(i => Task.Run(async () =>
                {
                    var mine = new List<double>();
                    for (var n = 0; Stopwatch.GetTimestamp() < end; n++)
                    {
                        var sent = Stopwatch.GetTimestamp();
                        if (await call(i, n))
                        {
                            mine.Add(Stats.Milliseconds(Stopwatch.GetTimestamp() - sent));
                        }
                        else if (Interlocked.Increment(ref errors) > 100)
                        {
                            throw new InvalidOperationException("more than 100 errors");
                        }
                    }
                    return mine;
                }, ct)));
                return [.. all.SelectMany(l => l)];
            }

            var seq = 0;
            async Task<bool> Challenge(int i, int n)
            {
                var (status, _) = await backend.CreateChallengeAsync(provisioned[(i + n * clients) % users].Handle, Interlocked.Increment(ref seq), ct);
                if (status != HttpStatusCode.Created && Interlocked.Read(ref errors) < 3)
                {
                    Console.Error.WriteLine($"  POST /v1/challenges answered {(int)status}");
                }
                return status == HttpStatusCode.Created;
            }
            async Task<bool> Ask(int i, int n)
            {
                await agents[(i + n * clients) % users].AskAsync($"Bench ask {i}.{n}", null, ct);
                return true;
            }

            if (warmup > TimeSpan.Zero)
            {
                await LoopAsync(Challenge, warmup / 2);
                await LoopAsync(Ask, warmup / 2);
            }
            errors = 0;
            var challenged = new List<double>();
            var asked = new List<double>();
            var cpu = (Challenges: TimeSpan.Zero, Asks: TimeSpan.Zero);
            for (var r = 0; r < rounds; r++)
            {
                var before = server.CpuTime();
                challenged.AddRange(await LoopAsync(Challenge, round));
                var middle = server.CpuTime();
                asked.AddRange(await LoopAsync(Ask, round));
                cpu = (cpu.Challenges + (middle - before), cpu.Asks + (server.CpuTime() - middle));
            }
            challenged.Sort();
            asked.Sort();
            var seconds = round.TotalSeconds * rounds;
            var (challengeRate, askRate) = (challenged.Count / seconds, asked.Count / seconds);
            Console.WriteLine($"  POST /v1/challenges      {Stats.F(challengeRate, 0)}/s, p50 {Stats.F(Stats.Percentile(challenged, 0.5))} ms, p99 {Stats.F(Stats.Percentile(challenged, 0.99))} ms, " +
                              $"server CPU {Stats.F(cpu.Challenges.TotalMilliseconds / challenged.Count, 3)} ms each (target >= 2000/s)");
            Console.WriteLine($"  POST /oauth/bc-authorize {Stats.F(askRate, 0)}/s, p50 {Stats.F(Stats.Percentile(asked, 0.5))} ms, p99 {Stats.F(Stats.Percentile(asked, 0.99))} ms, " +
                              $"server CPU {Stats.F(cpu.Asks.TotalMilliseconds / asked.Count, 3)} ms each (reference)");
            Console.WriteLine($"  ratio challenges / bc-authorize: {Stats.F(challengeRate / askRate)} (errors {errors})");
            Stats.Result("challenges",
                ("clients", clients.ToString(CultureInfo.InvariantCulture)),
                ("users", users.ToString(CultureInfo.InvariantCulture)),
                ("challenges_per_s", Stats.F(challengeRate, 0)),
                ("bc_authorize_per_s", Stats.F(askRate, 0)),
                ("ratio", Stats.F(challengeRate / askRate)),
                ("challenge_p99_ms", Stats.F(Stats.Percentile(challenged, 0.99))),
                ("errors", errors.ToString(CultureInfo.InvariantCulture)));
            return errors == 0 ? 0 : 1;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }
}
