using System.Diagnostics;
using System.Globalization;

namespace Assent.Bench;

internal static class Stats
{
    public static double Milliseconds(long stopwatchTicks) => stopwatchTicks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Nearest-rank percentile of an ascending-sorted list; NaN when empty.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double q) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    public static string F(double value, int decimals = 2) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    public static string Mb(long bytes) => F(bytes / (1024.0 * 1024.0), 1);

    /// <summary>The machine's CPU time so far (Linux <c>/proc/stat</c>, in clock ticks): all of it, idle, and stolen by the hypervisor; zeros elsewhere.</summary>
    public static (long Total, long Idle, long Steal) MachineTicks()
    {
        const string path = "/proc/stat";
        if (!File.Exists(path))
        {
            return (0, 0, 0);
        }
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user).
        var fields = File.ReadLines(path).First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        return (fields.Sum(), fields[3] + fields[4], fields[7]);
    }

    /// <summary>
    /// What the machine did between two <see cref="MachineTicks"/>: its idle share and the share the hypervisor took (steal: time the
    /// virtual CPUs were ready but not running, which stalls whatever ran on them).
    /// </summary>
    public static string Machine((long Total, long Idle, long Steal) before, (long Total, long Idle, long Steal) after)
    {
        var total = after.Total - before.Total;
        return total <= 0 ? "machine n/a" : $"machine idle {F(100.0 * (after.Idle - before.Idle) / total, 1)}%, stolen {F(100.0 * (after.Steal - before.Steal) / total, 1)}%";
    }

    /// <summary>One machine-readable line per run: bench/run.sh takes medians of these.</summary>
    public static void Result(string mode, params (string Key, string Value)[] figures) =>
        Console.WriteLine($"RESULT mode={mode} " + string.Join(' ', figures.Select(f => $"{f.Key}={f.Value}")));
}
