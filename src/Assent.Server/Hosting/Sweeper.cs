using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Hosting;

/// <summary>Expires overdue requests (waking their waiters), prunes poll pacing and expired sign-in rows, and picks up key rotations made elsewhere.</summary>
internal sealed class Sweeper(ApprovalService approvals, PollPacer pacer, KeyRing keys, AssentStore store, StorageHealth health, AssentOptions options,
    TimeProvider time, ILogger<Sweeper> log)
    : BackgroundService
{
    private static readonly TimeSpan PruneGrace = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.SweepInterval, time);
        var ticks = 0;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                while (await approvals.SweepAsync(stoppingToken) > 0)
                {
                }
                if (++ticks % 5 == 0)
                {
                    pacer.Prune();
                    await keys.RefreshAsync(stoppingToken);
                }
                if (ticks % 60 == 0)
                {
                    // An hour's grace: a client coming back just after expiry still hears "expired", not "unknown".
                    await store.PruneExpiredAsync((time.GetUtcNow() - PruneGrace).ToUnixTimeMilliseconds(), stoppingToken);
                }
            }
            catch (Exception e) when (StorageFaults.IsUnavailable(e))
            {
                // An outage is logged when it starts and when it ends (StorageHealth), not on every tick.
                health.Failed(e, countAsRefused: false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogWarning(e, "sweep failed; retrying on the next tick");
            }
        }
    }
}
