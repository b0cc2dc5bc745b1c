namespace Assent.Server.Storage;

/// <summary>The issuer's signing keys, sealed under the key-encryption key.</summary>
internal interface IKeyStore
{
    Task<IReadOnlyList<SigningKeyRecord>> ListAsync(CancellationToken ct);

    /// <summary>Adds a key as current and retires the previous current key (sets its RetiredAt).</summary>
    Task AddAsync(SigningKeyRecord key, long now, AuditEvent? audit, CancellationToken ct);

    /// <summary>
    /// Adds the deployment's first key unless a first key was ever added: of nodes starting together on an empty
    /// database one wins, and the others load its key. False when another did.
    /// </summary>
    Task<bool> TryAddFirstAsync(SigningKeyRecord key, AuditEvent audit, CancellationToken ct);
}

/// <summary>Small named values the server keeps for itself (e.g. the key-encryption key check).</summary>
internal interface IMetaStore
{
    Task<byte[]?> GetAsync(string key, CancellationToken ct);

    /// <summary>Sets a value only if the key is absent; returns the value that is stored afterwards.</summary>
    Task<byte[]> GetOrAddAsync(string key, byte[] value, CancellationToken ct);

    /// <summary>Sets a value, replacing any; nothing is written when it is already that value.</summary>
    Task SetAsync(string key, byte[] value, CancellationToken ct);

    /// <summary>Commits a write that touches nothing else: proof that the database accepts writes now (readiness).</summary>
    Task ProbeWriteAsync(long now, CancellationToken ct);
}

/// <summary>The names in <c>meta</c> (docs/storage.md §3).</summary>
internal static class MetaKeys
{
    /// <summary>The issuer the server last started with: offline commands print links for it (docs/cli.md §6).</summary>
    public const string Issuer = "issuer";
}

internal sealed class KeyStore(Database db) : IKeyStore
{
    public Task<IReadOnlyList<SigningKeyRecord>> ListAsync(CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync("SELECT kid, public_key, encrypted_seed, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
            r => new SigningKeyRecord(r.GetString(0), (byte[])r[1], (byte[])r[2], r.GetInt64(3), Rows.NullableLong(r, 4))), ct);

    public Task AddAsync(SigningKeyRecord key, long now, AuditEvent? audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await TakeRotationTurnAsync(w);
            await w.ExecAsync("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL", now);
            await w.ExecAsync("INSERT INTO signing_keys(kid, public_key, encrypted_seed, created_at, retired_at) VALUES($1, $2, $3, $4, NULL)",
                key.Kid, key.PublicKey, key.EncryptedSeed, key.CreatedAt);
            return audit is null || await w.AuditedAsync(audit);
        }, ct);

    public Task<bool> TryAddFirstAsync(SigningKeyRecord key, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // The claim row's primary key settles the race on both engines: on PostgreSQL a second insert waits for the
            // first transaction and then does nothing; on SQLite writes take turns anyway.
            if (await w.ExecAsync("INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT (key) DO NOTHING", FirstKeyClaim, System.Text.Encoding.ASCII.GetBytes(key.Kid)) == 0)
            {
                return false;
            }
            await w.ExecAsync("INSERT INTO signing_keys(kid, public_key, encrypted_seed, created_at, retired_at) VALUES($1, $2, $3, $4, NULL)",
                key.Kid, key.PublicKey, key.EncryptedSeed, key.CreatedAt);
            return await w.AuditedAsync(audit);
        }, ct);

    /// <summary>The <c>meta</c> row the first key's creator claims (docs/storage.md §3).</summary>
    internal const string FirstKeyClaim = "first_signing_key";

    /// <summary>
    /// Rotations take turns. Under PostgreSQL's read committed, a second rotation's retiring UPDATE would see only the keys
    /// committed when it started and leave the first rotation's new key current beside its own. Writing one <c>meta</c> row
    /// first holds its lock until commit, and the statements after it see what the earlier rotation committed. SQLite's
    /// writes take turns anyway.
    /// </summary>
    internal static ValueTask<int> TakeRotationTurnAsync(IWriteSession w) =>
        w.ExecAsync("INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", RotationTurn, Array.Empty<byte>());

    private const string RotationTurn = "key_rotation_turn";
}

internal sealed class MetaStore(Database db) : IMetaStore
{
    public Task<byte[]?> GetAsync(string key, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT value FROM meta WHERE key = $1", r => (byte[])r[0], key), ct);

    public Task<byte[]> GetOrAddAsync(string key, byte[] value, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT (key) DO NOTHING", key, value);
            return (await w.OneAsync("SELECT value FROM meta WHERE key = $1", r => (byte[])r[0], key))!;
        }, ct);

    public Task SetAsync(string key, byte[] value, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE meta.value <> excluded.value",
                key, value);
            return true;
        }, ct);

    public Task ProbeWriteAsync(long now, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync("INSERT INTO meta(key, value) VALUES('write_probe', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            BitConverter.GetBytes(now)), ct);
}
