using System.Globalization;
using System.Text.Json;

namespace Assent.Protocol.Approvals;

/// <summary>
/// The <c>authorization_details</c> of spending mandates and the payments they cover (docs/policies.md §6), read the same
/// way by the server that enforces a mandate and by a verifier that checks a token it approved. A mandate entry is
/// <c>{"type":"mandate","currency","per_payment","total","period","payees"?,"expires_at"}</c> with amounts as canonical
/// decimal strings; a payment entry is <c>{"type":"payment","amount","currency","payee"|"pay_to"|"recipient"}</c>.
/// </summary>
public static class MandateDetails
{
    public const string MandateType = "mandate";
    public const string PaymentType = "payment";

    public const string Currency = "currency";
    public const string PerPayment = "per_payment";
    public const string Total = "total";
    public const string Period = "period";
    public const string Payees = "payees";
    public const string ExpiresAt = "expires_at";
    public const string Amount = "amount";

    /// <summary>The fields a payment may name its payee with: its own, x402's <c>pay_to</c> (docs/http-api.md), and the spec's example <c>recipient</c>.</summary>
    public static readonly IReadOnlyList<string> PayeeFields = ["payee", "pay_to", "recipient"];

    /// <summary>The only entry of <paramref name="details"/> when it is of <paramref name="type"/>; null otherwise.</summary>
    public static JsonElement? Single(JsonElement? details, string type) =>
        details is { ValueKind: JsonValueKind.Array } a && a.GetArrayLength() == 1 && a[0] is { ValueKind: JsonValueKind.Object } e &&
        e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == type
            ? e
            : null;

    /// <summary>
    /// The payment's payee: every payee field it carries must name the same payee, or it has none (and no mandate
    /// that lists payees covers it).
    /// </summary>
    public static string? PayeeOf(JsonElement payment)
    {
        string? payee = null;
        foreach (var field in PayeeFields)
        {
            if (!payment.TryGetProperty(field, out var v))
            {
                continue;
            }
            if (v.ValueKind != JsonValueKind.String || (payee is not null && payee != v.GetString()))
            {
                return null;
            }
            payee = v.GetString();
        }
        return payee;
    }

    /// <summary>A plain decimal (JSON number or string, no sign or exponent) as <see cref="decimal"/>, never through a float.</summary>
    public static decimal? DecimalOf(JsonElement value)
    {
        var text = value.ValueKind switch
        {
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.String => value.GetString(),
            _ => null,
        };
        return text is not null && decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d) ? d : null;
    }

    /// <summary>
    /// Whether <paramref name="payment"/> lies within the limits <paramref name="mandate"/> states, at <paramref name="at"/>:
    /// same currency, a positive amount at most per_payment and total, a listed payee when payees are listed, before
    /// expires_at. Whether the period's budget still had room is the server's record, not the signature's; the token's
    /// <c>mandate.remaining</c> states what was left. Null when it fits; otherwise what does not.
    /// </summary>
    public static string? Misfit(JsonElement mandate, JsonElement payment, DateTimeOffset at)
    {
        var currency = Str(mandate, Currency);
        if (currency is null || Str(payment, Currency) != currency)
        {
            return "the payment's currency is not the mandate's";
        }
        var amount = payment.TryGetProperty(Amount, out var a) ? DecimalOf(a) : null;
        var perPayment = mandate.TryGetProperty(PerPayment, out var p) ? DecimalOf(p) : null;
        var total = mandate.TryGetProperty(Total, out var t) ? DecimalOf(t) : null;
        if (amount is not > 0m || perPayment is null || total is null)
        {
            return "the payment or the mandate has no plain positive amount";
        }
        if (amount > perPayment || amount > total)
        {
            return $"the payment of {amount} {currency} exceeds the mandate's limits ({perPayment} per payment, {total} in total)";
        }
        if (mandate.TryGetProperty(Payees, out var payees) && payees.ValueKind == JsonValueKind.Array &&
            (PayeeOf(payment) is not { } payee || !payees.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.String && e.GetString() == payee)))
        {
            return "the payment's payee is not one the mandate lists";
        }
        if (Str(mandate, ExpiresAt) is not { } expires ||
            !DateTimeOffset.TryParse(expires, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var until) || at >= until)
        {
            return "the mandate had expired";
        }
        return null;
    }

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
