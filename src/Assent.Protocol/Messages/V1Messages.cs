using System.Text.Json;
using System.Text.Json.Serialization;

namespace Assent.Protocol.Messages;

// The /v1 API for backends (docs/challenges.md, docs/webhooks.md): camelCase, as the services it stands in for spell it.
// Times are RFC 3339 UTC strings.

/// <summary>
/// <c>POST /v1/challenges</c>. <see cref="Amount"/> is a JSON number or string, read exactly (never as a float);
/// <see cref="Payee"/> who an amount goes to. <see cref="Mandate"/> asks the user for a spending mandate of the API key
/// instead (<c>{currency, per_payment, total, period, payees?, expires_at}</c>, docs/policies.md §6).
/// </summary>
public sealed record ChallengeCreateRequest(string? Action, string? UserId, bool? RequiresHuman = null, JsonElement? Amount = null, string? Currency = null,
    string? Message = null, JsonElement? Metadata = null, int? ExpiresIn = null, JsonElement? Quorum = null, string? Payee = null, JsonElement? Mandate = null);

/// <summary>What proves the human approved: the EdDSA token of docs/tokens.md §3 with its device evidence, the device and its kind.</summary>
public sealed record ChallengeAttestation(string Token, string Device, string Kind);

/// <summary>
/// A challenge. <see cref="Status"/> is <c>pending</c>, <c>approved</c>, <c>denied</c>, <c>expired</c>, <c>cancelled</c> or
/// <c>consumed</c>; <see cref="Attestation"/> is there once approved.
/// </summary>
public sealed record ChallengeResponse(string ChallengeId, string Status, string Action, string UserId, bool RequiresHuman, string? Amount, string? Currency,
    string? Message, JsonElement? Metadata, string CreatedAt, string ExpiresAt, string? DecidedAt = null, string? ConsumedAt = null,
    ChallengeAttestation? Attestation = null);

/// <summary><c>POST /v1/api-keys</c> (a signed-in human; their device approves).</summary>
public sealed record ApiKeyCreateRequest(string? Name, JsonElement? Scopes);

/// <summary>
/// An API key. <see cref="Key"/> (<c>sk_…</c>) is present once: in the answer that creates it. <see cref="Status"/> is
/// <c>pending</c> (its approval awaited), <c>active</c> or <c>revoked</c>.
/// </summary>
public sealed record ApiKeyResponse(string Id, string Status, string? Name = null, IReadOnlyList<string>? Scopes = null, string? Owner = null,
    string? Key = null, string? CreatedAt = null, string? LastUsedAt = null, string? RevokedAt = null, string? RequestId = null, string? ExpiresAt = null);

public sealed record ApiKeyList(IReadOnlyList<ApiKeyResponse> Keys);

/// <summary><c>POST /v1/webhooks</c>: a URL and the events it receives (names, <c>family.*</c> or <c>*</c>).</summary>
public sealed record WebhookCreateRequest(string? Url, IReadOnlyList<string>? Events);

/// <summary>A webhook endpoint; <see cref="Secret"/> (<c>whsec_…</c>) only in the answer that creates it. Status: <c>active</c>, <c>failing</c>, <c>disabled</c>.</summary>
public sealed record WebhookResponse(string Id, string Url, IReadOnlyList<string> Events, string Status, string CreatedAt, string? Secret = null,
    string? FailingSince = null, string? DisabledAt = null, string? DisabledReason = null);

public sealed record WebhookList(IReadOnlyList<WebhookResponse> Webhooks);

/// <summary>One delivery of one event to one endpoint. Status: <c>pending</c>, <c>delivered</c>, <c>failed</c>.</summary>
public sealed record DeliveryResponse(string Id, string EventId, string Type, string Subject, string Status, int Attempts, string CreatedAt,
    string? NextAttemptAt = null, string? LastAttemptAt = null, int? LastStatus = null, string? LastError = null, string? DeliveredAt = null);

/// <summary>A page of deliveries, newest first; <see cref="Before"/> continues the list.</summary>
public sealed record DeliveryList(IReadOnlyList<DeliveryResponse> Deliveries, string? Before = null);

/// <summary>
/// A policy to add (docs/policies.md §1): conditions (<see cref="Agent"/>, <see cref="Scope"/>, <see cref="Type"/>, an
/// amount range in <see cref="Currency"/>) and what a matching request needs: <see cref="Requires"/> <c>one</c>,
/// <c>quorum</c> (<see cref="Quorum"/> of <see cref="Approvers"/>, handles or user ids) or <c>deny</c>. Amounts are exact
/// decimals, a JSON number or a string.
/// </summary>
public sealed record PolicyCreateRequest(string? Name, int? Position = null, string? Agent = null, string? Scope = null, string? Type = null,
    string? Currency = null, JsonElement? AmountOver = null, JsonElement? AmountAtMost = null, string? Requires = null, int? Quorum = null,
    IReadOnlyList<string>? Approvers = null);

/// <summary>One version of a policy; <see cref="Approvers"/> are handles.</summary>
public sealed record PolicyResponse(string Id, string Name, int Version, int Position, string Requires, string CreatedAt, string? Agent = null,
    string? Scope = null, string? Type = null, string? Currency = null, string? AmountOver = null, string? AmountAtMost = null, int? Quorum = null,
    IReadOnlyList<string>? Approvers = null, string? RemovedAt = null);

/// <summary>Active policies in the order they are tried.</summary>
public sealed record PolicyList(IReadOnlyList<PolicyResponse> Policies);

/// <summary>A sample request: which policy would it meet? <see cref="AuthorizationDetails"/> is the RFC 9396 array.</summary>
public sealed record PolicyTestRequest(string? Agent, string? Scope = null, JsonElement? AuthorizationDetails = null);

/// <summary>The policy a sample request meets (none: one approver), and what it would need.</summary>
public sealed record PolicyTestResponse(string Requires, PolicyResponse? Policy = null);

/// <summary>Several approvers for one challenge (docs/challenges.md §2.1): <see cref="Required"/> of <see cref="Approvers"/> (handles, ids or DIDs).</summary>
public sealed record ChallengeQuorum(int? Required, IReadOnlyList<string>? Approvers);

/// <summary>The JSON contract of the /v1 messages.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(ChallengeCreateRequest))]
[JsonSerializable(typeof(ChallengeResponse))]
[JsonSerializable(typeof(ApiKeyCreateRequest))]
[JsonSerializable(typeof(ApiKeyResponse))]
[JsonSerializable(typeof(ApiKeyList))]
[JsonSerializable(typeof(WebhookCreateRequest))]
[JsonSerializable(typeof(WebhookResponse))]
[JsonSerializable(typeof(WebhookList))]
[JsonSerializable(typeof(DeliveryResponse))]
[JsonSerializable(typeof(DeliveryList))]
[JsonSerializable(typeof(PolicyCreateRequest))]
[JsonSerializable(typeof(PolicyResponse))]
[JsonSerializable(typeof(PolicyList))]
[JsonSerializable(typeof(PolicyTestRequest))]
[JsonSerializable(typeof(PolicyTestResponse))]
[JsonSerializable(typeof(ChallengeQuorum))]
public sealed partial class V1Json : JsonSerializerContext;
