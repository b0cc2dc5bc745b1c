using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>How often a mandate's total is renewed (docs/policies.md §6); stored, so never renamed.</summary>
internal static class MandatePeriods
{
    public const string Day = "day";
    public const string Week = "week";
    public const string Month = "month";

    /// <summary>The total is spent once, over the mandate's whole life.</summary>
    public const string None = "none";

    public static bool IsValid(string? p) => p is Day or Week or Month or None;

    /// <summary>
    /// The start (Unix ms) of the window <paramref name="now"/> falls in: UTC midnight, the UTC Monday of an ISO 8601 week,
    /// the first of a UTC month; 0 for <see cref="None"/>. Windows of every node agree because they are computed from the
    /// calendar, never from when the mandate was created (docs/policies.md §6).
    /// </summary>
    public static long WindowStart(string period, DateTimeOffset now)
    {
        var day = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        return period switch
        {
            Day => day.ToUnixTimeMilliseconds(),
            Week => day.AddDays(-(((int)day.DayOfWeek + 6) % 7)).ToUnixTimeMilliseconds(),
            Month => new DateTimeOffset(day.Year, day.Month, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds(),
            _ => 0,
        };
    }
}

/// <summary>
/// A spending mandate (docs/policies.md §6): limits a user signed on a device, through the approval request
/// <see cref="ApprovalId"/> whose payload carries them. Amounts are kept twice: canonical decimal text in
/// <see cref="Currency"/> (as signed) and the same amount in minor units, which the budget's guarded update compares in
/// SQL as integers, never as floats. <see cref="WindowSpent"/> is what the window starting at <see cref="WindowStart"/>
/// has used; <see cref="Spent"/> and <see cref="Payments"/> count the mandate's whole life. <see cref="Payees"/> is a
/// JSON array of strings, or null for any payee.
/// </summary>
internal sealed record MandateRecord(
    string Id,
    string ApprovalId,
    string ClientId,
    string UserId,
    string Currency,
    string PerPayment,
    string Total,
    long PerPaymentMinor,
    long TotalMinor,
    string Period,
    string? Payees,
    long ExpiresAt,
    long CreatedAt,
    long? RevokedAt = null,
    long WindowStart = 0,
    long WindowSpent = 0,
    long Spent = 0,
    int Payments = 0);

/// <summary>A mandate with the state of the request that made it and, once approved, the approving device's evidence.</summary>
internal sealed record MandateRow(MandateRecord Mandate, ApprovalState ApprovalState, string? ApprovedBy, string? Evidence);

/// <summary>One payment a mandate approved: what it spent and what the window had left afterwards (canonical decimals).</summary>
internal sealed record MandatePaymentRecord(string ApprovalId, string MandateId, string Amount, long AmountMinor, string? Payee, long WindowStart,
    string Remaining, long CreatedAt);

/// <summary>The <c>mandate</c> claim of a token (docs/tokens.md §3): the mandate, and what its window had left after this payment.</summary>
internal sealed record MandateGrant(string Id, string Remaining);

/// <summary>The budget a covered payment asks of a mandate: minor units, in the window <see cref="WindowStart"/>.</summary>
internal sealed record MandateCharge(string MandateId, long AmountMinor, long WindowStart, long Now);

/// <summary>
/// The row of the feature a covered request belongs to (a payment's, a challenge's), written inside the transaction that
/// spends the mandate and approves the request, from the request as approved.
/// </summary>
internal delegate ValueTask CoveredRowWriter(IWriteSession w, ApprovalRecord approved);

/// <summary>Mandate ids, and the <c>mandate.*</c> events of the transitions of other aggregates (docs/webhooks.md §2).</summary>
internal static class MandateIds
{
    public const string Prefix = "mnd_";

    /// <summary>A mandate's id follows from the request that asked for it: <c>mnd_X</c> for <c>apr_X</c> (or <c>chl_X</c>).</summary>
    public static string For(string approvalId) => Prefix + approvalId[(approvalId.IndexOf('_') + 1)..];

    /// <summary>
    /// Whether a request asks for a mandate: its details are the one canonical mandate entry, which is how every mandate
    /// request is stored (docs/policies.md §6: rewritten before its payload is built).
    /// </summary>
    public static bool IsRequest(ApprovalRecord a) => a.AuthorizationDetails?.StartsWith("[{\"type\":\"mandate\"", StringComparison.Ordinal) == true;

    /// <summary><c>mandate.approved</c> when a mandate request is approved; null for every other decision.</summary>
    public static OutboxEvent? ForDecision(ApprovalRecord request, ApprovalState state, long at) =>
        state == ApprovalState.Approved && IsRequest(request)
            ? OutboxEvent.ForMandate(EventTypes.MandateApproved, For(request.Id), request.UserId, request.ClientId, at)
            : null;
}

/// <summary>Spending mandates and the payments they approved (docs/storage.md §3, docs/policies.md §6).</summary>
internal interface IMandateStore
{
    /// <summary>Stores a mandate before the request that asks for it: it approves nothing until that request is approved.</summary>
    Task AddAsync(MandateRecord mandate, CancellationToken ct);

    /// <summary>The mandates of a client and user that may cover a payment now: approved by one device, not revoked, not expired.</summary>
    Task<IReadOnlyList<MandateRow>> ListUsableAsync(string clientId, string userId, long now, CancellationToken ct);

    /// <summary>
    /// The one transaction of a covered payment: spends <paramref name="charge"/> from the mandate's budget with a guarded
    /// update (still active, the amount within per-payment and within what the window has left), and only then stores
    /// <paramref name="approval"/> as approved with <paramref name="decision"/> (the mandate's evidence), the payment, its
    /// CIBA notification and audit entry, its deliveries (<c>approval.approved</c> or <c>challenge.approved</c>, <c>mandate.spent</c>, and <c>mandate.exhausted</c> when
    /// nothing is left), and <paramref name="row"/> (a payment's or a challenge's). Null, and nothing stored, when the budget refused: the
    /// request then goes to a human. Two nodes spending the same mandate serialise on its row, and a revocation is
    /// an update of the same row, so no payment commits after a revocation has.
    /// </summary>
    Task<MandatePaymentRecord?> TryApproveCoveredAsync(MandateRecord mandate, MandateCharge charge, string amount, string? payee, ApprovalRecord approval,
        DecisionRecord decision, byte[]? cibaNotification, CoveredRowWriter? row, Func<MandatePaymentRecord, AuditEvent> audit, CancellationToken ct);

    Task<MandateRow?> FindAsync(string id, CancellationToken ct);

    /// <summary>The user's mandates whose request is not pending-and-lost: newest first.</summary>
    Task<IReadOnlyList<MandateRow>> ListForUserAsync(string userId, int limit, CancellationToken ct);

    Task<IReadOnlyList<MandatePaymentRecord>> ListPaymentsAsync(string mandateId, int limit, CancellationToken ct);

    Task<MandatePaymentRecord?> FindPaymentAsync(string approvalId, CancellationToken ct);

    /// <summary>Revokes the user's mandate, audited in the same transaction; false when it is not theirs or already revoked.</summary>
    Task<bool> TryRevokeAsync(string id, string userId, long now, AuditEvent audit, CancellationToken ct);
}

/// <summary>The mandate tables (migration 13), written once for both engines.</summary>
internal static class MandateSchema
{
    public static string Tables(string bigint) => $"""
        CREATE TABLE mandates(
            id TEXT PRIMARY KEY,
            approval_id TEXT NOT NULL UNIQUE,
            client_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            currency TEXT NOT NULL,
            per_payment TEXT NOT NULL,
            total TEXT NOT NULL,
            per_payment_minor {bigint} NOT NULL,
            total_minor {bigint} NOT NULL,
            period TEXT NOT NULL,
            payees TEXT,
            expires_at {bigint} NOT NULL,
            created_at {bigint} NOT NULL,
            revoked_at {bigint},
            window_start {bigint} NOT NULL DEFAULT 0,
            window_spent {bigint} NOT NULL DEFAULT 0,
            spent {bigint} NOT NULL DEFAULT 0,
            payments INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX mandates_client_user ON mandates(client_id, user_id);
        CREATE INDEX mandates_user ON mandates(user_id, created_at);
        CREATE TABLE mandate_payments(
            approval_id TEXT PRIMARY KEY,
            mandate_id TEXT NOT NULL REFERENCES mandates(id),
            amount TEXT NOT NULL,
            amount_minor {bigint} NOT NULL,
            payee TEXT,
            window_start {bigint} NOT NULL,
            remaining TEXT NOT NULL,
            created_at {bigint} NOT NULL);
        CREATE INDEX mandate_payments_mandate ON mandate_payments(mandate_id, created_at);
        """;
}

internal class MandateStore(Database db) : IMandateStore
{
    private const string Columns =
        "m.id, m.approval_id, m.client_id, m.user_id, m.currency, m.per_payment, m.total, m.per_payment_minor, m.total_minor, m.period, m.payees, " +
        "m.expires_at, m.created_at, m.revoked_at, m.window_start, m.window_spent, m.spent, m.payments";

    internal const string PaymentColumns = "approval_id, mandate_id, amount, amount_minor, payee, window_start, remaining, created_at";

    /// <summary>A mandate, its request's state, and (once approved) the approving decision: user and evidence.</summary>
    private static readonly string Select =
        $"SELECT {Columns}, a.state, d.user_id, d.evidence FROM mandates m JOIN approvals a ON a.id = m.approval_id " +
        $"LEFT JOIN decisions d ON d.approval_id = m.approval_id AND d.decision = {StateCodes.Approved} AND a.quorum = 1";

    /// <summary>
    /// The budget's guard (docs/policies.md §6). $1 id, $2 amount (minor units), $3 window start, $4 now. What the window
    /// has spent is its own when the window is the stored one, else nothing (a new window begins); a window older than the
    /// stored one (a node whose clock lags) spends nothing. SET expressions all read the row as it was, on both engines.
    /// On PostgreSQL an update that waited for another re-checks this WHERE against the row that other committed.
    /// </summary>
    private static readonly string Spend = SpendSql(1) + " RETURNING total_minor - window_spent";

    /// <summary>The guarded update of the budget with its parameters from <c>$first</c> (id, amount, window start, now).</summary>
    internal static string SpendSql(int first)
    {
        string P(int n) => "$" + (first + n - 1);
        return "UPDATE mandates SET " +
               $"window_spent = (CASE WHEN window_start = {P(3)} THEN window_spent ELSE 0 END) + {P(2)}, window_start = {P(3)}, spent = spent + {P(2)}, " +
               "payments = payments + 1 " +
               $"WHERE id = {P(1)} AND revoked_at IS NULL AND expires_at > {P(4)} AND window_start <= {P(3)} AND {P(2)} > 0 AND {P(2)} <= per_payment_minor " +
               $"AND (CASE WHEN window_start = {P(3)} THEN window_spent ELSE 0 END) + {P(2)} <= total_minor";
    }

    private static MandateRecord Read(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetInt64(7), r.GetInt64(8),
        r.GetString(9), Rows.NullableString(r, 10), r.GetInt64(11), r.GetInt64(12), Rows.NullableLong(r, 13), r.GetInt64(14), r.GetInt64(15), r.GetInt64(16),
        r.GetInt32(17));

    private static MandateRow ReadRow(DbDataReader r) => new(Read(r), (ApprovalState)r.GetInt32(18), Rows.NullableString(r, 19), Rows.NullableString(r, 20));

    private static MandatePaymentRecord ReadPayment(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), Rows.NullableString(r, 4), r.GetInt64(5), r.GetString(6), r.GetInt64(7));

    public Task AddAsync(MandateRecord m, CancellationToken ct) =>
        db.WriteAsync(async w => await w.ExecAsync(
            "INSERT INTO mandates(id, approval_id, client_id, user_id, currency, per_payment, total, per_payment_minor, total_minor, period, payees, " +
            "expires_at, created_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            m.Id, m.ApprovalId, m.ClientId, m.UserId, m.Currency, m.PerPayment, m.Total, m.PerPaymentMinor, m.TotalMinor, m.Period, m.Payees, m.ExpiresAt,
            m.CreatedAt), ct);

    public Task<IReadOnlyList<MandateRow>> ListUsableAsync(string clientId, string userId, long now, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(
            $"{Select} WHERE m.client_id = $1 AND m.user_id = $2 AND m.revoked_at IS NULL AND m.expires_at > $3 " +
            $"AND a.state IN ({StateCodes.Approved}, {StateCodes.Redeemed}) AND d.evidence IS NOT NULL ORDER BY m.created_at, m.id",
            ReadRow, clientId, userId, now), ct);

    public virtual async Task<MandatePaymentRecord?> TryApproveCoveredAsync(MandateRecord mandate, MandateCharge charge, string amount, string? payee,
        ApprovalRecord approval, DecisionRecord decision, byte[]? cibaNotification, CoveredRowWriter? row, Func<MandatePaymentRecord, AuditEvent> audit,
        CancellationToken ct)
    {
        var (payment, queued) = await db.WriteAsync(async w =>
        {
            // The guarded update first: when it refuses, nothing else was written and the batch it shares stays whole.
            var left = await w.AllAsync(Spend, r => r.GetInt64(0), charge.MandateId, charge.AmountMinor, charge.WindowStart, charge.Now);
            if (left.Count == 0)
            {
                return ((MandatePaymentRecord?)null, 0);
            }
            var payment = new MandatePaymentRecord(approval.Id, mandate.Id, amount, charge.AmountMinor, payee, charge.WindowStart,
                Common.MinorUnits.Format(left[0], mandate.Currency), charge.Now);
            await w.ExecAsync(ApprovalSql.InsertSql, ApprovalSql.InsertArgs(approval));
            await w.ExecAsync($"INSERT INTO decisions({ApprovalSql.DecisionColumns}) VALUES($1, $2, $3, $4, $5, $6)",
                decision.ApprovalId, decision.UserId, decision.DeviceId, (int)decision.Decision, decision.Evidence, decision.DecidedAt);
            await w.ExecAsync($"INSERT INTO mandate_payments({PaymentColumns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
                payment.ApprovalId, payment.MandateId, payment.Amount, payment.AmountMinor, payment.Payee, payment.WindowStart, payment.Remaining, payment.CreatedAt);
            if (row is not null)
            {
                await row(w, approval);
            }
            if (cibaNotification is not null)
            {
                await w.ExecAsync("INSERT INTO ciba_notifications(approval_id, sealed) VALUES($1, $2)", approval.Id, cibaNotification);
            }
            await w.AuditAsync(audit(payment));
            var queued = await w.EmitAsync(db.Outbox, OutboxEvent.ForApproval(approval, ApprovalState.Approved, charge.Now));
            queued += await w.EmitAsync(db.Outbox, OutboxEvent.ForMandate(EventTypes.MandateSpent, approval.Id, mandate.UserId, mandate.ClientId, charge.Now));
            if (left[0] == 0)
            {
                queued += await w.EmitAsync(db.Outbox, OutboxEvent.ForMandate(EventTypes.MandateExhausted, mandate.Id, mandate.UserId, mandate.ClientId, charge.Now));
            }
            return (payment, queued);
        }, ct);
        db.Outbox.Enqueued(queued);
        return payment;
    }

    public Task<MandateRow?> FindAsync(string id, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"{Select} WHERE m.id = $1", ReadRow, id), ct);

    public Task<IReadOnlyList<MandateRow>> ListForUserAsync(string userId, int limit, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"{Select} WHERE m.user_id = $1 ORDER BY m.created_at DESC, m.id LIMIT $2", ReadRow, userId, limit), ct);

    /// <summary>
    /// Newest first. Payments of one millisecond are told apart by what their window had left: within a window each payment
    /// leaves less than the one before. <c>remaining</c> is a decimal of the currency's fixed scale with no leading zeros, so
    /// a shorter text is a smaller amount and texts of one length compare digit by digit: no float is involved. (Approval
    /// ids are random and say nothing of order.)
    /// </summary>
    public Task<IReadOnlyList<MandatePaymentRecord>> ListPaymentsAsync(string mandateId, int limit, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync(
            $"SELECT {PaymentColumns} FROM mandate_payments WHERE mandate_id = $1 " +
            "ORDER BY created_at DESC, window_start DESC, LENGTH(remaining), remaining, approval_id LIMIT $2",
            ReadPayment, mandateId, limit), ct);

    public Task<MandatePaymentRecord?> FindPaymentAsync(string approvalId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {PaymentColumns} FROM mandate_payments WHERE approval_id = $1", ReadPayment, approvalId), ct);

    public async Task<bool> TryRevokeAsync(string id, string userId, long now, AuditEvent audit, CancellationToken ct)
    {
        var (revoked, queued) = await db.WriteAsync(async w =>
        {
            var clients = await w.AllAsync("UPDATE mandates SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING client_id",
                r => r.GetString(0), id, userId, now);
            if (clients.Count == 0)
            {
                return (false, 0);
            }
            await w.AuditAsync(audit);
            return (true, await w.EmitAsync(db.Outbox, OutboxEvent.ForMandate(EventTypes.MandateRevoked, id, userId, clients[0], now)));
        }, ct);
        db.Outbox.Enqueued(queued);
        return revoked;
    }
}
