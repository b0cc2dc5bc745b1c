using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// A browser's Web Push subscription (RFC 8030 §4, RFC 8291 §2), held for the device (passkey) whose web session
/// registered it: the push service's endpoint URL, the browser's P-256 public key and its 16-byte auth secret.
/// </summary>
internal sealed record PushSubscriptionRecord(string Id, string UserId, string DeviceId, string Endpoint, byte[] P256dh, byte[] Auth, long CreatedAt);

/// <summary>What a subscribe did: stored a new row, refreshed the row of the same endpoint, or refused (the user is at the cap).</summary>
internal enum PushSubscribeOutcome
{
    Created,
    Updated,
    OverLimit,
}

/// <summary>Web Push subscriptions of users' devices (docs/storage.md §3).</summary>
internal interface IPushSubscriptionStore
{
    /// <summary>
    /// Stores a subscription, or refreshes the one with the same endpoint (its keys, and the device that registered it
    /// last; not audited). A new endpoint is refused once the user holds <paramref name="maxPerUser"/> subscriptions.
    /// </summary>
    Task<(PushSubscribeOutcome Outcome, string Id)> SubscribeAsync(PushSubscriptionRecord subscription, int maxPerUser, AuditEvent audit, CancellationToken ct);

    /// <summary>The user's subscriptions whose device is not revoked: those a new request is pushed to.</summary>
    Task<IReadOnlyList<PushSubscriptionRecord>> ListActiveAsync(string userId, CancellationToken ct);

    /// <summary>Removes the user's subscription of this endpoint; false when there is none.</summary>
    Task<bool> TryUnsubscribeAsync(string userId, string endpoint, AuditEvent audit, CancellationToken ct);

    /// <summary>Removes the user's subscription of this id; false when there is none.</summary>
    Task<bool> TryDeleteAsync(string userId, string id, AuditEvent audit, CancellationToken ct);

    /// <summary>Removes a subscription the push service says is gone (RFC 8030 §7.3: 404 or 410), unless it was re-registered since.</summary>
    Task<bool> TryDropAsync(string id, string endpoint, byte[] auth, AuditEvent audit, CancellationToken ct);
}

internal sealed class PushSubscriptionStore(Database db) : IPushSubscriptionStore
{
    private const string Columns = "id, user_id, device_id, endpoint, p256dh, auth, created_at";

    public Task<(PushSubscribeOutcome Outcome, string Id)> SubscribeAsync(PushSubscriptionRecord s, int maxPerUser, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // The user's row is locked first (PostgreSQL), so two subscribes racing on two nodes count one after the other.
            await w.AnyAsync($"SELECT 1 FROM users WHERE id = $1{db.ForUpdate}", s.UserId);
            var existing = await w.OneAsync("UPDATE push_subscriptions SET user_id = $2, device_id = $3, p256dh = $4, auth = $5 WHERE endpoint = $1 RETURNING id",
                r => r.GetString(0), s.Endpoint, s.UserId, s.DeviceId, s.P256dh, s.Auth);
            if (existing is not null)
            {
                // A refresh (the app re-sends its subscription when it opens) is not news for the audit log.
                return (PushSubscribeOutcome.Updated, existing);
            }
            if (await w.AnyAsync("SELECT 1 FROM push_subscriptions WHERE user_id = $1 LIMIT 1 OFFSET $2", s.UserId, (long)(maxPerUser - 1)))
            {
                return (PushSubscribeOutcome.OverLimit, "");
            }
            await w.ExecAsync($"INSERT INTO push_subscriptions({Columns}) VALUES($1, $2, $3, $4, $5, $6, $7)",
                s.Id, s.UserId, s.DeviceId, s.Endpoint, s.P256dh, s.Auth, s.CreatedAt);
            await w.AuditAsync(audit);
            return (PushSubscribeOutcome.Created, s.Id);
        }, ct);

    public Task<IReadOnlyList<PushSubscriptionRecord>> ListActiveAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(
            "SELECT p.id, p.user_id, p.device_id, p.endpoint, p.p256dh, p.auth, p.created_at FROM push_subscriptions p " +
            "JOIN devices d ON d.id = p.device_id WHERE p.user_id = $1 AND d.revoked_at IS NULL ORDER BY p.created_at, p.id", Read, userId), ct);

    public Task<bool> TryUnsubscribeAsync(string userId, string endpoint, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            var id = await w.OneAsync("DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2 RETURNING id", r => r.GetString(0), userId, endpoint);
            return id is not null && await w.AuditedAsync(audit with { Subject = id });
        }, ct);

    public Task<bool> TryDeleteAsync(string userId, string id, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync("DELETE FROM push_subscriptions WHERE user_id = $1 AND id = $2", userId, id) == 1 && await w.AuditedAsync(audit), ct);

    public Task<bool> TryDropAsync(string id, string endpoint, byte[] auth, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync("DELETE FROM push_subscriptions WHERE id = $1 AND endpoint = $2 AND auth = $3", id, endpoint, auth) == 1 &&
                                 await w.AuditedAsync(audit), ct);

    private static PushSubscriptionRecord Read(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), (byte[])r[4], (byte[])r[5], r.GetInt64(6));
}
