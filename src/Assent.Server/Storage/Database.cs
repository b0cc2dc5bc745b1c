using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>Statements run inside a read or a write, whatever the engine. SQL uses <c>$1 … $n</c> placeholders, which both engines accept.</summary>
internal interface ISqlSession
{
    ValueTask<int> ExecAsync(string sql, params object?[] args);

    ValueTask<T?> OneAsync<T>(string sql, Func<DbDataReader, T> read, params object?[] args) where T : class;

    ValueTask<IReadOnlyList<T>> AllAsync<T>(string sql, Func<DbDataReader, T> read, params object?[] args);

    /// <summary>Whether <paramref name="sql"/> returns a row.</summary>
    ValueTask<bool> AnyAsync(string sql, params object?[] args);
}

/// <summary>A write transaction: every transition appends its audit event here, so both exist together or not at all.</summary>
internal interface IWriteSession : ISqlSession
{
    /// <summary>SQLite chains the entry at once; PostgreSQL queues it for the sealer, which gives it its place.</summary>
    ValueTask AuditAsync(AuditEvent e);

    /// <summary>Tells the other nodes (their waiters and device streams) about a transition once it commits; nothing on a single-process engine.</summary>
    ValueTask NotifyAsync(ApprovalNotice notice);

    /// <summary>
    /// False only when no event of this transaction can have a delivery (docs/storage.md §9): no live webhook endpoint and
    /// no agent notified by ping or push. The outbox's fan-out is then skipped; true whenever the engine cannot tell.
    /// </summary>
    ValueTask<bool> ListeningAsync();
}

internal static class SessionExtensions
{
    /// <summary>Appends the audit event and answers true: the tail of a transition that happened.</summary>
    public static async ValueTask<bool> AuditedAsync(this IWriteSession w, AuditEvent e)
    {
        await w.AuditAsync(e);
        return true;
    }
}

/// <summary>Column readers shared by the stores (both engines' readers are <see cref="DbDataReader"/>s).</summary>
internal static class Rows
{
    public static long? NullableLong(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    public static string? NullableString(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
}

/// <summary>
/// What other nodes hear of a request: it was created, or it settled (approved, denied, expired, cancelled). A shared
/// request's settlement also names its other approvers (<see cref="AlsoTo"/>), so their streams on every node hear it
/// (docs/policies.md §3).
/// </summary>
internal sealed record ApprovalNotice(string Kind, string ApprovalId, string UserId, string State, ApprovalRecord? Approval = null,
    IReadOnlyList<string>? AlsoTo = null)
{
    public const string CreatedKind = "created";
    public const string SettledKind = "settled";

    public static ApprovalNotice Created(ApprovalRecord a) => new(CreatedKind, a.Id, a.UserId, StateNames.Pending, a);

    public static ApprovalNotice Settled(string approvalId, string userId, ApprovalState state, IReadOnlyList<string>? alsoTo = null) =>
        new(SettledKind, approvalId, userId, StateNames.Of(state), AlsoTo: alsoTo is { Count: > 0 } ? alsoTo : null);

    /// <summary>Whether a request is decided by more than its own user: a quorum, or a policy's approvers.</summary>
    public static bool IsShared(ApprovalRecord a) => a.EligibleUsers is { Count: > 0 } || a.Policy is not null || a.Approvers > 1;
}

/// <summary>
/// One storage engine: how statements run, how writes are grouped into commits, and the few SQL words in
/// which the engines differ. The aggregate stores are written once against it (docs/storage.md §2).
/// </summary>
internal abstract class Database : IAsyncDisposable
{
    /// <summary>"sqlite" or "postgres", as /healthz reports it.</summary>
    public abstract string Engine { get; }

    /// <summary>Appended to a SELECT that must lock its rows until commit; empty where a single writer needs no lock.</summary>
    public abstract string ForUpdate { get; }

    /// <summary>Like <see cref="ForUpdate"/>, but rows another transaction holds are skipped rather than waited for.</summary>
    public abstract string ForUpdateSkipLocked { get; }

    public abstract Task MigrateAsync(CancellationToken ct);

    /// <summary>Rung by a store once a commit queued deliveries (docs/storage.md §9), so this node's worker sends them at once.</summary>
    public OutboxSignal Outbox { get; } = new();

    public abstract Task<T> ReadAsync<T>(Func<ISqlSession, ValueTask<T>> work, CancellationToken ct);

    /// <summary>
    /// Runs <paramref name="work"/> in a write transaction (group-committed with others). Once queued the write
    /// happens even if the caller stops waiting, so state stays consistent; its result is published only after commit.
    /// </summary>
    public abstract Task<T> WriteAsync<T>(Func<IWriteSession, ValueTask<T>> work, CancellationToken ct);

    /// <summary>A write that is one statement: on PostgreSQL it joins the other one-statement writes of its batch in one round trip.</summary>
    public abstract Task<T> StatementAsync<T>(string sql, object?[] args, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken ct);

    /// <summary>The approvals store on this engine: the shared one, unless the engine pipelines its hot path.</summary>
    public virtual IApprovalStore CreateApprovalStore() => new ApprovalStore(this);

    /// <summary>The mandates store on this engine: the shared one, unless the engine spends budgets in one statement.</summary>
    public virtual IMandateStore CreateMandateStore() => new MandateStore(this);

    /// <summary>Before reading the audit chain: whatever committed before this call is in the chain (PostgreSQL seals pending entries).</summary>
    public virtual Task SettleAuditAsync(CancellationToken ct) => Task.CompletedTask;

    public abstract ValueTask DisposeAsync();
}
