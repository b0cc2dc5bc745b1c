using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Assent.Server.Storage.Postgres;

/// <summary>
/// Carries other nodes' transitions to whoever listens on this node (<see cref="IApprovalEvents"/>: the approval
/// hub, which wakes local <c>Prefer: wait</c> waiters and feeds local device streams): LISTEN on the approvals
/// channel. A lost connection is re-established with backoff; after every (re)connect the listeners are told to
/// resync, so a decision made while this node was deaf is never waited past.
/// </summary>
internal sealed class PostgresListener(PostgresDatabase db, IApprovalStore approvals, IApprovalEvents events, ILogger<PostgresListener> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await db.Source.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => OnNotification(e.Payload, stoppingToken);
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresDatabase.Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                // Everyone here may have missed news while deaf: waiters read their request again, device streams the
                // user's requests (docs/storage.md §5).
                events.Resync();
                if (failures > 0)
                {
                    log.LogWarning("listening for other nodes' transitions again after {Attempts} attempts", failures);
                }
                failures = 0;
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
                // One line when the connection is lost and one when it is back, not one per attempt.
                log.Log(++failures == 1 ? LogLevel.Warning : LogLevel.Debug, "lost the notification connection ({Message}); reconnecting in {Delay} ms",
                    e.Message, (int)backoff.TotalMilliseconds);
                events.Resync();
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
        // node|kind|approval|user|state, and for a new request optionally |request-json (which may contain '|'),
        // for a shared request's settlement |other-user,other-user… (PostgresDatabase.Payload).
        var parts = payload.Split('|', 6);
        if (parts.Length < 5 || parts[0] == db.NodeId)
        {
            return;
        }
        var (kind, approvalId, userId, state) = (parts[1], parts[2], parts[3], parts[4]);
        if (kind == ApprovalNotice.SettledKind)
        {
            if (parts.Length == 6 && parts[5].Length > 0)
            {
                events.Settled(approvalId, parts[5].Split(',').Prepend(userId).Distinct(StringComparer.Ordinal), state);
            }
            else
            {
                events.Settled(approvalId, userId, state);
            }
            return;
        }
        // A request created elsewhere, or a quorum's announced again after a vote: for this node's device streams, if it
        // has any for that user or, when the notice carries the request, for one of its approvers (docs/policies.md §3).
        var announced = parts.Length == 6 && AnnouncedIn(parts[5]) is { State: ApprovalState.Pending } a && a.Id == approvalId && a.UserId == userId ? a : null;
        if (!events.Wants(userId) && announced?.EligibleUsers?.Any(events.Wants) != true)
        {
            return;
        }
        if (announced is not null)
        {
            events.Created(announced);
            return;
        }
        // Fetched off the notification thread.

        _ = Task.Run(async () =>
        {
            try
            {
                if (await approvals.FindAsync(approvalId, ct) is { State: ApprovalState.Pending } approval)
                {
                    events.Created(approval);
                }
            }
            catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
            {
                log.LogDebug("could not fetch approval {Id} announced by another node: {Message}", approvalId, e.Message);
            }
        }, ct);
    }

    /// <summary>Reads a request carried by a notice (see <see cref="PostgresDatabase.Payload"/>); null when it carries none.</summary>
    internal static ApprovalRecord? AnnouncedIn(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(json, StoreJson.Default.ApprovalRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
