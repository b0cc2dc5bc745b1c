using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Assent.Bench;

/// <summary>
/// The open loops' clock. A thread of its own sleeps until each operation is due, then starts it and sleeps again. It never
/// spins: the driver shares the cores with the server it measures, and a pacer that yielded in a loop between operations
/// took most of a core from it. And it sleeps on the kernel's fine timer (<c>usleep</c>: tens of microseconds late on
/// Linux), not on the runtime's millisecond timers, which started operations about a millisecond late on average: a
/// lateness the figures then counted against the server, since each operation is timed from when it was due.
/// </summary>
internal static class Pacer
{
    /// <summary>
    /// Calls <paramref name="start"/>(k, due) for k = 0, 1, … at <paramref name="started"/> + k / <paramref name="rate"/> s
    /// while that is before <paramref name="to"/> (and k below <paramref name="count"/>). <paramref name="start"/> runs on
    /// the pacer's thread, so it hands the operation off (<see cref="Task.Run(Func{Task})"/>) and returns.
    /// </summary>
    public static Task RunAsync(long started, double rate, long to, long count, Action<long, long> start, CancellationToken ct)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                var interval = Stopwatch.Frequency / rate;
                for (long k = 0; k < count && !ct.IsCancellationRequested; k++)
                {
                    var due = started + (long)(k * interval);
                    if (due >= to)
                    {
                        break;
                    }
                    SleepUntil(due);
                    start(k, due);
                }
                // Cancelled mid-schedule: the caller's list of started operations is incomplete, so it must not read it as done.
                ct.ThrowIfCancellationRequested();
                done.SetResult();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                done.SetCanceled(ct);
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        { IsBackground = true, Name = "bench pacer" };
        thread.Start();
        return done.Task;
    }

    /// <summary>Blocks until the stopwatch reaches <paramref name="due"/>, without spinning.</summary>
    private static void SleepUntil(long due)
    {
        for (var left = due - Stopwatch.GetTimestamp(); left > 0; left = due - Stopwatch.GetTimestamp())
        {
            var microseconds = (uint)Math.Min(left * 1_000_000 / Stopwatch.Frequency, 100_000);
            if (microseconds == 0)
            {
                return;
            }
            if (!_fineSleep || !TryFineSleep(microseconds))
            {
                Thread.Sleep(Math.Max(1, (int)(microseconds / 1000)));
            }
        }
    }

    private static bool _fineSleep = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    private static bool TryFineSleep(uint microseconds)
    {
        try
        {
            // Interrupted early (EINTR) is fine: the caller's loop sleeps the rest.
            _ = usleep(microseconds);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _fineSleep = false;
            return false;
        }
    }

    // POSIX usleep(3): the runtime has no sleep finer than a millisecond (Thread.Sleep rounds a TimeSpan down to one).
    [DllImport("libc", SetLastError = false)]
    private static extern int usleep(uint microseconds);
}
