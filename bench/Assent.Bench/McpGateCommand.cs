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
        // Gated calls before the measured ones: the server's and the gate's approval paths reach their optimized code
        // (tiered compilation) only after some hundreds of calls; 20 left the JIT busy through the measured calls.
        var gatedWarmup = args.Int("gated-warmup", 500, 0, 100_000);
        var cli = args.String("cli") ?? Path.Combine(AppContext.BaseDirectory, "assent.dll");
        if (!File.Exists(cli))
        {
            throw new UsageException($"--cli: no assent.dll at {cli}");
        }
        var before = args.String("before");
        if (before is not null && !File.Exists(before))
        {
            throw new UsageException($"--before: no assent.dll at {before}");
        }
        // Runtime settings for this build's gate only (NAME=VALUE,...), e.g. --env DOTNET_TieredPGO=0 with --before the same
        // assent.dll: one setting measured against none, side by side.
        var gateEnvironment = (args.String("env") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(pair => pair.Split('=', 2) is [var name, var value] && name.Length > 0 ? (name, value) : throw new UsageException($"--env: '{pair}' is not NAME=VALUE"))
            .ToList();
        // Seconds to keep the gates running after the figures, to look at them (dotnet-counters, /proc/PID/smaps).
        var hold = args.Int("hold", 0, 0, 3600);
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
            // The instantly approving human: every pending request is approved the moment it arrives. When the latest
            // request reached the device and when its decision was sent, to split a gated call's time in two.
            long reached = 0, decided = 0;
            var approving = Task.Run(async () =>
            {
                await foreach (var e in device.StreamAsync(stop.Token))
                {
                    if (e.Request is { } r)
                    {
                        Volatile.Write(ref reached, Stopwatch.GetTimestamp());
                        Volatile.Write(ref decided, Stopwatch.GetTimestamp());
                        await device.DecideAsync(r, Decisions.Approve, stop.Token);
                    }
                }
            }, stop.Token);

            var echo = EchoCommandLine();
            var environment = new Dictionary<string, string>
            {
                ["HOME"] = home,
                ["ASSENT_SERVER"] = baseUri.ToString().TrimEnd('/'),
                ["ASSENT_CLIENT_ID"] = who.ClientId,
                ["ASSENT_CLIENT_SECRET"] = who.ClientSecret,
                ["ASSENT_USER_DID"] = enrolled.UserDid,
            };
            // This build's gate, and with --before another build's (e.g. main's assent.dll), measured side by side.
            var builds = new List<(string Name, string Cli)> { ("this build", cli) };
            if (before is not null)
            {
                builds.Add(("before", before));
            }
            Console.WriteLine($"mcp-gate: {messages} tools/call round trips at {rate}/s direct and through each gate, then {gated} gated vs ungated calls (after {gatedWarmup} of each to warm up); server pid {server.Id}");
            await using var direct = await McpChild.StartAsync(echo, null, ct);
            var gates = new List<McpChild>();
            try
            {
                foreach (var (name, path) in builds)
                {
                    var settings = new Dictionary<string, string>(environment);
                    if (gates.Count == 0)
                    {
                        foreach (var (variable, value) in gateEnvironment)
                        {
                            settings[variable] = value;
                        }
                    }
                    // The wrapped server inherits the gate's environment: --env settings are taken out again for it (env(1) -u),
                    // so the echo server runs the same in every gate and only the gate is changed.
                    string[] wrapped = gates.Count == 0 && gateEnvironment.Count > 0 ? ["env", .. gateEnvironment.SelectMany(e => new[] { "-u", e.name }), .. echo] : echo;
                    var started = Stopwatch.GetTimestamp();
                    var gate = await McpChild.StartAsync([Host(), path, "mcp", "gate", "--tools", "gated_*", "--timeout", "30", "--", .. wrapped], settings, ct);
                    var startup = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    gates.Add(gate);
                    Console.WriteLine($"  gate ({name}) pid {gate.Id}: {path}{(gates.Count == 1 && gateEnvironment.Count > 0 ? " with " + string.Join(' ', gateEnvironment.Select(e => $"{e.name}={e.value}")) : "")};"
                        + $" started and initialized in {Stats.F(startup, 0)} ms");
                }

                // Warm-up (JIT, tiering) of every path, then all measured side by side, alternating halves.
                await direct.PacedAsync("echo", Math.Min(messages, 3000), rate, ct);
                foreach (var gate in gates)
                {
                    await gate.PacedAsync("echo", Math.Min(messages, 3000), rate, ct);
                }
                var directTimes = new List<double>();
                var gateTimes = gates.Select(_ => new List<double>()).ToList();
                // The gate's own CPU time (proc(5) /proc/PID/stat utime + stime) over the measured round trips.
                var gateCpu = new double[gates.Count];
                for (var half = 0; half < 2; half++)
                {
                    directTimes.AddRange((await direct.PacedAsync("echo", messages / 2, rate, ct)).Latencies);
                    for (var g = 0; g < gates.Count; g++)
                    {
                        var cpu = gates[g].CpuSeconds();
                        gateTimes[g].AddRange((await gates[g].PacedAsync("echo", messages / 2, rate, ct)).Latencies);
                        gateCpu[g] += gates[g].CpuSeconds() - cpu;
                    }
                }
                directTimes.Sort();
                var d99 = Stats.Percentile(directTimes, 0.99);
                Console.WriteLine($"  forwarding round trip (request + response) at {rate}/s: direct p50 {Stats.F(Stats.Percentile(directTimes, 0.5), 3)} ms p99 {Stats.F(d99, 3)} ms");

                // Gated vs ungated through each gate, one call at a time, interleaved across gates.
                for (var i = 0; i < gatedWarmup; i++)
                {
                    foreach (var gate in gates)
                    {
                        await gate.CallAsync("gated_echo", ct);
                        await gate.CallAsync("echo", ct);
                    }
                }
                var approvedTimes = gates.Select(_ => new List<double>(gated)).ToList();
                // Of each gated call: from the host's call to the request reaching the device (the gate's authorize
                // request, the server pushing it), and from the decision sent to the host's answer (the server releasing
                // the held token request, the gate verifying the token and forwarding, the echo server answering).
                var toDevice = gates.Select(_ => new List<double>(gated)).ToList();
                var fromDecision = gates.Select(_ => new List<double>(gated)).ToList();
                var plainTimes = gates.Select(_ => new List<double>(gated)).ToList();
                // CPU time over the gated phase (a gated and an ungated call per round): each gate's own, and the server's
                // (all gates' calls, the device's decisions and stream), proc(5) /proc/PID/stat as above.
                var pairCpu = gates.Select(g => g.CpuSeconds()).ToArray();
                var serverCpu = McpChild.CpuSeconds(server.Id);
                for (var i = 0; i < gated; i++)
                {
                    for (var g = 0; g < gates.Count; g++)
                    {
                        var called = Stopwatch.GetTimestamp();
                        var took = await gates[g].CallAsync("gated_echo", ct);
                        approvedTimes[g].Add(took);
                        var (seen, sent) = (Volatile.Read(ref reached), Volatile.Read(ref decided));
                        if (seen > called)
                        {
                            toDevice[g].Add(Stats.Milliseconds(seen - called));
                            fromDecision[g].Add(took - Stats.Milliseconds(sent - called));
                        }
                        plainTimes[g].Add(await gates[g].CallAsync("echo", ct));
                    }
                }

                serverCpu = McpChild.CpuSeconds(server.Id) - serverCpu;
                for (var g = 0; g < gates.Count; g++)
                {
                    pairCpu[g] = gates[g].CpuSeconds() - pairCpu[g];
                }
                Console.WriteLine($"  server CPU {Stats.F(serverCpu * 1e3 / (gated * gates.Count), 2)} ms per gated call (with its ungated call and the device's decision; all gates)");
                var figures = new List<(double ForwardAdd, double ApprovalAdd, double ApprovalAdd50, long Rss, long Peak)>();
                for (var g = 0; g < gates.Count; g++)
                {
                    var name = builds[g].Name;
                    gateTimes[g].Sort();
                    approvedTimes[g].Sort();
                    plainTimes[g].Sort();
                    var (g50, g99) = (Stats.Percentile(gateTimes[g], 0.5), Stats.Percentile(gateTimes[g], 0.99));
                    var (a50, a99) = (Stats.Percentile(approvedTimes[g], 0.5), Stats.Percentile(approvedTimes[g], 0.99));
                    var (p50, p99) = (Stats.Percentile(plainTimes[g], 0.5), Stats.Percentile(plainTimes[g], 0.99));
                    var (rss, peak, anonymous, file, shared) = gates[g].Memory();
                    Console.WriteLine($"  [{name}] forwarding through the gate p50 {Stats.F(g50, 3)} ms p99 {Stats.F(g99, 3)} ms: adds p99 {Stats.F((g99 - d99) / 2, 3)} ms per forwarded message (target <= 1 ms);"
                        + $" gate CPU {Stats.F(gateCpu[g] * 1e6 / gateTimes[g].Count, 1)} us per round trip");
                    Console.WriteLine($"  [{name}] gated call (instant approval) p50 {Stats.F(a50)} ms p99 {Stats.F(a99)} ms; ungated p50 {Stats.F(p50)} ms p99 {Stats.F(p99)} ms:"
                        + $" approval adds p99 {Stats.F(a99 - p99)} ms (target <= 10 ms), p50 {Stats.F(a50 - p50)} ms; gate CPU {Stats.F(pairCpu[g] * 1e3 / gated, 2)} ms per gated + ungated call");
                    toDevice[g].Sort();
                    fromDecision[g].Sort();
                    if (toDevice[g].Count > 0)
                    {
                        Console.WriteLine($"  [{name}] of a gated call: call -> request at the device p50 {Stats.F(Stats.Percentile(toDevice[g], 0.5))} ms p99 {Stats.F(Stats.Percentile(toDevice[g], 0.99))} ms;"
                            + $" decision sent -> call answered p50 {Stats.F(Stats.Percentile(fromDecision[g], 0.5))} ms p99 {Stats.F(Stats.Percentile(fromDecision[g], 0.99))} ms");
                    }
                    Console.WriteLine($"  [{name}] gate memory: VmRSS {Stats.Mb(rss)} MB (anonymous {Stats.Mb(anonymous)} MB, file-backed {Stats.Mb(file)} MB, shared memory {Stats.Mb(shared)} MB), VmHWM {Stats.Mb(peak)} MB (target <= 60 MB)");
                    Console.WriteLine($"  [{name}] largest resident mappings: {string.Join(", ", gates[g].LargestMappings(10).Select(m => $"{m.Mapping} {Stats.Mb(m.Bytes)}"))}");
                    figures.Add(((g99 - d99) / 2, a99 - p99, a50 - p50, rss, peak));
                }
                if (figures.Count == 2)
                {
                    var (now, then) = (figures[0], figures[1]);
                    Console.WriteLine($"  this build / before: approval adds p99 {Stats.F(now.ApprovalAdd)} / {Stats.F(then.ApprovalAdd)} ms ({Stats.F(now.ApprovalAdd / then.ApprovalAdd)}x),"
                        + $" p50 {Stats.F(now.ApprovalAdd50)} / {Stats.F(then.ApprovalAdd50)} ms; VmHWM {Stats.Mb(now.Peak)} / {Stats.Mb(then.Peak)} MB ({Stats.F(now.Peak / (double)then.Peak)}x);"
                        + $" forwarding adds p99 {Stats.F(now.ForwardAdd, 3)} / {Stats.F(then.ForwardAdd, 3)} ms");
                }
                if (hold > 0)
                {
                    Console.WriteLine($"  holding the gates for {hold} s");
                    await Task.Delay(TimeSpan.FromSeconds(hold), ct);
                }
                Stats.Result("mcp-gate",
                    ("direct_p99_ms", Stats.F(d99, 3)), ("forward_add_p99_ms", Stats.F(figures[0].ForwardAdd, 3)), ("approval_add_p99_ms", Stats.F(figures[0].ApprovalAdd)),
                    ("rss_mb", Stats.Mb(figures[0].Rss)), ("hwm_mb", Stats.Mb(figures[0].Peak)));
            }
            finally
            {
                foreach (var gate in gates)
                {
                    await gate.DisposeAsync();
                }
            }

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

    /// <summary>
    /// Open loop: calls written at <paramref name="rate"/> per second whatever the answers do; each one's round trip. The
    /// pacer's thread (<see cref="Pacer"/>: it sleeps, never spins, so it takes no core from the gate it measures) writes
    /// each call to the pipe when it is due, in order; the answers come back on the reader.
    /// </summary>
    public async Task<PacedRun> PacedAsync(string tool, int count, int rate, CancellationToken ct)
    {
        var answers = new Task<long>[count];
        var sent = new long[count];
        var start = Stopwatch.GetTimestamp();
        await Pacer.RunAsync(start, rate, long.MaxValue, count, (k, _) =>
        {
            var id = ++_nextId;
            var answered = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_waiting)
            {
                _waiting[id] = answered;
            }
            answers[k] = answered.Task;
            sent[k] = Stopwatch.GetTimestamp();
            _process.StandardInput.Write(Call(id, tool) + "\n");
            _process.StandardInput.Flush();
        }, ct);
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

    /// <summary>proc(5) /proc/PID/stat: user + system CPU time so far, in seconds.</summary>
    public double CpuSeconds() => CpuSeconds(_process.Id);

    /// <summary>proc(5) /proc/PID/stat of any process: user + system CPU time so far, in seconds.</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // Fields after the command name (which is in parentheses and may hold spaces): state is field 3, utime 14, stime 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        // USER_HZ, 100 on Linux.
        return ticks / 100.0;
    }

    /// <summary>
    /// proc(5) /proc/PID/status: VmRSS, VmHWM (its peak), and the RSS's parts: anonymous (GC heap, loader heaps, stacks),
    /// file-backed (mapped images, shared with other processes mapping them) and shared memory (the runtime's W^X double
    /// mapping of JIT code and stubs, memfd:doublemapper).
    /// </summary>
    public (long Rss, long Peak, long Anonymous, long File, long Shared) Memory()
    {
        long rss = 0, peak = 0, anonymous = 0, file = 0, shared = 0;
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
            else if (line.StartsWith("RssFile:", StringComparison.Ordinal))
            {
                file = Kilobytes(line);
            }
            else if (line.StartsWith("RssShmem:", StringComparison.Ordinal))
            {
                shared = Kilobytes(line);
            }
        }
        return (rss, peak, anonymous, file, shared);

        static long Kilobytes(string line) =>
            long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>proc(5) /proc/PID/smaps: the largest resident mappings, by what they map (files, anonymous, heap).</summary>
    public IEnumerable<(string Mapping, long Bytes)> LargestMappings(int count)
    {
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        var current = "";
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/smaps"))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 5 && parts[0].Contains('-', StringComparison.Ordinal) && !parts[0].EndsWith(':'))
            {
                current = parts.Length >= 6 ? Path.GetFileName(parts[5]) : "[anonymous]";
            }
            else if (parts.Length >= 2 && parts[0] == "Rss:")
            {
                sizes[current] = sizes.GetValueOrDefault(current) + long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return sizes.OrderByDescending(s => s.Value).Take(count).Select(s => (s.Key, s.Value));
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
