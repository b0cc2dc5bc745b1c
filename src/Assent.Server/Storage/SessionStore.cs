using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// Sessions and the tokens that keep them: web app sessions, RFC 8628 device authorizations, refresh-token
/// families of CLI sessions, and the access-token denylist.
/// </summary>
internal interface ISessionStore
{
    /// <summary>Opens a web session; expired ones are purged on the way.</summary>
    Task CreateWebSessionAsync(WebSessionRecord session, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>An unexpired session whose device is still active; null otherwise.</summary>
    Task<WebSessionRecord?> FindWebSessionAsync(byte[] tokenHash, long now, CancellationToken ct);

    /// <summary>The purpose of an unspent, unexpired WebAuthn challenge; null when there is none. A read: nothing is spent.</summary>
    Task<string?> FindLiveChallengePurposeAsync(byte[] challengeHash, long now, CancellationToken ct);

    /// <summary>
    /// A passkey sign-in's writes as one transaction (one commit instead of three): spends the challenge, whatever follows
    /// (docs/http-api.md §12.3: single use); moves the passkey's counter to <paramref name="signCount"/> when allowed
    /// (<see cref="DeviceSql.CounterAdvances"/>); then opens the session, expired ones purged on the way.
    /// </summary>
    Task<PasskeySignInOutcome> TrySignInAsync(byte[] challengeHash, string purpose, long signCount, WebSessionRecord session, long now, AuditEvent audit,
        CancellationToken ct);

    /// <summary>
    /// <see cref="TrySignInAsync"/> for a stateless challenge (docs/http-api.md §12.3), which has no row to delete: its hash is
    /// recorded in <c>spent_challenges</c> until <paramref name="challengeExpiresAt"/>, and a hash already there is
    /// <see cref="PasskeySignInOutcome.ChallengeRefused"/>. Then the counter and the session as there, in the same commit.
    /// </summary>
    Task<PasskeySignInOutcome> TrySignInSpendingAsync(byte[] challengeHash, long challengeExpiresAt, long signCount, WebSessionRecord session, long now,
        AuditEvent audit, CancellationToken ct);

    /// <summary>Whether a stateless challenge was spent already. A read: the sign-in checks no signature for a spent challenge (nor audits its counter).</summary>
    Task<bool> IsChallengeSpentAsync(byte[] challengeHash, CancellationToken ct);

    /// <summary>Spends a stateless challenge whose sign-in was refused; false when it was spent already. Expired spent hashes are purged on the way.</summary>
    Task<bool> TrySpendChallengeAsync(byte[] challengeHash, long challengeExpiresAt, long now, CancellationToken ct);

    Task DeleteWebSessionAsync(byte[] tokenHash, CancellationToken ct);

    /// <summary>RFC 8628 §3.2: stores a new device authorization, with its approval when the login is pushed to a known user.</summary>
    Task CreateDeviceAuthorizationAsync(DeviceAuthorizationRecord authorization, ApprovalRecord? approval, AuditEvent? approvalAudit, CancellationToken ct);

    Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationAsync(byte[] deviceCodeHash, CancellationToken ct);

    Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationByUserCodeAsync(byte[] userCodeHash, CancellationToken ct);

    /// <summary>Binds an unbound, unexpired user code to a new approval request (created here); false when already bound or expired.</summary>
    Task<bool> TryBindUserCodeAsync(string authorizationId, long now, ApprovalRecord approval, AuditEvent approvalAudit, CancellationToken ct);

    /// <summary>
    /// approved → redeemed exactly once, and the session's first refresh token stored with it. Returns the approving
    /// decisions (the session's evidence), or null when the request was not approved or already redeemed.
    /// </summary>
    Task<IReadOnlyList<DecisionRecord>?> TryStartSessionAsync(string approvalId, long now, RefreshTokenRecord first, AuditEvent audit, CancellationToken ct);

    /// <summary>
    /// Consumes a refresh token and stores its successor (built from the consumed one) atomically. A token already
    /// consumed revokes its whole family (RFC 9700 §4.14.2). Returns the consumed record when rotated. A token issued to
    /// another client than <paramref name="clientId"/> is <see cref="RefreshOutcome.Unknown"/> and left as it was
    /// (RFC 6749 §6: bound to the client it was issued to).
    /// </summary>
    Task<(RefreshOutcome Outcome, RefreshTokenRecord? Consumed)> TryRotateRefreshTokenAsync(byte[] tokenHash, string clientId, long now,
        Func<RefreshTokenRecord, RefreshTokenRecord> next, CancellationToken ct);

    /// <summary>RFC 7009: revokes the family of a refresh token issued to the client; false when there is no such live token.</summary>
    Task<bool> RevokeRefreshTokenFamilyAsync(byte[] tokenHash, string clientId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>RFC 7009: denies an access token by its jti until it expires; expired entries are dropped.</summary>
    Task RevokeAccessTokenAsync(string jti, long expiresAt, long now, AuditEvent audit, CancellationToken ct);

    Task<bool> IsAccessTokenRevokedAsync(string jti, CancellationToken ct);
}

/// <summary>What became of a passkey sign-in's transaction (<see cref="ISessionStore.TrySignInAsync"/>).</summary>
internal enum PasskeySignInOutcome
{
    Opened,

    /// <summary>The challenge was unknown, already spent, expired or for another ceremony; nothing but its spending was written.</summary>
    ChallengeRefused,

    /// <summary>The signature counter did not advance (a possibly cloned authenticator); the challenge is spent, no session opened.</summary>
    CounterRefused,
}

internal sealed class SessionStore(Database db) : ISessionStore
{
    private sealed record SpentChallenge(string Purpose, long ExpiresAt);

    private const string DeviceAuthorizationColumns = "id, device_code_hash, user_code_hash, client_id, scope, requested_from, approval_id, created_at, expires_at";
    internal const string RefreshColumns = "token_hash, family_id, user_id, client_id, scope, approval_id, created_at, expires_at, used_at, revoked_at, device_id, auth_time, amr";
    private const string RevokeFamily = "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";

    // Of two devices binding one code (or two refreshes of one token) the second waits for the first's lock, then sees its result.
    private readonly string _lockUnboundCode = $"SELECT id FROM device_authorizations WHERE id = $1 AND approval_id IS NULL AND expires_at > $2{db.ForUpdate}";
    private readonly string _lockRefreshToken = $"SELECT {RefreshColumns} FROM refresh_tokens WHERE token_hash = $1{db.ForUpdate}";

    public Task CreateWebSessionAsync(WebSessionRecord s, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("DELETE FROM web_sessions WHERE expires_at <= $1", now);
            await w.ExecAsync("INSERT INTO web_sessions(token_hash, user_id, device_id, created_at, expires_at) VALUES($1, $2, $3, $4, $5)",
                s.TokenHash, s.UserId, s.DeviceId, s.CreatedAt, s.ExpiresAt);
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<string?> FindLiveChallengePurposeAsync(byte[] challengeHash, long now, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT purpose FROM webauthn_challenges WHERE challenge_hash = $1 AND expires_at > $2", r => r.GetString(0), challengeHash, now), ct);

    public Task<PasskeySignInOutcome> TrySignInAsync(byte[] challengeHash, string purpose, long signCount, WebSessionRecord s, long now, AuditEvent audit,
        CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // Deleted whether or not it is still valid, and kept deleted when what follows refuses: a challenge is spent by its first use.
            var spent = await w.OneAsync("DELETE FROM webauthn_challenges WHERE challenge_hash = $1 RETURNING purpose, expires_at",
                r => new SpentChallenge(r.GetString(0), r.GetInt64(1)), challengeHash);
            if (spent is null || spent.Purpose != purpose || spent.ExpiresAt <= now)
            {
                return PasskeySignInOutcome.ChallengeRefused;
            }
            return await OpenSignedInAsync(w, signCount, s, now, audit);
        }, ct);

    public Task<PasskeySignInOutcome> TrySignInSpendingAsync(byte[] challengeHash, long challengeExpiresAt, long signCount, WebSessionRecord s, long now,
        AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // Recorded whether or not what follows refuses: a challenge is spent by its first use (docs/http-api.md §12.3).
            if (challengeExpiresAt <= now || !await SpendAsync(w, challengeHash, challengeExpiresAt, now))
            {
                return PasskeySignInOutcome.ChallengeRefused;
            }
            return await OpenSignedInAsync(w, signCount, s, now, audit);
        }, ct);

    public Task<bool> IsChallengeSpentAsync(byte[] challengeHash, CancellationToken ct) =>
        db.ReadAsync(s => s.AnyAsync("SELECT 1 FROM spent_challenges WHERE challenge_hash = $1", challengeHash), ct);

    public Task<bool> TrySpendChallengeAsync(byte[] challengeHash, long challengeExpiresAt, long now, CancellationToken ct) =>
        challengeExpiresAt <= now ? Task.FromResult(false) : db.WriteAsync(w => SpendAsync(w, challengeHash, challengeExpiresAt, now), ct);

    /// <summary>
    /// Records a stateless challenge as spent until it expires (after which its MAC check refuses it anyway); false when it
    /// was already. The primary key settles racing uses on both engines: on PostgreSQL the second insert waits for the
    /// first transaction and then inserts nothing. Expired hashes go on the way, by the expiry index.
    /// </summary>
    private static async ValueTask<bool> SpendAsync(IWriteSession w, byte[] challengeHash, long challengeExpiresAt, long now)
    {
        await w.ExecAsync("DELETE FROM spent_challenges WHERE expires_at <= $1", now);
        return await w.ExecAsync("INSERT INTO spent_challenges(challenge_hash, expires_at) VALUES($1, $2) ON CONFLICT (challenge_hash) DO NOTHING",
            challengeHash, challengeExpiresAt) == 1;
    }

    /// <summary>The tail of a sign-in whose challenge was spent: the counter moves when allowed, then the session opens.</summary>
    private static async ValueTask<PasskeySignInOutcome> OpenSignedInAsync(IWriteSession w, long signCount, WebSessionRecord s, long now, AuditEvent audit)
    {
        if (await w.ExecAsync($"UPDATE devices SET sign_count = $2 WHERE id = $1 AND {DeviceSql.CounterAdvances}", s.DeviceId, signCount) != 1)
        {
            return PasskeySignInOutcome.CounterRefused;
        }
        await w.ExecAsync("DELETE FROM web_sessions WHERE expires_at <= $1", now);
        await w.ExecAsync("INSERT INTO web_sessions(token_hash, user_id, device_id, created_at, expires_at) VALUES($1, $2, $3, $4, $5)",
            s.TokenHash, s.UserId, s.DeviceId, s.CreatedAt, s.ExpiresAt);
        await w.AuditAsync(audit);
        return PasskeySignInOutcome.Opened;
    }

    public Task<WebSessionRecord?> FindWebSessionAsync(byte[] tokenHash, long now, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at FROM web_sessions s " +
                                     "JOIN devices d ON d.id = s.device_id WHERE s.token_hash = $1 AND s.expires_at > $2 AND d.revoked_at IS NULL",
            r => new WebSessionRecord((byte[])r[0], r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4)), tokenHash, now), ct);

    public Task DeleteWebSessionAsync(byte[] tokenHash, CancellationToken ct) =>
        db.WriteAsync(w => w.ExecAsync("DELETE FROM web_sessions WHERE token_hash = $1", tokenHash), ct);

    public Task CreateDeviceAuthorizationAsync(DeviceAuthorizationRecord d, ApprovalRecord? approval, AuditEvent? approvalAudit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (approval is not null)
            {
                await ApprovalSql.InsertAsync(w, approval);
            }
            await w.ExecAsync($"INSERT INTO device_authorizations({DeviceAuthorizationColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                d.Id, d.DeviceCodeHash, d.UserCodeHash, d.ClientId, d.Scope, d.RequestedFrom, approval?.Id, d.CreatedAt, d.ExpiresAt);
            await w.AuditAsync(new AuditEvent(AuditTypes.DeviceLoginStarted, approval?.UserId, d.ClientId, d.Id,
                new Dictionary<string, string> { ["requested_from"] = d.RequestedFrom }));
            return approvalAudit is null || await w.AuditedAsync(approvalAudit);
        }, ct);

    public Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationAsync(byte[] deviceCodeHash, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {DeviceAuthorizationColumns} FROM device_authorizations WHERE device_code_hash = $1", ReadDeviceAuthorization,
            deviceCodeHash), ct);

    public Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationByUserCodeAsync(byte[] userCodeHash, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {DeviceAuthorizationColumns} FROM device_authorizations WHERE user_code_hash = $1", ReadDeviceAuthorization,
            userCodeHash), ct);

    public Task<bool> TryBindUserCodeAsync(string authorizationId, long now, ApprovalRecord approval, AuditEvent approvalAudit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.OneAsync(_lockUnboundCode, r => r.GetString(0), authorizationId, now) is null)
            {
                return false;
            }
            await ApprovalSql.InsertAsync(w, approval);
            await w.ExecAsync("UPDATE device_authorizations SET approval_id = $2 WHERE id = $1", authorizationId, approval.Id);
            await w.AuditAsync(approvalAudit);
            return await w.AuditedAsync(new AuditEvent(AuditTypes.DeviceLoginBound, approval.UserId, approval.UserId, authorizationId,
                new Dictionary<string, string> { ["approval"] = approval.Id }));
        }, ct);

    public Task<IReadOnlyList<DecisionRecord>?> TryStartSessionAsync(string approvalId, long now, RefreshTokenRecord first, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync<IReadOnlyList<DecisionRecord>?>(async w =>
        {
            if (await w.ExecAsync(ApprovalSql.Redeem, approvalId, now) != 1)
            {
                return null;
            }
            await InsertRefreshTokenAsync(w, first);
            await w.AuditAsync(new AuditEvent(AuditTypes.ApprovalRedeemed, first.UserId, first.ClientId, approvalId));
            await w.AuditAsync(audit);
            return await w.AllAsync(ApprovalSql.ApprovingDecisions, ApprovalSql.ReadDecision, approvalId);
        }, ct);

    public Task<(RefreshOutcome Outcome, RefreshTokenRecord? Consumed)> TryRotateRefreshTokenAsync(byte[] tokenHash, string clientId, long now,
        Func<RefreshTokenRecord, RefreshTokenRecord> next, CancellationToken ct) =>
        db.WriteAsync<(RefreshOutcome, RefreshTokenRecord?)>(async w =>
        {
            var token = await w.OneAsync(_lockRefreshToken, ReadRefreshToken, tokenHash);
            if (token is null || token.ClientId != clientId)
            {
                return (RefreshOutcome.Unknown, null);
            }
            if (token.RevokedAt is not null)
            {
                return (RefreshOutcome.Revoked, token);
            }
            if (token.UsedAt is not null)
            {
                // RFC 9700 §4.14.2: a consumed token presented again means two parties hold the family; end it for both.
                await w.ExecAsync(RevokeFamily, token.FamilyId, now);
                await w.AuditAsync(new AuditEvent(AuditTypes.SessionReuseDetected, token.UserId, token.ClientId, token.FamilyId));
                return (RefreshOutcome.Reused, token);
            }
            if (token.ExpiresAt <= now)
            {
                return (RefreshOutcome.Expired, token);
            }
            await w.ExecAsync("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL", tokenHash, now);
            await InsertRefreshTokenAsync(w, next(token));
            await w.AuditAsync(new AuditEvent(AuditTypes.SessionRefreshed, token.UserId, token.ClientId, token.FamilyId));
            return (RefreshOutcome.Rotated, token);
        }, ct);

    public Task<bool> RevokeRefreshTokenFamilyAsync(byte[] tokenHash, string clientId, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            var token = await w.OneAsync($"SELECT {RefreshColumns} FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2", ReadRefreshToken, tokenHash, clientId);
            return token is not null && await w.ExecAsync(RevokeFamily, token.FamilyId, now) > 0 &&
                   await w.AuditedAsync(audit with { UserId = token.UserId, Subject = token.FamilyId });
        }, ct);

    public Task RevokeAccessTokenAsync(string jti, long expiresAt, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("DELETE FROM revoked_access_tokens WHERE expires_at <= $1", now);
            return await w.ExecAsync("INSERT INTO revoked_access_tokens(jti, expires_at) VALUES($1, $2) ON CONFLICT (jti) DO NOTHING", jti, expiresAt) != 1 ||
                   await w.AuditedAsync(audit);
        }, ct);

    public Task<bool> IsAccessTokenRevokedAsync(string jti, CancellationToken ct) =>
        db.ReadAsync(s => s.AnyAsync("SELECT 1 FROM revoked_access_tokens WHERE jti = $1", jti), ct);

    internal static ValueTask<int> InsertRefreshTokenAsync(IWriteSession w, RefreshTokenRecord t) =>
        w.ExecAsync($"INSERT INTO refresh_tokens({RefreshColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            t.TokenHash, t.FamilyId, t.UserId, t.ClientId, t.Scope, t.ApprovalId, t.CreatedAt, t.ExpiresAt, t.UsedAt, t.RevokedAt, t.DeviceId, t.AuthTime, t.Amr);

    private static DeviceAuthorizationRecord ReadDeviceAuthorization(DbDataReader r) => new(
        r.GetString(0), (byte[])r[1], (byte[])r[2], r.GetString(3), r.GetString(4), r.GetString(5), Rows.NullableString(r, 6), r.GetInt64(7), r.GetInt64(8));

    private static RefreshTokenRecord ReadRefreshToken(DbDataReader r) => new(
        (byte[])r[0], r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), Rows.NullableString(r, 5), r.GetInt64(6), r.GetInt64(7),
        Rows.NullableLong(r, 8), Rows.NullableLong(r, 9), Rows.NullableString(r, 10), Rows.NullableLong(r, 11), Rows.NullableString(r, 12));
}

/// <summary>The sessions' tables both engines create alike, with their column types.</summary>
internal static class SessionSchema
{
    /// <summary>Migration 18: spent stateless sign-in challenges (docs/storage.md §3).</summary>
    public static string SpentChallenges(string bytes, string integer) => $"""
        CREATE TABLE spent_challenges(
            challenge_hash {bytes} PRIMARY KEY,
            expires_at {integer} NOT NULL);
        CREATE INDEX spent_challenges_expiry ON spent_challenges(expires_at)
        """;
}
