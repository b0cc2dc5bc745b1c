namespace Assent.Server.Storage.Postgres;

/// <summary>
/// A covered payment as one statement (docs/policies.md §6, docs/storage.md §5): the guarded spend of the mandate's budget
/// and, only if it matched, the approved request, its decision, the mandate's payment row, the audit event and the
/// deliveries (none while nobody listens: <see cref="CoveredSilently"/>), pipelined with the other one-statement writes
/// of this node's group commit. A batch then holds the mandate's row lock for one round trip and its commit, not for a
/// transaction of several statements per payment: the nodes spending one mandate take turns per batch, and each
/// re-checks the guard against the row the other committed (PostgreSQL's READ COMMITTED re-evaluates an UPDATE's WHERE
/// on the row version that made it wait).
/// </summary>
internal sealed class PostgresMandateStore(PostgresDatabase db) : MandateStore(db)
{
    // The spend and, only if it matched, the rows every covered payment writes. $1-$16 the approval, $17-$20 the spend,
    // $21-$25 the decision, $26-$27 the payment's amount and payee, $28-$29 the currency's minor units, $30-$32 the audit event.
    private static string CoveredSql(string guard, string fanOuts, string select) =>
        $"WITH l AS (SELECT {OutboxSql.ListeningCondition()} AS listening), " +
        $"s AS ({SpendSql(17)}{guard} RETURNING total_minor - window_spent AS remaining_minor), " +
        "r AS (SELECT round(s.remaining_minor::numeric / $28, $29)::text AS remaining FROM s), " +
        "a AS (INSERT INTO approvals(id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, " +
        "created_at, expires_at, quorum, approvers, policy) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM s), " +
        $"d AS (INSERT INTO decisions({ApprovalSql.DecisionColumns}) SELECT $1, $21, $22, $23, $24, $25 FROM s), " +
        $"m AS (INSERT INTO mandate_payments({PaymentColumns}) SELECT $1, $17, $26, $18, $27, $19, r.remaining, $20 FROM r), " +
        "p AS (INSERT INTO audit_pending(body, user_id) SELECT convert_to(replace(convert_from($30, 'UTF8'), $31, '\"' || r.remaining || '\"'), 'UTF8'), $32 FROM r)" +
        fanOuts + " " + select;

    /// <summary>
    /// With the deliveries the payment announces (docs/storage.md §9): approval.approved and mandate.spent, and
    /// mandate.exhausted when the budget reached zero ($33-$56). A row when it spent: what is left, how many deliveries it
    /// queued, and whether anyone listens.
    /// </summary>
    private static readonly string Covered = CoveredSql("",
        ", z AS (SELECT 1 FROM s WHERE s.remaining_minor = 0), " +
        $"o1 AS ({OutboxSql.FanOut("s", 33)} RETURNING 1), " +
        $"o2 AS ({OutboxSql.FanOut("s", 41)} RETURNING 1), " +
        $"o3 AS ({OutboxSql.FanOut("z", 49)} RETURNING 1)",
        "SELECT s.remaining_minor, (SELECT count(*) FROM o1) + (SELECT count(*) FROM o2) + (SELECT count(*) FROM o3), l.listening FROM s, l");

    /// <summary>
    /// Without them, and spending only while nobody listens, as that statement's snapshot sees it: the one a fan-out would
    /// have read, so a payment it approves is one whose fan-outs would all have inserted nothing. One row always: what is
    /// left (null when it did not spend) and whether anyone listens (then it did not spend, and the payment is made again
    /// with the fan-outs). PostgreSQL sets a statement up for every execution, each node of its plan (ExecInitNode, the
    /// largest share of its samples in the two-node mandate bench), and the three fan-outs were most of this plan's nodes.
    /// </summary>
    private static readonly string CoveredSilently = CoveredSql(" AND NOT (SELECT listening FROM l)", "",
        "SELECT (SELECT remaining_minor FROM s), l.listening FROM l");

    // What this node's last covered payment saw: whether anyone listened. Only chooses the statement tried first.
    private volatile bool _listening;

    public override async Task<MandatePaymentRecord?> TryApproveCoveredAsync(MandateRecord mandate, MandateCharge charge, string amount, string? payee,
        ApprovalRecord approval, DecisionRecord decision, byte[]? cibaNotification, CoveredRowWriter? row, Func<MandatePaymentRecord, AuditEvent> audit,
        CancellationToken ct)
    {
        if (cibaNotification is not null || row is not null)
        {
            // A ping or push agent's notification, or a payment's or challenge's own row: a transaction of several statements.
            return await base.TryApproveCoveredAsync(mandate, charge, amount, payee, approval, decision, cibaNotification, row, audit, ct);
        }
        var digits = Common.Money.MinorUnits(mandate.Currency) ?? 0;
        // Replaced, inside the statement, by what the window has left, so the audit event states it as it committed; random,
        // so no text of the request (a payee) can be mistaken for it.
        var remaining = "~" + Guid.NewGuid().ToString("N") + "~";
        var placeholder = new MandatePaymentRecord(approval.Id, mandate.Id, amount, charge.AmountMinor, payee, charge.WindowStart, remaining, charge.Now);
        var e = audit(placeholder);
        object?[] args =
        [
            .. ApprovalSql.InsertArgs(approval),
            charge.MandateId, charge.AmountMinor, charge.WindowStart, charge.Now,
            decision.UserId, decision.DeviceId, (int)decision.Decision, decision.Evidence, decision.DecidedAt,
            amount, payee, (long)Math.Pow(10, digits), digits,
            db.Unsealed(e), "\"" + remaining + "\"", e.UserId,
        ];
        if (!_listening)
        {
            var silent = await db.PipelineAsync(PostgresDatabase.Batched(CoveredSilently, args),
                static async (r, ct) => await r.ReadAsync(ct) ? (Left: r.IsDBNull(0) ? (long?)null : r.GetInt64(0), Listening: r.GetBoolean(1))
                    : throw new InvalidOperationException("a covered payment's statement answered no row"), ct);
            if (!silent.Listening)
            {
                return silent.Left is { } left ? placeholder with { Remaining = Common.MinorUnits.Format(left, mandate.Currency) } : null;
            }
            _listening = true;
        }
        var approved = OutboxEvent.ForApproval(approval, ApprovalState.Approved, charge.Now)!;
        var spent = OutboxEvent.ForMandate(EventTypes.MandateSpent, approval.Id, mandate.UserId, mandate.ClientId, charge.Now);
        var exhausted = OutboxEvent.ForMandate(EventTypes.MandateExhausted, mandate.Id, mandate.UserId, mandate.ClientId, charge.Now);
        var announced = PostgresDatabase.Batched(Covered, [.. args, .. OutboxSql.Args(approved), .. OutboxSql.Args(spent), .. OutboxSql.Args(exhausted)]);
        var result = await db.PipelineAsync(announced,
            static async (r, ct) => await r.ReadAsync(ct) ? (Left: r.GetInt64(0), Queued: r.GetInt64(1), Listening: r.GetBoolean(2))
                : ((long Left, long Queued, bool Listening)?)null, ct);
        if (result is not { } done)
        {
            return null;
        }
        _listening = done.Listening;
        db.Outbox.Enqueued((int)done.Queued);
        return placeholder with { Remaining = Common.MinorUnits.Format(done.Left, mandate.Currency) };
    }
}
