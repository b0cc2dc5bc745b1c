using Assent.Server.Approvals;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Assent.Server.Storage;

/// <summary>
/// Carries other nodes' transitions to this node's hub: LISTEN on the approvals channel, wake
/// local <c>Prefer: wait</c> waiters and feed local device streams. A lost connection is
/// re-established with backoff; after every (re)connect all local waiters are woken to re-read
/// the database, so a decision made while this node was deaf is never waited past.
/// </summary>
internal sealed class PostgresListener(PostgresStore store, ApprovalHub hub, ILogger<PostgresListener> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await store.Source.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => OnNotification(e.Payload, stoppingToken);
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresStore.Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                hub.WakeAll();
                backoff = TimeSpan.FromMilliseconds(100);
                try
                {
                    while (!stoppingToken.IsCancellationRequested)
                    {
                        await connection.WaitAsync(stoppingToken);
                    }
                }
                finally
                {
                    await UnlistenAsync(connection);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or System.IO.IOException or System.Net.Sockets.SocketException or InvalidOperationException)
            {
                log.LogWarning("lost the notification connection ({Message}); reconnecting in {Delay} ms", e.Message, (int)backoff.TotalMilliseconds);
                hub.WakeAll();
                await Task.Delay(backoff, stoppingToken);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5000));
            }
        }
    }

    /// <summary>Pooled connections are not reset on reuse (see PostgresStore), so the LISTEN is undone before this one goes back.</summary>
    private static async Task UnlistenAsync(NpgsqlConnection connection)
    {
        if (connection.FullState != System.Data.ConnectionState.Open)
        {
            return;
        }
        try
        {
            await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
            await unlisten.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or System.IO.IOException or InvalidOperationException)
        {
            // A broken connection is not returned to the pool.
        }
    }

    private void OnNotification(string payload, CancellationToken ct)
    {
        // node|kind|approval|user|state, and for a new request optionally |request-json (which may contain '|').
        var parts = payload.Split('|', 6);
        if (parts.Length < 5 || parts[0] == store.NodeId)
        {
            return;
        }
        var (kind, approvalId, userId, state) = (parts[1], parts[2], parts[3], parts[4]);
        if (kind == "settled")
        {
            hub.Settled(approvalId, userId, state);
            return;
        }
        // A request created elsewhere: fetch it for this node's device streams (if it has any for that user), off the notification thread.
        if (!hub.HasStreams(userId))
        {
            return;
        }
        if (parts.Length == 6 && PostgresStore.AnnouncedIn(parts[5]) is { State: ApprovalState.Pending } announced && announced.Id == approvalId && announced.UserId == userId)
        {
            hub.Created(announced);
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                if (await store.FindApprovalAsync(approvalId, ct) is { State: ApprovalState.Pending } approval)
                {
                    hub.Created(approval);
                }
            }
            catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
            {
                log.LogDebug("could not fetch approval {Id} announced by another node: {Message}", approvalId, e.Message);
            }
        }, ct);
    }
}
