using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>What a matching policy demands of a request (docs/policies.md §1); stored, so never renamed.</summary>
internal static class PolicyRequirements
{
    /// <summary>One approver: the requested user, as without any policy.</summary>
    public const string One = "one";

    /// <summary><see cref="PolicyRecord.Quorum"/> distinct users of <see cref="PolicyRecord.Approvers"/>, each with their own device.</summary>
    public const string Quorum = "quorum";

    /// <summary>Refused at once: no request is created.</summary>
    public const string Deny = "deny";

    public static bool IsValid(string? s) => s is One or Quorum or Deny;
}

/// <summary>
/// One version of a policy (docs/policies.md §1). Rows are never changed, only retired (<see cref="RemovedAt"/>): adding a
/// policy under a name in use retires the active version and stores the next, so every request names the exact version
/// that applied. Active policies are tried in <see cref="Position"/> order (then name); the first that matches wins.
/// Amounts are canonical decimal text for <see cref="Currency"/> (docs/policies.md §2); <see cref="Approvers"/> is
/// space-separated user ids.
/// </summary>
internal sealed record PolicyRecord(
    string Id,
    string Name,
    int Version,
    int Position,
    string? ClientId,
    string? Scope,
    string? DetailType,
    string? Currency,
    string? AmountOver,
    string? AmountAtMost,
    string Requires,
    int Quorum,
    string Approvers,
    long CreatedAt,
    long? RemovedAt)
{
    public IReadOnlyList<string> ApproverIds => Approvers.Length == 0 ? [] : Approvers.Split(' ');

    /// <summary>How a request and its token name the policy: <c>name@version</c>.</summary>
    public string Label => $"{Name}@{Version}";
}

/// <summary>Policies (docs/storage.md §3, docs/policies.md).</summary>
internal interface IPolicyStore
{
    /// <summary>
    /// Stores <paramref name="policy"/> as the next version of its name, retiring the active version in the same
    /// transaction; returns the stored row (its version set).
    /// </summary>
    Task<PolicyRecord> AddAsync(PolicyRecord policy, Func<PolicyRecord, AuditEvent> audit, CancellationToken ct);

    /// <summary>Active policies in the order they are tried.</summary>
    Task<IReadOnlyList<PolicyRecord>> ListActiveAsync(CancellationToken ct);

    /// <summary>Retires the active version of <paramref name="name"/>; null when there is none.</summary>
    Task<PolicyRecord?> TryRemoveAsync(string name, long now, Func<PolicyRecord, AuditEvent> audit, CancellationToken ct);
}

internal sealed class PolicyStore(Database db) : IPolicyStore
{
    private const string Columns =
        "id, name, version, position, client_id, scope, detail_type, currency, amount_over, amount_at_most, requires, quorum, approvers, created_at, removed_at";

    private static PolicyRecord Read(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), Rows.NullableString(r, 4), Rows.NullableString(r, 5), Rows.NullableString(r, 6),
            Rows.NullableString(r, 7), Rows.NullableString(r, 8), Rows.NullableString(r, 9), r.GetString(10), r.GetInt32(11), r.GetString(12), r.GetInt64(13),
            Rows.NullableLong(r, 14));

    public Task<PolicyRecord> AddAsync(PolicyRecord policy, Func<PolicyRecord, AuditEvent> audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // The version follows the highest of the name, removed ones included: a version number is never reused.
            var last = await w.AllAsync("SELECT COALESCE(MAX(version), 0) FROM policies WHERE name = $1", r => Convert.ToInt32(r.GetValue(0),
                System.Globalization.CultureInfo.InvariantCulture), policy.Name);
            var stored = policy with { Version = last[0] + 1 };
            await w.ExecAsync("UPDATE policies SET removed_at = $2 WHERE name = $1 AND removed_at IS NULL", policy.Name, policy.CreatedAt);
            await w.ExecAsync($"INSERT INTO policies({Columns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                stored.Id, stored.Name, stored.Version, stored.Position, stored.ClientId, stored.Scope, stored.DetailType, stored.Currency, stored.AmountOver,
                stored.AmountAtMost, stored.Requires, stored.Quorum, stored.Approvers, stored.CreatedAt, stored.RemovedAt);
            await w.AuditAsync(audit(stored));
            return stored;
        }, ct);

    public Task<IReadOnlyList<PolicyRecord>> ListActiveAsync(CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {Columns} FROM policies WHERE removed_at IS NULL ORDER BY position, name", Read), ct);

    public Task<PolicyRecord?> TryRemoveAsync(string name, long now, Func<PolicyRecord, AuditEvent> audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.OneAsync($"UPDATE policies SET removed_at = $2 WHERE name = $1 AND removed_at IS NULL RETURNING {Columns}", Read, name, now) is not { } removed)
            {
                return null;
            }
            await w.AuditAsync(audit(removed));
            return removed;
        }, ct);
}
