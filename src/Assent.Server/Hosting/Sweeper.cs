using Assent.Server.Approvals;
using Assent.Server.Ciba;
using Assent.Server.Keys;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Hosting;

/// <summary>Expires overdue requests (waking their waiters), prunes poll pacing, and picks up key rotations made elsewhere.</summary>
internal sealed class Sweeper(ApprovalService approvals, PollPacer pacer, KeyRing keys, AssentOptions options, TimeProvider time, ILogger<Sweeper> log)
    : BackgroundService
{
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
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogWarning(e, "sweep failed; retrying on the next tick");
            }
        }
    }
}
