namespace Assent.Server.Storage;

/// <summary>The append-only audit chain (docs/concepts.md §8). Transitions append their own events in their transactions; this is the rest.</summary>
internal interface IAuditStore
{
    /// <summary>Records an event that changes no other state (e.g. a refused, suspicious assertion).</summary>
    Task AppendAsync(AuditEvent audit, CancellationToken ct);

    /// <summary>Entries after <paramref name="afterSeq"/>, all of them or one user's.</summary>
    Task<IReadOnlyList<AuditRow>> ReadAsync(long afterSeq, int limit, string? userId, CancellationToken ct);

    /// <summary>The chain's size and head hash (32 zero bytes when empty).</summary>
    Task<(long Size, byte[] Head)> ReadHeadAsync(CancellationToken ct);
}

internal sealed class AuditStore(Database db) : IAuditStore
{
    public Task AppendAsync(AuditEvent audit, CancellationToken ct) => db.WriteAsync(w => w.AuditedAsync(audit), ct);

    public async Task<IReadOnlyList<AuditRow>> ReadAsync(long afterSeq, int limit, string? userId, CancellationToken ct)
    {
        // Read your writes: whatever committed before this call is in the chain before it is read.
        await db.SettleAuditAsync(ct);
        return await db.ReadAsync(s => userId is null
            ? s.AllAsync("SELECT seq, entry, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", ReadRow, afterSeq, limit)
            : s.AllAsync("SELECT seq, entry, hash FROM audit WHERE seq > $1 AND user_id = $3 ORDER BY seq LIMIT $2", ReadRow, afterSeq, limit, userId), ct);
    }

    public async Task<(long Size, byte[] Head)> ReadHeadAsync(CancellationToken ct)
    {
        await db.SettleAuditAsync(ct);
        var head = await db.ReadAsync(s => s.OneAsync(AuditChain.HeadSql, AuditChain.ReadHead), ct);
        return head is null ? (0L, AuditChain.Genesis) : (head.Seq, head.Hash);
    }

    private static AuditRow ReadRow(System.Data.Common.DbDataReader r) => new(r.GetInt64(0), (byte[])r[1], (byte[])r[2]);
}
