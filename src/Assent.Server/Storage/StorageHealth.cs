using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Storage;

/// <summary>
/// Whether the database is answering, as the requests and a write probe find it (docs/deployment.md §13). An outage is
/// logged once when it starts and once when it ends, never once per request: the first failure turns the node
/// unavailable, and a probe then commits a small write every half second until one succeeds with no request having
/// failed for a second.
/// </summary>
internal sealed class StorageHealth(AssentStore store, TimeProvider time, ILogger<StorageHealth> log) : IDisposable
{
    /// <summary>What clients are told to wait before trying again (RFC 9110 §10.2.3); nodes recover within about a second.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan ProbeEvery = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);

    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private long _downSince;      // Stopwatch timestamp; 0 while up
    private long _lastFailure;    // Stopwatch timestamp
    private long _refused;        // requests answered 503 in this outage

    /// <summary>True from the first failed request of an outage until the database takes writes again.</summary>
    public bool Down => Interlocked.Read(ref _downSince) != 0;

    /// <summary>
    /// A request (or background work, not <paramref name="countAsRefused"/>) failed because the database is unavailable
    /// (<see cref="StorageFaults.IsUnavailable"/>).
    /// </summary>
    public void Failed(Exception e, bool countAsRefused = true)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Exchange(ref _lastFailure, now);
        if (countAsRefused)
        {
            Interlocked.Increment(ref _refused);
        }
        lock (_lock)
        {
            if (_downSince != 0)
            {
                return;
            }
            Interlocked.Exchange(ref _downSince, now);
        }
        log.LogWarning("storage unavailable ({Engine}): {Reason}; answering 503 until it takes writes again", store.Engine, Reason(e));
        _ = Task.Run(() => WatchRecoveryAsync(_stopping.Token));
    }

    /// <summary>Commits a one-row write within two seconds: null when it did, else why not (and the outage is noted).</summary>
    public Task<string?> ProbeAsync(CancellationToken ct)
    {
        // /healthz/ready is open to anyone: callers within half a second share one probe, so asking faster
        // never writes faster than twice a second (docs/deployment.md §13).
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            if (_probe is null || Stopwatch.GetElapsedTime(_probeStarted, now) >= ProbeEvery)
            {
                _probeStarted = now;
                _probe = ProbeOnceAsync();
            }
            return _probe.WaitAsync(ct);
        }
    }

    private Task<string?>? _probe;
    private long _probeStarted;   // Stopwatch timestamp

    private async Task<string?> ProbeOnceAsync()
    {
        if (await TryWriteAsync(CancellationToken.None) is not { } failure)
        {
            return null;
        }
        Failed(failure, countAsRefused: false);
        return Reason(failure);
    }

    private async Task<Exception?> TryWriteAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            // A write that was queued still runs after the wait is abandoned; the probe only stops waiting.
            await store.Meta.ProbeWriteAsync(time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None).WaitAsync(timeout.Token);
            return null;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new TimeoutException($"a write did not commit within {ProbeTimeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (StorageFaults.IsUnavailable(e))
        {
            return e;
        }
    }

    private async Task WatchRecoveryAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(ProbeEvery, ct);
                if (await TryWriteAsync(ct) is not null || Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastFailure)) < Quiet)
                {
                    continue;
                }
                long since;
                lock (_lock)
                {
                    // Checked again under the lock: a request failing meanwhile keeps the outage open (see Failed).
                    if (Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastFailure)) < Quiet)
                    {
                        continue;
                    }
                    since = _downSince;
                    Interlocked.Exchange(ref _downSince, 0);
                }
                var refused = Interlocked.Exchange(ref _refused, 0);
                log.LogWarning("storage available again ({Engine}) after {Seconds:0.0} s; {Refused} requests were answered 503 meanwhile",
                    store.Engine, Stopwatch.GetElapsedTime(since).TotalSeconds, refused);
                return;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>The innermost message: "Connection refused" says more than "Failed to connect to 127.0.0.1:5432".</summary>
    private static string Reason(Exception e)
    {
        var message = e.Message;
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            message = $"{message} ({inner.Message})";
        }
        return message.ReplaceLineEndings(" ");
    }

    public void Dispose() => _stopping.Cancel();
}
