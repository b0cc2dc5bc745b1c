using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// A payment an agent asked for (docs/payments.md): the approval request that carries it has the same id. What is
/// signed once approved is fixed here when the request is made, and the same fields are in the payload the human
/// approves: <see cref="AmountAtomic"/> of <see cref="Asset"/> on <see cref="Network"/> from <see cref="Wallet"/> to
/// <see cref="PayTo"/>, valid from <see cref="ValidAfter"/> to <see cref="ValidBefore"/> (Unix seconds), with
/// <see cref="Nonce"/>. <see cref="Offer"/> is the JSON the retry header repeats (the x402 requirement as offered).
/// </summary>
internal sealed record PaymentRecord(string Id, string ClientId, string UserId, string Protocol, string Network, string Asset, string Symbol, string PayTo,
    string Amount, string AmountAtomic, string Resource, string? Description, string Wallet, string Nonce, long ValidAfter, long ValidBefore, string Offer,
    long CreatedAt, string? Receipt = null, long? ReceiptAt = null);

/// <summary>A payment with its request (state, decision times; redeemed = signed).</summary>
internal sealed record PaymentView(PaymentRecord Payment, ApprovalRecord Approval)
{
    /// <summary>Whether <see cref="Grant"/> was read with the payment (in the same query); when false, it is not known here.</summary>
    public bool GrantRead { get; init; }

    /// <summary>What a spending mandate charged for the payment, when one approved it (docs/payments.md §11); read with the payment.</summary>
    public MandatePaymentRecord? Grant { get; init; }
}

internal interface IPaymentStore
{
    /// <summary>
    /// Stores the request and its payment together, unless the agent already has <paramref name="maxPending"/>
    /// unexpired requests pending for the user (counted in the insert's own statement); false then, nothing stored.
    /// </summary>
    Task<bool> TryCreateAsync(ApprovalRecord approval, PaymentRecord payment, int maxPending, AuditEvent audit, CancellationToken ct);

    Task<PaymentView?> FindAsync(string id, CancellationToken ct);

    /// <summary>Keeps the receipt the paid server returned, once; false when one is kept already.</summary>
    Task<bool> TryRecordReceiptAsync(string id, string receipt, long at, AuditEvent audit, CancellationToken ct);

    /// <summary>The newest payments of an agent (<paramref name="clientId"/>), else of a user (the payer), at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<PaymentView>> ListAsync(string? clientId, string? userId, int limit, CancellationToken ct);
}

internal sealed class PaymentStore(Database db) : IPaymentStore
{
    private const string Columns = "p.id, p.client_id, p.user_id, p.protocol, p.network, p.asset, p.symbol, p.pay_to, p.amount, p.amount_atomic, p.resource, " +
        "p.description, p.wallet, p.nonce, p.valid_after, p.valid_before, p.offer, p.created_at, p.receipt, p.receipt_at";

    /// <summary>
    /// The payment, its request and, when a mandate approved it, the mandate's payment row — one query for a page of payments,
    /// not one more per payment (a payment has at most one: <c>mandate_payments.approval_id</c> is its key).
    /// </summary>
    private static readonly string Select =
        $"SELECT {Columns}, {string.Join(", ", ApprovalSql.Columns.Split(", ").Select(c => "a." + c))}, " +
        $"{string.Join(", ", MandateStore.PaymentColumns.Split(", ").Select(c => "m." + c))} " +
        "FROM payments p JOIN approvals a ON a.id = p.id LEFT JOIN mandate_payments m ON m.approval_id = p.id ";

    /// <summary>Where the mandate's payment columns start: after the payment's 20 and the request's.</summary>
    private static readonly int GrantAt = 20 + ApprovalSql.Columns.Split(", ").Length;

    private static PaymentView Read(DbDataReader r) => new(
        new PaymentRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7),
            r.GetString(8), r.GetString(9), r.GetString(10), Rows.NullableString(r, 11), r.GetString(12), r.GetString(13), r.GetInt64(14), r.GetInt64(15),
            r.GetString(16), r.GetInt64(17), Rows.NullableString(r, 18), Rows.NullableLong(r, 19)),
        ApprovalSql.Read(r, 20))
    {
        GrantRead = true,
        Grant = r.IsDBNull(GrantAt) ? null : new MandatePaymentRecord(r.GetString(GrantAt), r.GetString(GrantAt + 1), r.GetString(GrantAt + 2),
            r.GetInt64(GrantAt + 3), Rows.NullableString(r, GrantAt + 4), r.GetInt64(GrantAt + 5), r.GetString(GrantAt + 6), r.GetInt64(GrantAt + 7)),
    };

    public Task<bool> TryCreateAsync(ApprovalRecord approval, PaymentRecord p, int maxPending, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.ExecAsync(ApprovalSql.InsertCappedSql, [.. ApprovalSql.InsertArgs(approval), maxPending]) != 1)
            {
                return false;
            }
            await ApprovalSql.InsertEligibleAsync(w, approval);
            await w.NotifyAsync(ApprovalNotice.Created(approval));
            await InsertAsync(w, p);
            return await w.AuditedAsync(audit);
        }, ct);

    /// <summary>The payment's row, written in the transaction of a mandate that covers its request (docs/payments.md §11).</summary>
    public static CoveredRowWriter Alongside(Func<ApprovalRecord, PaymentRecord> row) => async (w, approved) => await InsertAsync(w, row(approved));

    /// <summary>The payment's row, inside the caller's transaction (its request's, or a mandate's covering one).</summary>
    internal static ValueTask<int> InsertAsync(IWriteSession w, PaymentRecord p) =>
        w.ExecAsync(
            "INSERT INTO payments(id, client_id, user_id, protocol, network, asset, symbol, pay_to, amount, amount_atomic, resource, description, wallet, nonce, " +
            "valid_after, valid_before, offer, created_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            p.Id, p.ClientId, p.UserId, p.Protocol, p.Network, p.Asset, p.Symbol, p.PayTo, p.Amount, p.AmountAtomic, p.Resource, p.Description, p.Wallet,
            p.Nonce, p.ValidAfter, p.ValidBefore, p.Offer, p.CreatedAt);

    public Task<PaymentView?> FindAsync(string id, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync(Select + "WHERE p.id = $1", Read, id), ct);

    public Task<bool> TryRecordReceiptAsync(string id, string receipt, long at, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
            await w.ExecAsync("UPDATE payments SET receipt = $2, receipt_at = $3 WHERE id = $1 AND receipt IS NULL", id, receipt, at) == 1 &&
            await w.AuditedAsync(audit), ct);

    public Task<IReadOnlyList<PaymentView>> ListAsync(string? clientId, string? userId, int limit, CancellationToken ct) =>
        db.ReadAsync(s => clientId is not null
            ? s.AllAsync(Select + "WHERE p.client_id = $1 ORDER BY p.created_at DESC, p.id DESC LIMIT $2", Read, clientId, limit)
            : s.AllAsync(Select + "WHERE p.user_id = $1 ORDER BY p.created_at DESC, p.id DESC LIMIT $2", Read, userId, limit), ct);
}

/// <summary>The wallets and payments tables (docs/storage.md), one text for both engines.</summary>
internal static class PaymentSchema
{
    public static string Tables(string blob, string bigint) => $"""
        CREATE TABLE wallets(
            user_id TEXT PRIMARY KEY REFERENCES users(id),
            address TEXT NOT NULL UNIQUE,
            sealed_key {blob} NOT NULL,
            created_at {bigint} NOT NULL);
        CREATE TABLE payments(
            id TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            protocol TEXT NOT NULL,
            network TEXT NOT NULL,
            asset TEXT NOT NULL,
            symbol TEXT NOT NULL,
            pay_to TEXT NOT NULL,
            amount TEXT NOT NULL,
            amount_atomic TEXT NOT NULL,
            resource TEXT NOT NULL,
            description TEXT,
            wallet TEXT NOT NULL,
            nonce TEXT NOT NULL UNIQUE,
            valid_after {bigint} NOT NULL,
            valid_before {bigint} NOT NULL,
            offer TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            receipt TEXT,
            receipt_at {bigint});
        CREATE INDEX payments_client ON payments(client_id, created_at);
        CREATE INDEX payments_user ON payments(user_id, created_at);
        """;
}

/// <summary>Audit event types of payments (docs/payments.md §6).</summary>
internal static class PaymentAuditTypes
{
    public const string WalletCreated = "wallet.created";
    public const string PaymentSigned = "payment.signed";
    public const string PaymentReceipt = "payment.receipt";
    public const string PaymentRefused = "payment.refused";
}
