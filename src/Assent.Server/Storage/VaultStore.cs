using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// A vault recipient key (docs/vault.md §1): an X25519 public key of one of the user's devices, or their recovery key
/// (<see cref="DeviceId"/> "recovery"), with the proof that bound it to the device <see cref="SignerDeviceId"/>: an Ed25519
/// signature, or a passkey assertion (<see cref="AuthenticatorData"/>, <see cref="ClientDataJson"/>).
/// </summary>
internal sealed record VaultKeyRecord(string Kid, string UserId, string DeviceId, string Kind, byte[] PublicKey, string SignerDeviceId, byte[] Signature,
    byte[]? AuthenticatorData, byte[]? ClientDataJson, long CreatedAt);

/// <summary>An item's row: its latest version, that version's ciphertext size, and when the item was created and last written.</summary>
internal sealed record VaultItemRecord(string Id, string UserId, string Name, uint Version, long Size, long CreatedAt, long UpdatedAt);

internal sealed record VaultVersionRecord(uint Version, long Size, string CreatedBy, long CreatedAt);

/// <summary>One sealed version with the item key wrapped to one recipient key.</summary>
internal sealed record VaultSealedRecord(string ItemId, string Name, uint Version, byte[] Ciphertext, string Kid, byte[] Wrapped);

internal sealed record VaultWrapRecord(string ItemId, uint Version, byte[] Wrapped);

/// <summary>What an approved release stored with its decision (docs/vault.md §4), joined with the sealed version it releases.</summary>
internal sealed record VaultReleaseRecord(string ApprovalId, string ItemId, uint Version, byte[] Wrapped, string? Name = null, byte[]? Ciphertext = null);

/// <summary>A redeemed release request (docs/vault.md §4): the row as redeemed, and the key its approval stored (null when none is left).</summary>
internal sealed record VaultRedeemed(DecidedApproval Approval, VaultReleaseRecord? Release);

internal enum VaultKeyAdded
{
    Added,

    /// <summary>The same key was registered before by the same device: nothing changes.</summary>
    AlreadyRegistered,

    /// <summary>The key id is registered for this user, by another device or as another kind.</summary>
    Conflict,
    TooMany,
    RecoveryExists,
}

/// <param name="RewrapNeeded">The user has items and, before this key, other recipient keys: another device must re-wrap to it.</param>
internal sealed record VaultKeyOutcome(VaultKeyAdded Status, bool RewrapNeeded = false);

internal enum VaultPutStatus
{
    Created,
    Updated,

    /// <summary>The version is not the latest + 1 (or a new name's is not 1).</summary>
    VersionConflict,

    /// <summary>A new name with an id already used, or an existing name with another id.</summary>
    IdConflict,

    /// <summary>The wraps do not cover exactly the user's current recipient keys.</summary>
    KeysChanged,
}

internal sealed record VaultPutOutcome(VaultPutStatus Status, VaultItemRecord? Item = null);

/// <summary>
/// The end-to-end encrypted vault (docs/vault.md, docs/storage.md §3): recipient keys, items, their sealed versions, the item
/// keys wrapped to each recipient, and released keys waiting for their token. Bytes only: nothing here can open an item.
/// </summary>
internal interface IVaultStore
{
    Task<IReadOnlyList<VaultKeyRecord>> ListKeysAsync(string userId, CancellationToken ct);

    /// <summary>
    /// Registers a key: the same key of the same device again changes nothing; at most <paramref name="maxPerDevice"/> keys per
    /// device and one recovery key per user. Audited in the same transaction.
    /// </summary>
    Task<VaultKeyOutcome> AddKeyAsync(VaultKeyRecord key, int maxPerDevice, AuditEvent audit, CancellationToken ct);

    /// <summary>Removes one of the user's keys and every item key wrapped to it; false when the user has no such key.</summary>
    Task<bool> RemoveKeyAsync(string userId, string kid, AuditEvent audit, CancellationToken ct);

    /// <summary>The user's items, ordered by name: one indexed read.</summary>
    Task<IReadOnlyList<VaultItemRecord>> ListItemsAsync(string userId, CancellationToken ct);

    /// <summary>
    /// The user's items as the JSON array <c>GET …/vault/items</c> answers with (docs/vault.md §6:
    /// <c>[{id, name, version, size, created_at, updated_at}]</c> by name), UTF-8, built by the database in the same read.
    /// </summary>
    Task<byte[]> ListItemsJsonAsync(string userId, CancellationToken ct);

    Task<VaultItemRecord?> FindItemAsync(string userId, string name, CancellationToken ct);

    /// <summary>How many items the user has (for the per-user cap).</summary>
    Task<long> CountItemsAsync(string userId, CancellationToken ct);

    /// <summary>The item's versions, newest first.</summary>
    Task<IReadOnlyList<VaultVersionRecord>> ListVersionsAsync(string itemId, CancellationToken ct);

    /// <summary>
    /// Stores a new version with one wrap per current recipient key of the user, all in one transaction: the item row
    /// moves from version − 1 to version in a guarded update, so two writers of the same version cannot both succeed.
    /// </summary>
    Task<VaultPutOutcome> PutAsync(string userId, string name, string itemId, uint version, byte[] ciphertext, IReadOnlyDictionary<string, byte[]> wraps,
        string createdBy, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>
    /// A sealed version of the user's item with its key wrapped to <paramref name="kid"/>, which must be a key of the device
    /// <paramref name="deviceId"/> or the user's recovery key (docs/vault.md §6); null when any of them is missing. One read.
    /// </summary>
    Task<VaultSealedRecord?> FindSealedAsync(string userId, string name, uint version, string kid, string deviceId, CancellationToken ct);

    /// <summary>Removes the item with all its versions and wraps; false when the user has no such item.</summary>
    Task<bool> RemoveItemAsync(string userId, string name, AuditEvent audit, CancellationToken ct);

    /// <summary>The user's wraps for <paramref name="kid"/> after the cursor (item id, version), in that order.</summary>
    Task<IReadOnlyList<VaultWrapRecord>> ListWrapsAsync(string userId, string kid, string? afterItem, uint afterVersion, int limit, CancellationToken ct);

    /// <summary>
    /// Stores wraps for the user's key <paramref name="kid"/> (a re-upload replaces); false, and nothing stored, unless every
    /// (item, version) is the user's.
    /// </summary>
    Task<bool> AddWrapsAsync(string userId, string kid, IReadOnlyList<VaultWrapRecord> wraps, AuditEvent audit, CancellationToken ct);

    /// <summary>
    /// docs/vault.md §4: redeems an approved <c>vault_release</c> request (approved → redeemed, exactly once, as
    /// <see cref="IApprovalStore.TryRedeemAsync"/>, audited with <paramref name="redeemed"/>) and, in the same transaction, takes
    /// (reads and deletes) the key its approval stored, with the sealed version it opens, audited with <paramref name="released"/>.
    /// One commit for both: the grant and the key it hands over are settled together. Null, and nothing changed, when the request is
    /// not approved (or was redeemed already); <see cref="VaultRedeemed.Release"/> null when no key is stored for it.
    /// </summary>
    Task<VaultRedeemed?> RedeemReleaseAsync(string approvalId, long now, AuditEvent redeemed, AuditEvent released, CancellationToken ct);
}

/// <summary>The vault tables (migration 16), written once for both engines.</summary>
internal static class VaultSchema
{
    public static string Tables(string blob, string bigint) => $"""
        CREATE TABLE vault_keys(
            user_id TEXT NOT NULL REFERENCES users(id),
            kid TEXT NOT NULL,
            device_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            public_key {blob} NOT NULL,
            signer_device_id TEXT NOT NULL,
            signature {blob} NOT NULL,
            authenticator_data {blob},
            client_data_json {blob},
            created_at {bigint} NOT NULL,
            PRIMARY KEY(user_id, kid));
        CREATE UNIQUE INDEX vault_keys_recovery ON vault_keys(user_id) WHERE kind = 'recovery';
        CREATE INDEX vault_keys_device ON vault_keys(device_id);
        CREATE TABLE vault_items(
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            name TEXT NOT NULL,
            version {bigint} NOT NULL,
            size {bigint} NOT NULL,
            created_at {bigint} NOT NULL,
            updated_at {bigint} NOT NULL,
            UNIQUE(user_id, name));
        CREATE TABLE vault_versions(
            item_id TEXT NOT NULL REFERENCES vault_items(id),
            version {bigint} NOT NULL,
            ciphertext {blob} NOT NULL,
            created_by TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            PRIMARY KEY(item_id, version));
        CREATE TABLE vault_wraps(
            user_id TEXT NOT NULL,
            kid TEXT NOT NULL,
            item_id TEXT NOT NULL,
            version {bigint} NOT NULL,
            wrapped {blob} NOT NULL,
            PRIMARY KEY(user_id, kid, item_id, version));
        CREATE INDEX vault_wraps_item ON vault_wraps(item_id, version);
        CREATE TABLE vault_releases(
            approval_id TEXT PRIMARY KEY,
            item_id TEXT NOT NULL,
            version {bigint} NOT NULL,
            wrapped {blob} NOT NULL,
            created_at {bigint} NOT NULL);
        """;
}

/// <summary>
/// Migration 17: each version's size in a column of its own, and the ciphertext as the last column. SQLite stores a row's columns
/// in order, and a blob of a MiB spills over some 256 overflow pages: a column after it (created_by, created_at) is read by walking
/// that whole chain, so listing an item's versions read every version's ciphertext (a put lists them first). With the blob last
/// and the size beside the other metadata, a listing reads none of it. SQLite cannot reorder columns: the table is rebuilt.
/// PostgreSQL keeps large values out of line anyway (TOAST); it gets the column, and ciphertext is stored uncompressed, since
/// AES-GCM output does not compress.
/// </summary>
internal static class VaultVersionSizes
{
    public const string Sqlite = """
        CREATE TABLE vault_versions_18(
            item_id TEXT NOT NULL REFERENCES vault_items(id),
            version INTEGER NOT NULL,
            size INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            ciphertext BLOB NOT NULL,
            PRIMARY KEY(item_id, version));
        INSERT INTO vault_versions_18(item_id, version, size, created_by, created_at, ciphertext)
            SELECT item_id, version, length(ciphertext), created_by, created_at, ciphertext FROM vault_versions;
        DROP TABLE vault_versions;
        ALTER TABLE vault_versions_18 RENAME TO vault_versions;
        """;

    public const string Postgres = """
        ALTER TABLE vault_versions ADD COLUMN size BIGINT;
        UPDATE vault_versions SET size = length(ciphertext);
        ALTER TABLE vault_versions ALTER COLUMN size SET NOT NULL;
        ALTER TABLE vault_versions ALTER COLUMN ciphertext SET STORAGE EXTERNAL;
        """;
}

/// <summary>Vault statements other stores run inside their own transactions.</summary>
internal static class VaultSql
{
    /// <summary>
    /// docs/vault.md §5.2: a revoked device's keys and every item key wrapped to them go in the revocation's own transaction.
    /// $1 device id, $2 user id.
    /// </summary>
    public static async ValueTask RemoveDeviceKeysAsync(ISqlSession w, string deviceId, string userId)
    {
        await w.ExecAsync("DELETE FROM vault_wraps WHERE user_id = $2 AND kid IN (SELECT kid FROM vault_keys WHERE user_id = $2 AND device_id = $1)", deviceId, userId);
        await w.ExecAsync("DELETE FROM vault_keys WHERE user_id = $2 AND device_id = $1", deviceId, userId);
    }

    /// <summary>docs/vault.md §4: the released key is stored with the approving decision (a quorum's first carrying one wins).</summary>
    public static ValueTask<int> InsertReleaseAsync(ISqlSession w, VaultReleaseRecord r, long now) =>
        w.ExecAsync("INSERT INTO vault_releases(approval_id, item_id, version, wrapped, created_at) VALUES($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            r.ApprovalId, r.ItemId, (long)r.Version, r.Wrapped, now);
}

internal sealed class VaultStore(Database db) : IVaultStore
{
    private const string KeyColumns = "kid, user_id, device_id, kind, public_key, signer_device_id, signature, authenticator_data, client_data_json, created_at";
    private const string ItemColumns = "id, user_id, name, version, size, created_at, updated_at";

    private static VaultKeyRecord ReadKey(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), (byte[])r[4],
        r.GetString(5), (byte[])r[6], r.IsDBNull(7) ? null : (byte[])r[7], r.IsDBNull(8) ? null : (byte[])r[8], r.GetInt64(9));

    private static VaultItemRecord ReadItem(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), (uint)r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6));

    public Task<IReadOnlyList<VaultKeyRecord>> ListKeysAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {KeyColumns} FROM vault_keys WHERE user_id = $1 ORDER BY created_at, kid", ReadKey, userId), ct);

    public Task<VaultKeyOutcome> AddKeyAsync(VaultKeyRecord k, int maxPerDevice, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.OneAsync($"SELECT {KeyColumns} FROM vault_keys WHERE user_id = $1 AND kid = $2{db.ForUpdate}", ReadKey, k.UserId, k.Kid) is { } existing)
            {
                return new VaultKeyOutcome(existing.DeviceId == k.DeviceId && existing.Kind == k.Kind ? VaultKeyAdded.AlreadyRegistered : VaultKeyAdded.Conflict);
            }
            if (k.Kind == "recovery" && await w.AnyAsync("SELECT 1 FROM vault_keys WHERE user_id = $1 AND kind = 'recovery'", k.UserId))
            {
                return new VaultKeyOutcome(VaultKeyAdded.RecoveryExists);
            }
            var perDevice = await w.AllAsync("SELECT kid FROM vault_keys WHERE user_id = $1 AND device_id = $2", r => r.GetString(0), k.UserId, k.DeviceId);
            if (perDevice.Count >= maxPerDevice)
            {
                return new VaultKeyOutcome(VaultKeyAdded.TooMany);
            }
            var rewrap = await w.AnyAsync("SELECT 1 FROM vault_keys WHERE user_id = $1", k.UserId) &&
                         await w.AnyAsync("SELECT 1 FROM vault_items WHERE user_id = $1", k.UserId);
            // ON CONFLICT: a racing registration of the same key (or a second recovery key) on another node inserts nothing.
            if (await w.ExecAsync($"INSERT INTO vault_keys({KeyColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                    k.Kid, k.UserId, k.DeviceId, k.Kind, k.PublicKey, k.SignerDeviceId, k.Signature, k.AuthenticatorData, k.ClientDataJson, k.CreatedAt) != 1)
            {
                return new VaultKeyOutcome(VaultKeyAdded.Conflict);
            }
            await w.AuditAsync(audit);
            return new VaultKeyOutcome(VaultKeyAdded.Added, rewrap);
        }, ct);

    public Task<bool> RemoveKeyAsync(string userId, string kid, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.ExecAsync("DELETE FROM vault_keys WHERE user_id = $1 AND kid = $2", userId, kid) != 1)
            {
                return false;
            }
            await w.ExecAsync("DELETE FROM vault_wraps WHERE user_id = $1 AND kid = $2", userId, kid);
            return await w.AuditedAsync(audit);
        }, ct);

    // Up to 50,000 rows: the user id is not read back for each of them.
    public Task<IReadOnlyList<VaultItemRecord>> ListItemsAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(ListItemsSql,
            r => new VaultItemRecord(r.GetString(0), userId, r.GetString(1), (uint)r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5)), userId), ct);

    /// <summary>
    /// Up to 50,000 items: the database writes their JSON (SQLite's JSON1, PostgreSQL's json functions) in C, a few hundred
    /// nanoseconds an item, where reading each row's six columns into .NET and serializing them took microseconds. Names are
    /// of <c>[A-Za-z0-9._@+/-]</c> and ids base64url, so no engine has anything to escape; the keys stay in this order (json, not jsonb).
    /// </summary>
    public Task<byte[]> ListItemsJsonAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(async s => (await s.AllAsync(db.Engine == "postgres" ? ListItemsJsonPostgres : ListItemsJsonSqlite, r => (byte[])r[0], userId))[0], ct);

    // The rows come in name order along the (user_id, name) index; SQLite keeps a subquery's ORDER BY under an order-sensitive
    // aggregate (it neither flattens the subquery nor drops the ORDER BY then), which spares the sort an aggregate ORDER BY does.
    internal const string ListItemsJsonSqlite =
        "SELECT CAST(json_group_array(json_object('id', id, 'name', name, 'version', version, 'size', size, 'created_at', created_at, 'updated_at', updated_at)) " +
        "AS BLOB) FROM (SELECT id, name, version, size, created_at, updated_at FROM vault_items WHERE user_id = $1 ORDER BY name)";

    private const string ListItemsJsonPostgres =
        "SELECT convert_to(COALESCE(json_agg(json_build_object('id', id, 'name', name, 'version', version, 'size', size, 'created_at', created_at, " +
        "'updated_at', updated_at) ORDER BY name), '[]')::text, 'UTF8') FROM vault_items WHERE user_id = $1";

    /// <summary>One read along the (user_id, name) index, in name order (docs/storage.md §3).</summary>
    internal const string ListItemsSql = "SELECT id, name, version, size, created_at, updated_at FROM vault_items WHERE user_id = $1 ORDER BY name";

    public Task<VaultItemRecord?> FindItemAsync(string userId, string name, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {ItemColumns} FROM vault_items WHERE user_id = $1 AND name = $2", ReadItem, userId, name), ct);

    public async Task<long> CountItemsAsync(string userId, CancellationToken ct) =>
        (await db.ReadAsync(s => s.AllAsync("SELECT count(*) FROM vault_items WHERE user_id = $1", r => r.GetInt64(0), userId), ct))[0];

    public Task<IReadOnlyList<VaultVersionRecord>> ListVersionsAsync(string itemId, CancellationToken ct) =>
        // The size column, not length(ciphertext): nothing of a version's ciphertext is read to list it (migration 17).
        db.ReadAsync(s => s.AllAsync("SELECT version, size, created_by, created_at FROM vault_versions WHERE item_id = $1 ORDER BY version DESC",
            r => new VaultVersionRecord((uint)r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetInt64(3)), itemId), ct);

    public Task<VaultPutOutcome> PutAsync(string userId, string name, string itemId, uint version, byte[] ciphertext, IReadOnlyDictionary<string, byte[]> wraps,
        string createdBy, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // Reading the keys under the lock keeps a key registered meanwhile from being left without a wrap (PostgreSQL).
            var kids = await w.AllAsync($"SELECT kid FROM vault_keys WHERE user_id = $1 ORDER BY kid{db.ForUpdate}", r => r.GetString(0), userId);
            if (kids.Count == 0 || kids.Count != wraps.Count || !kids.All(wraps.ContainsKey))
            {
                return new VaultPutOutcome(VaultPutStatus.KeysChanged);
            }
            var current = await w.OneAsync($"SELECT {ItemColumns} FROM vault_items WHERE user_id = $1 AND name = $2", ReadItem, userId, name);
            VaultItemRecord item;
            if (current is null)
            {
                if (version != 1)
                {
                    return new VaultPutOutcome(VaultPutStatus.VersionConflict);
                }
                // A name or id taken meanwhile (or an id another item uses) inserts nothing.
                if (await w.ExecAsync($"INSERT INTO vault_items({ItemColumns}) VALUES($1, $2, $3, 1, $4, $5, $5) ON CONFLICT DO NOTHING",
                        itemId, userId, name, (long)ciphertext.Length, now) != 1)
                {
                    return new VaultPutOutcome(await w.AnyAsync("SELECT 1 FROM vault_items WHERE id = $1", itemId) ? VaultPutStatus.IdConflict : VaultPutStatus.VersionConflict);
                }
                item = new VaultItemRecord(itemId, userId, name, 1, ciphertext.Length, now, now);
            }
            else
            {
                if (current.Id != itemId)
                {
                    return new VaultPutOutcome(VaultPutStatus.IdConflict);
                }
                // The guarded update: of two writers of the same version, the second matches no row.
                if (version != current.Version + 1 ||
                    await w.ExecAsync("UPDATE vault_items SET version = $2, size = $3, updated_at = $4 WHERE id = $1 AND version = $5",
                        itemId, (long)version, (long)ciphertext.Length, now, (long)current.Version) != 1)
                {
                    return new VaultPutOutcome(VaultPutStatus.VersionConflict);
                }
                item = current with { Version = version, Size = ciphertext.Length, UpdatedAt = now };
            }
            await w.ExecAsync("INSERT INTO vault_versions(item_id, version, size, created_by, created_at, ciphertext) VALUES($1, $2, $3, $4, $5, $6)",
                itemId, (long)version, (long)ciphertext.Length, createdBy, now, ciphertext);
            foreach (var (kid, wrapped) in wraps)
            {
                await w.ExecAsync("INSERT INTO vault_wraps(user_id, kid, item_id, version, wrapped) VALUES($1, $2, $3, $4, $5)", userId, kid, itemId, (long)version, wrapped);
            }
            await w.AuditAsync(audit);
            return new VaultPutOutcome(current is null ? VaultPutStatus.Created : VaultPutStatus.Updated, item);
        }, ct);

    public Task<VaultSealedRecord?> FindSealedAsync(string userId, string name, uint version, string kid, string deviceId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync(
            "SELECT i.id, i.name, v.version, v.ciphertext, w.kid, w.wrapped FROM vault_items i " +
            "JOIN vault_keys k ON k.user_id = i.user_id AND k.kid = $4 AND (k.device_id = $5 OR k.kind = 'recovery') " +
            "JOIN vault_versions v ON v.item_id = i.id AND v.version = $3 " +
            "JOIN vault_wraps w ON w.user_id = i.user_id AND w.kid = $4 AND w.item_id = i.id AND w.version = v.version " +
            "WHERE i.user_id = $1 AND i.name = $2",
            r => new VaultSealedRecord(r.GetString(0), r.GetString(1), (uint)r.GetInt64(2), (byte[])r[3], r.GetString(4), (byte[])r[5]),
            userId, name, (long)version, kid, deviceId), ct);

    public Task<bool> RemoveItemAsync(string userId, string name, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.OneAsync("SELECT id FROM vault_items WHERE user_id = $1 AND name = $2", r => r.GetString(0), userId, name) is not { } id)
            {
                return false;
            }
            await w.ExecAsync("DELETE FROM vault_wraps WHERE item_id = $1", id);
            await w.ExecAsync("DELETE FROM vault_releases WHERE item_id = $1", id);
            await w.ExecAsync("DELETE FROM vault_versions WHERE item_id = $1", id);
            await w.ExecAsync("DELETE FROM vault_items WHERE id = $1", id);
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<IReadOnlyList<VaultWrapRecord>> ListWrapsAsync(string userId, string kid, string? afterItem, uint afterVersion, int limit, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(
            "SELECT item_id, version, wrapped FROM vault_wraps WHERE user_id = $1 AND kid = $2 AND (item_id > $3 OR (item_id = $3 AND version > $4)) " +
            "ORDER BY item_id, version LIMIT $5",
            r => new VaultWrapRecord(r.GetString(0), (uint)r.GetInt64(1), (byte[])r[2]), userId, kid, afterItem ?? "", (long)afterVersion, limit), ct);

    public Task<bool> AddWrapsAsync(string userId, string kid, IReadOnlyList<VaultWrapRecord> wraps, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (!await w.AnyAsync($"SELECT 1 FROM vault_keys WHERE user_id = $1 AND kid = $2{db.ForUpdate}", userId, kid))
            {
                return false;
            }
            // Every (item, version) is checked before anything is written, so a batch naming one that is not the user's stores nothing.
            foreach (var wrap in wraps)
            {
                if (!await w.AnyAsync("SELECT 1 FROM vault_versions v JOIN vault_items i ON i.id = v.item_id WHERE i.user_id = $1 AND v.item_id = $2 AND v.version = $3",
                        userId, wrap.ItemId, (long)wrap.Version))
                {
                    return false;
                }
            }
            foreach (var wrap in wraps)
            {
                await w.ExecAsync("INSERT INTO vault_wraps(user_id, kid, item_id, version, wrapped) VALUES($1, $2, $3, $4, $5) " +
                                  "ON CONFLICT(user_id, kid, item_id, version) DO UPDATE SET wrapped = excluded.wrapped", userId, kid, wrap.ItemId, (long)wrap.Version, wrap.Wrapped);
            }
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<VaultRedeemed?> RedeemReleaseAsync(string approvalId, long now, AuditEvent redeemed, AuditEvent released, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // The statements of IApprovalStore.TryRedeemAsync (ApprovalSql), then the take: one transaction, one commit.
            if (await w.OneAsync($"{ApprovalSql.Redeem} RETURNING {ApprovalSql.Columns}", ApprovalSql.Read, approvalId, now) is not { } row)
            {
                return null;
            }
            var decisions = await w.AllAsync(ApprovalSql.ApprovingDecisions, ApprovalSql.ReadDecision, approvalId);
            await w.AuditAsync(redeemed);
            return new VaultRedeemed(new DecidedApproval(row, decisions), await TakeReleaseAsync(w, approvalId, released));
        }, ct);

    private static async ValueTask<VaultReleaseRecord?> TakeReleaseAsync(IWriteSession w, string approvalId, AuditEvent audit)
    {
        if (await w.OneAsync("DELETE FROM vault_releases WHERE approval_id = $1 RETURNING item_id, version, wrapped",
                r => new VaultReleaseRecord(approvalId, r.GetString(0), (uint)r.GetInt64(1), (byte[])r[2]), approvalId) is not { } taken)
        {
            return null;
        }
        await w.AuditAsync(audit);
        return await w.OneAsync("SELECT i.name, v.ciphertext FROM vault_versions v JOIN vault_items i ON i.id = v.item_id WHERE v.item_id = $1 AND v.version = $2",
            r => taken with { Name = r.GetString(0), Ciphertext = (byte[])r[1] }, taken.ItemId, (long)taken.Version);
    }
}
