using System.Globalization;

namespace Assent.Bench;

/// <summary>
/// The server's own time for one operation: the sum of the <c>Server-Timing: app;dur=…</c> values (docs/deployment.md §12;
/// the bench's server turns the header on) of the requests the operation made, as against the time the driver measured,
/// which also holds the driver's and the kernel's share (scheduling, sockets) of each request. An operation opens a
/// <see cref="Tally"/> with <see cref="Begin"/>; the <see cref="Handler"/> under the bench's clients adds each response to
/// the tally of the operation whose requests it carries (an <see cref="AsyncLocal{T}"/>: the tally flows into the calls the
/// operation awaits, and requests made outside any operation, such as the devices' decisions, count nowhere).
/// </summary>
internal static class ServerTimes
{
    private static readonly AsyncLocal<Tally?> Current = new();

    /// <summary>The operation's requests so far: their summed server time, or NaN once one came back without the header (another build).</summary>
    public sealed class Tally
    {
        private readonly Lock _gate = new();
        private double _ms;
        private bool _missing;

        public double Ms
        {
            get
            {
                lock (_gate)
                {
                    return _missing ? double.NaN : _ms;
                }
            }
        }

        internal void Add(HttpResponseMessage response)
        {
            var ms = response.Headers.TryGetValues("Server-Timing", out var values) ? Parse(values) : null;
            // An operation's requests follow one another; the lock only keeps a stray overlap from losing one.
            lock (_gate)
            {
                if (ms is { } known)
                {
                    _ms += known;
                }
                else
                {
                    _missing = true;
                }
            }
        }
    }

    /// <summary>Starts the tally of the operation running in the current asynchronous flow.</summary>
    public static Tally Begin() => Current.Value = new Tally();

    /// <summary>The percentile of server times, or NaN when any of them is (a build without the header).</summary>
    public static double Percentile(List<double> sorted, double q) => sorted.Any(double.IsNaN) ? double.NaN : Stats.Percentile(sorted, q);

    /// <summary>
    /// Where the tail comes from: the slowest 1% of <paramref name="ops"/> (completion time, server time) by server time,
    /// grouped into bursts of operations that completed within 10 ms of one another. A few large bursts point at stalls
    /// that hold everything in flight (a collection, a sync, the scheduler); as many bursts as operations, at queueing.
    /// </summary>
    public static string Tail(IReadOnlyCollection<(long At, double Ms)> ops)
    {
        if (ops.Count < 100 || ops.Any(o => double.IsNaN(o.Ms)))
        {
            return "n/a";
        }
        var slowest = ops.OrderByDescending(o => o.Ms).Take(ops.Count / 100).Select(o => o.At).Order().ToList();
        var gap = (long)(0.010 * System.Diagnostics.Stopwatch.Frequency);
        var (bursts, largest, current) = (1, 1, 1);
        for (var i = 1; i < slowest.Count; i++)
        {
            if (slowest[i] - slowest[i - 1] <= gap)
            {
                largest = Math.Max(largest, ++current);
            }
            else
            {
                (bursts, current) = (bursts + 1, 1);
            }
        }
        return $"the slowest 1% ({slowest.Count}) in {bursts} bursts, the largest {largest}";
    }

    private static double? Parse(IEnumerable<string> values)
    {
        foreach (var value in values)
        {
            const string prefix = "app;dur=";
            if (value.StartsWith(prefix, StringComparison.Ordinal) &&
                double.TryParse(value.AsSpan(prefix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms))
            {
                return ms;
            }
        }
        return null;
    }

    /// <summary>Adds each response to the current operation's tally, if any.</summary>
    public sealed class Handler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            Current.Value?.Add(response);
            return response;
        }
    }
}
