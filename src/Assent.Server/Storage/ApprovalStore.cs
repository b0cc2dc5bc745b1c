using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>Approval requests and the decisions on them (docs/storage.md §3).</summary>
internal interface IApprovalStore
{
    /// <summary>
    /// <paramref name="approval"/> with its approvers read when it is shared and came without them (its settlement's
    /// notices name them, here and on the other nodes: docs/policies.md §3); any other request as it is.
    /// </summary>
    async ValueTask<ApprovalRecord> WithApproversAsync(ApprovalRecord approval, CancellationToken ct) =>
        ApprovalNotice.IsShared(approval) && approval.EligibleUsers is null
            ? approval with { EligibleUsers = await ListEligibleAsync(approval.Id, ct) }
            : approval;

    Task CreateAsync(ApprovalRecord approval, AuditEvent audit, CancellationToken ct);

    /// <summary>
    /// Stores a new request unless its client already has <paramref name="maxPending"/> unexpired requests pending
    /// for its user; the count is part of the insert's own statement. False, and nothing stored, when refused.
    /// <paramref name="cibaNotification"/> (sealed) is stored with it for a ping or push agent (docs/storage.md §9).
    /// </summary>
    Task<bool> TryCreateAsync(ApprovalRecord approval, int maxPending, byte[]? cibaNotification, AuditEvent audit, CancellationToken ct);

    /// <summary>When the first of a client's unexpired pending requests for a user expires (Unix ms); null when it has none.</summary>
    Task<long?> NextPendingExpiryAsync(string clientId, string userId, long now, CancellationToken ct);

    Task<ApprovalRecord?> FindAsync(string approvalId, CancellationToken ct);

    Task<ApprovalRecord?> FindByHandleAsync(byte[] handleHash, CancellationToken ct);

    Task<IReadOnlyList<ApprovalRecord>> ListPendingAsync(string userId, long now, CancellationToken ct);

    Task<IReadOnlyList<ApprovalRecord>> ListHistoryAsync(string userId, int limit, CancellationToken ct);

    /// <summary>The users who may decide a quorum request (approval_approvers), by id; empty when only its own user decides it.</summary>
    Task<IReadOnlyList<string>> ListEligibleAsync(string approvalId, CancellationToken ct);

    /// <summary>The decisions recorded on a request, oldest first.</summary>
    Task<IReadOnlyList<DecisionRecord>> ListDecisionsAsync(string approvalId, CancellationToken ct);

    /// <summary>
    /// Records one approver's decision while the request is pending and unexpired and the deciding device active,
    /// and computes the request's state in the same transaction. Returns that state (still pending while a quorum
    /// waits for more approvers), or null when the decision was not taken: another decision settled it first, it
    /// expired, the device was revoked, this user had decided already, or the passkey counter did not advance
    /// (<paramref name="signCount"/>, moved forward in the same transaction; WebAuthn L3 §6.1.1).
    /// </summary>
    /// <remarks>A decision that settles the request queues its webhook and CIBA deliveries in the same transaction (docs/storage.md §9).</remarks>
    Task<ApprovalState?> TryDecideAsync(ApprovalRecord request, DecisionRecord decision, long? signCount, AuditEvent audit, CancellationToken ct);

    /// <summary>
    /// <see cref="TryDecideAsync(ApprovalRecord, DecisionRecord, long?, AuditEvent, CancellationToken)"/> of a vault_release request
    /// (docs/vault.md §4): an approval stores <paramref name="release"/>, the key re-wrapped to the agent, in the decision's own transaction.
    /// </summary>
    Task<ApprovalState?> TryDecideAsync(ApprovalRecord request, DecisionRecord decision, long? signCount, AuditEvent audit, VaultReleaseRecord release,
        CancellationToken ct);

    /// <summary>pending → cancelled, while unexpired; false when it was not pending (or had expired).</summary>
    Task<bool> TryCancelAsync(ApprovalRecord request, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>approved → redeemed exactly once; returns the redeemed row and its approving decisions, null when not approved or already redeemed.</summary>
    Task<DecidedApproval?> TryRedeemAsync(string approvalId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>Moves every pending request whose expiry has passed to expired; returns those moved.</summary>
    Task<IReadOnlyList<ApprovalRecord>> ExpireDueAsync(long now, int max, CancellationToken ct);
}

/// <summary>Approval statements more than one store uses.</summary>
internal static class ApprovalSql
{
    public const string Columns =
        "id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, created_at, expires_at, " +
        "decided_at, redeemed_at, quorum, approvers, policy";

    /// <summary>
    /// The requests user <c>$1</c> decides: their own, unless a quorum policy named other approvers, and every quorum
    /// request they are an eligible approver of (docs/policies.md §3).
    /// </summary>
    public const string DecidedBy =
        "((user_id = $1 AND NOT EXISTS (SELECT 1 FROM approval_approvers e WHERE e.approval_id = approvals.id)) " +
        "OR id IN (SELECT approval_id FROM approval_approvers WHERE user_id = $1))";

    public const string DecisionColumns = "approval_id, user_id, device_id, decision, evidence, decided_at";

    private const string InsertInto =
        "INSERT INTO approvals(id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, " +
        "created_at, expires_at, quorum, approvers, policy) ";

    public static readonly string InsertSql = InsertInto + "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

    /// <summary>
    /// <see cref="InsertSql"/> unless the client ($4) already has $17 unexpired requests pending for the user ($5) at
    /// the request's creation time ($12). Counted through approvals_client_pending in the insert's own statement:
    /// exact with one writer (SQLite, and within one PostgreSQL batch); on PostgreSQL, requests of one agent for one
    /// user committed in the same instant by different writers or nodes do not see each other and may pass the cap
    /// together, by at most their number (docs/deployment.md §10).
    /// </summary>
    /// <remarks>
    /// Asked as "is there no $17-th such row" (<c>NOT EXISTS … LIMIT 1 OFFSET $17 - 1</c>): the scan stops there, and
    /// SQLite keeps the statement prepared. A <c>LIMIT $16</c> inside a FROM subquery made it recompile the statement on
    /// every execution.
    /// </remarks>
    public static readonly string InsertCappedSql = InsertInto + "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 WHERE " +
        $"NOT EXISTS (SELECT 1 FROM approvals WHERE client_id = $4 AND user_id = $5 AND state = {StateCodes.Pending} AND expires_at > $12 " +
        "LIMIT 1 OFFSET $17 - 1)";

    /// <summary>approved → redeemed; $1 = id, $2 = now.</summary>
    public static readonly string Redeem = $"UPDATE approvals SET state = {StateCodes.Redeemed}, redeemed_at = $2 WHERE id = $1 AND state = {StateCodes.Approved}";

    public static readonly string ApprovingDecisions =
        $"SELECT {DecisionColumns} FROM decisions WHERE approval_id = $1 AND decision = {StateCodes.Approved} ORDER BY decided_at, device_id";

    public static object?[] InsertArgs(ApprovalRecord a) =>
    [
        a.Id, a.HandleHash, a.Kind, a.ClientId, a.UserId, a.Scope, a.BindingMessage, a.AuthorizationDetails, a.Resource, a.Payload,
        (int)a.State, a.CreatedAt, a.ExpiresAt, a.Quorum, a.Approvers, a.Policy,
    ];

    /// <summary>Inserts a pending request and tells the other nodes (their device streams) once it commits.</summary>
    public static async ValueTask InsertAsync(IWriteSession w, ApprovalRecord a)
    {
        await w.ExecAsync(InsertSql, InsertArgs(a));
        await InsertEligibleAsync(w, a);
        await w.NotifyAsync(ApprovalNotice.Created(a));
    }

    /// <summary>
    /// The users who may decide a quorum request (docs/storage.md §3), one row each, written with the request; none for a
    /// request its own user decides alone.
    /// </summary>
    public static async ValueTask InsertEligibleAsync(IWriteSession w, ApprovalRecord a)
    {
        foreach (var user in a.EligibleUsers ?? [])
        {
            await w.ExecAsync("INSERT INTO approval_approvers(approval_id, user_id) VALUES($1, $2)", a.Id, user);
        }
    }

    public static ApprovalRecord Read(DbDataReader r) => Read(r, 0);

    /// <summary>Reads a request whose columns (<see cref="Columns"/>) start at <paramref name="at"/>, e.g. after a joined row's.</summary>
    public static ApprovalRecord Read(DbDataReader r, int at) => new(
        r.GetString(at), (byte[])r[at + 1], r.GetString(at + 2), r.GetString(at + 3), r.GetString(at + 4), r.GetString(at + 5), Rows.NullableString(r, at + 6),
        Rows.NullableString(r, at + 7), Rows.NullableString(r, at + 8), (byte[])r[at + 9], (ApprovalState)r.GetInt32(at + 10), r.GetInt64(at + 11),
        r.GetInt64(at + 12), Rows.NullableLong(r, at + 13), Rows.NullableLong(r, at + 14), r.GetInt32(at + 15), r.GetInt32(at + 16), Rows.NullableString(r, at + 17));

    /// <summary>Reads a decision whose columns start at <paramref name="at"/> (<see cref="DecisionColumns"/>).</summary>
    public static DecisionRecord ReadDecision(DbDataReader r, int at) =>
        new(r.GetString(at), r.GetString(at + 1), r.GetString(at + 2), (ApprovalState)r.GetInt32(at + 3), r.GetString(at + 4), r.GetInt64(at + 5));

    public static DecisionRecord ReadDecision(DbDataReader r) => ReadDecision(r, 0);
}

/// <summary>The approvals store both engines share; PostgreSQL overrides the hot path to pipeline it (see PostgresApprovalStore).</summary>
internal class ApprovalStore(Database db) : IApprovalStore
{
    private readonly string _expireDue =
        $"UPDATE approvals SET state = {StateCodes.Expired} WHERE id IN (SELECT id FROM approvals WHERE state = {StateCodes.Pending} AND expires_at <= $1 " +
        $"ORDER BY expires_at LIMIT $2{db.ForUpdateSkipLocked}) RETURNING {ApprovalSql.Columns}";

    private readonly string _lockDevice = $"SELECT 1 FROM devices WHERE id = $1 AND revoked_at IS NULL{db.ForUpdate}";

    private readonly string _lockForDecision = $"SELECT user_id FROM approvals WHERE id = $1 AND state = {StateCodes.Pending} AND expires_at > $2{db.ForUpdate}";

    /// <summary>
    /// A request one approver settles: the guarded update is the whole race guard (only one decision can match a
    /// pending row), and the device must still be active at commit, so a revocation racing the decision wins.
    /// $1 = id, $2 = new state, $3 = device id, $4 = decided at.
    /// </summary>
    protected static readonly string SettleSingle =
        $"UPDATE approvals SET state = $2, decided_at = $4 WHERE id = $1 AND state = {StateCodes.Pending} AND quorum = 1 AND expires_at > $4 " +
        "AND EXISTS (SELECT 1 FROM devices WHERE id = $3 AND revoked_at IS NULL) RETURNING user_id";

    protected static readonly string InsertDecision = $"INSERT INTO decisions({ApprovalSql.DecisionColumns}) VALUES($1, $2, $3, $4, $5, $6)";

    public virtual Task CreateAsync(ApprovalRecord approval, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await ApprovalSql.InsertAsync(w, approval);
            return await w.AuditedAsync(audit);
        }, ct);

    public virtual Task<bool> TryCreateAsync(ApprovalRecord approval, int maxPending, byte[]? cibaNotification, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.ExecAsync(ApprovalSql.InsertCappedSql, [.. ApprovalSql.InsertArgs(approval), maxPending]) != 1)
            {
                return false;
            }
            await ApprovalSql.InsertEligibleAsync(w, approval);
            if (cibaNotification is not null)
            {
                await w.ExecAsync("INSERT INTO ciba_notifications(approval_id, sealed) VALUES($1, $2)", approval.Id, cibaNotification);
            }
            await w.NotifyAsync(ApprovalNotice.Created(approval));
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<long?> NextPendingExpiryAsync(string clientId, string userId, long now, CancellationToken ct) =>
        db.ReadAsync(async s => (await s.AllAsync(
            $"SELECT MIN(expires_at) FROM approvals WHERE client_id = $1 AND user_id = $2 AND state = {StateCodes.Pending} AND expires_at > $3",
            r => r.IsDBNull(0) ? (long?)null : r.GetInt64(0), clientId, userId, now))[0], ct);

    public Task<ApprovalRecord?> FindAsync(string approvalId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {ApprovalSql.Columns} FROM approvals WHERE id = $1", ApprovalSql.Read, approvalId), ct);

    public Task<ApprovalRecord?> FindByHandleAsync(byte[] handleHash, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {ApprovalSql.Columns} FROM approvals WHERE handle_hash = $1", ApprovalSql.Read, handleHash), ct);

    public Task<IReadOnlyList<ApprovalRecord>> ListPendingAsync(string userId, long now, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(
            $"SELECT {ApprovalSql.Columns} FROM approvals WHERE {ApprovalSql.DecidedBy} AND state = {StateCodes.Pending} AND expires_at > $2 ORDER BY created_at, id",
            ApprovalSql.Read, userId, now), ct);

    public Task<IReadOnlyList<ApprovalRecord>> ListHistoryAsync(string userId, int limit, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(
            $"SELECT {ApprovalSql.Columns} FROM approvals WHERE {ApprovalSql.DecidedBy} AND state <> {StateCodes.Pending} ORDER BY created_at DESC, id LIMIT $2",
            ApprovalSql.Read, userId, limit), ct);

    public Task<IReadOnlyList<string>> ListEligibleAsync(string approvalId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(EligibleUsersSql, r => r.GetString(0), approvalId), ct);

    private const string EligibleUsersSql = "SELECT user_id FROM approval_approvers WHERE approval_id = $1 ORDER BY user_id";

    public Task<IReadOnlyList<DecisionRecord>> ListDecisionsAsync(string approvalId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {ApprovalSql.DecisionColumns} FROM decisions WHERE approval_id = $1 ORDER BY decided_at, device_id",
            ApprovalSql.ReadDecision, approvalId), ct);

    public virtual async Task<ApprovalState?> TryDecideAsync(ApprovalRecord request, DecisionRecord d, long? signCount, AuditEvent audit, CancellationToken ct)
    {
        var (state, queued) = await db.WriteAsync(async w =>
        {
            var state = await DecideAsync(w, request, d, signCount, audit);
            return (state, state is { } settled
                ? await w.EmitAsync(db.Outbox, OutboxEvent.ForApproval(request, settled, d.DecidedAt)) +
                  await w.EmitAsync(db.Outbox, MandateIds.ForDecision(request, settled, d.DecidedAt))
                : 0);
        }, ct);
        db.Outbox.Enqueued(queued);
        return state;
    }

    public async Task<ApprovalState?> TryDecideAsync(ApprovalRecord request, DecisionRecord d, long? signCount, AuditEvent audit, VaultReleaseRecord release,
        CancellationToken ct)
    {
        var (state, queued) = await db.WriteAsync(async w =>
        {
            var state = await DecideAsync(w, request, d, signCount, audit);
            if (state is not null && d.Decision == ApprovalState.Approved)
            {
                await VaultSql.InsertReleaseAsync(w, release, d.DecidedAt);
            }
            return (state, state is { } settled ? await w.EmitAsync(db.Outbox, OutboxEvent.ForApproval(request, settled, d.DecidedAt)) : 0);
        }, ct);
        db.Outbox.Enqueued(queued);
        return state;
    }

    private async ValueTask<ApprovalState?> DecideAsync(IWriteSession w, ApprovalRecord request, DecisionRecord d, long? signCount, AuditEvent audit)
    {
        if (signCount is { } count &&
            await w.ExecAsync($"UPDATE devices SET sign_count = $2 WHERE id = $1 AND {DeviceSql.CounterAdvances}", d.DeviceId, count) != 1)
        {
            return null;
        }
        if (request.Quorum == 1)
        {
            if (await w.OneAsync(SettleSingle, r => r.GetString(0), d.ApprovalId, (int)d.Decision, d.DeviceId, d.DecidedAt) is not { } owner)
            {
                return null;
            }
            await w.ExecAsync(InsertDecision, d.ApprovalId, d.UserId, d.DeviceId, (int)d.Decision, d.Evidence, d.DecidedAt);
            await w.NotifyAsync(ApprovalNotice.Settled(d.ApprovalId, owner, d.Decision, request.EligibleUsers));
            await w.AuditAsync(audit);
            return (ApprovalState?)d.Decision;
        }
        var state = await DecideInQuorumAsync(w, d, audit, request.EligibleUsers);
        if (state == ApprovalState.Pending)
        {
            // One more vote and still open: the other nodes announce the request again, so their approvers' streams show
            // where the quorum now stands (docs/policies.md §3).
            await w.NotifyAsync(ApprovalNotice.Created(request));
        }
        return state;
    }

    public async Task<bool> TryCancelAsync(ApprovalRecord request, long now, AuditEvent audit, CancellationToken ct)
    {
        var queued = await db.WriteAsync(async w =>
        {
            if (await w.ExecAsync($"UPDATE approvals SET state = {StateCodes.Cancelled}, decided_at = $2 WHERE id = $1 AND state = {StateCodes.Pending} AND expires_at > $2",
                    request.Id, now) != 1)
            {
                return -1;
            }
            await w.NotifyAsync(ApprovalNotice.Settled(request.Id, request.UserId, ApprovalState.Cancelled, request.EligibleUsers));
            await w.AuditAsync(audit);
            return await w.EmitAsync(db.Outbox, OutboxEvent.ForApproval(request, ApprovalState.Cancelled, now));
        }, ct);
        db.Outbox.Enqueued(queued);
        return queued >= 0;
    }

    /// <summary>
    /// A request several approvers decide (docs/concepts.md §4): each user decides once, the request is approved when
    /// <see cref="ApprovalRecord.Quorum"/> approvals are in, and denied once that can no longer happen. The row is locked
    /// first, so concurrent decisions are counted one after the other.
    /// </summary>
    private async ValueTask<ApprovalState?> DecideInQuorumAsync(IWriteSession w, DecisionRecord d, AuditEvent audit, IReadOnlyList<string>? eligible)
    {
        if (await w.OneAsync(_lockForDecision, r => r.GetString(0), d.ApprovalId, d.DecidedAt) is not { } owner ||
            // The device row stays locked until commit, so a revocation waits for this decision and then removes it (docs/policies.md §3).
            !await w.AnyAsync(_lockDevice, d.DeviceId) ||
            await w.ExecAsync(InsertDecision + " ON CONFLICT (approval_id, user_id) DO NOTHING",
                d.ApprovalId, d.UserId, d.DeviceId, (int)d.Decision, d.Evidence, d.DecidedAt) != 1)
        {
            return null;
        }
        var tally = (await w.OneAsync(
            $"SELECT a.quorum, a.approvers, SUM(CASE WHEN d.decision = {StateCodes.Approved} THEN 1 ELSE 0 END), " +
            $"SUM(CASE WHEN d.decision = {StateCodes.Denied} THEN 1 ELSE 0 END) FROM approvals a JOIN decisions d ON d.approval_id = a.id " +
            "WHERE a.id = $1 GROUP BY a.quorum, a.approvers",
            r => new[] { r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3) }, d.ApprovalId))!;
        var (quorum, approvers, approvals, denials) = (tally[0], tally[1], tally[2], tally[3]);
        var state = approvals >= quorum ? ApprovalState.Approved
            : denials > approvers - quorum ? ApprovalState.Denied
            : ApprovalState.Pending;
        await w.AuditAsync(audit);
        if (state != ApprovalState.Pending)
        {
            await w.ExecAsync("UPDATE approvals SET state = $2, decided_at = $3 WHERE id = $1", d.ApprovalId, (int)state, d.DecidedAt);
            await w.NotifyAsync(ApprovalNotice.Settled(d.ApprovalId, owner, state, eligible));
        }
        return state;
    }

    public virtual Task<DecidedApproval?> TryRedeemAsync(string approvalId, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.OneAsync($"{ApprovalSql.Redeem} RETURNING {ApprovalSql.Columns}", ApprovalSql.Read, approvalId, now) is not { } redeemed)
            {
                return null;
            }
            var decisions = await w.AllAsync(ApprovalSql.ApprovingDecisions, ApprovalSql.ReadDecision, approvalId);
            await w.AuditAsync(audit);
            return new DecidedApproval(redeemed, decisions);
        }, ct);

    public async Task<IReadOnlyList<ApprovalRecord>> ExpireDueAsync(long now, int max, CancellationToken ct)
    {
        var (due, queued) = await db.WriteAsync(async w =>
        {
            // On PostgreSQL several nodes sweep at once: SKIP LOCKED keeps them from waiting on, or double-expiring, each other's rows.
            var due = (await w.AllAsync(_expireDue, ApprovalSql.Read, now, max)).ToList();
            var queued = 0;
            for (var i = 0; i < due.Count; i++)
            {
                var a = due[i];
                if (ApprovalNotice.IsShared(a))
                {
                    // Its approvers' streams hear the expiry too, here and on every node (docs/policies.md §3).
                    due[i] = a = a with { EligibleUsers = await w.AllAsync(EligibleUsersSql, r => r.GetString(0), a.Id) };
                }
                await w.NotifyAsync(ApprovalNotice.Settled(a.Id, a.UserId, ApprovalState.Expired, a.EligibleUsers));
                await w.AuditAsync(new AuditEvent(AuditTypes.ApprovalExpired, a.UserId, "system", a.Id));
                queued += await w.EmitAsync(db.Outbox, OutboxEvent.ForApproval(a, ApprovalState.Expired, now));
            }
            return (due, queued);
        }, ct);
        db.Outbox.Enqueued(queued);
        return due;
    }
}
