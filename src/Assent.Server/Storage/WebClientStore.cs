using System.Data.Common;
using System.Text.Json;

namespace Assent.Server.Storage;

/// <summary>
/// Web applications that sign users in through Assent (docs/storage.md §3: <c>web_clients</c>), the users' remembered
/// consents to them, and the authorization codes issued to them, stored only as hashes.
/// </summary>
internal interface IWebClientStore
{
    Task<WebClientRecord?> FindAsync(string clientId, CancellationToken ct);

    Task CreateAsync(WebClientRecord client, AuditEvent audit, CancellationToken ct);

    /// <summary>Every registered web client, newest first (an administrator's list in the web app).</summary>
    Task<IReadOnlyList<WebClientRecord>> ListAsync(CancellationToken ct);

    /// <summary>The scopes the user has consented to for the client, space-separated; null when never asked.</summary>
    Task<string?> ConsentedScopesAsync(string userId, string clientId, CancellationToken ct);

    /// <summary>Remembers the user's consent to <paramref name="scope"/> (replacing a narrower one).</summary>
    Task GrantConsentAsync(string userId, string clientId, string scope, long now, AuditEvent audit, CancellationToken ct);

    /// <param name="keepUntil">When the row may be pruned: after the code expired and every token a redemption could issue has too, so a replay is still recognised.</param>
    Task CreateCodeAsync(AuthorizationCodeRecord code, long keepUntil, CancellationToken ct);

    /// <summary>
    /// Spends the code once (RFC 6749 §4.1.2) if <paramref name="check"/> (client, redirect URI, verifier) finds nothing
    /// wrong, recording the id of the access token it is about to issue, in one transaction with the row locked: of two
    /// racing redemptions one wins. A code used before comes back as <see cref="CodeRedemption.Replayed"/> with its row.
    /// <paramref name="refresh"/> (for an <c>offline_access</c> code) is stored in the same transaction as the first of its family.
    /// </summary>
    Task<(CodeRedemption Outcome, AuthorizationCodeRecord? Code)> TryRedeemCodeAsync(byte[] codeHash, long now, string jti, long jtiExpiresAt,
        Func<AuthorizationCodeRecord, string?> check, Func<AuthorizationCodeRecord, RefreshTokenRecord?> refresh, CancellationToken ct);

    /// <summary>Revokes every refresh token of a family (a replayed code's); how many were live.</summary>
    Task<int> RevokeRefreshFamilyAsync(string familyId, long now, CancellationToken ct);

    /// <summary>The user's remembered consents to web clients, newest first, with the clients' names.</summary>
    Task<IReadOnlyList<WebConsentRecord>> ListConsentsAsync(string userId, CancellationToken ct);

    /// <summary>
    /// Forgets the user's consent to the client (the next sign-in asks again) and revokes the refresh tokens the client
    /// holds for the user, in one transaction; false when there was no consent.
    /// </summary>
    Task<bool> TryRevokeConsentAsync(string userId, string clientId, long now, AuditEvent audit, CancellationToken ct);
}

internal sealed class WebClientStore(Database db) : IWebClientStore
{
    private const string ClientColumns = "id, secret_hash, name, redirect_uris, post_logout_redirect_uris, id_token_alg, created_at, revoked_at";

    private const string CodeColumns =
        "code_hash, client_id, user_id, device_id, redirect_uri, scope, code_challenge, nonce, auth_time, amr, created_at, code_expires_at, used_at, issued_jti, issued_expires_at";

    public Task<WebClientRecord?> FindAsync(string clientId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {ClientColumns} FROM web_clients WHERE id = $1", ReadClient, clientId), ct);

    public Task<IReadOnlyList<WebClientRecord>> ListAsync(CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {ClientColumns} FROM web_clients ORDER BY created_at DESC, id", ReadClient), ct);

    public Task CreateAsync(WebClientRecord c, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync($"INSERT INTO web_clients({ClientColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, NULL)",
                c.Id, c.SecretHash, c.Name, JsonSerializer.Serialize(c.RedirectUris), JsonSerializer.Serialize(c.PostLogoutRedirectUris), c.IdTokenAlg, c.CreatedAt);
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<string?> ConsentedScopesAsync(string userId, string clientId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT scope FROM web_consents WHERE user_id = $1 AND client_id = $2", r => r.GetString(0), userId, clientId), ct);

    public Task GrantConsentAsync(string userId, string clientId, string scope, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("""
                INSERT INTO web_consents(user_id, client_id, scope, created_at) VALUES($1, $2, $3, $4)
                ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at
                """, userId, clientId, scope, now);
            return await w.AuditedAsync(audit);
        }, ct);

    public Task CreateCodeAsync(AuthorizationCodeRecord c, long keepUntil, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync($"INSERT INTO authorization_codes({CodeColumns}, expires_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, NULL, $13)",
            c.CodeHash, c.ClientId, c.UserId, c.DeviceId, c.RedirectUri, c.Scope, c.CodeChallenge, c.Nonce, c.AuthTime, c.Amr, c.CreatedAt, c.ExpiresAt, keepUntil) == 1, ct);

    public Task<(CodeRedemption Outcome, AuthorizationCodeRecord? Code)> TryRedeemCodeAsync(byte[] codeHash, long now, string jti, long jtiExpiresAt,
        Func<AuthorizationCodeRecord, string?> check, Func<AuthorizationCodeRecord, RefreshTokenRecord?> refresh, CancellationToken ct) =>
        db.WriteAsync<(CodeRedemption, AuthorizationCodeRecord?)>(async w =>
        {
            var code = await w.OneAsync($"SELECT {CodeColumns} FROM authorization_codes WHERE code_hash = $1{db.ForUpdate}", ReadCode, codeHash);
            if (code is null)
            {
                return (CodeRedemption.Unknown, null);
            }
            if (code.UsedAt is not null)
            {
                return (CodeRedemption.Replayed, code);
            }
            if (code.ExpiresAt <= now)
            {
                return (CodeRedemption.Expired, code);
            }
            if (check(code) is not null)
            {
                return (CodeRedemption.Mismatch, code);
            }
            if (await w.ExecAsync("UPDATE authorization_codes SET used_at = $2, issued_jti = $3, issued_expires_at = $4 WHERE code_hash = $1 AND used_at IS NULL",
                    codeHash, now, jti, jtiExpiresAt) != 1)
            {
                return (CodeRedemption.Replayed, await w.OneAsync($"SELECT {CodeColumns} FROM authorization_codes WHERE code_hash = $1", ReadCode, codeHash));
            }
            if (refresh(code) is { } first)
            {
                await SessionStore.InsertRefreshTokenAsync(w, first);
            }
            return (CodeRedemption.Redeemed, code with { UsedAt = now, IssuedJti = jti, IssuedExpiresAt = jtiExpiresAt });
        }, ct);

    public Task<int> RevokeRefreshFamilyAsync(string familyId, long now, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL", familyId, now), ct);

    public Task<IReadOnlyList<WebConsentRecord>> ListConsentsAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync("""
            SELECT c.client_id, w.name, c.scope, c.created_at FROM web_consents c JOIN web_clients w ON w.id = c.client_id
            WHERE c.user_id = $1 ORDER BY c.created_at DESC, c.client_id
            """, r => new WebConsentRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3)), userId), ct);

    public Task<bool> TryRevokeConsentAsync(string userId, string clientId, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.ExecAsync("DELETE FROM web_consents WHERE user_id = $1 AND client_id = $2", userId, clientId) != 1)
            {
                return false;
            }
            // The refresh tokens issued under that consent end with it (docs/http-api.md §17).
            await w.ExecAsync("UPDATE refresh_tokens SET revoked_at = $3 WHERE user_id = $1 AND client_id = $2 AND device_id IS NOT NULL AND revoked_at IS NULL",
                userId, clientId, now);
            return await w.AuditedAsync(audit);
        }, ct);

    private static WebClientRecord ReadClient(DbDataReader r) => new(
        r.GetString(0), r.IsDBNull(1) ? null : (byte[])r[1], r.GetString(2),
        JsonSerializer.Deserialize<string[]>(r.GetString(3)) ?? [], JsonSerializer.Deserialize<string[]>(r.GetString(4)) ?? [],
        r.GetString(5), r.GetInt64(6), Rows.NullableLong(r, 7));

    private static AuthorizationCodeRecord ReadCode(DbDataReader r) => new(
        (byte[])r[0], r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), Rows.NullableString(r, 6), Rows.NullableString(r, 7),
        r.GetInt64(8), r.GetString(9), r.GetInt64(10), r.GetInt64(11), Rows.NullableLong(r, 12), Rows.NullableString(r, 13), Rows.NullableLong(r, 14));
}

/// <summary>The ES256 and RS256 ID-token keys (docs/storage.md §3: <c>jose_keys</c>), sealed under the key-encryption key.</summary>
internal interface IJoseKeyStore
{
    Task<IReadOnlyList<JoseKeyRecord>> ListAsync(CancellationToken ct);

    /// <summary>
    /// Adds the first key of its algorithm unless one was ever added: of nodes needing it at the same moment one wins
    /// (the <c>meta</c> claim row's primary key decides), and the others load its key. False when another did.
    /// </summary>
    Task<bool> TryAddFirstAsync(JoseKeyRecord key, AuditEvent audit, CancellationToken ct);

    /// <summary>Adds a key as current for its algorithm and retires the previous one (rotation).</summary>
    Task AddAsync(JoseKeyRecord key, long now, AuditEvent audit, CancellationToken ct);
}

internal sealed class JoseKeyStore(Database db) : IJoseKeyStore
{
    private const string Insert = "INSERT INTO jose_keys(kid, alg, public_jwk, encrypted_private_key, created_at, retired_at) VALUES($1, $2, $3, $4, $5, NULL)";

    public Task<IReadOnlyList<JoseKeyRecord>> ListAsync(CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync("SELECT kid, alg, public_jwk, encrypted_private_key, created_at, retired_at FROM jose_keys ORDER BY created_at, kid",
            r => new JoseKeyRecord(r.GetString(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetInt64(4), Rows.NullableLong(r, 5))), ct);

    public Task<bool> TryAddFirstAsync(JoseKeyRecord key, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.ExecAsync("INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT (key) DO NOTHING", FirstKeyClaim(key.Alg),
                    System.Text.Encoding.ASCII.GetBytes(key.Kid)) == 0)
            {
                return false;
            }
            await w.ExecAsync(Insert, key.Kid, key.Alg, key.PublicJwk, key.EncryptedPrivateKey, key.CreatedAt);
            return await w.AuditedAsync(audit);
        }, ct);

    public Task AddAsync(JoseKeyRecord key, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await KeyStore.TakeRotationTurnAsync(w);
            await w.ExecAsync("UPDATE jose_keys SET retired_at = $1 WHERE retired_at IS NULL AND alg = $2", now, key.Alg);
            await w.ExecAsync(Insert, key.Kid, key.Alg, key.PublicJwk, key.EncryptedPrivateKey, key.CreatedAt);
            return await w.AuditedAsync(audit);
        }, ct);

    /// <summary>The <c>meta</c> row the first key of an algorithm's creator claims (docs/storage.md §3).</summary>
    internal static string FirstKeyClaim(string alg) => "first_signing_key_" + alg;
}

/// <summary>Schema of the web sign-in tables, the same on both engines but for the types (each ends in a semicolon).</summary>
internal static class WebClientSchema
{
    public static string Tables(string blob, string bigint) => $"""
        CREATE TABLE web_clients(
            id TEXT PRIMARY KEY,
            secret_hash {blob},
            name TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            post_logout_redirect_uris TEXT NOT NULL,
            id_token_alg TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            revoked_at {bigint});
        CREATE TABLE web_consents(
            user_id TEXT NOT NULL REFERENCES users(id),
            client_id TEXT NOT NULL REFERENCES web_clients(id),
            scope TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            PRIMARY KEY (user_id, client_id));
        CREATE TABLE authorization_codes(
            code_hash {blob} PRIMARY KEY,
            client_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            scope TEXT NOT NULL,
            code_challenge TEXT,
            nonce TEXT,
            auth_time {bigint} NOT NULL,
            amr TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            code_expires_at {bigint} NOT NULL,
            used_at {bigint},
            issued_jti TEXT,
            issued_expires_at {bigint},
            expires_at {bigint} NOT NULL);
        CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);
        CREATE TABLE jose_keys(
            kid TEXT PRIMARY KEY,
            alg TEXT NOT NULL,
            public_jwk TEXT NOT NULL,
            encrypted_private_key {blob} NOT NULL,
            created_at {bigint} NOT NULL,
            retired_at {bigint});

        """;

    /// <summary>
    /// Refresh tokens of web clients (OpenID Connect Core §11, <c>offline_access</c>) share the CLI sessions' table, so
    /// they rotate and are revoked by the same code: a web family has no approval but the passkey sign-in it came from
    /// (device, auth_time, amr). SQLite cannot drop a NOT NULL, so its table is rebuilt (nothing references it).
    /// </summary>
    public const string SqliteWebRefreshTokens = """
        CREATE TABLE refresh_tokens_v2(
            token_hash BLOB PRIMARY KEY,
            family_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id),
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            approval_id TEXT REFERENCES approvals(id),
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            used_at INTEGER,
            revoked_at INTEGER,
            device_id TEXT,
            auth_time INTEGER,
            amr TEXT);
        INSERT INTO refresh_tokens_v2(token_hash, family_id, user_id, client_id, scope, approval_id, created_at, expires_at, used_at, revoked_at)
            SELECT token_hash, family_id, user_id, client_id, scope, approval_id, created_at, expires_at, used_at, revoked_at FROM refresh_tokens;
        DROP TABLE refresh_tokens;
        ALTER TABLE refresh_tokens_v2 RENAME TO refresh_tokens;
        CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
        CREATE INDEX refresh_tokens_web ON refresh_tokens(user_id, client_id) WHERE device_id IS NOT NULL;
        """;

    /// <summary>The same for PostgreSQL, which alters in place.</summary>
    public const string PostgresWebRefreshTokens = """
        ALTER TABLE refresh_tokens ALTER COLUMN approval_id DROP NOT NULL;
        ALTER TABLE refresh_tokens ADD COLUMN device_id TEXT;
        ALTER TABLE refresh_tokens ADD COLUMN auth_time BIGINT;
        ALTER TABLE refresh_tokens ADD COLUMN amr TEXT;
        CREATE INDEX refresh_tokens_web ON refresh_tokens(user_id, client_id) WHERE device_id IS NOT NULL;
        """;
}
