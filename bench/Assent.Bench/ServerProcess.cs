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
        process.OutputDataReceived += (_, e) => Forward(e.Data);
        process.ErrorDataReceived += (_, e) => Forward(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, baseUri);

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
