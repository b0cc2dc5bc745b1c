using System.Collections.Concurrent;
using System.Diagnostics;

namespace Assent.Bench;

/// <summary>
/// The requests of one operation (a sign-in) timed by step: each request's latency, from its send to its body read, is added
/// to its step's time and to the total. The driver's own work between requests (signing an assertion) is in neither.
/// </summary>
internal sealed class TimedSteps(HttpClient http, int steps, CancellationToken ct)
{
    private readonly double[] _times = new double[steps];

    /// <summary>The requests' latencies so far, summed (ms).</summary>
    public double Total { get; private set; }

    /// <summary>When the first request went (<see cref="Stopwatch"/> ticks); 0 before it.</summary>
    public long Started { get; private set; }

    public async Task<HttpResponseMessage> SendAsync(int step, HttpRequestMessage request)
    {
        var sent = Stopwatch.GetTimestamp();
        if (Started == 0)
        {
            Started = sent;
        }
        var response = await http.SendAsync(request, ct);
        await response.Content.LoadIntoBufferAsync(ct);
        var ms = Stats.Milliseconds(Stopwatch.GetTimestamp() - sent);
        _times[step] += ms;
        Total += ms;
        return response;
    }

    /// <summary>Adds each step's time to its bag: for an operation that finished.</summary>
    public void AddTo(ConcurrentBag<double>[] bags)
    {
        for (var i = 0; i < _times.Length; i++)
        {
            bags[i].Add(_times[i]);
        }
    }
}
