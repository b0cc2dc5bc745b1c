using System.Diagnostics;
using System.Net;
using System.Text;

namespace Assent.Cli.Tests;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// One test's world: its own HOME, data directory and port, the <c>assent</c> CLI run as a real
/// process, and at most one <c>assent server</c> child process, killed (whole tree) on dispose.
/// </summary>
public sealed class CliSandbox : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
    private readonly string _root = Directory.CreateTempSubdirectory("assent-cli-").FullName;
    private Process? _server;
    private readonly StringBuilder _serverOutput = new();

    public CliSandbox()
    {
        Directory.CreateDirectory(Home);
        Port = Ports.Reserve();
    }

    public string Home => Path.Combine(_root, "home");

    public string Data => Path.Combine(_root, "data");

    public int Port { get; }

    public string Url => $"http://localhost:{Port}";

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(15) };

    /// <summary>Environment variables set in every process this sandbox starts from now on.</summary>
    public Dictionary<string, string> Variables { get; } = [];

    public string ServerOutput
    {
        get
        {
            lock (_serverOutput)
            {
                return _serverOutput.ToString();
            }
        }
    }

    public async Task<CliResult> RunAsync(params string[] args)
    {
        using var process = Process.Start(StartInfo(args))!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"assent {string.Join(' ', args)} did not finish within {CommandTimeout}");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Starts a command that keeps running (<c>assent device watch</c>) with its standard streams open to the
    /// test; with <paramref name="terminal"/> it runs inside a pseudo-terminal (script(1), util-linux), so it
    /// reads single keys as it would at a console. The caller disposes it (the whole tree is killed).
    /// </summary>
    public LiveCommand Start(bool terminal, params string[] args)
    {
        var info = StartInfo(args);
        if (terminal)
        {
            var line = string.Join(' ', new[] { info.FileName }.Concat(info.ArgumentList).Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
            info.FileName = "script";
            info.ArgumentList.Clear();
            foreach (var arg in new[] { "--quiet", "--flush", "--return", "--command", line, "/dev/null" })
            {
                info.ArgumentList.Add(arg);
            }
            info.Environment["TERM"] = "xterm";
        }
        return new LiveCommand(Process.Start(info)!);
    }

    /// <summary>Starts <c>assent server</c> on this sandbox's port and data, with any <paramref name="options"/>, and waits until /healthz answers.</summary>
    public async Task StartServerAsync(params string[] options)
    {
        Assert.Null(_server);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = StartInfo(["server", "--urls", Url, "--data", Data, .. options]), EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Collect(e.Data, listening);
        process.ErrorDataReceived += (_, e) => Collect(e.Data, null);
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("assent server exited:\n" + ServerOutput));
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _server = process;
        await listening.Task.WaitAsync(CommandTimeout);
        using var health = await Http.GetAsync(Url + "/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    public void StopServer()
    {
        if (_server is null)
        {
            return;
        }
        try
        {
            _server.Kill(entireProcessTree: true);
            if (_server.WaitForExit(10_000))
            {
                // Without a timeout, this also waits until everything the server wrote has reached ServerOutput.
                _server.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
        _server.Dispose();
        _server = null;
    }

    public async ValueTask DisposeAsync()
    {
        StopServer();
        Http.Dispose();
        await Task.Yield();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }

    private void Collect(string? line, TaskCompletionSource? listening)
    {
        if (line is null)
        {
            return;
        }
        lock (_serverOutput)
        {
            _serverOutput.AppendLine(line);
        }
        if (line.StartsWith("Assent listening on", StringComparison.Ordinal))
        {
            listening?.TrySetResult();
        }
    }

    private ProcessStartInfo StartInfo(IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _root,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "assent.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["HOME"] = Home;
        info.Environment["USERPROFILE"] = Home;
        // The tests' own environment must not leak a master key or database into the child.
        foreach (var name in new[] { "ASSENT_MASTER_KEY", "ASSENT_MASTER_KEY_FILE", "ASSENT_DATABASE", "ASSENT_SERVER" })
        {
            info.Environment.Remove(name);
        }
        foreach (var (name, value) in Variables)
        {
            info.Environment[name] = value;
        }
        return info;
    }
}

/// <summary>A running CLI process: what it has printed so far, its input, and a wait for a line.</summary>
public sealed class LiveCommand : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public LiveCommand(Process process)
    {
        _process = process;
        // Read as it comes, not by lines: a prompt waits for its answer on the same line.
        _ = PumpAsync(process.StandardOutput);
        _ = PumpAsync(process.StandardError);
    }

    private async Task PumpAsync(StreamReader reader)
    {
        var buffer = new char[4096];
        try
        {
            for (int n; (n = await reader.ReadAsync(buffer)) > 0;)
            {
                lock (_output)
                {
                    _output.Append(buffer, 0, n);
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The process was killed.
        }
    }

    /// <summary>The process id (the gate keeps it when it relaunches itself in place, docs/mcp.md §4).</summary>
    public int Id => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Types <paramref name="text"/> as it is (no Enter unless it holds one).</summary>
    public async Task TypeAsync(string text)
    {
        await _process.StandardInput.WriteAsync(text);
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>Waits until the output holds <paramref name="text"/> <paramref name="times"/> times; fails with the output otherwise.</summary>
    public async Task WaitForAsync(string text, int times = 1)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Count(text) < times)
        {
            if (DateTime.UtcNow > until || _process.HasExited)
            {
                throw new TimeoutException($"never printed '{text}' {times} time(s); printed:\n{Output}");
            }
            await Task.Delay(50);
        }
    }

    public int Count(string text)
    {
        var output = Output;
        var count = 0;
        for (var i = output.IndexOf(text, StringComparison.Ordinal); i >= 0; i = output.IndexOf(text, i + text.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    public void Dispose()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
        _process.Dispose();
    }

}
