using System.Diagnostics;
using System.Globalization;

namespace Assent.Bench;

/// <summary>
/// <c>Assent.Bench serve</c> as a child process, so its CPU (utime+stime from /proc/PID/stat)
/// and memory (VmRSS) are the server's alone, not the driver's.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    // Linux reports /proc times in USER_HZ, fixed at 100 for the userspace ABI on every mainstream architecture.
    private const double ClockTicksPerSecond = 100;

    private readonly Process _process;

    private ServerProcess(Process process, Uri baseUri)
    {
        _process = process;
        BaseUri = baseUri;
    }

    public Uri BaseUri { get; }

    public int Id => _process.Id;

    /// <param name="serverDll">Another build's <c>Assent.Bench.dll</c> to serve with (to compare two commits side by side); this one by default.</param>
    public static async Task<ServerProcess> StartAsync(string dataDirectory, Uri baseUri, HttpClient http, CancellationToken ct, string? database = null, Uri? issuer = null,
        string? serverDll = null)
    {
        var host = serverDll is not null ? "dotnet" : Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which executable is running");
        var info = new ProcessStartInfo(host)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The collector `assent server` runs with (Assent.Cli.csproj: server GC): the driver itself keeps the workstation
        // one. DOTNET_gcServer=0 in the environment measures the server under the workstation collector instead.
        if (Environment.GetEnvironmentVariable("DOTNET_gcServer") is null)
        {
            info.Environment["DOTNET_gcServer"] = "1";
        }
        if (serverDll is not null)
        {
            info.ArgumentList.Add(Path.GetFullPath(serverDll));
        }
        else if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            info.ArgumentList.Add(typeof(ServerProcess).Assembly.Location);
        }
        foreach (var arg in new[] { "serve", "--data", dataDirectory, "--urls", baseUri.ToString().TrimEnd('/'), "--issuer", (issuer ?? baseUri).ToString().TrimEnd('/'), "--stop-on-stdin-eof" })
        {
            info.ArgumentList.Add(arg);
        }
        if (database is not null)
        {
            info.ArgumentList.Add("--database");
            info.ArgumentList.Add(database);
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the server process");
        var server = new ServerProcess(process, baseUri);
        process.OutputDataReceived += (_, e) => server.Received(e.Data);
        process.ErrorDataReceived += (_, e) => Forward(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the server process exited with {process.ExitCode} before it was healthy");
            }
            try
            {
                using var response = await http.GetAsync(new Uri(baseUri, "/healthz"), ct);
                if (response.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
            }
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                await server.DisposeAsync();
                throw new TimeoutException("the server did not answer /healthz within 30 s");
            }
            await Task.Delay(100, ct);
        }
    }

    /// <summary>What the serve command prints before its compilation time so far (ServeCommand).</summary>
    internal const string JitReport = "@jit ";

    /// <summary>The server's compilation time so far in milliseconds, as it last reported it; negative before its first report.</summary>
    private double _jitMs = -1;

    private void Received(string? line)
    {
        if (line is not null && line.StartsWith(JitReport, StringComparison.Ordinal) &&
            double.TryParse(line.AsSpan(JitReport.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms))
        {
            Volatile.Write(ref _jitMs, ms);
            return;
        }
        Forward(line);
    }

    /// <summary>
    /// Runs <paramref name="loops"/> closed loops of <paramref name="step"/> (loop, iteration) until every one of <paramref name="servers"/>
    /// has spent less than <see cref="QuietJitMsPerSecond"/>
    /// compiling in each of the last <see cref="QuietSeconds"/> seconds, at most <paramref name="limit"/>; what happened, to print.
    /// <para>
    /// The runtime compiles a method first quickly, then again, optimized, once it has been called often enough (tiered
    /// compilation, with an instrumented step between for dynamic PGO), on a background thread. Under load on 2 cores that went
    /// on for 30-55 s after a server started (perf: 12-30% of the machine's CPU in the runtime's tiering thread, then 2% or less), so a
    /// fixed warm-up of 15 s measured the first phase during it and the next one after it. What a long-running server does is
    /// measured once that work is done.
    /// </para>
    /// </summary>
    public static async Task<string> SettleAsync(IReadOnlyList<ServerProcess> servers, int loops, Func<int, int, Task> step, TimeSpan limit, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = Task.WhenAll(Enumerable.Range(0, loops).Select(i => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                await step(i, n);
            }
        }, CancellationToken.None)));
        var history = new List<double[]>();
        var quiet = false;
        try
        {
            while (Stopwatch.GetElapsedTime(started) < limit && !running.IsCompleted)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                history.Add([.. servers.Select(s => Volatile.Read(ref s._jitMs))]);
                if (history.Count >= 5 && history[^1].Any(ms => ms < 0))
                {
                    break;
                }
                if (history.Count > QuietSeconds && Enumerable.Range(0, servers.Count).All(i =>
                        history[^(QuietSeconds + 1)][i] >= 0 && Enumerable.Range(1, QuietSeconds).All(k => history[^k][i] - history[^(k + 1)][i] < QuietJitMsPerSecond)))
                {
                    quiet = true;
                    break;
                }
            }
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await running;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        }
        var took = Stats.F(Stopwatch.GetElapsedTime(started).TotalSeconds, 0);
        return servers.Any(s => Volatile.Read(ref s._jitMs) < 0) ? "a server did not report its compilation time (a build from before the report)"
            : quiet ? $"{took} s until the servers' JIT was quiet"
            : $"the servers' JIT still compiling after {took} s";
    }

    /// <summary>Compilation per second below which a server counts as warm: 1% of a core.</summary>
    private const double QuietJitMsPerSecond = 10;

    private const int QuietSeconds = 3;

    private static void Forward(string? line)
    {
        if (!string.IsNullOrEmpty(line))
        {
            Console.Error.WriteLine("[server] " + line);
        }
    }

    /// <summary>Server CPU time so far (user + system).</summary>
    public TimeSpan CpuTime() => Stat(_process.Id)?.Cpu ?? TimeSpan.Zero;

    /// <summary>Parent and CPU time so far (user + system) of process <paramref name="pid"/>; null once it is gone.</summary>
    public static (int Parent, TimeSpan Cpu)? Stat(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        // Fields after the command name, which is in parentheses and may contain spaces.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // stat(5): field 4 ppid, 14 utime and 15 stime; fields[0] here is field 3 (state).
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (int.Parse(fields[1], CultureInfo.InvariantCulture), TimeSpan.FromSeconds(ticks / ClockTicksPerSecond));
    }

    /// <summary>Resident set size now and at its peak, in bytes.</summary>
    public (long Rss, long Peak) Memory()
    {
        long rss = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = Kilobytes(line);
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = Kilobytes(line);
            }
        }
        return (rss, peak);

        static long Kilobytes(string line) =>
            long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.StandardInput.Close();
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("the server did not stop within 15 s; killing it");
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }
        _process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
