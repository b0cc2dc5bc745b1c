using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// A webhook endpoint (docs/webhooks.md §1). The signing secret is sealed under the master key. While it fails,
/// <see cref="RetryAt"/> holds its deliveries back (one probe at a time); <see cref="FailingSince"/> is when the
/// current run of failures began.
/// </summary>
internal sealed record WebhookEndpointRecord(string Id, string OwnerUserId, string Url, string Events, byte[] SealedSecret, long CreatedAt, int Failures,
    long? FailingSince, long? RetryAt, long? DisabledAt, string? DisabledReason, long? DeletedAt)
{
    public bool Active => DisabledAt is null && DeletedAt is null;
}

/// <summary>One event for one target: a webhook endpoint, or an agent (CIBA ping or push). <see cref="Body"/> is set once rendered.</summary>
internal sealed record DeliveryRecord(string Id, string EventId, string TargetId, string Kind, string Type, string Subject, long CreatedAt, long NextAttemptAt,
    int Attempts, DeliveryState State, byte[]? Body, long? LastAttemptAt, int? LastStatus, string? LastError, long? DeliveredAt);

/// <summary>
/// What one attempt came to. <see cref="Attempted"/> is false for a delivery handed back unattempted (its endpoint
/// was found failing meanwhile). <see cref="NextAttemptAt"/> null after a failure: the schedule is spent.
/// </summary>
internal sealed record DeliveryOutcome(DeliveryRecord Delivery, bool Attempted, bool Succeeded, int? Status, string? Error, byte[]? Body, long At,
    long? NextAttemptAt, long? EndpointRetryAt);

/// <summary>An endpoint that failed for too long and was disabled by <see cref="IWebhookStore.RecordAsync"/>: its owner is told.</summary>
internal sealed record DisabledEndpoint(string Id, string OwnerUserId, string Url);

internal interface IWebhookStore
{
    Task CreateEndpointAsync(WebhookEndpointRecord endpoint, IReadOnlyList<string> events, AuditEvent audit, CancellationToken ct);

    Task<WebhookEndpointRecord?> FindEndpointAsync(string id, CancellationToken ct);

    Task<IReadOnlyList<WebhookEndpointRecord>> ListEndpointsAsync(string ownerUserId, CancellationToken ct);

    /// <summary>Removes an endpoint of this owner; its undelivered deliveries fail. False when there is none.</summary>
    Task<bool> TryDeleteEndpointAsync(string id, string ownerUserId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>Turns a disabled endpoint back on, its failure run forgotten; false when it is not this owner's or not disabled.</summary>
    Task<bool> TryEnableEndpointAsync(string id, string ownerUserId, AuditEvent audit, CancellationToken ct);

    /// <summary>An endpoint's deliveries, newest first, created before <paramref name="before"/> (ms).</summary>
    Task<IReadOnlyList<DeliveryRecord>> ListDeliveriesAsync(string targetId, long before, int limit, CancellationToken ct);

    /// <summary>Queues a delivery again now, whatever its state (manual retry); false when the endpoint has no such delivery.</summary>
    Task<bool> TryRetryAsync(string targetId, string deliveryId, long now, CancellationToken ct);

    /// <summary>Queues one event for one endpoint outside any transition (the endpoint test).</summary>
    Task EnqueueAsync(string eventId, string targetId, string type, string subject, long now, CancellationToken ct);

    /// <summary>
    /// Leases up to <paramref name="max"/> due deliveries until <paramref name="leaseUntil"/>: on PostgreSQL every node
    /// claims at once and SKIP LOCKED gives each delivery to one of them; a lease that runs out (its node died)
    /// makes the delivery due again. Deliveries of an endpoint in back-off are left alone.
    /// </summary>
    Task<IReadOnlyList<DeliveryRecord>> ClaimAsync(long now, long leaseUntil, int max, CancellationToken ct);

    /// <summary>
    /// Which of these deliveries, handed to this node's worker as they were inserted (<see cref="OutboxSql.EmitAsync"/>),
    /// have committed and are still pending, each with whether its endpoint holds it back now (back-off, disabled, removed).
    /// Absent ones have not committed yet, or never will.
    /// </summary>
    Task<IReadOnlyList<(string Id, bool HeldBack)>> FindHandedOffAsync(IReadOnlyList<string> ids, long now, CancellationToken ct);

    /// <summary>Records attempts and what they mean for their endpoints; returns the endpoints disabled by this.</summary>
    Task<IReadOnlyList<DisabledEndpoint>> RecordAsync(IReadOnlyList<DeliveryOutcome> outcomes, long disableAfter, CancellationToken ct);

    /// <summary>Releases every lease (a single-process engine at start: the leases are a dead process's); returns how many.</summary>
    Task<int> ReleaseLeasesAsync(CancellationToken ct);

    /// <summary>An agent's CIBA delivery mode and notification endpoint (CIBA Core §4); null when there is no such agent.</summary>
    Task<CibaClientSettings?> FindCibaClientAsync(string clientId, CancellationToken ct);

    /// <summary>Sets an agent's CIBA delivery mode and notification endpoint; false when there is no such active agent.</summary>
    Task<bool> TrySetCibaClientAsync(string clientId, CibaClientSettings settings, AuditEvent audit, CancellationToken ct);

    /// <summary>The sealed <c>auth_req_id</c> and <c>client_notification_token</c> of a ping or push request (see <see cref="IApprovalStore.TryCreateAsync"/>).</summary>
    Task<byte[]?> FindCibaNotificationAsync(string approvalId, CancellationToken ct);
}

/// <summary>CIBA Core §4 client metadata: <c>backchannel_token_delivery_mode</c> and <c>backchannel_client_notification_endpoint</c>.</summary>
internal sealed record CibaClientSettings(string Mode, string? NotificationEndpoint);

internal sealed class WebhookStore(Database db) : IWebhookStore
{
    private const string EndpointColumns =
        "id, owner_user_id, url, events, sealed_secret, created_at, failures, failing_since, retry_at, disabled_at, disabled_reason, deleted_at";

    internal const string DeliveryColumns =
        "id, event_id, target_id, kind, type, subject, created_at, next_attempt_at, attempts, state, body, last_attempt_at, last_status, last_error, delivered_at";

    private static WebhookEndpointRecord ReadEndpoint(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), (byte[])r[4],
        r.GetInt64(5), r.GetInt32(6), Rows.NullableLong(r, 7), Rows.NullableLong(r, 8), Rows.NullableLong(r, 9), Rows.NullableString(r, 10), Rows.NullableLong(r, 11));

    internal static DeliveryRecord ReadDelivery(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
        r.GetString(5), r.GetInt64(6), r.GetInt64(7), r.GetInt32(8), (DeliveryState)r.GetInt32(9), r.IsDBNull(10) ? null : (byte[])r[10],
        Rows.NullableLong(r, 11), r.IsDBNull(12) ? null : r.GetInt32(12), Rows.NullableString(r, 13), Rows.NullableLong(r, 14));

    private static readonly string Pending = ((int)DeliveryState.Pending).ToString(System.Globalization.CultureInfo.InvariantCulture);
    private static readonly string Failed = ((int)DeliveryState.Failed).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private readonly string _claim =
        $"UPDATE deliveries SET lease_until = $2 WHERE id IN (SELECT d.id FROM deliveries d WHERE d.state = {Pending} AND d.next_attempt_at <= $1 " +
        "AND d.lease_until <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = d.target_id AND " +
        "(w.retry_at > $1 OR w.disabled_at IS NOT NULL OR w.deleted_at IS NOT NULL)) " +
        $"ORDER BY d.next_attempt_at LIMIT $3{db.ForUpdateSkipLocked}) RETURNING {DeliveryColumns}";

    // Ids per read of FindHandedOffAsync: with the time, the 32 placeholders a statement may have here.
    private const int HandedOffChunk = 31;

    private static readonly string FindHandedOffSql =
        "SELECT d.id, CASE WHEN w.retry_at > $1 OR w.disabled_at IS NOT NULL OR w.deleted_at IS NOT NULL THEN 1 ELSE 0 END " +
        "FROM deliveries d LEFT JOIN webhook_endpoints w ON w.id = d.target_id " +
        $"WHERE d.id IN ({string.Join(", ", Enumerable.Range(2, HandedOffChunk).Select(i => "$" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)))}) " +
        $"AND d.state = {Pending} AND d.attempts = 0";

    public Task CreateEndpointAsync(WebhookEndpointRecord e, IReadOnlyList<string> events, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await InsertEndpointAsync(w, e, events);
            return await w.AuditedAsync(audit);
        }, ct);

    /// <summary>An endpoint's rows, and one per event it subscribes to, in the caller's transaction.</summary>
    internal static async ValueTask InsertEndpointAsync(IWriteSession w, WebhookEndpointRecord e, IReadOnlyList<string> events)
    {
        await w.ExecAsync($"INSERT INTO webhook_endpoints({EndpointColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            e.Id, e.OwnerUserId, e.Url, e.Events, e.SealedSecret, e.CreatedAt, e.Failures, e.FailingSince, e.RetryAt, e.DisabledAt, e.DisabledReason,
            e.DeletedAt);
        foreach (var ev in events)
        {
            await w.ExecAsync("INSERT INTO webhook_events(endpoint_id, event) VALUES($1, $2)", e.Id, ev);
        }
    }

    public Task<WebhookEndpointRecord?> FindEndpointAsync(string id, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {EndpointColumns} FROM webhook_endpoints WHERE id = $1", ReadEndpoint, id), ct);

    public Task<IReadOnlyList<WebhookEndpointRecord>> ListEndpointsAsync(string ownerUserId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {EndpointColumns} FROM webhook_endpoints WHERE owner_user_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
            ReadEndpoint, ownerUserId), ct);

    public Task<bool> TryDeleteEndpointAsync(string id, string ownerUserId, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.ExecAsync("UPDATE webhook_endpoints SET deleted_at = $3 WHERE id = $1 AND owner_user_id = $2 AND deleted_at IS NULL", id, ownerUserId, now) != 1)
            {
                return false;
            }
            await w.ExecAsync($"UPDATE deliveries SET state = {Failed}, last_error = 'endpoint removed' WHERE target_id = $1 AND state = {Pending}", id);
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<bool> TryEnableEndpointAsync(string id, string ownerUserId, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
            await w.ExecAsync("UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failures = 0, failing_since = NULL, retry_at = NULL " +
                              "WHERE id = $1 AND owner_user_id = $2 AND deleted_at IS NULL AND disabled_at IS NOT NULL", id, ownerUserId) == 1 &&
            await w.AuditedAsync(audit), ct);

    public Task<IReadOnlyList<DeliveryRecord>> ListDeliveriesAsync(string targetId, long before, int limit, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(
            $"SELECT {DeliveryColumns} FROM deliveries WHERE target_id = $1 AND created_at < $2 ORDER BY created_at DESC, id DESC LIMIT $3",
            ReadDelivery, targetId, before, limit), ct);

    public async Task<bool> TryRetryAsync(string targetId, string deliveryId, long now, CancellationToken ct)
    {
        var queued = await db.WriteAsync(async w =>
        {
            var n = await w.ExecAsync($"UPDATE deliveries SET state = {Pending}, next_attempt_at = $3, lease_until = 0 WHERE id = $1 AND target_id = $2",
                deliveryId, targetId, now);
            // Asked by a human: the endpoint's back-off does not hold this one back.
            await w.ExecAsync("UPDATE webhook_endpoints SET retry_at = NULL WHERE id = $1", targetId);
            return n;
        }, ct);
        db.Outbox.Enqueued(queued);
        return queued == 1;
    }

    public async Task EnqueueAsync(string eventId, string targetId, string type, string subject, long now, CancellationToken ct)
    {
        await db.WriteAsync(w => w.ExecAsync(
            "INSERT INTO deliveries(id, event_id, target_id, kind, type, subject, created_at, next_attempt_at) VALUES($1, $2, $3, $4, $5, $6, $7, $7)",
            eventId + "." + targetId, eventId, targetId, DeliveryKinds.Webhook, type, subject, now), ct);
        db.Outbox.Enqueued(1);
    }

    public Task<IReadOnlyList<DeliveryRecord>> ClaimAsync(long now, long leaseUntil, int max, CancellationToken ct) =>
        db.WriteAsync(w => w.AllAsync(_claim, ReadDelivery, now, leaseUntil, max), ct);

    public async Task<IReadOnlyList<(string Id, bool HeldBack)>> FindHandedOffAsync(IReadOnlyList<string> ids, long now, CancellationToken ct)
    {
        var found = new List<(string Id, bool HeldBack)>(ids.Count);
        // One read per chunk of a fixed size, so one prepared statement serves them all (the last id pads a short chunk);
        // a reader never waits for the writer.
        foreach (var chunk in ids.Chunk(HandedOffChunk))
        {
            object?[] args = [now, .. chunk, .. Enumerable.Repeat(chunk[^1], HandedOffChunk - chunk.Length)];
            found.AddRange(await db.ReadAsync(s => s.AllAsync(FindHandedOffSql, r => (r.GetString(0), r.GetInt32(1) == 1), args), ct));
        }
        return found;
    }

    public async Task<IReadOnlyList<DisabledEndpoint>> RecordAsync(IReadOnlyList<DeliveryOutcome> outcomes, long disableAfter, CancellationToken ct)
    {
        var (disabled, released) = await db.WriteAsync(async w =>
        {
            var disabled = new List<DisabledEndpoint>();
            var released = 0;
            // Endpoints whose failure run this batch already found ended: one write per endpoint, not per delivery.
            var healthy = new HashSet<string>(StringComparer.Ordinal);
            foreach (var o in outcomes)
            {
                var d = o.Delivery;
                if (!o.Attempted)
                {
                    await w.ExecAsync("UPDATE deliveries SET lease_until = 0 WHERE id = $1", d.Id);
                    continue;
                }
                var state = o.Succeeded ? DeliveryState.Delivered : o.NextAttemptAt is null ? DeliveryState.Failed : DeliveryState.Pending;
                await w.ExecAsync(
                    "UPDATE deliveries SET attempts = attempts + 1, state = $2, body = COALESCE(body, $3), last_attempt_at = $4, last_status = $5, last_error = $6, " +
                    "next_attempt_at = COALESCE($7, next_attempt_at), lease_until = 0, delivered_at = $8 WHERE id = $1",
                    d.Id, (int)state, o.Body, o.At, o.Status, o.Error, o.NextAttemptAt, o.Succeeded ? o.At : null);
                if (d.Kind != DeliveryKinds.Webhook)
                {
                    continue;
                }
                if (o.Succeeded)
                {
                    // Back from a failure run: everything held back for it is due now, not at its own next attempt.
                    if (healthy.Add(d.TargetId) && await w.ExecAsync("UPDATE webhook_endpoints SET failures = 0, failing_since = NULL, retry_at = NULL WHERE id = $1 AND failures > 0",
                            d.TargetId) == 1)
                    {
                        released += await w.ExecAsync(
                            $"UPDATE deliveries SET next_attempt_at = $2 WHERE target_id = $1 AND state = {Pending} AND next_attempt_at > $2", d.TargetId, o.At);
                    }
                    continue;
                }
                healthy.Remove(d.TargetId);
                await w.ExecAsync(
                    "UPDATE webhook_endpoints SET failures = failures + 1, failing_since = COALESCE(failing_since, $2), retry_at = $3 WHERE id = $1",
                    d.TargetId, o.At, o.EndpointRetryAt);
                // docs/webhooks.md §4: an endpoint failing for this long is disabled, and its owner told (audit, list, event).
                if (await w.OneAsync(
                        "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 WHERE id = $1 AND disabled_at IS NULL AND failing_since <= $4 " +
                        "RETURNING id, owner_user_id, url",
                        r => new DisabledEndpoint(r.GetString(0), r.GetString(1), r.GetString(2)), d.TargetId, o.At,
                        $"every delivery failed for {TimeSpan.FromMilliseconds(disableAfter).TotalDays:0.#} days; last error: {o.Error}", o.At - disableAfter) is { } off)
                {
                    await w.ExecAsync($"UPDATE deliveries SET state = {Failed}, last_error = 'endpoint disabled' WHERE target_id = $1 AND state = {Pending}", off.Id);
                    await w.AuditAsync(new AuditEvent(AuditTypes.WebhookDisabled, off.OwnerUserId, "system", off.Id,
                        new Dictionary<string, string> { ["url"] = off.Url, ["last_error"] = o.Error ?? "" }));
                    disabled.Add(off);
                }
            }
            return (disabled, released);
        }, ct);
        db.Outbox.Enqueued(released);
        return disabled;
    }

    public async Task<int> ReleaseLeasesAsync(CancellationToken ct)
    {
        var released = await db.WriteAsync(w => w.ExecAsync($"UPDATE deliveries SET lease_until = 0 WHERE state = {Pending} AND lease_until > 0"), ct);
        db.Outbox.Enqueued(released);
        return released;
    }

    public Task<CibaClientSettings?> FindCibaClientAsync(string clientId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT delivery_mode, notification_endpoint FROM clients WHERE id = $1",
            r => new CibaClientSettings(r.GetString(0), Rows.NullableString(r, 1)), clientId), ct);

    public Task<bool> TrySetCibaClientAsync(string clientId, CibaClientSettings settings, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
            await w.ExecAsync("UPDATE clients SET delivery_mode = $2, notification_endpoint = $3 WHERE id = $1 AND revoked_at IS NULL",
                clientId, settings.Mode, settings.NotificationEndpoint) == 1 && await w.AuditedAsync(audit), ct);

    public Task<byte[]?> FindCibaNotificationAsync(string approvalId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT sealed FROM ciba_notifications WHERE approval_id = $1", r => (byte[])r[0], approvalId), ct);

    /// <summary>Settled deliveries created before $1 (the delivery log keeps 30 days; docs/webhooks.md §5).</summary>
    internal static readonly string PruneSettled = $"DELETE FROM deliveries WHERE state <> {Pending} AND created_at <= $1";
}
