using System.Text.Json;
using System.Text.Json.Serialization;

namespace Assent.Protocol.Messages;

// Agent payments (docs/payments.md, docs/http-api.md §18): camelCase like the rest of /v1. Times are RFC 3339 UTC strings.

/// <summary>
/// <c>POST /v1/payments</c>: the HTTP 402 an agent received, as it received it. <see cref="Headers"/> is an object of
/// header name to a string or an array of strings; <see cref="Body"/> the body as text. <see cref="Max"/> is the most
/// the agent will pay, a decimal in the asset's units (e.g. <c>"0.50"</c> USDC): anything above is refused before any approval.
/// </summary>
public sealed record PaymentCreateRequest(string? Url, int? Status, JsonElement? Headers = null, string? Body = null, string? Method = null,
    string? Max = null);

/// <summary>The header to retry the paid request with (e.g. <c>PAYMENT-SIGNATURE</c>), once the payment is approved.</summary>
public sealed record PaymentHeader(string Name, string Value);

/// <summary>
/// A payment. <see cref="Status"/> is <c>pending</c>, <c>approved</c> (with <see cref="Header"/>), <c>denied</c>,
/// <c>expired</c>, <c>cancelled</c> or <c>paid</c> (approved, and the paid server's receipt was posted back).
/// <see cref="Amount"/> is in the asset's units (<see cref="Currency"/>, e.g. USDC); <see cref="AmountAtomic"/> in its smallest unit.
/// <see cref="Mandate"/> is set when a spending mandate approved it with no human (docs/policies.md §6).
/// </summary>
public sealed record PaymentResponse(string PaymentId, string Status, string Protocol, string Amount, string Currency, string AmountAtomic, string Asset,
    string Network, string PayTo, string From, string Resource, string CreatedAt, string ExpiresAt, string ValidBefore, string? Description = null,
    string? DecidedAt = null, PaymentHeader? Header = null, string? Receipt = null, string? Agent = null, PaymentMandate? Mandate = null);

/// <summary>
/// The spending mandate that approved a payment (docs/policies.md §6): its id, what the payment was charged in the
/// mandate's currency (<see cref="Charged"/>, e.g. <c>"0.01"</c> USD) and what the mandate's period had left after it.
/// </summary>
public sealed record PaymentMandate(string Id, string Charged, string Remaining);

/// <summary><c>POST /v1/payments/{id}/receipt</c>: the receipt header the paid server answered with (<c>PAYMENT-RESPONSE</c> or <c>X-PAYMENT-RESPONSE</c>).</summary>
public sealed record PaymentReceiptRequest(string? Name, string? Value);

/// <summary>The newest payments first.</summary>
public sealed record PaymentList(IReadOnlyList<PaymentResponse> Payments);

/// <summary>A network the wallet pays on, with the assets (symbols) it pays in there.</summary>
public sealed record WalletNetwork(string Network, string Name, long ChainId, IReadOnlyList<string> Assets);

/// <summary>A user's payment wallet: its address (EIP-55) and the networks payments may use. The key never leaves the server.</summary>
public sealed record WalletResponse(string Address, IReadOnlyList<WalletNetwork> Networks, string CreatedAt, string UserId);

/// <summary>The JSON contract of the payment messages.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(PaymentCreateRequest))]
[JsonSerializable(typeof(PaymentResponse))]
[JsonSerializable(typeof(PaymentReceiptRequest))]
[JsonSerializable(typeof(PaymentList))]
[JsonSerializable(typeof(WalletResponse))]
public sealed partial class PaymentJson : JsonSerializerContext;
