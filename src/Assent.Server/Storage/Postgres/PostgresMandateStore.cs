namespace Assent.Server.Storage.Postgres;

/// <summary>
/// A covered payment as one statement (docs/policies.md §6, docs/storage.md §5): the guarded spend of the mandate's budget
/// and, only if it matched, the approved request, its decision, the mandate's payment row, the audit event and the
/// deliveries, pipelined with the other one-statement writes of this node's group commit. A batch then holds the
/// mandate's row lock for one round trip and its commit, not for a transaction of several statements per payment: the
/// nodes spending one mandate take turns per batch, and each re-checks the guard against the row the other committed
/// (PostgreSQL's READ COMMITTED re-evaluates an UPDATE's WHERE on the row version that made it wait).
/// </summary>
internal sealed class PostgresMandateStore(PostgresDatabase db) : MandateStore(db)
{
    private static readonly string Covered =
        $"WITH s AS ({SpendSql(17)} RETURNING total_minor - window_spent AS remaining_minor), " +
        "r AS (SELECT round(s.remaining_minor::numeric / $28, $29)::text AS remaining FROM s), " +
        "z AS (SELECT 1 FROM s WHERE s.remaining_minor = 0), " +
        "a AS (INSERT INTO approvals(id, handle_hash, kind, client_id, user_id, scope, binding_message, authorization_details, resource, payload, state, " +
        "created_at, expires_at, quorum, approvers, policy) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM s), " +
        $"d AS (INSERT INTO decisions({ApprovalSql.DecisionColumns}) SELECT $1, $21, $22, $23, $24, $25 FROM s), " +
        $"m AS (INSERT INTO mandate_payments({PaymentColumns}) SELECT $1, $17, $26, $18, $27, $19, r.remaining, $20 FROM r), " +
        "p AS (INSERT INTO audit_pending(body, user_id) SELECT convert_to(replace(convert_from($30, 'UTF8'), $31, '\"' || r.remaining || '\"'), 'UTF8'), $32 FROM r), " +
        $"o1 AS ({OutboxSql.FanOut("s", 33)} RETURNING 1), " +
        $"o2 AS ({OutboxSql.FanOut("s", 41)} RETURNING 1), " +
        $"o3 AS ({OutboxSql.FanOut("z", 49)} RETURNING 1) " +
        "SELECT s.remaining_minor, (SELECT count(*) FROM o1) + (SELECT count(*) FROM o2) + (SELECT count(*) FROM o3) FROM s";

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
        var approved = OutboxEvent.ForApproval(approval, ApprovalState.Approved, charge.Now)!;
        var spent = OutboxEvent.ForMandate(EventTypes.MandateSpent, approval.Id, mandate.UserId, mandate.ClientId, charge.Now);
        var exhausted = OutboxEvent.ForMandate(EventTypes.MandateExhausted, mandate.Id, mandate.UserId, mandate.ClientId, charge.Now);
        object?[] args =
        [
            .. ApprovalSql.InsertArgs(approval),
            charge.MandateId, charge.AmountMinor, charge.WindowStart, charge.Now,
            decision.UserId, decision.DeviceId, (int)decision.Decision, decision.Evidence, decision.DecidedAt,
            amount, payee, (long)Math.Pow(10, digits), digits,
            db.Unsealed(e), "\"" + remaining + "\"", e.UserId,
            .. OutboxSql.Args(approved), .. OutboxSql.Args(spent), .. OutboxSql.Args(exhausted),
        ];
        var result = await db.PipelineAsync(PostgresDatabase.Batched(Covered, args),
            static async (r, ct) => await r.ReadAsync(ct) ? (Left: r.GetInt64(0), Queued: r.GetInt64(1)) : ((long Left, long Queued)?)null, ct);
        if (result is not { } done)
        {
            return null;
        }
        db.Outbox.Enqueued((int)done.Queued);
        return placeholder with { Remaining = Common.MinorUnits.Format(done.Left, mandate.Currency) };
    }
}
