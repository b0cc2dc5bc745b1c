using System.Diagnostics;
using System.Globalization;

namespace Assent.Server.Tests.Processes;

/// <summary>
/// The load driver under <c>bench/</c> as a real process: its command line, and the one bench that needs no server
/// (<c>verify</c>), at a size that takes seconds. The benches are run by hand, not in CI, so nothing else would notice when
/// a change elsewhere stops one (the verifier's evidence check once stopped <c>verify</c> at its first token).
/// </summary>
public sealed class BenchDriverTests
{
    [Fact]
    public async Task Help_lists_every_command_and_succeeds()
    {
        var (code, output, error) = await RunAsync("--help");
        Assert.True(code == 0, error);
        foreach (var command in new[] { "serve", "flows", "mandates", "quorum", "waiters", "verify", "signin", "vault", "mcp-gate" })
        {
            Assert.Contains($"Assent.Bench {command}", output, StringComparison.Ordinal);
        }
        (code, output, _) = await RunAsync("help", "signin");
        Assert.Equal(0, code);
        Assert.StartsWith("usage: Assent.Bench signin [--clients 16]", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Assent.Bench mandates", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "mandates", "--agentz", "8" }, "unknown option --agentz for mandates")]
    [InlineData(new[] { "mandates", "--agents", "0" }, "--agents must be a whole number from 1 to 1024")]
    [InlineData(new[] { "flows", "--nodes", "2" }, "SQLite is one node")]
    [InlineData(new[] { "vault", "--only", "everything" }, "--only is release, put or list")]
    [InlineData(new[] { "bogus" }, "unknown command 'bogus'")]
    [InlineData(new string[0], "a command is required")]
    public async Task A_wrong_command_line_is_refused_with_the_usage_before_anything_starts(string[] args, string message)
    {
        var started = Stopwatch.GetTimestamp();
        var (code, output, error) = await RunAsync(args);
        Assert.Equal(64, code);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Contains("usage: Assent.Bench", error, StringComparison.Ordinal);
        Assert.Equal("", output);
        // No server was started for it: a start alone takes seconds.
        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(30), "the driver ran before refusing");
    }

    [Fact]
    public async Task Verify_runs_to_its_result_line()
    {
        var (code, output, error) = await RunAsync("verify", "--tokens", "200", "--rounds", "1");
        Assert.True(code == 0, output + error);
        var result = output.Split('\n').Single(l => l.StartsWith("RESULT mode=verify ", StringComparison.Ordinal));
        var figures = result.Split(' ').Skip(2).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => double.Parse(kv[1], CultureInfo.InvariantCulture));
        Assert.True(figures["raw_per_s"] > 0 && figures["verifier_per_s"] > 0, result);
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Assent.Bench.dll"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var output = process.StandardOutput.ReadToEndAsync(cts.Token);
        var error = process.StandardError.ReadToEndAsync(cts.Token);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await output, await error);
    }
}
