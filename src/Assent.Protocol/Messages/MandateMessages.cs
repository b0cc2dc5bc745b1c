using System.Text.Json;
using System.Text.Json.Serialization;

namespace Assent.Protocol.Messages;

// Spending mandates (docs/policies.md §6, docs/http-api.md): snake_case, as the spec names the limits. Times are RFC 3339 UTC.

/// <summary>
/// <c>POST /v1/mandates</c> (the agent, with its client credentials): the limits it asks <see cref="User"/> (handle or DID) to
/// sign. Amounts are exact decimals (JSON number or string) in <see cref="Currency"/>.
/// </summary>
public sealed record MandateCreateRequest(string? User, string? Currency, JsonElement? PerPayment, JsonElement? Total, string? Period, JsonElement? Payees,
    string? ExpiresAt, string? BindingMessage = null, int? RequestedExpiry = null);

/// <summary>The mandate asked for: pending until the user approves on a device. Poll <c>/oauth/token</c> with <see cref="AuthReqId"/> (CIBA) for the outcome.</summary>
public sealed record MandateCreated(string Id, string Status, string AuthReqId, int ExpiresIn, int Interval);

/// <summary>One payment a mandate approved, and what its window had left afterwards.</summary>
public sealed record MandatePayment(string ApprovalId, string Amount, string? Payee, string Remaining, string CreatedAt);

/// <summary>
/// A mandate as its user sees it. <see cref="Status"/>: <c>pending</c> (awaiting the device), <c>active</c>, <c>revoked</c>,
/// <c>expired</c>, or <c>refused</c> (its request was denied or lapsed). <see cref="Spent"/> and <see cref="Remaining"/> are
/// for the current period; <see cref="SpentTotal"/> is over the mandate's life.
/// </summary>
public sealed record MandateResponse(string Id, string Status, string ClientId, string Currency, string PerPayment, string Total, string Period,
    IReadOnlyList<string>? Payees, string ExpiresAt, string Spent, string Remaining, string SpentTotal, int PaymentCount, string CreatedAt, string? RevokedAt,
    string ApprovalId, IReadOnlyList<MandatePayment>? Payments = null);

public sealed record MandateList(IReadOnlyList<MandateResponse> Mandates);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MandateCreateRequest))]
[JsonSerializable(typeof(MandateCreated))]
[JsonSerializable(typeof(MandateResponse))]
[JsonSerializable(typeof(MandateList))]
public sealed partial class MandateJson : JsonSerializerContext;
