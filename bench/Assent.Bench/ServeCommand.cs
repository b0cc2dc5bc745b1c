using Assent.Server.Common;
using Assent.Server.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Assent.Bench;

/// <summary>The server alone, as the driver's child process.</summary>
internal static class ServeCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var urls = args.Required("urls");
        var options = new AssentOptions { Issuer = args.String("issuer") ?? urls, DataDirectory = args.Required("data"), Database = args.String("database") };
        // `waiters` holds --count requests over --users agents, 100 per agent and user by default: far above the
        // default cap of pending requests per agent and user (docs/deployment.md §10), which it is not there to measure.
        options.Limits.MaxPendingPerAgentPerUser = 100_000;
        // `push-latency`'s receiver, the push service's stand-in, listens on loopback (docs/deployment.md, "Web Push").
        options.Push.AllowLoopback = true;
        // The webhook modes deliver to the driver's own receiver on loopback, which the SSRF guard refuses unless the
        // operator allows private targets (docs/webhooks.md; Assent__Webhooks__AllowPrivateTargets=true in a deployment).
        options.Webhooks.AllowPrivateTargets = true;
        // `signin` drives every browser from the one loopback address, which the per-address limit of the sign-in
        // doors (docs/deployment.md §10) would otherwise hold to 30 a minute.
        options.Limits.CreationsPerMinute = 1_000_000;
        // Each response says how long the server itself took (Server-Timing, docs/deployment.md §12): the driver prints
        // that beside its own figures (ServerTimes).
        options.ServerTiming = true;
        // Settings from the environment win, as for `assent server` (Assent__Webhooks__BacklogPerSecond=…): one build
        // compared with itself under another setting, side by side.
        new ConfigurationBuilder().AddEnvironmentVariables().Build().GetSection(AssentOptions.Section).Bind(options);
        var app = await AssentServer.BuildAsync(options, urls, Console.Out, logLevel: LogLevel.Warning, ct: ct);
        // The driver's cue that the runtime has finished compiling the hot paths (ServerProcess.SettleAsync).
        _ = Task.Run(() => ReportJitAsync(ct), CancellationToken.None);
        if (Environment.GetEnvironmentVariable("ASSENT_BENCH_GC_LOG") == "1")
        {
            // A line a second on the collections and the time they paused the server, to set beside a tail's bursts.
            _ = Task.Run(() => LogCollectionsAsync(ct), CancellationToken.None);
        }
        if (args.Flag("stop-on-stdin-eof"))
        {
            // The driver stops its child by closing our stdin: a clean shutdown without signals.
            _ = Task.Run(async () =>
            {
                await Console.In.ReadToEndAsync(CancellationToken.None);
                app.Lifetime.StopApplication();
            }, CancellationToken.None);
        }
        await app.RunAsync(ct);
        await app.DisposeAsync();
        return 0;
    }

    /// <summary>
    /// Twice a second, the time this process has spent compiling methods so far (every thread, tiered recompilation included),
    /// as <c>@jit MILLISECONDS</c>: the driver reads it instead of forwarding it (<see cref="ServerProcess"/>).
    /// </summary>
    private static async Task ReportJitAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        while (await timer.WaitForNextTickAsync(CancellationToken.None) && !ct.IsCancellationRequested)
        {
            Console.WriteLine(FormattableString.Invariant($"{ServerProcess.JitReport}{System.Runtime.JitInfo.GetCompilationTime(currentThread: false).TotalMilliseconds:0.0}"));
        }
    }

    /// <summary>With <c>ASSENT_BENCH_GC_LOG=1</c>: each second, the collections of each generation and the pause they added.</summary>
    private static async Task LogCollectionsAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var (g0, g1, g2, paused) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
        while (await timer.WaitForNextTickAsync(CancellationToken.None) && !ct.IsCancellationRequested)
        {
            var (n0, n1, n2, now) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
            // The longest pause of the last collection of any kind (a collection may pause more than once).
            var last = GC.GetGCMemoryInfo(GCKind.Any).PauseDurations.ToArray().DefaultIfEmpty().Max();
            Console.WriteLine(FormattableString.Invariant(
                $"gc {DateTime.UtcNow:HH:mm:ss.fff}: gen0 +{n0 - g0}, gen1 +{n1 - g1}, gen2 +{n2 - g2}, paused +{(now - paused).TotalMilliseconds:0.0} ms, last pause {last.TotalMilliseconds:0.0} ms"));
            (g0, g1, g2, paused) = (n0, n1, n2, now);
        }
    }
}
