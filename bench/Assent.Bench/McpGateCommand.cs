using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Assent.Client.Authenticator;
using Assent.Protocol.Approvals;

namespace Assent.Bench;

/// <summary>
/// <c>assent mcp gate</c> (docs/mcp.md §4) against a trivial stdio MCP server (<c>mcp-echo</c>, below), all in one run:
/// <list type="number">
/// <item>forwarding: tools/call round trips at a paced rate, to the server directly and through the gate
/// (an ungated tool), side by side; each round trip is two forwarded messages (request and response);</item>
/// <item>gate overhead excluding the human: a gated call, approved by a device deciding as soon as the request
/// reaches it (signed, over the device API, as a phone would), against an ungated call through the same gate;</item>
/// <item>the gate's memory: VmRSS now and VmHWM (peak) from /proc/PID/status after all of it.</item>
/// </list>
/// </summary>
internal static class McpGateCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var messages = args.Int("messages", 10_000, 100, 1_000_000);
        var rate = args.Int("rate", 1_000, 1, 100_000);
        var gated = args.Int("gated", 200, 10, 10_000);
        var cli = args.String("cli") ?? Path.Combine(AppContext.BaseDirectory, "assent.dll");
        if (!File.Exists(cli))
        {
            throw new ArgumentException($"--cli: no assent.dll at {cli}");
        }
        var dataDirectory = Provisioning.NewDataDirectory();
        var home = Directory.CreateTempSubdirectory("assent-bench-home-").FullName;
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        try
        {
            var who = (await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, 1, ct))[0];
            using var http = BenchHttp.Create(baseUri);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            using var enrolling = new AuthenticatorClient(baseUri);
            var enrolled = await enrolling.EnrollAsync(who.InviteCode, "bench device", ct);
            using var device = new AuthenticatorClient(baseUri, enrolled.Key);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // The instantly approving human: every pending request is approved the moment it arrives.
            var approving = Task.Run(async () =>
            {
                await foreach (var e in device.StreamAsync(stop.Token))
                {
                    if (e.Request is { } r)
                    {
                        await device.DecideAsync(r, Decisions.Approve, stop.Token);
                    }
                }
            }, stop.Token);

            Console.WriteLine($"mcp-gate: {messages} tools/call round trips at {rate}/s direct and through the gate, then {gated} gated vs ungated calls; server pid {server.Id}");
            var echo = EchoCommandLine();
            await using var direct = await McpChild.StartAsync(echo, null, ct);
            var gateLine = new List<string> { cli, "mcp", "gate", "--tools", "gated_*", "--timeout", "30", "--" };
            gateLine.AddRange(echo);
            var environment = new Dictionary<string, string>
            {
                ["HOME"] = home,
                ["ASSENT_SERVER"] = baseUri.ToString().TrimEnd('/'),
                ["ASSENT_CLIENT_ID"] = who.ClientId,
                ["ASSENT_CLIENT_SECRET"] = who.ClientSecret,
                ["ASSENT_USER_DID"] = enrolled.UserDid,
            };
            await using var gate = await McpChild.StartAsync([Host(), .. gateLine], environment, ct);
            Console.WriteLine($"  gate pid {gate.Id}");

            // Warm-up (JIT, tiering) of both paths, then the two measured side by side, alternating halves.
            await direct.PacedAsync("echo", Math.Min(messages, 3000), rate, ct);
            await gate.PacedAsync("echo", Math.Min(messages, 3000), rate, ct);
            var directTimes = new List<double>();
            var gateTimes = new List<double>();
            double directRate = 0, gateRate = 0;
            for (var half = 0; half < 2; half++)
            {
                var d = await direct.PacedAsync("echo", messages / 2, rate, ct);
                var g = await gate.PacedAsync("echo", messages / 2, rate, ct);
                directTimes.AddRange(d.Latencies);
                gateTimes.AddRange(g.Latencies);
                directRate += d.Rate / 2;
                gateRate += g.Rate / 2;
            }
            directTimes.Sort();
            gateTimes.Sort();
            var (d50, d99) = (Stats.Percentile(directTimes, 0.5), Stats.Percentile(directTimes, 0.99));
            var (g50, g99) = (Stats.Percentile(gateTimes, 0.5), Stats.Percentile(gateTimes, 0.99));
            Console.WriteLine($"  forwarding, round trip (request + response): direct p50 {Stats.F(d50, 3)} ms p99 {Stats.F(d99, 3)} ms at {Stats.F(directRate, 0)}/s;"
                + $" through the gate p50 {Stats.F(g50, 3)} ms p99 {Stats.F(g99, 3)} ms at {Stats.F(gateRate, 0)}/s");
            Console.WriteLine($"  gate adds p99 {Stats.F(g99 - d99, 3)} ms per round trip, {Stats.F((g99 - d99) / 2, 3)} ms per forwarded message (target <= 1 ms), ratio {Stats.F(g99 / d99)}x");

            // Gated vs ungated through the same gate, one call at a time, interleaved.
            for (var i = 0; i < 20; i++)
            {
                await gate.CallAsync("gated_echo", ct);
                await gate.CallAsync("echo", ct);
            }
            var approvedTimes = new List<double>(gated);
            var plainTimes = new List<double>(gated);
            for (var i = 0; i < gated; i++)
            {
                approvedTimes.Add(await gate.CallAsync("gated_echo", ct));
                plainTimes.Add(await gate.CallAsync("echo", ct));
            }
            approvedTimes.Sort();
            plainTimes.Sort();
            var (a50, a99) = (Stats.Percentile(approvedTimes, 0.5), Stats.Percentile(approvedTimes, 0.99));
            var (p50, p99) = (Stats.Percentile(plainTimes, 0.5), Stats.Percentile(plainTimes, 0.99));
            Console.WriteLine($"  gated call (instant approval) p50 {Stats.F(a50)} ms p99 {Stats.F(a99)} ms; ungated p50 {Stats.F(p50)} ms p99 {Stats.F(p99)} ms");
            Console.WriteLine($"  approval adds p99 {Stats.F(a99 - p99)} ms (target <= 10 ms), p50 {Stats.F(a50 - p50)} ms");

            var (rss, peak, anonymous) = gate.Memory();
            Console.WriteLine($"  gate memory: VmRSS {Stats.Mb(rss)} MB (anonymous {Stats.Mb(anonymous)} MB), VmHWM {Stats.Mb(peak)} MB (target <= 60 MB)");
            Stats.Result("mcp-gate",
                ("direct_p99_ms", Stats.F(d99, 3)), ("gate_p99_ms", Stats.F(g99, 3)), ("forward_add_p99_ms", Stats.F((g99 - d99) / 2, 3)),
                ("ungated_p99_ms", Stats.F(p99)), ("gated_p99_ms", Stats.F(a99)), ("approval_add_p99_ms", Stats.F(a99 - p99)),
                ("rss_mb", Stats.Mb(rss)), ("hwm_mb", Stats.Mb(peak)));

            await stop.CancelAsync();
            try
            {
                await approving;
            }
            catch (OperationCanceledException)
            {
            }
            catch (HttpRequestException)
            {
            }
            return 0;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
            Provisioning.Delete(home);
        }
    }

    private static string Host() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    private static string[] EchoCommandLine()
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which executable is running");
        return Path.GetFileNameWithoutExtension(host) == "dotnet" ? [host, typeof(McpGateCommand).Assembly.Location, "mcp-echo"] : [host, "mcp-echo"];
    }

    /// <summary>
    /// <c>Assent.Bench mcp-echo</c>: the trivial stdio MCP server the gate is measured around, newline-delimited JSON-RPC
    /// (MCP 2025-11-25 basic/transports "stdio"): initialize, ping, tools/list and tools/call answered at once,
    /// notifications ignored. Hand-written so the server costs next to nothing and the gate is what is measured.
    /// </summary>
    public static async Task<int> EchoAsync(CancellationToken ct)
    {
        using var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
        await using var output = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
        while (await input.ReadLineAsync(ct) is { } line)
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (!root.TryGetProperty("id", out var id) || !root.TryGetProperty("method", out var method))
            {
                continue;
            }
            var result = method.GetString() switch
            {
                "initialize" => """{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"bench-echo","version":"1.0.0"}}""",
                "tools/list" => """{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"gated_echo","inputSchema":{"type":"object"}}]}""",
                "tools/call" => """{"content":[{"type":"text","text":"ok"}]}""",
                _ => "{}",
            };
            await output.WriteAsync($"{{\"jsonrpc\":\"2.0\",\"id\":{id.GetRawText()},\"result\":{result}}}\n");
            await output.FlushAsync(ct);
        }
        return 0;
    }
}

internal sealed record PacedRun(List<double> Latencies, double Rate);

/// <summary>A stdio MCP server (or the gate around one) as a child process, driven line by line.</summary>
internal sealed class McpChild : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Dictionary<long, TaskCompletionSource<long>> _waiting = [];
    private readonly Task _reading;
    private long _nextId;

    private McpChild(Process process)
    {
        _process = process;
        _reading = Task.Run(ReadAsync);
    }

    public int Id => _process.Id;

    public static async Task<McpChild> StartAsync(IReadOnlyList<string> commandLine, Dictionary<string, string>? environment, CancellationToken ct)
    {
        var info = new ProcessStartInfo(commandLine[0])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            // The gate logs each decision to stderr: drained and dropped, so the run prints figures only.
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = new UTF8Encoding(false),
        };
        foreach (var arg in commandLine.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in environment ?? [])
        {
            info.Environment[name] = value;
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {commandLine[0]}");
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        var child = new McpChild(process);
        // MCP 2025-11-25 basic/lifecycle: initialize, then the initialized notification.
        await child.SendAsync("""{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"assent-bench","version":"1.0.0"}}}""", 0, ct);
        await child._process.StandardInput.WriteAsync("""{"jsonrpc":"2.0","method":"notifications/initialized"}""" + "\n");
        await child._process.StandardInput.FlushAsync(ct);
        return child;
    }

    private async Task<long> SendAsync(string line, long id, CancellationToken ct)
    {
        var answered = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waiting)
        {
            _waiting[id] = answered;
        }
        await _process.StandardInput.WriteAsync(line + "\n");
        await _process.StandardInput.FlushAsync(ct);
        return await answered.Task.WaitAsync(TimeSpan.FromSeconds(60), ct);
    }

    private static string Call(long id, string tool) =>
        $"{{\"jsonrpc\":\"2.0\",\"id\":{id.ToString(CultureInfo.InvariantCulture)},\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\",\"arguments\":{{\"n\":{id.ToString(CultureInfo.InvariantCulture)}}}}}}}";

    /// <summary>One call, the next only after its answer; milliseconds from writing it to reading its answer.</summary>
    public async Task<double> CallAsync(string tool, CancellationToken ct)
    {
        var id = ++_nextId;
        var sent = Stopwatch.GetTimestamp();
        var answered = await SendAsync(Call(id, tool), id, ct);
        return Stats.Milliseconds(answered - sent);
    }

    /// <summary>Open loop: calls written at <paramref name="rate"/> per second whatever the answers do; each one's round trip.</summary>
    public async Task<PacedRun> PacedAsync(string tool, int count, int rate, CancellationToken ct)
    {
        var answers = new Task<long>[count];
        var sent = new long[count];
        var interval = Stopwatch.Frequency / (double)rate;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var due = start + (long)(i * interval);
            while (Stopwatch.GetTimestamp() < due)
            {
                var ahead = Stats.Milliseconds(due - Stopwatch.GetTimestamp());
                if (ahead >= 1.5)
                {
                    await Task.Delay(1, ct);
                }
                else
                {
                    Thread.Yield();
                }
            }
            var id = ++_nextId;
            var answered = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_waiting)
            {
                _waiting[id] = answered;
            }
            answers[i] = answered.Task;
            sent[i] = Stopwatch.GetTimestamp();
            await _process.StandardInput.WriteAsync(Call(id, tool) + "\n");
            await _process.StandardInput.FlushAsync(ct);
        }
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        await Task.WhenAll(answers).WaitAsync(TimeSpan.FromSeconds(60), ct);
        var latencies = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            latencies.Add(Stats.Milliseconds(answers[i].Result - sent[i]));
        }
        return new PacedRun(latencies, count / elapsed);
    }

    private async Task ReadAsync()
    {
        while (await _process.StandardOutput.ReadLineAsync() is { } line)
        {
            var at = Stopwatch.GetTimestamp();
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.Number && !doc.RootElement.TryGetProperty("method", out _))
            {
                if (doc.RootElement.TryGetProperty("result", out var result) && result.TryGetProperty("isError", out var isError) && isError.GetBoolean())
                {
                    throw new InvalidOperationException($"a call failed: {line}");
                }
                TaskCompletionSource<long>? waiter;
                lock (_waiting)
                {
                    _waiting.Remove(id.GetInt64(), out waiter);
                }
                waiter?.TrySetResult(at);
            }
        }
    }

    /// <summary>proc(5) /proc/PID/status: VmRSS, VmHWM (its peak), and of the RSS the anonymous part (heaps, JIT code).</summary>
    public (long Rss, long Peak, long Anonymous) Memory()
    {
        long rss = 0, peak = 0, anonymous = 0;
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
            else if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
            {
                anonymous = Kilobytes(line);
            }
        }
        return (rss, peak, anonymous);

        static long Kilobytes(string line) =>
            long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    public async ValueTask DisposeAsync()
    {
        // MCP 2025-11-25 basic/lifecycle "Shutdown", stdio: close the server's input and let it exit.
        _process.StandardInput.Close();
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(grace.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }
        try
        {
            await _reading;
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine(e.Message);
        }
        _process.Dispose();
    }
}
