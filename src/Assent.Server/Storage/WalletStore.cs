using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// A user's payment wallet (docs/payments.md §4): an EVM secp256k1 key made by the server, stored only sealed under the
/// key-encryption key like the signing keys, never exported. <see cref="Address"/> is its EIP-55 checksummed address.
/// </summary>
internal sealed record WalletRecord(string UserId, string Address, byte[] SealedKey, long CreatedAt);

internal interface IWalletStore
{
    /// <summary>Stores the user's wallet unless they have one; false when one existed (nothing changed).</summary>
    Task<bool> TryCreateAsync(WalletRecord wallet, AuditEvent audit, CancellationToken ct);

    Task<WalletRecord?> FindAsync(string userId, CancellationToken ct);
}

internal sealed class WalletStore(Database db) : IWalletStore
{
    private static WalletRecord Read(DbDataReader r) => new(r.GetString(0), r.GetString(1), (byte[])r[2], r.GetInt64(3));

    public Task<bool> TryCreateAsync(WalletRecord w, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async s =>
            await s.ExecAsync("INSERT INTO wallets(user_id, address, sealed_key, created_at) VALUES($1, $2, $3, $4) ON CONFLICT(user_id) DO NOTHING",
                w.UserId, w.Address, w.SealedKey, w.CreatedAt) == 1 && await s.AuditedAsync(audit), ct);

    public Task<WalletRecord?> FindAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT user_id, address, sealed_key, created_at FROM wallets WHERE user_id = $1", Read, userId), ct);
}
