using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// What a backend asked besides the approval request that carries it (docs/challenges.md §2): the challenge's id is
/// its request's id. <see cref="Amount"/> is an exact decimal string in the currency's minor units; <see cref="Metadata"/>
/// is echoed to the backend, never shown or signed. <see cref="RequestHash"/> is SHA-256 of the body an
/// <see cref="IdempotencyKey"/> came with.
/// </summary>
internal sealed record ChallengeRecord(string Id, string ApiKeyId, string OwnerUserId, string Action, string? Amount, string? Currency, string? Metadata,
    bool RequiresHuman, string? IdempotencyKey, byte[]? RequestHash);

/// <summary>A challenge with its request (state, times) and, once decided, the decisions on it.</summary>
internal sealed record ChallengeView(ChallengeRecord Challenge, ApprovalRecord Approval);

internal enum ChallengeCreation
{
    Created,

    /// <summary>The API key used this idempotency key before: nothing stored; the caller reads that challenge.</summary>
    Duplicate,

    /// <summary>The key has as many challenges pending for the user as allowed: nothing stored.</summary>
    OverCap,
}

internal interface IChallengeStore
{
    /// <summary>
    /// Stores the request and its challenge together, unless the key used this idempotency key before or already has
    /// <paramref name="maxPending"/> unexpired challenges pending for the user (counted in the insert's own statement).
    /// </summary>
    Task<ChallengeCreation> TryCreateAsync(ApprovalRecord approval, ChallengeRecord challenge, int maxPending, AuditEvent audit, CancellationToken ct);

    Task<ChallengeView?> FindAsync(string id, CancellationToken ct);

    Task<ChallengeView?> FindByIdempotencyKeyAsync(string apiKeyId, string idempotencyKey, CancellationToken ct);

    /// <summary>Whether the challenge behind a request demands user verification (false when the request is no challenge).</summary>
    Task<bool> RequiresHumanAsync(string approvalId, CancellationToken ct);
}

internal sealed class ChallengeStore(Database db) : IChallengeStore
{
    private const string Columns = "c.id, c.api_key_id, c.owner_user_id, c.action, c.amount, c.currency, c.metadata, c.requires_human, c.idempotency_key, c.request_hash";

    private static readonly string Select =
        $"SELECT {Columns}, {string.Join(", ", ApprovalSql.Columns.Split(", ").Select(c => "a." + c))} FROM challenges c JOIN approvals a ON a.id = c.id ";

    private static ChallengeView Read(DbDataReader r) => new(
        new ChallengeRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), Rows.NullableString(r, 4), Rows.NullableString(r, 5),
            Rows.NullableString(r, 6), r.GetInt32(7) != 0, Rows.NullableString(r, 8), r.IsDBNull(9) ? null : (byte[])r[9]),
        ApprovalSql.Read(r, 10));

    public Task<ChallengeCreation> TryCreateAsync(ApprovalRecord approval, ChallengeRecord c, int maxPending, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (c.IdempotencyKey is not null &&
                await w.AnyAsync("SELECT 1 FROM challenges WHERE api_key_id = $1 AND idempotency_key = $2", c.ApiKeyId, c.IdempotencyKey))
            {
                return ChallengeCreation.Duplicate;
            }
            if (await w.ExecAsync(ApprovalSql.InsertCappedSql, [.. ApprovalSql.InsertArgs(approval), maxPending]) != 1)
            {
                return ChallengeCreation.OverCap;
            }
            await ApprovalSql.InsertEligibleAsync(w, approval);
            await w.NotifyAsync(ApprovalNotice.Created(approval));
            // On PostgreSQL two requests with one key at once both pass the check above; the unique index refuses the second.
            await InsertAsync(w, c);
            await w.AuditAsync(audit);
            return ChallengeCreation.Created;
        }, ct);

    /// <summary>
    /// The challenge's row, written in the transaction of a mandate that covers its request (docs/policies.md §6). Its
    /// idempotency key is held by the same unique index: a racing duplicate fails the whole transaction, budget included.
    /// </summary>
    public static CoveredRowWriter Alongside(Func<ApprovalRecord, ChallengeRecord> row) => async (w, approved) => await InsertAsync(w, row(approved));

    private static ValueTask<int> InsertAsync(IWriteSession w, ChallengeRecord c) =>
        w.ExecAsync(
            "INSERT INTO challenges(id, api_key_id, owner_user_id, action, amount, currency, metadata, requires_human, idempotency_key, request_hash) " +
            "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            c.Id, c.ApiKeyId, c.OwnerUserId, c.Action, c.Amount, c.Currency, c.Metadata, c.RequiresHuman ? 1 : 0, c.IdempotencyKey, c.RequestHash);

    public Task<ChallengeView?> FindAsync(string id, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync(Select + "WHERE c.id = $1", Read, id), ct);

    public Task<ChallengeView?> FindByIdempotencyKeyAsync(string apiKeyId, string idempotencyKey, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync(Select + "WHERE c.api_key_id = $1 AND c.idempotency_key = $2", Read, apiKeyId, idempotencyKey), ct);

    public Task<bool> RequiresHumanAsync(string approvalId, CancellationToken ct) =>
        db.ReadAsync(s => s.AnyAsync("SELECT 1 FROM challenges WHERE id = $1 AND requires_human = 1", approvalId), ct);
}
