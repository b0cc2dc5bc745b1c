namespace Assent.Server.Storage.Postgres;

/// <summary>
/// The approval hot path as single statements, each pipelined with the other one-statement writes of its group
/// commit: create, decide and redeem each take one round trip with their audit event and notice in the same
/// statement, instead of a transaction of several. Everything else is the shared <see cref="ApprovalStore"/>.
/// </summary>
internal sealed class PostgresApprovalStore(PostgresDatabase db) : ApprovalStore(db)
{
    private static readonly string Create =
        $"WITH a AS ({ApprovalSql.InsertSql}), p AS (INSERT INTO audit_pending(body, user_id) VALUES($17, $18)) SELECT pg_notify($19, $20)";

    // The insert only under the cap ($17); only if it happened, the audit event and the notice: a row when created.
    private static readonly string CreateCapped =
        $"WITH a AS ({ApprovalSql.InsertCappedSql} RETURNING id), p AS (INSERT INTO audit_pending(body, user_id) SELECT $18, $19 FROM a) " +
        "SELECT pg_notify($20, $21) FROM a";

    // The guarded update (see SettleSingle); only if it matched, the decision row, the audit event and the notice.
    private static readonly string Decide =
        $"WITH u AS ({SettleSingle}), " +
        $"d AS (INSERT INTO decisions({ApprovalSql.DecisionColumns}) SELECT $1, $5, $3, $2, $6, $4 FROM u), " +
        "p AS (INSERT INTO audit_pending(body, user_id) SELECT $7, $8 FROM u), " +
        $"o AS ({OutboxSql.FanOut("u", 12)} RETURNING 1) " +
        "SELECT pg_notify($9, $10 || u.user_id || $11), (SELECT count(*) FROM o) FROM u";

    private static readonly string Redeem =
        $"WITH r AS ({ApprovalSql.Redeem} RETURNING {ApprovalSql.Columns}), p AS (INSERT INTO audit_pending(body, user_id) SELECT $3, $4 FROM r) " +
        $"SELECT r.*, d.approval_id, d.user_id, d.device_id, d.decision, d.evidence, d.decided_at FROM r " +
        $"LEFT JOIN decisions d ON d.approval_id = r.id AND d.decision = {StateCodes.Approved} ORDER BY d.decided_at, d.device_id";

    private static readonly int ApprovalColumnCount = ApprovalSql.Columns.Split(',').Length;

    public override Task CreateAsync(ApprovalRecord a, AuditEvent audit, CancellationToken ct) =>
        a.EligibleUsers is { Count: > 0 }
            // A quorum request stores its eligible approvers too: a transaction of several statements.
            ? base.CreateAsync(a, audit, ct)
            : db.PipelineAsync(PostgresDatabase.Batched(Create, [.. ApprovalSql.InsertArgs(a), db.Unsealed(audit), audit.UserId, PostgresDatabase.Channel,
                db.Payload(ApprovalNotice.Created(a))]),
            static async (r, ct) => await r.ReadAsync(ct), ct);

    public override Task<bool> TryCreateAsync(ApprovalRecord a, int maxPending, byte[]? cibaNotification, AuditEvent audit, CancellationToken ct) =>
        cibaNotification is not null || a.EligibleUsers is { Count: > 0 }
            // A ping or push agent's request stores its notification too, a quorum request its approvers: a transaction of several statements.
            ? base.TryCreateAsync(a, maxPending, cibaNotification, audit, ct)
            : db.PipelineAsync(PostgresDatabase.Batched(CreateCapped, [.. ApprovalSql.InsertArgs(a), maxPending, db.Unsealed(audit), audit.UserId,
                PostgresDatabase.Channel, db.Payload(ApprovalNotice.Created(a))]),
            static async (r, ct) => await r.ReadAsync(ct), ct);

    public override async Task<ApprovalState?> TryDecideAsync(ApprovalRecord request, DecisionRecord d, long? signCount, AuditEvent audit, CancellationToken ct)
    {
        if (request.Quorum != 1 || signCount is not null || MandateIds.IsRequest(request) || request.EligibleUsers is { Count: > 0 })
        {
            // A passkey's counter, a quorum, a mandate (mandate.approved is announced too), or a request other approvers
            // hear settle (its notice names them): a transaction of several statements.
            return await base.TryDecideAsync(request, d, signCount, audit, ct);
        }
        // The notice names the request's user, which the statement itself reads (see PostgresDatabase.Payload).
        // The deliveries the decision announces are queued by the same statement (docs/storage.md §9).
        var announced = OutboxEvent.ForApproval(request, d.Decision, d.DecidedAt)!;
        var queued = await db.PipelineAsync(PostgresDatabase.Batched(Decide, [d.ApprovalId, (int)d.Decision, d.DeviceId, d.DecidedAt, d.UserId, d.Evidence,
                db.Unsealed(audit), audit.UserId, PostgresDatabase.Channel,
                $"{db.NodeId}|{ApprovalNotice.SettledKind}|{d.ApprovalId}|", "|" + StateNames.Of(d.Decision), .. OutboxSql.Args(announced)]),
            static async (r, ct) => await r.ReadAsync(ct) ? r.GetInt64(1) : -1, ct);
        db.Outbox.Enqueued((int)Math.Max(queued, 0));
        return queued >= 0 ? d.Decision : null;
    }

    public override Task<DecidedApproval?> TryRedeemAsync(string approvalId, long now, AuditEvent audit, CancellationToken ct) =>
        db.PipelineAsync(PostgresDatabase.Batched(Redeem, approvalId, now, db.Unsealed(audit), audit.UserId),
            static async (r, ct) =>
            {
                ApprovalRecord? approval = null;
                var decisions = new List<DecisionRecord>(1);
                while (await r.ReadAsync(ct))
                {
                    approval ??= ApprovalSql.Read(r);
                    if (!r.IsDBNull(ApprovalColumnCount))
                    {
                        decisions.Add(ApprovalSql.ReadDecision(r, ApprovalColumnCount));
                    }
                }
                return approval is null ? null : new DecidedApproval(approval, decisions);
            }, ct);
}
