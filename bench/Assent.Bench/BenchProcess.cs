using System.ComponentModel;
using System.Diagnostics;

namespace Assent.Bench;

/// <summary>A tool the bench runs to its end (initdb, pg_ctl, npm): its output kept for the error, standard input closed.</summary>
internal static class BenchProcess
{
    /// <summary>
    /// Runs <paramref name="file"/> with <paramref name="args"/> in <paramref name="directory"/> until it exits; throws with its
    /// output when it fails, and <see cref="Win32Exception"/> when it cannot be started (not installed).
    /// </summary>
    public static async Task RunAsync(string file, IEnumerable<string> args, string directory, CancellationToken ct = default)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = directory,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start");
        process.StandardInput.Close();
        var (stdout, stderr) = (process.StandardOutput.ReadToEndAsync(ct), process.StandardError.ReadToEndAsync(ct));
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} in {directory} failed ({process.ExitCode}): {await stderr}{await stdout}");
        }
    }
}
