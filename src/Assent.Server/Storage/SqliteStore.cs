using System.Collections.Concurrent;
using System.Diagnostics;
using Assent.Server.Audit;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Storage;

/// <summary>
/// The embedded engine: one SQLite file in WAL mode. Writes go through one connection under a
/// lock (SQLite has one writer anyway; queuing in-process avoids busy-wait sleeps), each in a
/// <c>BEGIN IMMEDIATE</c> transaction that also appends the audit entry. Reads use a small pool
/// of connections and never block the writer (WAL).
/// </summary>
internal sealed class SqliteStore : IAssentStore
{
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly System.Threading.Channels.Channel<IWriteItem> _queue =
        System.Threading.Channels.Channel.CreateUnbounded<IWriteItem>(new() { SingleReader = true });
    private Thread? _writerThread;
    private readonly ConcurrentBag<Db> _readers = new();
    private Db? _writer;

    public SqliteStore(string path, TimeProvider time, bool synchronousFull = false)
    {
        _time = time;
        Path = path;
        SynchronousFull = synchronousFull;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
    }

    public string Path { get; }

    private bool SynchronousFull { get; }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            var w = Writer().Connection;
            using (var pragma = w.CreateCommand())
            {
                // WAL: readers never block the writer. NORMAL keeps every commit across a
                // process crash (kill -9); FULL adds an fsync per commit for power loss.
                // wal_autocheckpoint=0: the writer checkpoints between batches instead (see Checkpoint).
                pragma.CommandText = $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(SynchronousFull ? "FULL" : "NORMAL")}; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0;";
                pragma.ExecuteNonQuery();
            }
            SqliteSchema.Migrate(w);
            if (_writerThread is null)
            {
                _writerThread = new Thread(WriterLoop) { IsBackground = true, Name = "assent-sqlite-writer" };
                _writerThread.Start();
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    // ---- users and invites -------------------------------------------------------------

    public Task<bool> AnyUserAsync(CancellationToken ct) =>
        ReadAsync(c => Scalar<long>(c, "SELECT EXISTS(SELECT 1 FROM users)") == 1, ct);

    public Task<UserRecord?> FindUserAsync(string userId, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, "SELECT id, handle, is_admin, created_at FROM users WHERE id = $p0", ReadUser, userId), ct);

    public Task<UserRecord?> FindUserByHandleAsync(string handle, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, "SELECT id, handle, is_admin, created_at FROM users WHERE handle = $p0", ReadUser, handle), ct);

    public Task<UserRecord> CreateInviteAsync(UserRecord userIfNew, InviteRecord invite, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            var user = QueryOne(c, "SELECT id, handle, is_admin, created_at FROM users WHERE handle = $p0", ReadUser, userIfNew.Handle);
            if (user is null)
            {
                Exec(c, "INSERT INTO users(id, handle, is_admin, created_at) VALUES($p0, $p1, $p2, $p3)",
                    userIfNew.Id, userIfNew.Handle, userIfNew.IsAdmin ? 1 : 0, userIfNew.CreatedAt);
                user = userIfNew;
            }
            else if (userIfNew.IsAdmin && !user.IsAdmin)
            {
                Exec(c, "UPDATE users SET is_admin = 1 WHERE id = $p0", user.Id);
                user = user with { IsAdmin = true };
            }
            Exec(c, "INSERT INTO invites(code_hash, user_id, expires_at, used_at) VALUES($p0, $p1, $p2, NULL)",
                invite.CodeHash, user.Id, invite.ExpiresAt);
            AppendAudit(c, audit with { UserId = user.Id, Subject = user.Id });
            return user;
        }, ct);

    public Task<UserRecord?> TryEnrollAsync(byte[] codeHash, long now, Func<UserRecord, DeviceRecord> device,
        Func<UserRecord, DeviceRecord, AuditEvent> audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            var userId = QueryOne(c, "SELECT user_id FROM invites WHERE code_hash = $p0 AND used_at IS NULL AND expires_at > $p1",
                r => r.GetString(0), codeHash, now);
            if (userId is null)
            {
                return null;
            }
            var user = QueryOne(c, "SELECT id, handle, is_admin, created_at FROM users WHERE id = $p0", ReadUser, userId)!;
            Exec(c, "UPDATE invites SET used_at = $p1 WHERE code_hash = $p0", codeHash, now);
            var d = device(user);
            InsertDevice(c, d);
            AppendAudit(c, audit(user, d));
            return user;
        }, ct);

    public Task<UserRecord?> FindInviteUserAsync(byte[] codeHash, long now, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, "SELECT u.id, u.handle, u.is_admin, u.created_at FROM invites i JOIN users u ON u.id = i.user_id " +
                                   "WHERE i.code_hash = $p0 AND i.used_at IS NULL AND i.expires_at > $p1", ReadUser, codeHash, now), ct);

    // ---- passkey challenges and web sessions -------------------------------------------

    public Task CreateWebAuthnChallengeAsync(WebAuthnChallengeRecord ch, long now, CancellationToken ct) =>
        WriteAsync(c =>
        {
            Exec(c, "DELETE FROM webauthn_challenges WHERE expires_at <= $p0", now);
            Exec(c, "INSERT INTO webauthn_challenges(challenge_hash, purpose, user_id, invite_hash, expires_at) VALUES($p0, $p1, $p2, $p3, $p4)",
                ch.ChallengeHash, ch.Purpose, ch.UserId, ch.InviteHash, ch.ExpiresAt);
            return true;
        }, ct);

    public Task<WebAuthnChallengeRecord?> TryTakeWebAuthnChallengeAsync(byte[] challengeHash, long now, CancellationToken ct) =>
        WriteAsync(c =>
        {
            // Deleted whether or not it is still valid: a challenge is spent by its first use.
            var ch = QueryOne(c, "DELETE FROM webauthn_challenges WHERE challenge_hash = $p0 RETURNING challenge_hash, purpose, user_id, invite_hash, expires_at",
                r => new WebAuthnChallengeRecord((byte[])r[0], r.GetString(1), NullableString(r, 2), r.IsDBNull(3) ? null : (byte[])r[3], r.GetInt64(4)),
                challengeHash);
            return ch is not null && ch.ExpiresAt > now ? ch : null;
        }, ct);

    public Task CreateWebSessionAsync(WebSessionRecord s, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            Exec(c, "DELETE FROM web_sessions WHERE expires_at <= $p0", now);
            Exec(c, "INSERT INTO web_sessions(token_hash, user_id, device_id, created_at, expires_at) VALUES($p0, $p1, $p2, $p3, $p4)",
                s.TokenHash, s.UserId, s.DeviceId, s.CreatedAt, s.ExpiresAt);
            AppendAudit(c, audit);
            return true;
        }, ct);

    public Task<WebSessionRecord?> FindWebSessionAsync(byte[] tokenHash, long now, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, "SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at FROM web_sessions s " +
                                   "JOIN devices d ON d.id = s.device_id WHERE s.token_hash = $p0 AND s.expires_at > $p1 AND d.revoked_at IS NULL",
            r => new WebSessionRecord((byte[])r[0], r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4)), tokenHash, now), ct);

    public Task DeleteWebSessionAsync(byte[] tokenHash, CancellationToken ct) =>
        WriteAsync(c => Exec(c, "DELETE FROM web_sessions WHERE token_hash = $p0", tokenHash), ct);

    public Task AppendAuditAsync(AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            AppendAudit(c, audit);
            return true;
        }, ct);

    // ---- devices -----------------------------------------------------------------------

    public Task AddDeviceAsync(DeviceRecord device, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            InsertDevice(c, device);
            AppendAudit(c, audit);
            return true;
        }, ct);

    private const string DeviceColumns = "id, user_id, kind, name, public_jwk, credential_id, sign_count, created_at, revoked_at";

    public Task<DeviceRecord?> FindDeviceAsync(string deviceId, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, $"SELECT {DeviceColumns} FROM devices WHERE id = $p0", ReadDevice, deviceId), ct);

    public Task<DeviceRecord?> FindDeviceByCredentialIdAsync(byte[] credentialId, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, $"SELECT {DeviceColumns} FROM devices WHERE credential_id = $p0", ReadDevice, credentialId), ct);

    public Task<IReadOnlyList<DeviceRecord>> ListDevicesAsync(string userId, CancellationToken ct) =>
        ReadAsync(c => QueryAll(c, $"SELECT {DeviceColumns} FROM devices WHERE user_id = $p0 ORDER BY created_at, id", ReadDevice, userId), ct);

    public Task<bool> TryRenameDeviceAsync(string deviceId, string userId, string name, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            if (Exec(c, "UPDATE devices SET name = $p2 WHERE id = $p0 AND user_id = $p1 AND revoked_at IS NULL", deviceId, userId, name) != 1)
            {
                return false;
            }
            AppendAudit(c, audit);
            return true;
        }, ct);

    public Task<bool> TryRevokeDeviceAsync(string deviceId, string userId, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            if (Exec(c, "UPDATE devices SET revoked_at = $p2 WHERE id = $p0 AND user_id = $p1 AND revoked_at IS NULL", deviceId, userId, now) != 1)
            {
                return false;
            }
            AppendAudit(c, audit);
            return true;
        }, ct);

    public Task<bool> TryAdvanceSignCountAsync(string deviceId, long signCount, CancellationToken ct) =>
        WriteAsync(c => Exec(c, "UPDATE devices SET sign_count = $p1 WHERE id = $p0 AND (sign_count < $p1 OR (sign_count = 0 AND $p1 = 0))", deviceId, signCount) == 1, ct);

    public Task<bool> TryUseDeviceNonceAsync(string deviceId, string nonce, long expiresAt, CancellationToken ct) =>
        WriteAsync(c => Exec(c, "INSERT INTO device_nonces(device_id, nonce, expires_at) VALUES($p0, $p1, $p2) ON CONFLICT DO NOTHING", deviceId, nonce, expiresAt) == 1, ct);

    // ---- clients -----------------------------------------------------------------------

    public Task<ClientRecord?> FindClientAsync(string clientId, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, "SELECT id, secret_hash, name, owner_user_id, scopes, created_at, revoked_at FROM clients WHERE id = $p0",
            r => new ClientRecord(r.GetString(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), NullableLong(r, 6)), clientId), ct);

    public Task CreateClientAsync(ClientRecord client, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            Exec(c, "INSERT INTO clients(id, secret_hash, name, owner_user_id, scopes, created_at) VALUES($p0, $p1, $p2, $p3, $p4, $p5)",
                client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes, client.CreatedAt);
            AppendAudit(c, audit);
            return true;
        }, ct);

    // ---- approvals ---------------------------------------------------------------------

    private const string ApprovalColumns =
        "id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, created_at, expires_at, device_id, evidence, decided_at, redeemed_at";

    public Task CreateApprovalAsync(ApprovalRecord a, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            InsertApproval(c, a);
            AppendAudit(c, audit);
            return true;
        }, ct);

    public Task<ApprovalRecord?> FindApprovalAsync(string approvalId, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, $"SELECT {ApprovalColumns} FROM approvals WHERE id = $p0", ReadApproval, approvalId), ct);

    public Task<ApprovalRecord?> FindApprovalByHandleAsync(byte[] handleHash, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, $"SELECT {ApprovalColumns} FROM approvals WHERE handle_hash = $p0", ReadApproval, handleHash), ct);

    public Task<IReadOnlyList<ApprovalRecord>> ListPendingAsync(string userId, long now, CancellationToken ct) =>
        ReadAsync(c => QueryAll(c, $"SELECT {ApprovalColumns} FROM approvals WHERE user_id = $p0 AND state = 0 AND expires_at > $p1 ORDER BY created_at, id",
            ReadApproval, userId, now), ct);

    public Task<IReadOnlyList<ApprovalRecord>> ListHistoryAsync(string userId, int limit, CancellationToken ct) =>
        ReadAsync(c => QueryAll(c, $"SELECT {ApprovalColumns} FROM approvals WHERE user_id = $p0 AND state <> 0 ORDER BY created_at DESC, id LIMIT $p1",
            ReadApproval, userId, limit), ct);

    public Task<bool> TryDecideAsync(DecisionRecord d, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            if (d.SignCount is { } count &&
                Exec(c, "UPDATE devices SET sign_count = $p1 WHERE id = $p0 AND sign_count < $p1", d.DeviceId, count) != 1)
            {
                return false;
            }
            // The WHERE clause is the whole race guard: only one decision can match a pending row.
            // The device must still be active at commit: a revocation racing this decision wins.
            var changed = Exec(c, "UPDATE approvals SET state = $p1, device_id = $p2, evidence = $p3, decided_at = $p4 " +
                                  "WHERE id = $p0 AND state = 0 AND expires_at > $p4 AND EXISTS (SELECT 1 FROM devices WHERE id = $p2 AND revoked_at IS NULL)",
                d.ApprovalId, (int)d.NewState, d.DeviceId, d.Evidence, d.DecidedAt);
            if (changed != 1)
            {
                return false;
            }
            AppendAudit(c, audit);
            return true;
        }, ct);

    public Task<ApprovalRecord?> TryRedeemAsync(string approvalId, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            var redeemed = QueryOne(c, $"UPDATE approvals SET state = 5, redeemed_at = $p1 WHERE id = $p0 AND state = 1 RETURNING {ApprovalColumns}",
                ReadApproval, approvalId, now);
            if (redeemed is not null)
            {
                AppendAudit(c, audit);
            }
            return redeemed;
        }, ct);

    public Task<IReadOnlyList<ApprovalRecord>> ExpireDueAsync(long now, int max, CancellationToken ct) =>
        WriteAsync<IReadOnlyList<ApprovalRecord>>(c =>
        {
            var due = QueryAll(c, $"SELECT {ApprovalColumns} FROM approvals WHERE state = 0 AND expires_at <= $p0 ORDER BY expires_at LIMIT $p1",
                ReadApproval, now, max);
            foreach (var a in due)
            {
                Exec(c, "UPDATE approvals SET state = 3 WHERE id = $p0 AND state = 0", a.Id);
                AppendAudit(c, new AuditEvent(AuditTypes.ApprovalExpired, a.UserId, "system", a.Id));
            }
            return due;
        }, ct);

    public Task<bool> TryRedeemAgentRegistrationAsync(string approvalId, long now, ClientRecord client, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            // The state guard makes this the one winner: the client exists iff the approval was redeemed here.
            if (Exec(c, "UPDATE approvals SET state = 5, redeemed_at = $p1 WHERE id = $p0 AND state = 1 AND kind = $p2",
                    approvalId, now, ApprovalKinds.AgentRegistration) != 1)
            {
                return false;
            }
            Exec(c, "INSERT INTO clients(id, secret_hash, name, owner_user_id, scopes, created_at) VALUES($p0, $p1, $p2, $p3, $p4, $p5)",
                client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes, client.CreatedAt);
            AppendAudit(c, new AuditEvent(AuditTypes.ApprovalRedeemed, audit.UserId, audit.Actor, approvalId));
            AppendAudit(c, audit);
            return true;
        }, ct);

    // ---- device authorization and sessions ---------------------------------------------

    private const string DeviceAuthorizationColumns =
        "id, device_code_hash, user_code_hash, client_id, scope, requested_from, approval_id, created_at, expires_at";

    public Task CreateDeviceAuthorizationAsync(DeviceAuthorizationRecord d, ApprovalRecord? approval, AuditEvent? approvalAudit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            if (approval is not null)
            {
                InsertApproval(c, approval);
            }
            Exec(c, $"INSERT INTO device_authorizations({DeviceAuthorizationColumns}) VALUES($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8)",
                d.Id, d.DeviceCodeHash, d.UserCodeHash, d.ClientId, d.Scope, d.RequestedFrom, approval?.Id, d.CreatedAt, d.ExpiresAt);
            AppendAudit(c, new AuditEvent(AuditTypes.DeviceLoginStarted, approval?.UserId, d.ClientId, d.Id,
                new Dictionary<string, string> { ["requested_from"] = d.RequestedFrom }));
            if (approvalAudit is not null)
            {
                AppendAudit(c, approvalAudit);
            }
            return true;
        }, ct);

    public Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationAsync(byte[] deviceCodeHash, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, $"SELECT {DeviceAuthorizationColumns} FROM device_authorizations WHERE device_code_hash = $p0", ReadDeviceAuthorization, deviceCodeHash), ct);

    public Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationByUserCodeAsync(byte[] userCodeHash, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, $"SELECT {DeviceAuthorizationColumns} FROM device_authorizations WHERE user_code_hash = $p0", ReadDeviceAuthorization, userCodeHash), ct);

    public Task<bool> TryBindUserCodeAsync(string authorizationId, long now, ApprovalRecord approval, AuditEvent approvalAudit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            // Inside the write transaction the check and the update cannot be split by another writer.
            if (Scalar<long>(c, "SELECT EXISTS(SELECT 1 FROM device_authorizations WHERE id = $p0 AND approval_id IS NULL AND expires_at > $p1)",
                    authorizationId, now) != 1)
            {
                return false;
            }
            InsertApproval(c, approval);
            Exec(c, "UPDATE device_authorizations SET approval_id = $p1 WHERE id = $p0", authorizationId, approval.Id);
            AppendAudit(c, approvalAudit);
            AppendAudit(c, new AuditEvent(AuditTypes.DeviceLoginBound, approval.UserId, approval.UserId, authorizationId,
                new Dictionary<string, string> { ["approval"] = approval.Id }));
            return true;
        }, ct);

    public Task<bool> TryStartSessionAsync(string approvalId, long now, RefreshTokenRecord first, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            if (Exec(c, "UPDATE approvals SET state = 5, redeemed_at = $p1 WHERE id = $p0 AND state = 1", approvalId, now) != 1)
            {
                return false;
            }
            InsertRefreshToken(c, first);
            AppendAudit(c, new AuditEvent(AuditTypes.ApprovalRedeemed, first.UserId, first.ClientId, approvalId));
            AppendAudit(c, audit);
            return true;
        }, ct);

    private const string RefreshColumns = "token_hash, family_id, user_id, client_id, scope, approval_id, created_at, expires_at, used_at, revoked_at";

    public Task<(RefreshOutcome Outcome, RefreshTokenRecord? Consumed)> TryRotateRefreshTokenAsync(byte[] tokenHash, long now,
        Func<RefreshTokenRecord, RefreshTokenRecord> next, CancellationToken ct) =>
        WriteAsync<(RefreshOutcome, RefreshTokenRecord?)>(c =>
        {
            var token = QueryOne(c, $"SELECT {RefreshColumns} FROM refresh_tokens WHERE token_hash = $p0", ReadRefreshToken, tokenHash);
            if (token is null)
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
                Exec(c, "UPDATE refresh_tokens SET revoked_at = $p1 WHERE family_id = $p0 AND revoked_at IS NULL", token.FamilyId, now);
                AppendAudit(c, new AuditEvent(AuditTypes.SessionReuseDetected, token.UserId, token.ClientId, token.FamilyId));
                return (RefreshOutcome.Reused, token);
            }
            if (token.ExpiresAt <= now)
            {
                return (RefreshOutcome.Expired, token);
            }
            Exec(c, "UPDATE refresh_tokens SET used_at = $p1 WHERE token_hash = $p0 AND used_at IS NULL", tokenHash, now);
            InsertRefreshToken(c, next(token));
            AppendAudit(c, new AuditEvent(AuditTypes.SessionRefreshed, token.UserId, token.ClientId, token.FamilyId));
            return (RefreshOutcome.Rotated, token);
        }, ct);

    public Task<bool> RevokeRefreshTokenFamilyAsync(byte[] tokenHash, string clientId, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            var token = QueryOne(c, $"SELECT {RefreshColumns} FROM refresh_tokens WHERE token_hash = $p0 AND client_id = $p1", ReadRefreshToken, tokenHash, clientId);
            if (token is null || Exec(c, "UPDATE refresh_tokens SET revoked_at = $p1 WHERE family_id = $p0 AND revoked_at IS NULL", token.FamilyId, now) == 0)
            {
                return false;
            }
            AppendAudit(c, audit with { UserId = token.UserId, Subject = token.FamilyId });
            return true;
        }, ct);

    public Task RevokeAccessTokenAsync(string jti, long expiresAt, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            Exec(c, "DELETE FROM revoked_access_tokens WHERE expires_at <= $p0", now);
            if (Exec(c, "INSERT INTO revoked_access_tokens(jti, expires_at) VALUES($p0, $p1) ON CONFLICT(jti) DO NOTHING", jti, expiresAt) == 1)
            {
                AppendAudit(c, audit);
            }
            return true;
        }, ct);

    public Task<bool> IsAccessTokenRevokedAsync(string jti, CancellationToken ct) =>
        ReadAsync(c => Scalar<long>(c, "SELECT EXISTS(SELECT 1 FROM revoked_access_tokens WHERE jti = $p0)", jti) == 1, ct);

    public Task<int> PruneExpiredAsync(long now, CancellationToken ct) =>
        WriteAsync(c => PruneTables.Sum(table => Exec(c, $"DELETE FROM {table} WHERE expires_at <= $p0", now)), ct);

    /// <summary>Tables whose rows are useless once <c>expires_at</c> has passed (their approvals and audit stay).</summary>
    internal static readonly string[] PruneTables = ["device_authorizations", "refresh_tokens", "web_sessions", "webauthn_challenges", "revoked_access_tokens", "device_nonces"];

    // ---- keys, audit, meta -------------------------------------------------------------

    public Task<IReadOnlyList<SigningKeyRecord>> ListSigningKeysAsync(CancellationToken ct) =>
        ReadAsync(c => QueryAll(c, "SELECT kid, public_key, encrypted_seed, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
            r => new SigningKeyRecord(r.GetString(0), (byte[])r[1], (byte[])r[2], r.GetInt64(3), NullableLong(r, 4))), ct);

    public Task AddSigningKeyAsync(SigningKeyRecord key, long now, AuditEvent? audit, CancellationToken ct) =>
        WriteAsync(c =>
        {
            Exec(c, "UPDATE signing_keys SET retired_at = $p0 WHERE retired_at IS NULL", now);
            Exec(c, "INSERT INTO signing_keys(kid, public_key, encrypted_seed, created_at, retired_at) VALUES($p0, $p1, $p2, $p3, NULL)",
                key.Kid, key.PublicKey, key.EncryptedSeed, key.CreatedAt);
            if (audit is not null)
            {
                AppendAudit(c, audit);
            }
            return true;
        }, ct);

    public Task<IReadOnlyList<AuditRow>> ReadAuditAsync(long afterSeq, int limit, string? userId, CancellationToken ct) =>
        ReadAsync(c => userId is null
            ? QueryAll(c, "SELECT seq, entry, hash FROM audit WHERE seq > $p0 ORDER BY seq LIMIT $p1", ReadAuditRow, afterSeq, limit)
            : QueryAll(c, "SELECT seq, entry, hash FROM audit WHERE seq > $p0 AND user_id = $p2 ORDER BY seq LIMIT $p1", ReadAuditRow, afterSeq, limit, userId), ct);

    public Task<(long Size, byte[] Head)> ReadAuditHeadAsync(CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", r => new AuditHead(r.GetInt64(0), (byte[])r[1])) is { } h
            ? (h.Seq, h.Hash)
            : (0L, AuditChain.Genesis), ct);

    public Task<byte[]?> GetMetaAsync(string key, CancellationToken ct) =>
        ReadAsync(c => QueryOne(c, "SELECT value FROM meta WHERE key = $p0", r => (byte[])r[0], key), ct);

    public Task<byte[]> GetOrAddMetaAsync(string key, byte[] value, CancellationToken ct) =>
        WriteAsync(c =>
        {
            Exec(c, "INSERT INTO meta(key, value) VALUES($p0, $p1) ON CONFLICT(key) DO NOTHING", key, value);
            return QueryOne(c, "SELECT value FROM meta WHERE key = $p0", r => (byte[])r[0], key)!;
        }, ct);

    /// <summary>
    /// A passive checkpoint on the writer's own connection, after a batch has been published (no caller
    /// waits on it) and before the next begins. Nothing is appended meanwhile, so it copies the whole log
    /// back (a batch's few pages) unless a reader still holds older frames, and the next commit starts the
    /// WAL over from its beginning: the log stays a few pages long. A checkpoint from another connection
    /// never catches up with steady writes: the WAL then never restarts and grows by gigabytes a minute at
    /// full load, and the kernel writes all of it back. Where syncs are slow the writer still
    /// spends at most half its time here: it skips checkpoints until as long as the last one took has
    /// passed, and the group commit gathers larger batches meanwhile.
    /// </summary>
    private void Checkpoint(Db c)
    {
        if (Stopwatch.GetElapsedTime(_lastCheckpointEnded) < _lastCheckpointTook)
        {
            return;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            c.Prepared("PRAGMA wal_checkpoint(PASSIVE)", []).ExecuteNonQuery();
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6)
        {
            // SQLITE_BUSY or SQLITE_LOCKED (another process checkpointing, say): the next batch tries again.
        }
        _lastCheckpointEnded = Stopwatch.GetTimestamp();
        _lastCheckpointTook = Stopwatch.GetElapsedTime(started, _lastCheckpointEnded);
    }

    private long _lastCheckpointEnded;
    private TimeSpan _lastCheckpointTook;

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_writerThread is { } thread)
        {
            await Task.Run(() => thread.Join());
        }
        await _writeLock.WaitAsync();
        try
        {
            _writer?.Dispose();
            _writer = null;
            while (_readers.TryTake(out var r))
            {
                r.Dispose();
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    // ---- plumbing ----------------------------------------------------------------------

    internal sealed record AuditHead(long Seq, byte[] Hash);

    /// <summary>Seals an event into the chain. Runs inside the caller's write transaction, so
    /// the head read here is the real head even when another process wrote last.</summary>
    private void AppendAudit(Db c, AuditEvent e)
    {
        // The head is read once per transaction (BEGIN IMMEDIATE holds the write lock, so nobody else appends meanwhile).
        var head = c.AuditHead ??= QueryOne(c, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", r => new AuditHead(r.GetInt64(0), (byte[])r[1]))
                                  ?? new AuditHead(0, AuditChain.Genesis);
        var seq = head.Seq + 1;
        var entry = AuditChain.Canonical(seq, _time.GetUtcNow().ToUnixTimeMilliseconds(), e);
        var hash = AuditChain.Link(head.Hash, entry);
        Exec(c, "INSERT INTO audit(seq, entry, hash, user_id) VALUES($p0, $p1, $p2, $p3)", seq, entry, hash, e.UserId);
        c.AuditHead = new AuditHead(seq, hash);
    }

    private Db Writer() => _writer ??= Open();

    private Db Open()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA cache_size=-8192; PRAGMA temp_store=MEMORY;";
        cmd.ExecuteNonQuery();
        return new Db(c);
    }

    /// <summary>
    /// A connection with its prepared statements kept: Microsoft.Data.Sqlite prepares a new
    /// command on every execution, so reusing one command per SQL text saves the parse each time.
    /// </summary>
    internal sealed class Db(SqliteConnection connection) : IDisposable
    {
        private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

        public SqliteConnection Connection => connection;

        public SqliteTransaction? Transaction { get; set; }

        /// <summary>The chain head as of this transaction's last append; null outside a write transaction.</summary>
        public AuditHead? AuditHead { get; set; }

        public SqliteCommand Prepared(string sql, object?[] args)
        {
            if (!_commands.TryGetValue(sql, out var cmd))
            {
                cmd = connection.CreateCommand();
                cmd.CommandText = sql;
                for (var i = 0; i < args.Length; i++)
                {
                    cmd.Parameters.Add(new SqliteParameter("$p" + i, DBNull.Value));
                }
                _commands[sql] = cmd;
            }
            cmd.Transaction = Transaction;
            for (var i = 0; i < args.Length; i++)
            {
                cmd.Parameters[i].Value = args[i] ?? DBNull.Value;
            }
            return cmd;
        }

        public void Dispose()
        {
            foreach (var cmd in _commands.Values)
            {
                cmd.Dispose();
            }
            _commands.Clear();
            connection.Dispose();
        }
    }

    private Task<T> WriteAsync<T>(Func<Db, T> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var item = new WriteItem<T>(work);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(SqliteStore));
        }
        // Once queued the write happens even if this caller stops waiting: state stays consistent.
        return item.Completion.WaitAsync(ct);
    }

    /// <summary>
    /// Group commit: one thread owns the write connection and commits whatever is queued as one
    /// transaction. Under load many transitions share one commit; when idle a single write commits
    /// at once. If an item throws, the batch is replayed item by item so only that one fails.
    /// </summary>
    private void WriterLoop()
    {
        var batch = new List<IWriteItem>(MaxBatch);
        var reader = _queue.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }
            try
            {
                var c = Writer();
                if (!TryCommitTogether(c, batch))
                {
                    // An item threw (a constraint, a bug): nothing of the batch committed. Replay each
                    // item in a transaction of its own, so only the failing one fails.
                    foreach (var item in batch)
                    {
                        if (!TryCommitTogether(c, [item], out var error))
                        {
                            item.Failed(error!);
                        }
                    }
                }
                foreach (var item in batch)
                {
                    item.Publish();
                }
                Checkpoint(c);
            }
            catch (Exception e)
            {
                // I/O error, full disk, corrupt file: nothing of the batch committed. Reopen next time.
                _writer?.Dispose();
                _writer = null;
                foreach (var item in batch)
                {
                    item.Abort(e);
                }
            }
        }
    }

    private static bool TryCommitTogether(Db c, List<IWriteItem> items) => TryCommitTogether(c, items, out _);

    /// <summary>Runs the items in one <c>BEGIN IMMEDIATE</c> transaction; false (rolled back) when one throws. I/O and corruption errors propagate.</summary>
    private static bool TryCommitTogether(Db c, List<IWriteItem> items, out Exception? error)
    {
        using var tx = c.Connection.BeginTransaction(deferred: false);
        c.Transaction = tx;
        c.AuditHead = null;
        try
        {
            foreach (var item in items)
            {
                item.Run(c);
            }
            tx.Commit();
            error = null;
            return true;
        }
        catch (Exception e) when (e is not SqliteException { SqliteErrorCode: 10 or 11 or 13 or 14 })
        {
            tx.Rollback();
            error = e;
            return false;
        }
        finally
        {
            c.Transaction = null;
            c.AuditHead = null;
        }
    }

    private const int MaxBatch = 128;

    private interface IWriteItem : IQueuedWrite
    {
        void Run(Db db);
    }

    private sealed class WriteItem<T>(Func<Db, T> work) : QueuedWrite<T>, IWriteItem
    {
        public void Run(Db db) => Ran(work(db));
    }

    private Task<T> ReadAsync<T>(Func<Db, T> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (!_readers.TryTake(out var c))
        {
            c = Open();
        }
        try
        {
            var result = work(c);
            if (_readers.Count < 16)
            {
                _readers.Add(c);
                c = null;
            }
            return Task.FromResult(result);
        }
        finally
        {
            c?.Dispose();
        }
    }

    private static int Exec(Db c, string sql, params object?[] args)
    {
        return c.Prepared(sql, args).ExecuteNonQuery();
    }

    private static T Scalar<T>(Db c, string sql, params object?[] args)
    {
        return (T)Convert.ChangeType(c.Prepared(sql, args).ExecuteScalar()!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static T? QueryOne<T>(Db c, string sql, Func<SqliteDataReader, T> read, params object?[] args) where T : class
    {
        using var r = c.Prepared(sql, args).ExecuteReader();
        return r.Read() ? read(r) : null;
    }

    private static IReadOnlyList<T> QueryAll<T>(Db c, string sql, Func<SqliteDataReader, T> read, params object?[] args)
    {
        using var r = c.Prepared(sql, args).ExecuteReader();
        var list = new List<T>();
        while (r.Read())
        {
            list.Add(read(r));
        }
        return list;
    }

    private static long? NullableLong(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    private static string? NullableString(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static UserRecord ReadUser(SqliteDataReader r) => new(r.GetString(0), r.GetString(1), r.GetInt64(2) == 1, r.GetInt64(3));

    private static DeviceRecord ReadDevice(SqliteDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
        r.IsDBNull(5) ? null : (byte[])r[5], r.GetInt64(6), r.GetInt64(7), NullableLong(r, 8));

    private static ApprovalRecord ReadApproval(SqliteDataReader r) => new(
        r.GetString(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), NullableString(r, 6), NullableString(r, 7),
        NullableString(r, 8), (byte[])r[9], (ApprovalState)r.GetInt32(10), r.GetInt64(11), r.GetInt64(12), NullableString(r, 13), NullableString(r, 14),
        NullableLong(r, 15), NullableLong(r, 16));

    private static AuditRow ReadAuditRow(SqliteDataReader r) => new(r.GetInt64(0), (byte[])r[1], (byte[])r[2]);

    private static void InsertApproval(Db c, ApprovalRecord a) =>
        Exec(c, "INSERT INTO approvals(id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, created_at, expires_at) " +
                "VALUES($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12)",
            a.Id, a.HandleHash, a.Kind, a.ClientId, a.UserId, a.Scope, a.BindingMessage, a.AuthorizationDetails, a.Resource, a.Payload,
            (int)a.State, a.CreatedAt, a.ExpiresAt);

    private static void InsertRefreshToken(Db c, RefreshTokenRecord t) =>
        Exec(c, $"INSERT INTO refresh_tokens({RefreshColumns}) VALUES($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, NULL, NULL)",
            t.TokenHash, t.FamilyId, t.UserId, t.ClientId, t.Scope, t.ApprovalId, t.CreatedAt, t.ExpiresAt);

    private static DeviceAuthorizationRecord ReadDeviceAuthorization(SqliteDataReader r) => new(
        r.GetString(0), (byte[])r[1], (byte[])r[2], r.GetString(3), r.GetString(4), r.GetString(5), NullableString(r, 6), r.GetInt64(7), r.GetInt64(8));

    private static RefreshTokenRecord ReadRefreshToken(SqliteDataReader r) => new(
        (byte[])r[0], r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetInt64(6), r.GetInt64(7),
        NullableLong(r, 8), NullableLong(r, 9));

    private static void InsertDevice(Db c, DeviceRecord d) =>
        Exec(c, "INSERT INTO devices(id, user_id, kind, name, public_jwk, credential_id, sign_count, created_at) VALUES($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7)",
            d.Id, d.UserId, d.Kind, d.Name, d.PublicJwk, d.CredentialId, d.SignCount, d.CreatedAt);
}
