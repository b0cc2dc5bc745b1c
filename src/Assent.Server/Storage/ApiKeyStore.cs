using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// A backend's key for <c>/v1</c> (docs/challenges.md §1): <c>sk_…</c>, owned by a user, with scopes. Only the
/// SHA-256 of the key is stored; <see cref="LastUsedAt"/> is refreshed at most once a minute.
/// </summary>
internal sealed record ApiKeyRecord(string Id, byte[] KeyHash, string OwnerUserId, string Name, string Scopes, long CreatedAt, long? LastUsedAt,
    long? RevokedAt)
{
    public bool Active => RevokedAt is null;

    public bool HasScope(string scope) => Scopes.Split(' ').Contains(scope);
}

/// <summary>API keys (docs/storage.md §9).</summary>
internal interface IApiKeyStore
{
    Task CreateAsync(ApiKeyRecord key, AuditEvent audit, CancellationToken ct);

    /// <summary>
    /// Creates the key an approved request asked for, once: the request is redeemed in the same transaction, so a
    /// second fetch creates nothing. False when it was redeemed already.
    /// </summary>
    Task<bool> TryCreateFromApprovalAsync(string approvalId, long now, ApiKeyRecord key, AuditEvent audit, CancellationToken ct);

    Task<ApiKeyRecord?> FindByHashAsync(byte[] keyHash, CancellationToken ct);

    Task<ApiKeyRecord?> FindAsync(string id, CancellationToken ct);

    Task<IReadOnlyList<ApiKeyRecord>> ListAsync(string ownerUserId, CancellationToken ct);

    /// <summary>Revokes an active key of this owner; false when there is none.</summary>
    Task<bool> TryRevokeAsync(string id, string ownerUserId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>Notes a use, unless one was noted in the last <paramref name="granularity"/> ms (one write a minute, not one per call).</summary>
    Task TouchAsync(string id, long now, long granularity, CancellationToken ct);
}

internal sealed class ApiKeyStore(Database db) : IApiKeyStore
{
    private const string Columns = "id, key_hash, owner_user_id, name, scopes, created_at, last_used_at, revoked_at";

    private const string Insert = $"INSERT INTO api_keys({Columns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8)";

    private static ApiKeyRecord Read(DbDataReader r) =>
        new(r.GetString(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), Rows.NullableLong(r, 6), Rows.NullableLong(r, 7));

    private static object?[] Args(ApiKeyRecord k) => [k.Id, k.KeyHash, k.OwnerUserId, k.Name, k.Scopes, k.CreatedAt, k.LastUsedAt, k.RevokedAt];

    public Task CreateAsync(ApiKeyRecord key, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync(Insert, Args(key));
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<bool> TryCreateFromApprovalAsync(string approvalId, long now, ApiKeyRecord key, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.ExecAsync(ApprovalSql.Redeem, approvalId, now) != 1)
            {
                return false;
            }
            await w.ExecAsync(Insert, Args(key));
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<ApiKeyRecord?> FindByHashAsync(byte[] keyHash, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {Columns} FROM api_keys WHERE key_hash = $1", Read, keyHash), ct);

    public Task<ApiKeyRecord?> FindAsync(string id, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {Columns} FROM api_keys WHERE id = $1", Read, id), ct);

    public Task<IReadOnlyList<ApiKeyRecord>> ListAsync(string ownerUserId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {Columns} FROM api_keys WHERE owner_user_id = $1 ORDER BY created_at, id", Read, ownerUserId), ct);

    public Task<bool> TryRevokeAsync(string id, string ownerUserId, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
            await w.ExecAsync("UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND owner_user_id = $2 AND revoked_at IS NULL", id, ownerUserId, now) == 1 &&
            await w.AuditedAsync(audit), ct);

    public Task TouchAsync(string id, long now, long granularity, CancellationToken ct) =>
        db.StatementAsync("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)", [id, now, now - granularity],
            static (_, _) => Task.FromResult(true), ct);
}
