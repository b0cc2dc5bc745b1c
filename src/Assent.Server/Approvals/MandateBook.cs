using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Approvals;

/// <summary>A mandate request refused as asked (docs/policies.md §6), with what to fix; nothing is created.</summary>
internal sealed class MandateProblemException(string message) : ArgumentException(message);

/// <summary>The limits of a mandate request, checked, with amounts canonical and in minor units.</summary>
internal sealed record MandateTerms(string Currency, string PerPayment, string Total, long PerPaymentMinor, long TotalMinor, string Period,
    IReadOnlyList<string>? Payees, DateTimeOffset ExpiresAt);

/// <summary>What a request's single <c>payment</c> entry asks: an exact amount (canonical and in minor units), its currency and payee.</summary>
internal sealed record PaymentAsk(string Amount, long AmountMinor, string Currency, string? Payee);


/// <summary>
/// Spending mandates (docs/policies.md §6): limits an agent asks for, signed by the user's device like any request; later
/// payments within them are approved at once, the budget spent in the approval's own transaction. The internal API for
/// features that pay: <see cref="PaymentOf"/> reads what a request asks, <see cref="TryCoverAsync"/> approves it from a
/// mandate atomically or answers null (then a human decides).
/// </summary>
internal sealed class MandateBook(IMandateStore mandates, TimeProvider time)
{
    /// <summary>Most payees a mandate may list.</summary>
    public const int MaxPayees = 32;

    /// <summary>Longest a payee name may be.</summary>
    public const int MaxPayeeLength = 256;

    /// <summary>How far ahead a mandate may expire: it is renewed by asking again, never open-ended.</summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(366);

    // Covered payments this node approved, until their token is issued: the token then needs no read. Bounded; a miss reads.
    private readonly ConcurrentDictionary<string, MandateGrant> _grants = new(StringComparer.Ordinal);

    // The same for payments of /v1/payments, until their first answer is built (the answer at creation, usually).
    private readonly ConcurrentDictionary<string, MandatePaymentRecord> _payments = new(StringComparer.Ordinal);

    /// <summary>How long this node reuses the usable mandates it read for an agent and user (see <see cref="TryCoverAsync"/>).</summary>
    private static readonly TimeSpan UsableFor = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<(string ClientId, string UserId), UsableList> _usable = new();

    /// <summary>A usable mandate with what covering checks of it, read once: its payees, and whether a passkey signed it.</summary>
    private sealed record Usable(MandateRow Row, IReadOnlyList<string>? Payees, bool ByPasskey);

    private sealed record UsableList(IReadOnlyList<Usable> Mandates, long Until);

    /// <summary>The clock's now, Unix ms.</summary>
    public long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>A mandate's id follows from the request that asked for it: <c>mnd_X</c> for <c>apr_X</c>, so a verifier ties one to the other.</summary>
    public static string IdFor(string approvalId) => MandateIds.For(approvalId);

    public static bool IsMandateId(string id) => id.StartsWith(MandateIds.Prefix, StringComparison.Ordinal);

    /// <summary>
    /// The mandate a request's <c>authorization_details</c> asks for, checked (docs/policies.md §6), and the details
    /// rewritten canonically so that the payload the device signs states exactly the limits enforced. Null when the
    /// request asks for no mandate; <see cref="MandateProblemException"/> when it asks for one badly.
    /// </summary>
    public static (MandateTerms Terms, string Details)? ParseRequest(string? details, DateTimeOffset now)
    {
        if (details is null || !details.Contains("\"" + MandateDetails.MandateType + "\"", StringComparison.Ordinal))
        {
            return null;
        }
        using var doc = JsonDocument.Parse(details);
        var entries = doc.RootElement.EnumerateArray().ToList();
        var asks = entries.Count(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String &&
                                      t.GetString() == MandateDetails.MandateType);
        if (asks == 0)
        {
            return null;
        }
        if (entries.Count != 1)
        {
            throw new MandateProblemException("a mandate request carries its mandate alone: authorization_details must be exactly one entry of type 'mandate'");
        }
        var m = entries[0];
        var allowed = new[] { "type", MandateDetails.Currency, MandateDetails.PerPayment, MandateDetails.Total, MandateDetails.Period, MandateDetails.Payees,
            MandateDetails.ExpiresAt };
        if (m.EnumerateObject().Select(p => p.Name).FirstOrDefault(n => !allowed.Contains(n)) is { } unknown)
        {
            throw new MandateProblemException($"a mandate has no field '{Shorten(unknown)}'; it takes {string.Join(", ", allowed.Skip(1))}");
        }
        var currency = m.TryGetProperty(MandateDetails.Currency, out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : null;
        if (currency is null || Money.MinorUnits(currency) is null)
        {
            throw new MandateProblemException("currency is required: an ISO 4217 code such as USD");
        }
        var (perPayment, perPaymentMinor) = Limit(m, MandateDetails.PerPayment, currency);
        var (total, totalMinor) = Limit(m, MandateDetails.Total, currency);
        if (perPaymentMinor > totalMinor)
        {
            throw new MandateProblemException($"per_payment ({perPayment} {currency}) is more than total ({total} {currency}): no payment could use it all");
        }
        var period = m.TryGetProperty(MandateDetails.Period, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        if (!MandatePeriods.IsValid(period))
        {
            throw new MandateProblemException("period is required: 'day', 'week' or 'month' (the total renews each UTC period), or 'none' (the total is for the mandate's life)");
        }
        List<string>? payees = null;
        if (m.TryGetProperty(MandateDetails.Payees, out var list) && list.ValueKind != JsonValueKind.Null)
        {
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() is 0 or > MaxPayees ||
                list.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || e.GetString()!.Trim().Length == 0 || e.GetString()!.Length > MaxPayeeLength))
            {
                throw new MandateProblemException($"payees, when given, is 1 to {MaxPayees} payee names (strings of at most {MaxPayeeLength} characters)");
            }
            payees = [.. list.EnumerateArray().Select(e => e.GetString()!).Distinct(StringComparer.Ordinal)];
        }
        var expiresText = m.TryGetProperty(MandateDetails.ExpiresAt, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        if (expiresText is null || !DateTimeOffset.TryParse(expiresText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var expires))
        {
            throw new MandateProblemException("expires_at is required: an RFC 3339 time, e.g. 2026-12-31T00:00:00Z");
        }
        expires = new DateTimeOffset(expires.UtcDateTime.Ticks - expires.UtcDateTime.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        if (expires <= now)
        {
            throw new MandateProblemException("expires_at is in the past: a mandate must still be valid when the user approves it");
        }
        if (expires > now + MaxLifetime)
        {
            throw new MandateProblemException($"expires_at is more than {MaxLifetime.TotalDays:0} days ahead; ask again for a new mandate when it ends");
        }
        var terms = new MandateTerms(currency, perPayment, total, perPaymentMinor, totalMinor, period!, payees, expires);
        return (terms, Write(terms));
    }

    /// <summary>The request's payment when its <c>authorization_details</c> is exactly one well-formed <c>payment</c> entry; null otherwise.</summary>
    public static PaymentAsk? PaymentOf(string? details)
    {
        if (details is null || !details.Contains("\"" + MandateDetails.PaymentType + "\"", StringComparison.Ordinal))
        {
            return null;
        }
        using var doc = JsonDocument.Parse(details);
        if (MandateDetails.Single(doc.RootElement, MandateDetails.PaymentType) is not { } payment ||
            !payment.TryGetProperty(MandateDetails.Currency, out var c) || c.ValueKind != JsonValueKind.String || !payment.TryGetProperty(MandateDetails.Amount, out var a))
        {
            return null;
        }
        var currency = c.GetString()!;
        var (amount, problem) = Money.Parse(a, currency);
        return problem is null && MinorUnits.Of(amount!, currency) is { } minor and > 0 ? new PaymentAsk(amount!, minor, currency, MandateDetails.PayeeOf(payment)) : null;
    }

    /// <summary>The row of a mandate request, stored before that request (it approves nothing until the request is approved).</summary>
    public Task AddAsync(ApprovalRecord request, MandateTerms t, CancellationToken ct) =>
        mandates.AddAsync(new MandateRecord(IdFor(request.Id), request.Id, request.ClientId, request.UserId, t.Currency, t.PerPayment, t.Total, t.PerPaymentMinor,
            t.TotalMinor, t.Period, t.Payees is null ? null : JsonSerializer.Serialize(t.Payees, MandateListJson.Default.IReadOnlyListString),
            t.ExpiresAt.ToUnixTimeMilliseconds(), request.CreatedAt), ct);

    /// <summary>
    /// Approves <paramref name="pending"/> (built as a request, not stored) from the first usable mandate of its agent and user
    /// whose limits fit <paramref name="payment"/> and whose budget still has room, in one transaction with the spending; the
    /// approved request, or null when no mandate covers it (nothing stored: ask a human).
    /// </summary>
    /// <param name="companion">For a payment of <c>/v1/payments</c> or a challenge: its own row, stored in the same transaction.</param>
    /// <param name="requiresUserVerification">Only a mandate a passkey signed (WebAuthn, user verified) may cover it.</param>
    public async Task<ApprovalRecord?> TryCoverAsync(ApprovalRecord pending, PaymentAsk payment, byte[]? cibaNotification, CoveredRowWriter? companion,
        bool requiresUserVerification, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        var key = (pending.ClientId, pending.UserId);
        // The usable mandates as this node last read them (their limits never change); the guarded update decides on the row
        // itself. When none of them covers it, they are read afresh once: a mandate approved meanwhile is never missed.
        var fresh = !_usable.TryGetValue(key, out var cached) || cached.Until < Environment.TickCount64;
        var list = fresh ? await ReadUsableAsync(key, nowMs, ct) : cached!.Mandates;
        while (true)
        {
            foreach (var usable in list)
            {
                if (await TryCoverWithAsync(usable, pending, payment, cibaNotification, companion, requiresUserVerification, now, ct) is { } approved)
                {
                    return approved;
                }
            }
            if (fresh)
            {
                return null;
            }
            (fresh, list) = (true, await ReadUsableAsync(key, nowMs, ct));
        }
    }

    private async Task<IReadOnlyList<Usable>> ReadUsableAsync((string ClientId, string UserId) key, long nowMs, CancellationToken ct)
    {
        var list = (await mandates.ListUsableAsync(key.ClientId, key.UserId, nowMs, ct))
            .Where(r => r.ApprovedBy == key.UserId)
            .Select(r => new Usable(r, r.Mandate.Payees is null ? null : JsonSerializer.Deserialize(r.Mandate.Payees, MandateListJson.Default.IReadOnlyListString) ?? [],
                SignedByPasskey(r.Evidence!)))
            .ToList();
        if (_usable.Count > 10_000)
        {
            _usable.Clear();
        }
        if (list.Count > 0)
        {
            _usable[key] = new UsableList(list, Environment.TickCount64 + (long)UsableFor.TotalMilliseconds);
        }
        else
        {
            _usable.TryRemove(key, out _);
        }
        return list;
    }

    private async Task<ApprovalRecord?> TryCoverWithAsync(Usable usable, ApprovalRecord pending, PaymentAsk payment, byte[]? cibaNotification,
        CoveredRowWriter? companion, bool requiresUserVerification, DateTimeOffset now, CancellationToken ct)
    {
        var (row, payees, byPasskey) = usable;
        var m = row.Mandate;
        if (m.Currency != payment.Currency || payment.AmountMinor > m.PerPaymentMinor || payment.AmountMinor > m.TotalMinor || !PayeeListed(payees, payment.Payee) ||
            m.ExpiresAt <= now.ToUnixTimeMilliseconds() || (requiresUserVerification && !byPasskey))
        {
            return null;
        }
        var nowMs = now.ToUnixTimeMilliseconds();
        var approved = pending with { State = ApprovalState.Approved, DecidedAt = nowMs };
        // The mandate decided: the decision row names it, and its evidence is the device's signature over the mandate.
        var decision = new DecisionRecord(approved.Id, row.ApprovedBy!, m.Id, ApprovalState.Approved, row.Evidence!, nowMs);
        var charge = new MandateCharge(m.Id, payment.AmountMinor, MandatePeriods.WindowStart(m.Period, now), nowMs);
        var paid = await mandates.TryApproveCoveredAsync(m, charge, payment.Amount, payment.Payee, approved, decision, cibaNotification, companion,
            p => new AuditEvent(AuditTypes.ApprovalApprovedByMandate, approved.UserId, m.Id, approved.Id, new Dictionary<string, string>
            {
                ["mandate"] = m.Id, ["amount"] = p.Amount, ["currency"] = m.Currency, ["remaining"] = p.Remaining, ["payee"] = p.Payee ?? "",
            }), ct);
        if (paid is null)
        {
            return null;
        }
        if (_grants.Count > 10_000 || _payments.Count > 10_000)
        {
            _grants.Clear();
            _payments.Clear();
        }
        if (pending.Kind != ApprovalKinds.Payment)
        {
            _grants[approved.Id] = new MandateGrant(m.Id, paid.Remaining);
        }
        else
        {
            _payments[approved.Id] = paid;
        }
        return approved;
    }

    /// <summary>The mandate behind an approved request, when a mandate approved it; null for a human's approval.</summary>
    public async Task<MandateGrant?> GrantOfAsync(DecidedApproval decided, CancellationToken ct)
    {
        if (decided.Decisions is not [{ DeviceId: var by }] || !IsMandateId(by))
        {
            return null;
        }
        if (_grants.TryRemove(decided.Approval.Id, out var grant))
        {
            return grant;
        }
        return await mandates.FindPaymentAsync(decided.Approval.Id, ct) is { } p ? new MandateGrant(p.MandateId, p.Remaining) : null;
    }

    /// <summary>What a mandate charged for a <c>/v1/payments</c> payment, when one approved it; null for a human's approval.</summary>
    public async Task<MandatePaymentRecord?> PaymentGrantAsync(string approvalId, CancellationToken ct) =>
        _payments.TryRemove(approvalId, out var paid) ? paid : await mandates.FindPaymentAsync(approvalId, ct);

    /// <summary>
    /// What a <c>mandate.*</c> event is about (docs/webhooks.md §2): the mandate named by <paramref name="subject"/>, or for
    /// <c>mandate.spent</c>, whose subject is the payment's request, that payment and its mandate.
    /// </summary>
    public async Task<(MandateRow Mandate, MandatePaymentRecord? Payment)?> EventSubjectAsync(string subject, CancellationToken ct)
    {
        if (IsMandateId(subject))
        {
            return await mandates.FindAsync(subject, ct) is { } row ? (row, null) : null;
        }
        return await mandates.FindPaymentAsync(subject, ct) is { } paid && await mandates.FindAsync(paid.MandateId, ct) is { } of ? (of, paid) : null;
    }

    public Task<IReadOnlyList<MandateRow>> ListAsync(string userId, CancellationToken ct) => mandates.ListForUserAsync(userId, 200, ct);

    /// <summary>The user's mandate and its latest payments; null when it is not theirs.</summary>
    public async Task<(MandateRow Row, IReadOnlyList<MandatePaymentRecord> Payments)?> ShowAsync(string id, string userId, CancellationToken ct)
    {
        if (id.Length > 64 || !IsMandateId(id) || await mandates.FindAsync(id, ct) is not { } row || row.Mandate.UserId != userId)
        {
            return null;
        }
        return (row, await mandates.ListPaymentsAsync(id, 500, ct));
    }

    /// <summary>Revokes the user's mandate, audited; false when it is not theirs or already revoked. Payments after this commits go to a human.</summary>
    public Task<bool> RevokeAsync(string id, string userId, string actor, CancellationToken ct) =>
        id.Length > 64 || !IsMandateId(id)
            ? Task.FromResult(false)
            : mandates.TryRevokeAsync(id, userId, time.GetUtcNow().ToUnixTimeMilliseconds(), new AuditEvent(AuditTypes.MandateRevoked, userId, actor, id), ct);

    /// <summary>What the current window has left of the total, as canonical decimal text.</summary>
    public string Remaining(MandateRecord m)
    {
        var window = MandatePeriods.WindowStart(m.Period, time.GetUtcNow());
        var spent = m.WindowStart == window ? m.WindowSpent : 0;
        return MinorUnits.Format(Math.Max(0, m.TotalMinor - spent), m.Currency);
    }

    /// <summary>What the current window has spent, as canonical decimal text.</summary>
    public string SpentInWindow(MandateRecord m) =>
        MinorUnits.Format(m.WindowStart == MandatePeriods.WindowStart(m.Period, time.GetUtcNow()) ? m.WindowSpent : 0, m.Currency);

    /// <summary>
    /// Whether the mandate lists the payee (or lists none). Names compare exactly; EVM addresses (a payment's <c>pay_to</c>)
    /// compare without case, since EIP-55 case is only a checksum of the same address (docs/payments.md §3).
    /// </summary>
    private static bool PayeeListed(IReadOnlyList<string>? payees, string? payee) =>
        payees is null || (payee is not null &&
                           payees.Any(p => p == payee || (IsEvmAddress(p) && IsEvmAddress(payee) && string.Equals(p, payee, StringComparison.OrdinalIgnoreCase))));

    /// <summary>Whether the mandate's evidence is a passkey's assertion: only a passkey proves user verification (docs/challenges.md §2.1).</summary>
    private static bool SignedByPasskey(string evidence)
    {
        using var doc = JsonDocument.Parse(evidence);
        return doc.RootElement.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String && k.GetString() == DeviceKinds.WebAuthn;
    }

    private static bool IsEvmAddress(string s) => s.Length == 42 && s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && !s.AsSpan(2).ContainsAnyExcept(HexDigits);

    private static readonly SearchValues<char> HexDigits = SearchValues.Create("0123456789abcdefABCDEF");

    private static (string Amount, long Minor) Limit(JsonElement m, string name, string currency)
    {
        if (!m.TryGetProperty(name, out var value))
        {
            throw new MandateProblemException($"{name} is required: an exact decimal in {currency}, e.g. \"5.00\"");
        }
        if (value.ValueKind == JsonValueKind.Object)
        {
            // {amount, currency}: accepted when its currency is the mandate's, for one limit in another currency could never be compared.
            var own = value.TryGetProperty(MandateDetails.Currency, out var oc) && oc.ValueKind == JsonValueKind.String ? oc.GetString() : null;
            if (own != currency)
            {
                throw new MandateProblemException($"{name} is in {own ?? "no currency"} but the mandate is in {currency}: every limit is in the mandate's currency");
            }
            value = value.TryGetProperty(MandateDetails.Amount, out var inner) ? inner : default;
        }
        var (amount, problem) = Money.Parse(value, currency);
        if (problem is not null)
        {
            throw new MandateProblemException($"{name}: {problem}");
        }
        if (MinorUnits.Of(amount!, currency) is not { } minor)
        {
            throw new MandateProblemException($"{name} is too large");
        }
        if (minor <= 0)
        {
            throw new MandateProblemException($"{name} must be more than zero: a mandate of nothing would approve nothing");
        }
        return (amount!, minor);
    }

    /// <summary>The canonical mandate entry, fields in a fixed order: what the device signs and the verifier re-reads.</summary>
    private static string Write(MandateTerms t)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString("type", MandateDetails.MandateType);
            w.WriteString(MandateDetails.Currency, t.Currency);
            w.WriteString(MandateDetails.PerPayment, t.PerPayment);
            w.WriteString(MandateDetails.Total, t.Total);
            w.WriteString(MandateDetails.Period, t.Period);
            if (t.Payees is not null)
            {
                w.WriteStartArray(MandateDetails.Payees);
                foreach (var p in t.Payees)
                {
                    w.WriteStringValue(p);
                }
                w.WriteEndArray();
            }
            w.WriteString(MandateDetails.ExpiresAt, t.ExpiresAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteEndObject();
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}

[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyList<string>))]
internal sealed partial class MandateListJson : System.Text.Json.Serialization.JsonSerializerContext;
