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
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Assent.Cli.dll"));
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
