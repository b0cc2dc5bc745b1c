using System.Data.Common;
using System.Text.Json;
using Assent.Server.Audit;
using Npgsql;

namespace Assent.Server.Storage;

/// <summary>
/// The scale-out engine: any number of stateless nodes over one PostgreSQL database. Transitions
/// are guarded by their WHERE clauses under READ COMMITTED (a racing update waits and re-checks).
/// A transition's audit event is stored in its own transaction, unsealed (<c>audit_pending</c>);
/// a sealer then chains pending entries in batches under the chain-head row lock, so the chain
/// has one order across all nodes without every write queueing for that lock.
/// </summary>
internal sealed class PostgresStore(NpgsqlDataSource source, TimeProvider time) : IAssentStore
{
    public const string Channel = "assent_approvals";

    public NpgsqlDataSource Source => source;

    /// <summary>Identifies this process in notifications, so it ignores its own (it told its hub directly).</summary>
    public string NodeId { get; } = Guid.NewGuid().ToString("N")[..12];

    public async Task MigrateAsync(CancellationToken ct)
    {
        await PostgresSchema.MigrateAsync(source, ct);
        EnsureSealer();
    }

    /// <summary>Accepts <c>postgres://user:pass@host:port/db?…</c> or an Npgsql connection string.</summary>
    public static string ToConnectionString(string database)
    {
        if (!database.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) && !database.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            // The plain builder lists only the keywords written; Npgsql's answers true for every keyword it knows.
            var written = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = database };
            return WithDefaults(new NpgsqlConnectionStringBuilder(database), written.Keys.Cast<string>());
        }
        var uri = new Uri(database);
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                b.Password = Uri.UnescapeDataString(parts[1]);
            }
        }
        var keys = new List<string>();
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            b[key] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "true";
            keys.Add(key);
        }
        return WithDefaults(b, keys);
    }

    /// <summary>
    /// Assent runs a small fixed set of statements: let Npgsql prepare them server-side unless told
    /// otherwise. And Assent sets no session state on pooled connections (the one LISTEN connection
    /// undoes its LISTEN before it goes back), so the reset on every return to the pool (seven
    /// statements once anything is prepared) is skipped unless the connection string asks for it.
    /// </summary>
    private static string WithDefaults(NpgsqlConnectionStringBuilder b, IEnumerable<string> written)
    {
        // Keywords compare without case or spaces: "No Reset On Close" and "NoResetOnClose" are one.
        var given = written.Select(k => k.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant()).ToHashSet(StringComparer.Ordinal);
        if (!given.Contains("MAXAUTOPREPARE"))
        {
            b.MaxAutoPrepare = 128;
            if (!given.Contains("AUTOPREPAREMINUSAGES"))
            {
                b.AutoPrepareMinUsages = 2;
            }
        }
        if (!given.Contains("NORESETONCLOSE"))
        {
            b.NoResetOnClose = true;
        }
        return b.ConnectionString;
    }

    // ---- users and invites -------------------------------------------------------------

    private const string UserColumns = "id, handle, is_admin, created_at";

    public Task<bool> AnyUserAsync(CancellationToken ct) =>
        ReadAsync(async (c, ct) => (bool)(await Cmd(c, null, "SELECT EXISTS(SELECT 1 FROM users)").ExecuteScalarAsync(ct))!, ct);

    public Task<UserRecord?> FindUserAsync(string userId, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {UserColumns} FROM users WHERE id = $1", ReadUser, ct, userId), ct);

    public Task<UserRecord?> FindUserByHandleAsync(string handle, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {UserColumns} FROM users WHERE handle = $1", ReadUser, ct, handle), ct);

    public Task<UserRecord> CreateInviteAsync(UserRecord userIfNew, InviteRecord invite, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await Exec(c, tx, "INSERT INTO users(id, handle, is_admin, created_at) VALUES($1, $2, $3, $4) ON CONFLICT (handle) DO NOTHING", ct,
                userIfNew.Id, userIfNew.Handle, userIfNew.IsAdmin, userIfNew.CreatedAt);
            if (userIfNew.IsAdmin)
            {
                await Exec(c, tx, "UPDATE users SET is_admin = TRUE WHERE handle = $1", ct, userIfNew.Handle);
            }
            var user = (await One(c, tx, $"SELECT {UserColumns} FROM users WHERE handle = $1", ReadUser, ct, userIfNew.Handle))!;
            await Exec(c, tx, "INSERT INTO invites(code_hash, user_id, expires_at, used_at) VALUES($1, $2, $3, NULL)", ct, invite.CodeHash, user.Id, invite.ExpiresAt);
            await AppendAuditAsync(c, tx, audit with { UserId = user.Id, Subject = user.Id }, ct);
            return user;
        }, ct);

    public Task<UserRecord?> TryEnrollAsync(byte[] codeHash, long now, Func<UserRecord, DeviceRecord> device,
        Func<UserRecord, DeviceRecord, AuditEvent> audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            var userId = await One(c, tx, "UPDATE invites SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
                r => r.GetString(0), ct, codeHash, now);
            if (userId is null)
            {
                return null;
            }
            var user = (await One(c, tx, $"SELECT {UserColumns} FROM users WHERE id = $1", ReadUser, ct, userId))!;
            var d = device(user);
            await InsertDeviceAsync(c, tx, d, ct);
            await AppendAuditAsync(c, tx, audit(user, d), ct);
            return user;
        }, ct);

    public Task<UserRecord?> FindInviteUserAsync(byte[] codeHash, long now, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, "SELECT u.id, u.handle, u.is_admin, u.created_at FROM invites i JOIN users u ON u.id = i.user_id " +
                                          "WHERE i.code_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2", ReadUser, ct, codeHash, now), ct);

    // ---- passkey challenges and web sessions -------------------------------------------

    public Task CreateWebAuthnChallengeAsync(WebAuthnChallengeRecord ch, long now, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await Exec(c, tx, "DELETE FROM webauthn_challenges WHERE expires_at <= $1", ct, now);
            return await Exec(c, tx, "INSERT INTO webauthn_challenges(challenge_hash, purpose, user_id, invite_hash, expires_at) VALUES($1, $2, $3, $4, $5)", ct,
                ch.ChallengeHash, ch.Purpose, ch.UserId, ch.InviteHash, ch.ExpiresAt);
        }, ct);

    public Task<WebAuthnChallengeRecord?> TryTakeWebAuthnChallengeAsync(byte[] challengeHash, long now, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            // Deleted whether or not it is still valid: a challenge is spent by its first use, on any node.
            var ch = await One(c, tx, "DELETE FROM webauthn_challenges WHERE challenge_hash = $1 RETURNING challenge_hash, purpose, user_id, invite_hash, expires_at",
                r => new WebAuthnChallengeRecord((byte[])r[0], r.GetString(1), NullableString(r, 2), r.IsDBNull(3) ? null : (byte[])r[3], r.GetInt64(4)), ct, challengeHash);
            return ch is not null && ch.ExpiresAt > now ? ch : null;
        }, ct);

    public Task CreateWebSessionAsync(WebSessionRecord s, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await Exec(c, tx, "DELETE FROM web_sessions WHERE expires_at <= $1", ct, now);
            await Exec(c, tx, "INSERT INTO web_sessions(token_hash, user_id, device_id, created_at, expires_at) VALUES($1, $2, $3, $4, $5)", ct,
                s.TokenHash, s.UserId, s.DeviceId, s.CreatedAt, s.ExpiresAt);
            return await AuditedAsync(c, tx, audit, ct);
        }, ct);

    public Task<WebSessionRecord?> FindWebSessionAsync(byte[] tokenHash, long now, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, "SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at FROM web_sessions s " +
                                          "JOIN devices d ON d.id = s.device_id WHERE s.token_hash = $1 AND s.expires_at > $2 AND d.revoked_at IS NULL",
            r => new WebSessionRecord((byte[])r[0], r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4)), ct, tokenHash, now), ct);

    public Task DeleteWebSessionAsync(byte[] tokenHash, CancellationToken ct) =>
        WriteAsync((c, tx, ct) => Exec(c, tx, "DELETE FROM web_sessions WHERE token_hash = $1", ct, tokenHash), ct);

    public Task AppendAuditAsync(AuditEvent audit, CancellationToken ct) =>
        WriteAsync((c, tx, ct) => AuditedAsync(c, tx, audit, ct), ct);

    // ---- devices -----------------------------------------------------------------------

    public Task AddDeviceAsync(DeviceRecord device, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await InsertDeviceAsync(c, tx, device, ct);
            return await AuditedAsync(c, tx, audit, ct);
        }, ct);

    private const string DeviceColumns = "id, user_id, kind, name, public_jwk, credential_id, sign_count, created_at, revoked_at";

    public Task<DeviceRecord?> FindDeviceAsync(string deviceId, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {DeviceColumns} FROM devices WHERE id = $1", ReadDevice, ct, deviceId), ct);

    public Task<DeviceRecord?> FindDeviceByCredentialIdAsync(byte[] credentialId, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {DeviceColumns} FROM devices WHERE credential_id = $1", ReadDevice, ct, credentialId), ct);

    public Task<IReadOnlyList<DeviceRecord>> ListDevicesAsync(string userId, CancellationToken ct) =>
        ReadAsync((c, ct) => All(c, null, $"SELECT {DeviceColumns} FROM devices WHERE user_id = $1 ORDER BY created_at, id", ReadDevice, ct, userId), ct);

    public Task<bool> TryRenameDeviceAsync(string deviceId, string userId, string name, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
            await Exec(c, tx, "UPDATE devices SET name = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL", ct, deviceId, userId, name) == 1 &&
            await AuditedAsync(c, tx, audit, ct), ct);

    public Task<bool> TryRevokeDeviceAsync(string deviceId, string userId, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
            await Exec(c, tx, "UPDATE devices SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL", ct, deviceId, userId, now) == 1 &&
            await AuditedAsync(c, tx, audit, ct), ct);

    public Task<bool> TryAdvanceSignCountAsync(string deviceId, long signCount, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
            await Exec(c, tx, "UPDATE devices SET sign_count = $2 WHERE id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))", ct, deviceId, signCount) == 1, ct);

    public Task<bool> TryUseDeviceNonceAsync(string deviceId, string nonce, long expiresAt, CancellationToken ct) =>
        // RETURNING: a pipelined statement hands back a result set (a row when the nonce was new).
        PipelineAsync(Batched("INSERT INTO device_nonces(device_id, nonce, expires_at) VALUES($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1", deviceId, nonce, expiresAt),
            static async (r, ct) => await r.ReadAsync(ct), ct);

    // ---- clients -----------------------------------------------------------------------

    public Task<ClientRecord?> FindClientAsync(string clientId, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, "SELECT id, secret_hash, name, owner_user_id, scopes, created_at, revoked_at FROM clients WHERE id = $1",
            r => new ClientRecord(r.GetString(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), NullableLong(r, 6)), ct, clientId), ct);

    public Task CreateClientAsync(ClientRecord client, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await Exec(c, tx, "INSERT INTO clients(id, secret_hash, name, owner_user_id, scopes, created_at) VALUES($1, $2, $3, $4, $5, $6)", ct,
                client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes, client.CreatedAt);
            return await AuditedAsync(c, tx, audit, ct);
        }, ct);

    // ---- approvals ---------------------------------------------------------------------

    private const string ApprovalColumns =
        "id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, created_at, expires_at, device_id, evidence, decided_at, redeemed_at";

    public Task CreateApprovalAsync(ApprovalRecord a, AuditEvent audit, CancellationToken ct) =>
        // The hot path's first write, as one statement: the row, its audit event and the other nodes' notice.
        PipelineAsync(Batched("WITH a AS (INSERT INTO approvals(id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, created_at, expires_at) " +
                              "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)), " +
                              "p AS (INSERT INTO audit_pending(body, user_id) VALUES($14, $15)) " +
                              "SELECT pg_notify($16, $17)",
                a.Id, a.HandleHash, a.Kind, a.ClientId, a.UserId, a.Scope, a.BindingMessage, a.AuthorizationDetails, a.Resource, a.Payload,
                (int)a.State, a.CreatedAt, a.ExpiresAt, Unsealed(audit), audit.UserId, Channel, CreatedPayload(a)),
            static async (r, ct) => await r.ReadAsync(ct), ct);

    /// <summary>Inserts a pending request and tells the other nodes (their device streams) once it commits.</summary>
    private async Task InsertApprovalAsync(NpgsqlConnection c, NpgsqlTransaction tx, ApprovalRecord a, CancellationToken ct)
    {
        await Exec(c, tx, "INSERT INTO approvals(id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, created_at, expires_at) " +
                          "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)", ct,
            a.Id, a.HandleHash, a.Kind, a.ClientId, a.UserId, a.Scope, a.BindingMessage, a.AuthorizationDetails, a.Resource, a.Payload,
            (int)a.State, a.CreatedAt, a.ExpiresAt);
        await NotifyAsync(c, tx, "created", a.Id, a.UserId, "pending", ct);
    }

    public Task<bool> TryRedeemAgentRegistrationAsync(string approvalId, long now, ClientRecord client, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            // The state guard makes this the one winner: the client exists iff the approval was redeemed here.
            if (await Exec(c, tx, "UPDATE approvals SET state = 5, redeemed_at = $2 WHERE id = $1 AND state = 1 AND kind = $3", ct,
                    approvalId, now, ApprovalKinds.AgentRegistration) != 1)
            {
                return false;
            }
            await Exec(c, tx, "INSERT INTO clients(id, secret_hash, name, owner_user_id, scopes, created_at) VALUES($1, $2, $3, $4, $5, $6)", ct,
                client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes, client.CreatedAt);
            await AppendAuditAsync(c, tx, new AuditEvent(AuditTypes.ApprovalRedeemed, audit.UserId, audit.Actor, approvalId), ct);
            return await AuditedAsync(c, tx, audit, ct);
        }, ct);

    // ---- device authorization and sessions ---------------------------------------------

    private const string DeviceAuthorizationColumns =
        "id, device_code_hash, user_code_hash, client_id, scope, requested_from, approval_id, created_at, expires_at";

    private const string RefreshColumns = "token_hash, family_id, user_id, client_id, scope, approval_id, created_at, expires_at, used_at, revoked_at";

    public Task CreateDeviceAuthorizationAsync(DeviceAuthorizationRecord d, ApprovalRecord? approval, AuditEvent? approvalAudit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            if (approval is not null)
            {
                await InsertApprovalAsync(c, tx, approval, ct);
            }
            await Exec(c, tx, $"INSERT INTO device_authorizations({DeviceAuthorizationColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)", ct,
                d.Id, d.DeviceCodeHash, d.UserCodeHash, d.ClientId, d.Scope, d.RequestedFrom, approval?.Id, d.CreatedAt, d.ExpiresAt);
            await AppendAuditAsync(c, tx, new AuditEvent(AuditTypes.DeviceLoginStarted, approval?.UserId, d.ClientId, d.Id,
                new Dictionary<string, string> { ["requested_from"] = d.RequestedFrom }), ct);
            return approvalAudit is null || await AuditedAsync(c, tx, approvalAudit, ct);
        }, ct);

    public Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationAsync(byte[] deviceCodeHash, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {DeviceAuthorizationColumns} FROM device_authorizations WHERE device_code_hash = $1", ReadDeviceAuthorization, ct, deviceCodeHash), ct);

    public Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationByUserCodeAsync(byte[] userCodeHash, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {DeviceAuthorizationColumns} FROM device_authorizations WHERE user_code_hash = $1", ReadDeviceAuthorization, ct, userCodeHash), ct);

    public Task<bool> TryBindUserCodeAsync(string authorizationId, long now, ApprovalRecord approval, AuditEvent approvalAudit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            // Lock the authorization first: of two devices binding one code, the second waits here, then finds it bound.
            if (await One(c, tx, "SELECT id FROM device_authorizations WHERE id = $1 AND approval_id IS NULL AND expires_at > $2 FOR UPDATE",
                    r => r.GetString(0), ct, authorizationId, now) is null)
            {
                return false;
            }
            await InsertApprovalAsync(c, tx, approval, ct);
            await Exec(c, tx, "UPDATE device_authorizations SET approval_id = $2 WHERE id = $1", ct, authorizationId, approval.Id);
            await AppendAuditAsync(c, tx, approvalAudit, ct);
            return await AuditedAsync(c, tx, new AuditEvent(AuditTypes.DeviceLoginBound, approval.UserId, approval.UserId, authorizationId,
                new Dictionary<string, string> { ["approval"] = approval.Id }), ct);
        }, ct);

    public Task<bool> TryStartSessionAsync(string approvalId, long now, RefreshTokenRecord first, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            if (await Exec(c, tx, "UPDATE approvals SET state = 5, redeemed_at = $2 WHERE id = $1 AND state = 1", ct, approvalId, now) != 1)
            {
                return false;
            }
            await InsertRefreshTokenAsync(c, tx, first, ct);
            await AppendAuditAsync(c, tx, new AuditEvent(AuditTypes.ApprovalRedeemed, first.UserId, first.ClientId, approvalId), ct);
            return await AuditedAsync(c, tx, audit, ct);
        }, ct);

    public Task<(RefreshOutcome Outcome, RefreshTokenRecord? Consumed)> TryRotateRefreshTokenAsync(byte[] tokenHash, long now,
        Func<RefreshTokenRecord, RefreshTokenRecord> next, CancellationToken ct) =>
        WriteAsync<(RefreshOutcome, RefreshTokenRecord?)>(async (c, tx, ct) =>
        {
            // FOR UPDATE: two racing refreshes of one token take turns, so exactly one rotates it.
            var token = await One(c, tx, $"SELECT {RefreshColumns} FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", ReadRefreshToken, ct, tokenHash);
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
                await Exec(c, tx, "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL", ct, token.FamilyId, now);
                await AppendAuditAsync(c, tx, new AuditEvent(AuditTypes.SessionReuseDetected, token.UserId, token.ClientId, token.FamilyId), ct);
                return (RefreshOutcome.Reused, token);
            }
            if (token.ExpiresAt <= now)
            {
                return (RefreshOutcome.Expired, token);
            }
            await Exec(c, tx, "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL", ct, tokenHash, now);
            await InsertRefreshTokenAsync(c, tx, next(token), ct);
            await AppendAuditAsync(c, tx, new AuditEvent(AuditTypes.SessionRefreshed, token.UserId, token.ClientId, token.FamilyId), ct);
            return (RefreshOutcome.Rotated, token);
        }, ct);

    public Task<bool> RevokeRefreshTokenFamilyAsync(byte[] tokenHash, string clientId, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            var token = await One(c, tx, $"SELECT {RefreshColumns} FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2", ReadRefreshToken, ct, tokenHash, clientId);
            if (token is null || await Exec(c, tx, "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL", ct, token.FamilyId, now) == 0)
            {
                return false;
            }
            return await AuditedAsync(c, tx, audit with { UserId = token.UserId, Subject = token.FamilyId }, ct);
        }, ct);

    public Task RevokeAccessTokenAsync(string jti, long expiresAt, long now, AuditEvent audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await Exec(c, tx, "DELETE FROM revoked_access_tokens WHERE expires_at <= $1", ct, now);
            return await Exec(c, tx, "INSERT INTO revoked_access_tokens(jti, expires_at) VALUES($1, $2) ON CONFLICT (jti) DO NOTHING", ct, jti, expiresAt) != 1 ||
                   await AuditedAsync(c, tx, audit, ct);
        }, ct);

    public Task<bool> IsAccessTokenRevokedAsync(string jti, CancellationToken ct) =>
        ReadAsync(async (c, ct) => (bool)(await Cmd(c, null, "SELECT EXISTS(SELECT 1 FROM revoked_access_tokens WHERE jti = $1)", jti).ExecuteScalarAsync(ct))!, ct);

    private static Task<int> InsertRefreshTokenAsync(NpgsqlConnection c, NpgsqlTransaction tx, RefreshTokenRecord t, CancellationToken ct) =>
        Exec(c, tx, $"INSERT INTO refresh_tokens({RefreshColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", ct,
            t.TokenHash, t.FamilyId, t.UserId, t.ClientId, t.Scope, t.ApprovalId, t.CreatedAt, t.ExpiresAt, t.UsedAt, t.RevokedAt);

    private static DeviceAuthorizationRecord ReadDeviceAuthorization(DbDataReader r) => new(
        r.GetString(0), (byte[])r[1], (byte[])r[2], r.GetString(3), r.GetString(4), r.GetString(5), NullableString(r, 6), r.GetInt64(7), r.GetInt64(8));

    private static RefreshTokenRecord ReadRefreshToken(DbDataReader r) => new(
        (byte[])r[0], r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetInt64(6), r.GetInt64(7),
        NullableLong(r, 8), NullableLong(r, 9));

    public Task<ApprovalRecord?> FindApprovalAsync(string approvalId, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {ApprovalColumns} FROM approvals WHERE id = $1", ReadApproval, ct, approvalId), ct);

    public Task<ApprovalRecord?> FindApprovalByHandleAsync(byte[] handleHash, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, $"SELECT {ApprovalColumns} FROM approvals WHERE handle_hash = $1", ReadApproval, ct, handleHash), ct);

    public Task<IReadOnlyList<ApprovalRecord>> ListPendingAsync(string userId, long now, CancellationToken ct) =>
        ReadAsync((c, ct) => All(c, null, $"SELECT {ApprovalColumns} FROM approvals WHERE user_id = $1 AND state = 0 AND expires_at > $2 ORDER BY created_at, id",
            ReadApproval, ct, userId, now), ct);

    public Task<IReadOnlyList<ApprovalRecord>> ListHistoryAsync(string userId, int limit, CancellationToken ct) =>
        ReadAsync((c, ct) => All(c, null, $"SELECT {ApprovalColumns} FROM approvals WHERE user_id = $1 AND state <> 0 ORDER BY created_at DESC, id LIMIT $2",
            ReadApproval, ct, userId, limit), ct);

    public Task<bool> TryDecideAsync(DecisionRecord d, AuditEvent audit, CancellationToken ct) =>
        d.SignCount is null
            // One statement: the guarded update, and only if it matched, the audit event and the notice.
            ? PipelineAsync(Batched("WITH d AS (UPDATE approvals SET state = $2, device_id = $3, evidence = $4, decided_at = $5 " +
                                    "WHERE id = $1 AND state = 0 AND expires_at > $5 AND EXISTS (SELECT 1 FROM devices WHERE id = $3 AND revoked_at IS NULL) RETURNING user_id), " +
                                    "p AS (INSERT INTO audit_pending(body, user_id) SELECT $6, $7 FROM d) " +
                                    "SELECT pg_notify($8, $9 || d.user_id || $10) FROM d",
                    d.ApprovalId, (int)d.NewState, d.DeviceId, d.Evidence, d.DecidedAt, Unsealed(audit), audit.UserId,
                    Channel, string.Join('|', NodeId, "settled", d.ApprovalId, ""), "|" + (d.NewState == ApprovalState.Approved ? "approved" : "denied")),
                static async (r, ct) => await r.ReadAsync(ct), ct)
            : WriteAsync(async (c, tx, ct) =>
        {
            if (d.SignCount is { } count &&
                await Exec(c, tx, "UPDATE devices SET sign_count = $2 WHERE id = $1 AND sign_count < $2", ct, d.DeviceId, count) != 1)
            {
                return false;
            }
            // The WHERE clause is the race guard: a concurrent decision waits on the row lock, then finds state <> 0;
            // and the device must still be active at commit, so a revocation racing this decision wins.
            var userId = await One(c, tx, "UPDATE approvals SET state = $2, device_id = $3, evidence = $4, decided_at = $5 " +
                                          "WHERE id = $1 AND state = 0 AND expires_at > $5 AND EXISTS (SELECT 1 FROM devices WHERE id = $3 AND revoked_at IS NULL) RETURNING user_id",
                r => r.GetString(0), ct, d.ApprovalId, (int)d.NewState, d.DeviceId, d.Evidence, d.DecidedAt);
            if (userId is null)
            {
                return false;
            }
            await NotifyAsync(c, tx, "settled", d.ApprovalId, userId, d.NewState == ApprovalState.Approved ? "approved" : "denied", ct);
            return await AuditedAsync(c, tx, audit, ct);
        }, ct);

    public Task<ApprovalRecord?> TryRedeemAsync(string approvalId, long now, AuditEvent audit, CancellationToken ct) =>
        PipelineAsync(Batched($"WITH r AS (UPDATE approvals SET state = 5, redeemed_at = $2 WHERE id = $1 AND state = 1 RETURNING {ApprovalColumns}), " +
                              "p AS (INSERT INTO audit_pending(body, user_id) SELECT $3, $4 FROM r) " +
                              $"SELECT {ApprovalColumns} FROM r",
                approvalId, now, Unsealed(audit), audit.UserId),
            static async (r, ct) => await r.ReadAsync(ct) ? ReadApproval(r) : null, ct);

    public Task<IReadOnlyList<ApprovalRecord>> ExpireDueAsync(long now, int max, CancellationToken ct) =>
        WriteAsync<IReadOnlyList<ApprovalRecord>>(async (c, tx, ct) =>
        {
            // SKIP LOCKED: several nodes sweep at once without waiting on, or double-expiring, each other's rows.
            var due = await All(c, tx, $"UPDATE approvals SET state = 3 WHERE id IN (SELECT id FROM approvals WHERE state = 0 AND expires_at <= $1 " +
                                       $"ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING {ApprovalColumns}", ReadApproval, ct, now, max);
            foreach (var a in due)
            {
                await NotifyAsync(c, tx, "settled", a.Id, a.UserId, "expired", ct);
                await AppendAuditAsync(c, tx, new AuditEvent(AuditTypes.ApprovalExpired, a.UserId, "system", a.Id), ct);
            }
            return due;
        }, ct);

    public Task<int> PruneExpiredAsync(long now, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            var removed = 0;
            foreach (var table in SqliteStore.PruneTables)
            {
                removed += await Exec(c, tx, $"DELETE FROM {table} WHERE expires_at <= $1", ct, now);
            }
            return removed;
        }, ct);

    // ---- keys, audit, meta -------------------------------------------------------------

    public Task<IReadOnlyList<SigningKeyRecord>> ListSigningKeysAsync(CancellationToken ct) =>
        ReadAsync((c, ct) => All(c, null, "SELECT kid, public_key, encrypted_seed, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
            r => new SigningKeyRecord(r.GetString(0), (byte[])r[1], (byte[])r[2], r.GetInt64(3), NullableLong(r, 4)), ct), ct);

    public Task AddSigningKeyAsync(SigningKeyRecord key, long now, AuditEvent? audit, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await Exec(c, tx, "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL", ct, now);
            await Exec(c, tx, "INSERT INTO signing_keys(kid, public_key, encrypted_seed, created_at, retired_at) VALUES($1, $2, $3, $4, NULL)", ct,
                key.Kid, key.PublicKey, key.EncryptedSeed, key.CreatedAt);
            return audit is null || await AuditedAsync(c, tx, audit, ct);
        }, ct);

    public async Task<IReadOnlyList<AuditRow>> ReadAuditAsync(long afterSeq, int limit, string? userId, CancellationToken ct)
    {
        // Read your writes: whatever committed before this call is in the chain before it is read.
        await SealPendingAsync(ct);
        return await ReadAsync((c, ct) => userId is null
            ? All(c, null, "SELECT seq, entry, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", ReadAuditRow, ct, afterSeq, limit)
            : All(c, null, "SELECT seq, entry, hash FROM audit WHERE seq > $1 AND user_id = $3 ORDER BY seq LIMIT $2", ReadAuditRow, ct, afterSeq, limit, userId), ct);
    }

    public async Task<(long Size, byte[] Head)> ReadAuditHeadAsync(CancellationToken ct)
    {
        await SealPendingAsync(ct);
        return await ReadAsync(async (c, ct) => (await One(c, null, "SELECT seq, hash FROM audit_head WHERE id = 1", r => new AuditHead(r.GetInt64(0), (byte[])r[1]), ct))
            is { } h ? (h.Seq, h.Hash) : (0L, AuditChain.Genesis), ct);
    }

    public Task<byte[]?> GetMetaAsync(string key, CancellationToken ct) =>
        ReadAsync((c, ct) => One(c, null, "SELECT value FROM meta WHERE key = $1", r => (byte[])r[0], ct, key), ct);

    public Task<byte[]> GetOrAddMetaAsync(string key, byte[] value, CancellationToken ct) =>
        WriteAsync(async (c, tx, ct) =>
        {
            await Exec(c, tx, "INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT (key) DO NOTHING", ct, key, value);
            return (await One(c, tx, "SELECT value FROM meta WHERE key = $1", r => (byte[])r[0], ct, key))!;
        }, ct);

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_writer is { } writer)
        {
            await writer;
        }
        if (_sealer is { } sealer)
        {
            try
            {
                // Seal what this node wrote last; if the database is gone, any other node (or the next start) seals it.
                await SealPendingAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or OperationCanceledException)
            {
            }
            await _closing.CancelAsync();
            await sealer;
        }
        await _closing.CancelAsync();
        await source.DisposeAsync();
    }

    // ---- audit sealing -----------------------------------------------------------------

    private const int SealBatch = 2000;
    private static readonly TimeSpan SealPoll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan SealGather = TimeSpan.FromMilliseconds(200);
    private readonly SemaphoreSlim _sealNeeded = new(0, 1);
    private Task? _sealer;

    /// <summary>Asks the sealer to run soon (after a commit that stored audit events).</summary>
    private void RequestSeal()
    {
        if (_sealNeeded.CurrentCount == 0)
        {
            try
            {
                _sealNeeded.Release();
            }
            catch (SemaphoreFullException)
            {
            }
        }
    }

    private void EnsureSealer()
    {
        if (_sealer is null)
        {
            lock (_queue)
            {
                _sealer ??= Task.Run(SealerLoopAsync);
            }
        }
    }

    /// <summary>
    /// Runs on every node: wakes after local commits and polls for other nodes' (or a crashed node's)
    /// pending entries. Sealers on several nodes take turns on the head row; each seals what it sees.
    /// </summary>
    private async Task SealerLoopAsync()
    {
        var ct = _closing.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (await _sealNeeded.WaitAsync(SealPoll, ct))
                {
                    // Let the commits of the next few milliseconds join this pass: one pass seals them all.
                    await Task.Delay(SealGather, ct);
                }
                int sealedNow, sealedInPass = 0;
                do
                {
                    sealedNow = await SealPendingAsync(ct);
                    sealedInPass += sealedNow;
                }
                while (sealedNow == SealBatch);
                if (sealedInPass > 0 && Environment.TickCount64 - _lastVacuum >= VacuumEveryMs)
                {
                    await VacuumPendingAsync(ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
            {
                // The database is unreachable: the entries wait in audit_pending; try again at the next poll.
                await Task.Delay(SealPoll, CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// Chains up to <see cref="SealBatch"/> committed pending entries after the head, in one transaction
    /// holding the head row: entry n = <c>{"seq":n,</c> + its unsealed body, hash_n = SHA-256(hash_{n-1} ‖ entry_n).
    /// Returns how many were sealed.
    /// </summary>
    private async Task<int> SealPendingAsync(CancellationToken ct)
    {
        await using var c = await source.OpenConnectionAsync(ct);
        // Through the index: a scan of the heap would walk every deleted row that vacuum has not yet removed.
        await using (var probe = Cmd(c, null, "SELECT id FROM audit_pending ORDER BY id LIMIT 1"))
        {
            if (await probe.ExecuteScalarAsync(ct) is null)
            {
                return 0;
            }
        }
        await using var tx = await c.BeginTransactionAsync(ct);
        var head = (await One(c, tx, "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", r => new AuditHead(r.GetInt64(0), (byte[])r[1]), ct))!;
        // Read after the lock: a sealer that held it before us has already moved (and deleted) what it sealed.
        var pending = await All(c, tx, "SELECT id, body, user_id FROM audit_pending ORDER BY id LIMIT $1",
            r => (Id: r.GetInt64(0), Body: (byte[])r[1], UserId: NullableString(r, 2)), ct, SealBatch);
        if (pending.Count == 0)
        {
            await tx.RollbackAsync(ct);
            return 0;
        }
        var seqs = new long[pending.Count];
        var entries = new byte[pending.Count][];
        var hashes = new byte[pending.Count][];
        var users = new string?[pending.Count];
        var ids = new long[pending.Count];
        var (seq, hash) = (head.Seq, head.Hash);
        for (var i = 0; i < pending.Count; i++)
        {
            seq++;
            entries[i] = AuditChain.Seal(seq, pending[i].Body);
            hash = AuditChain.Link(hash, entries[i]);
            (seqs[i], hashes[i], users[i], ids[i]) = (seq, hash, pending[i].UserId, pending[i].Id);
        }
        await Exec(c, tx, "INSERT INTO audit(seq, entry, hash, user_id) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[])", ct,
            seqs, entries, hashes, users);
        await Exec(c, tx, "DELETE FROM audit_pending WHERE id = ANY($1)", ct, ids);
        await Exec(c, tx, "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", ct, seq, hash);
        await tx.CommitAsync(ct);
        return pending.Count;
    }

    /// <summary>
    /// audit_pending is a queue: every row is deleted within moments of its insert. Autovacuum looks
    /// at a table about once a minute, by which time the table holds a minute of deleted rows that
    /// seal passes walk and inserts grow the file past. Vacuumed each second, its space is reused.
    /// SKIP_LOCKED: a vacuum already running (another node's, or autovacuum) is enough. TRUNCATE
    /// false: giving the file's empty end back takes a lock that stops inserts (with it, these
    /// vacuums took 81 ms each under load; without, 1.2 ms). A role that does not own the table
    /// gets a warning, not an error, and autovacuum does the work as before.
    /// </summary>
    private async Task VacuumPendingAsync(CancellationToken ct)
    {
        _lastVacuum = Environment.TickCount64;
        await using var c = await source.OpenConnectionAsync(ct);
        await using var vacuum = Cmd(c, null, "VACUUM (SKIP_LOCKED, TRUNCATE false) audit_pending");
        await vacuum.ExecuteNonQueryAsync(ct);
    }

    // Machine time, not the store's clock: this paces the database's housekeeping, not request lifetimes.
    private const long VacuumEveryMs = 1000;
    private long _lastVacuum = Environment.TickCount64;

    // ---- plumbing ----------------------------------------------------------------------

    private sealed record AuditHead(long Seq, byte[] Hash);

    /// <summary>
    /// NOTIFY is transactional: the other nodes hear of a transition only once it has committed.
    /// Payload: <c>node|kind|approval|user|state</c> (ids never contain '|').
    /// </summary>
    private Task<int> NotifyAsync(NpgsqlConnection c, NpgsqlTransaction tx, string kind, string approvalId, string userId, string state, CancellationToken ct) =>
        Exec(c, tx, "SELECT pg_notify($1, $2)", ct, Channel, NotifyPayload(kind, approvalId, userId, state));

    private string NotifyPayload(string kind, string approvalId, string userId, string state) => string.Join('|', NodeId, kind, approvalId, userId, state);

    /// <summary>
    /// A new request's notice carries the request itself (without its handle hash) when it fits
    /// PostgreSQL's 8000-byte payload limit, so the other nodes' device streams need no read.
    /// </summary>
    internal string CreatedPayload(ApprovalRecord a)
    {
        var head = NotifyPayload("created", a.Id, a.UserId, "pending");
        var json = JsonSerializer.Serialize(a with { HandleHash = [] }, StoreJson.Default.ApprovalRecord);
        return head.Length + 1 + System.Text.Encoding.UTF8.GetByteCount(json) < MaxNotifyPayload ? head + "|" + json : head;
    }

    private const int MaxNotifyPayload = 7900;

    /// <summary>Reads a request carried by a notice (see <see cref="CreatedPayload"/>); null when it carries none.</summary>
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

    private byte[] Unsealed(AuditEvent e) => AuditChain.Unsealed(time.GetUtcNow().ToUnixTimeMilliseconds(), e);

    private async Task<bool> AuditedAsync(NpgsqlConnection c, NpgsqlTransaction tx, AuditEvent e, CancellationToken ct)
    {
        await AppendAuditAsync(c, tx, e, ct);
        return true;
    }

    /// <summary>Stores the event unsealed in the caller's transaction; the sealer gives it its place in the chain.</summary>
    private Task<int> AppendAuditAsync(NpgsqlConnection c, NpgsqlTransaction tx, AuditEvent e, CancellationToken ct)
    {
        return Exec(c, tx, "INSERT INTO audit_pending(body, user_id) VALUES($1, $2)", ct, Unsealed(e), e.UserId);
    }

    private async Task<T> ReadAsync<T>(Func<NpgsqlConnection, CancellationToken, Task<T>> work, CancellationToken ct)
    {
        await using var c = await source.OpenConnectionAsync(ct);
        return await work(c, ct);
    }

    private Task<T> WriteAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task<T>> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var item = new WriteItem<T>(work);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(PostgresStore));
        }
        // Once queued the write happens even if this caller stops waiting: state stays consistent.
        EnsureWriter();
        return item.Completion.WaitAsync(ct);
    }

    /// <summary>
    /// Queues a write that is one statement: it joins the other one-statement writes of its batch in a
    /// single round trip (see <see cref="TryCommitTogetherAsync"/>). <paramref name="read"/> reads its one result set.
    /// </summary>
    private Task<T> PipelineAsync<T>(Func<NpgsqlBatchCommand> command, Func<NpgsqlDataReader, CancellationToken, Task<T>> read, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var item = new PipelinedItem<T>(command, read);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(PostgresStore));
        }
        EnsureWriter();
        return item.Completion.WaitAsync(ct);
    }

    /// <summary>A statement for a batch; a factory, because a replayed item needs a fresh command.</summary>
    private static Func<NpgsqlBatchCommand> Batched(string sql, params object?[] args) => () =>
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var arg in args)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = arg ?? DBNull.Value });
        }
        return command;
    };

    /// <summary>
    /// Group commit, as on SQLite: this node's writes are queued and committed together, one commit
    /// per batch. No global lock is taken (audit entries are sealed later), so several writers per
    /// node and the writers of every node commit side by side; rows guard themselves.
    /// </summary>
    private async Task WriterLoopAsync()
    {
        var batch = new List<IWriteItem>(MaxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }
            try
            {
                await using var c = await source.OpenConnectionAsync(_closing.Token);
                if ((await TryCommitTogetherAsync(c, batch)).Error is not null)
                {
                    // An item threw (a constraint, a deadlock victim): nothing committed. Replay each alone.
                    foreach (var item in batch)
                    {
                        if ((await TryCommitTogetherAsync(c, [item])).Error is { } error)
                        {
                            item.Failed(error);
                        }
                    }
                }
                foreach (var item in batch)
                {
                    item.Publish();
                }
                RequestSeal();
            }
            catch (Exception e)
            {
                // The connection broke or the server went away: nothing of this batch committed.
                foreach (var item in batch)
                {
                    item.Abort(e);
                }
            }
        }
    }

    private sealed record CommitResult(Exception? Error);

    private async Task<CommitResult> TryCommitTogetherAsync(NpgsqlConnection c, List<IWriteItem> items)
    {
        var ct = _closing.Token;
        if (items.TrueForAll(i => i is IPipelinedItem))
        {
            // Every item is one statement: send them all at once. The statements of one batch message run
            // in one implicit transaction (PostgreSQL protocol, "Multiple Statements in an Extended Query"):
            // all commit at its Sync, or none does.
            try
            {
                await RunPipelinedAsync(c, null, items, ct);
                return new CommitResult(null);
            }
            catch (PostgresException e) when (!e.IsTransient || e.SqlState == PostgresErrorCodes.DeadlockDetected)
            {
                return new CommitResult(e);
            }
        }
        await using var tx = await c.BeginTransactionAsync(ct);
        try
        {
            if (items.Exists(i => i is IPipelinedItem))
            {
                await RunPipelinedAsync(c, tx, items, ct);
            }
            foreach (var item in items)
            {
                if (item is IScriptedItem scripted)
                {
                    await scripted.RunAsync(c, tx, ct);
                }
            }
            await tx.CommitAsync(ct);
            return new CommitResult(null);
        }
        catch (PostgresException e) when (!e.IsTransient || e.SqlState == PostgresErrorCodes.DeadlockDetected)
        {
            await tx.RollbackAsync(CancellationToken.None);
            return new CommitResult(e);
        }
        catch (Exception e) when (e is not (NpgsqlException or IOException or OperationCanceledException))
        {
            await tx.RollbackAsync(CancellationToken.None);
            return new CommitResult(e);
        }
    }

    private void EnsureWriter()
    {
        if (_writer is null)
        {
            lock (_queue)
            {
                _writer ??= Task.WhenAll(Enumerable.Range(0, Writers).Select(_ => Task.Run(WriterLoopAsync)));
            }
        }
    }

    private const int MaxBatch = 64;

    /// <summary>Batches in flight per node: while one waits for its commit, the next is built.</summary>
    private const int Writers = 2;

    private readonly System.Threading.Channels.Channel<IWriteItem> _queue =
        System.Threading.Channels.Channel.CreateUnbounded<IWriteItem>(new() { SingleReader = false });

    private readonly CancellationTokenSource _closing = new();
    private Task? _writer;

    /// <summary>Sends the one-statement items of <paramref name="items"/> as one batch and hands each its result set.</summary>
    private static async Task RunPipelinedAsync(NpgsqlConnection c, NpgsqlTransaction? tx, List<IWriteItem> items, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(c, tx);
        var pipelined = new List<IPipelinedItem>(items.Count);
        foreach (var item in items)
        {
            if (item is IPipelinedItem p)
            {
                batch.BatchCommands.Add(p.Command());
                pipelined.Add(p);
            }
        }
        await using var reader = await batch.ExecuteReaderAsync(ct);
        for (var i = 0; i < pipelined.Count; i++)
        {
            if (i > 0 && !await reader.NextResultAsync(ct))
            {
                throw new InvalidOperationException("a batched statement returned no result");
            }
            await pipelined[i].ReadAsync(reader, ct);
        }
    }

    private interface IWriteItem : IQueuedWrite;

    private interface IScriptedItem : IWriteItem
    {
        Task RunAsync(NpgsqlConnection c, NpgsqlTransaction tx, CancellationToken ct);
    }

    private interface IPipelinedItem : IWriteItem
    {
        NpgsqlBatchCommand Command();

        Task ReadAsync(NpgsqlDataReader reader, CancellationToken ct);
    }

    private sealed class WriteItem<T>(Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task<T>> work) : QueuedWrite<T>, IScriptedItem
    {
        public async Task RunAsync(NpgsqlConnection c, NpgsqlTransaction tx, CancellationToken ct) => Ran(await work(c, tx, ct));
    }

    private sealed class PipelinedItem<T>(Func<NpgsqlBatchCommand> command, Func<NpgsqlDataReader, CancellationToken, Task<T>> read) : QueuedWrite<T>, IPipelinedItem
    {
        public NpgsqlBatchCommand Command() => command();

        public async Task ReadAsync(NpgsqlDataReader reader, CancellationToken ct) => Ran(await read(reader, ct));
    }

    private static NpgsqlCommand Cmd(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, params object?[] args)
    {
        var cmd = new NpgsqlCommand(sql, c, tx);
        foreach (var arg in args)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = arg ?? DBNull.Value });
        }
        return cmd;
    }

    private static async Task<int> Exec(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, CancellationToken ct, params object?[] args)
    {
        await using var cmd = Cmd(c, tx, sql, args);
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<T?> One<T>(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, Func<DbDataReader, T> read, CancellationToken ct, params object?[] args)
        where T : class
    {
        await using var cmd = Cmd(c, tx, sql, args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? read(r) : null;
    }

    private static async Task<IReadOnlyList<T>> All<T>(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, Func<DbDataReader, T> read, CancellationToken ct,
        params object?[] args)
    {
        await using var cmd = Cmd(c, tx, sql, args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<T>();
        while (await r.ReadAsync(ct))
        {
            list.Add(read(r));
        }
        return list;
    }

    private static long? NullableLong(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    private static string? NullableString(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static UserRecord ReadUser(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetInt64(3));

    private static DeviceRecord ReadDevice(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
        r.IsDBNull(5) ? null : (byte[])r[5], r.GetInt64(6), r.GetInt64(7), NullableLong(r, 8));

    private static ApprovalRecord ReadApproval(DbDataReader r) => new(
        r.GetString(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), NullableString(r, 6), NullableString(r, 7),
        NullableString(r, 8), (byte[])r[9], (ApprovalState)r.GetInt32(10), r.GetInt64(11), r.GetInt64(12), NullableString(r, 13), NullableString(r, 14),
        NullableLong(r, 15), NullableLong(r, 16));

    private static AuditRow ReadAuditRow(DbDataReader r) => new(r.GetInt64(0), (byte[])r[1], (byte[])r[2]);

    private static Task<int> InsertDeviceAsync(NpgsqlConnection c, NpgsqlTransaction tx, DeviceRecord d, CancellationToken ct) =>
        Exec(c, tx, "INSERT INTO devices(id, user_id, kind, name, public_jwk, credential_id, sign_count, created_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8)", ct,
            d.Id, d.UserId, d.Kind, d.Name, d.PublicJwk, d.CredentialId, d.SignCount, d.CreatedAt);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(ApprovalRecord))]
internal sealed partial class StoreJson : System.Text.Json.Serialization.JsonSerializerContext;
