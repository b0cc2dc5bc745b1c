using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>Devices and their credentials: enrolment, passkey challenges and counters, signed-request nonces, rename and revoke.</summary>
internal interface IDeviceStore
{
    Task<DeviceRecord?> FindAsync(string deviceId, CancellationToken ct);

    Task<DeviceRecord?> FindByCredentialIdAsync(byte[] credentialId, CancellationToken ct);

    Task<IReadOnlyList<DeviceRecord>> ListAsync(string userId, CancellationToken ct);

    /// <summary>Consumes an unused, unexpired invite and enrols the device in one step; null when the code is not usable.</summary>
    Task<UserRecord?> TryEnrollAsync(byte[] codeHash, long now, Func<UserRecord, DeviceRecord> device, Func<UserRecord, DeviceRecord, AuditEvent> audit, CancellationToken ct);

    /// <summary>Adds a device to an existing user (a signed-in user registering another passkey).</summary>
    Task AddAsync(DeviceRecord device, AuditEvent audit, CancellationToken ct);

    Task<bool> TryRenameAsync(string deviceId, string userId, string name, AuditEvent audit, CancellationToken ct);

    Task<bool> TryRevokeAsync(string deviceId, string userId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>Moves the stored WebAuthn counter to <paramref name="signCount"/> only when that is allowed (see <see cref="DeviceSql.CounterAdvances"/>).</summary>
    Task<bool> TryAdvanceSignCountAsync(string deviceId, long signCount, CancellationToken ct);

    /// <summary>
    /// Records a signed device request's nonce until <paramref name="expiresAt"/>; false when the device has used it
    /// before. Stored, so every node (and the next start) refuses a replay.
    /// </summary>
    Task<bool> TryUseNonceAsync(string deviceId, string nonce, long expiresAt, CancellationToken ct);

    /// <summary>Stores a WebAuthn challenge; expired ones are purged on the way.</summary>
    Task CreateChallengeAsync(WebAuthnChallengeRecord challenge, long now, CancellationToken ct);

    /// <summary>Removes and returns an unexpired challenge: each one is usable exactly once, on any node.</summary>
    Task<WebAuthnChallengeRecord?> TryTakeChallengeAsync(byte[] challengeHash, long now, CancellationToken ct);
}

/// <summary>Device statements more than one store uses.</summary>
internal static class DeviceSql
{
    public const string Columns = "id, user_id, kind, name, public_jwk, credential_id, sign_count, created_at, revoked_at";

    /// <summary>
    /// WebAuthn L3 §6.1.1: a counter must move forward; when either the stored or the presented counter is nonzero and
    /// the presented one is not greater, the authenticator may be cloned. Only a passkey that always reports 0 keeps 0.
    /// $1 = device id, $2 = the presented counter.
    /// </summary>
    public const string CounterAdvances = "(sign_count < $2 OR (sign_count = 0 AND $2 = 0))";

    public static ValueTask<int> InsertAsync(IWriteSession w, DeviceRecord d) =>
        w.ExecAsync("INSERT INTO devices(id, user_id, kind, name, public_jwk, credential_id, sign_count, created_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
            d.Id, d.UserId, d.Kind, d.Name, d.PublicJwk, d.CredentialId, d.SignCount, d.CreatedAt);

    public static DeviceRecord Read(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
        r.IsDBNull(5) ? null : (byte[])r[5], r.GetInt64(6), r.GetInt64(7), Rows.NullableLong(r, 8));
}

internal sealed class DeviceStore(Database db) : IDeviceStore
{
    public Task<DeviceRecord?> FindAsync(string deviceId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {DeviceSql.Columns} FROM devices WHERE id = $1", DeviceSql.Read, deviceId), ct);

    public Task<DeviceRecord?> FindByCredentialIdAsync(byte[] credentialId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {DeviceSql.Columns} FROM devices WHERE credential_id = $1", DeviceSql.Read, credentialId), ct);

    public Task<IReadOnlyList<DeviceRecord>> ListAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {DeviceSql.Columns} FROM devices WHERE user_id = $1 ORDER BY created_at, id", DeviceSql.Read, userId), ct);

    public async Task<UserRecord?> TryEnrollAsync(byte[] codeHash, long now, Func<UserRecord, DeviceRecord> device,
        Func<UserRecord, DeviceRecord, AuditEvent> audit, CancellationToken ct)
    {
        var (user, queued) = await db.WriteAsync(async w =>
        {
            // The guarded update is the race guard: of two enrolments with one code, one finds it used.
            var userId = await w.OneAsync("UPDATE invites SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
                r => r.GetString(0), codeHash, now);
            if (userId is null)
            {
                return ((UserRecord?)null, 0);
            }
            var user = (await w.OneAsync($"SELECT {UserStore.Columns} FROM users WHERE id = $1", UserStore.Read, userId))!;
            var d = device(user);
            await DeviceSql.InsertAsync(w, d);
            await w.AuditAsync(audit(user, d));
            return (user, await w.EmitAsync(db.Outbox, OutboxEvent.ForDevice(EventTypes.DeviceEnrolled, d, now)));
        }, ct);
        // After the commit: the worker sends what this transaction queued (docs/storage.md §9).
        db.Outbox.Enqueued(queued);
        return user;
    }

    public async Task AddAsync(DeviceRecord device, AuditEvent audit, CancellationToken ct)
    {
        var queued = await db.WriteAsync(async w =>
        {
            await DeviceSql.InsertAsync(w, device);
            await w.AuditAsync(audit);
            return await w.EmitAsync(db.Outbox, OutboxEvent.ForDevice(EventTypes.DeviceEnrolled, device, device.CreatedAt));
        }, ct);
        db.Outbox.Enqueued(queued);
    }

    public Task<bool> TryRenameAsync(string deviceId, string userId, string name, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync("UPDATE devices SET name = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL", deviceId, userId, name) == 1 &&
                                 await w.AuditedAsync(audit), ct);

    public async Task<bool> TryRevokeAsync(string deviceId, string userId, long now, AuditEvent audit, CancellationToken ct)
    {
        var queued = await db.WriteAsync(async w =>
        {
            if (await w.OneAsync($"UPDATE devices SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING {DeviceSql.Columns}",
                    DeviceSql.Read, deviceId, userId, now) is not { } revoked)
            {
                return -1;
            }
            // docs/policies.md §3: a revoked device's decisions on requests still pending no longer count; its user may decide
            // again with another device. A quorum decision holds the device row locked (ApprovalStore), so none slips past this.
            await w.ExecAsync($"DELETE FROM decisions WHERE device_id = $1 AND approval_id IN (SELECT id FROM approvals WHERE state = {StateCodes.Pending})", deviceId);
            await VaultSql.RemoveDeviceKeysAsync(w, deviceId, userId);
            await w.AuditAsync(audit);
            return await w.EmitAsync(db.Outbox, OutboxEvent.ForDevice(EventTypes.DeviceRevoked, revoked, now));
        }, ct);
        db.Outbox.Enqueued(queued);
        return queued >= 0;
    }

    public Task<bool> TryAdvanceSignCountAsync(string deviceId, long signCount, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync($"UPDATE devices SET sign_count = $2 WHERE id = $1 AND {DeviceSql.CounterAdvances}", deviceId, signCount) == 1, ct);

    public Task<bool> TryUseNonceAsync(string deviceId, string nonce, long expiresAt, CancellationToken ct) =>
        // RETURNING: a row when the nonce was new, on either engine (a pipelined statement hands back a result set).
        db.StatementAsync("INSERT INTO device_nonces(device_id, nonce, expires_at) VALUES($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
            [deviceId, nonce, expiresAt], static (r, ct) => r.ReadAsync(ct), ct);

    public Task CreateChallengeAsync(WebAuthnChallengeRecord ch, long now, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("DELETE FROM webauthn_challenges WHERE expires_at <= $1", now);
            return await w.ExecAsync("INSERT INTO webauthn_challenges(challenge_hash, purpose, user_id, invite_hash, expires_at) VALUES($1, $2, $3, $4, $5)",
                ch.ChallengeHash, ch.Purpose, ch.UserId, ch.InviteHash, ch.ExpiresAt);
        }, ct);

    public Task<WebAuthnChallengeRecord?> TryTakeChallengeAsync(byte[] challengeHash, long now, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // Deleted whether or not it is still valid: a challenge is spent by its first use.
            var ch = await w.OneAsync("DELETE FROM webauthn_challenges WHERE challenge_hash = $1 RETURNING challenge_hash, purpose, user_id, invite_hash, expires_at",
                r => new WebAuthnChallengeRecord((byte[])r[0], r.GetString(1), Rows.NullableString(r, 2), r.IsDBNull(3) ? null : (byte[])r[3], r.GetInt64(4)),
                challengeHash);
            return ch is not null && ch.ExpiresAt > now ? ch : null;
        }, ct);
}
