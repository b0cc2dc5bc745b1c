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

    /// <summary>One machine-readable line per run: bench/run.sh takes medians of these.</summary>
    public static void Result(string mode, params (string Key, string Value)[] figures) =>
        Console.WriteLine($"RESULT mode={mode} " + string.Join(' ', figures.Select(f => $"{f.Key}={f.Value}")));
}
