using System.Text.Json;
using System.Text.Json.Serialization;

namespace Assent.Protocol.Messages;

// Every message the server and its clients (SDK, CLI) exchange, defined once for both sides: snake_case members,
// absent rather than null. docs/http-api.md describes each where its endpoint is.

/// <summary>OpenID Connect Discovery 1.0 §3: where everything is and what the server supports (docs/http-api.md §4.1).</summary>
public sealed record DiscoveryDocument(
    string Issuer,
    string JwksUri,
    string TokenEndpoint,
    string BackchannelAuthenticationEndpoint,
    string DeviceAuthorizationEndpoint,
    string RevocationEndpoint,
    string UserinfoEndpoint,
    IReadOnlyList<string> GrantTypesSupported,
    IReadOnlyList<string> BackchannelTokenDeliveryModesSupported,
    bool BackchannelUserCodeParameterSupported,
    IReadOnlyList<string> TokenEndpointAuthMethodsSupported,
    IReadOnlyList<string> IdTokenSigningAlgValuesSupported,
    IReadOnlyList<string> AuthorizationDetailsTypesSupported,
    IReadOnlyList<string> ScopesSupported,
    IReadOnlyList<string> ResponseTypesSupported,
    IReadOnlyList<string> SubjectTypesSupported,
    IReadOnlyList<string> ClaimsSupported,
    string? AuthorizationEndpoint = null,
    string? EndSessionEndpoint = null,
    IReadOnlyList<string>? CodeChallengeMethodsSupported = null,
    IReadOnlyList<string>? ResponseModesSupported = null,
    IReadOnlyList<string>? PromptValuesSupported = null,
    IReadOnlyList<string>? AcrValuesSupported = null,
    bool? AuthorizationResponseIssParameterSupported = null);

/// <summary>RFC 6749 §5.2 error response, on every OAuth endpoint.</summary>
public sealed record OAuthErrorBody(string Error, string? ErrorDescription);

/// <summary>CIBA Core §7.3: the backchannel authentication request was accepted; <c>interval</c> is optional there.</summary>
public sealed record BcAuthorizeResponse(string AuthReqId, int ExpiresIn, int? Interval);

/// <summary>RFC 6749 §5.1 token response; <see cref="AuthorizationDetails"/> per RFC 9396 §7.</summary>
public sealed record TokenResponse(
    string AccessToken,
    string TokenType,
    int ExpiresIn,
    string? Scope,
    string? IdToken = null,
    string? RefreshToken = null,
    JsonElement? AuthorizationDetails = null,
    VaultReleaseResult? VaultRelease = null);

/// <summary>RFC 8628 §3.2.</summary>
public sealed record DeviceAuthorizationResponse(string DeviceCode, string UserCode, string VerificationUri, string VerificationUriComplete,
    int ExpiresIn, int Interval);

/// <summary>A signed-in human claims the RFC 8628 user code their terminal shows (docs/http-api.md §7.2).</summary>
public sealed record DeviceLoginRequest(string? UserCode);

/// <summary>OpenID Connect Core §5.3.2, with the members of docs/http-api.md §8.2.</summary>
public sealed record UserInfoResponse(string Sub, string Scope, string ClientId, string? PreferredUsername);

/// <summary><c>POST /agents</c>: <see cref="Scopes"/> is an array of strings or one space-separated string.</summary>
public sealed record AgentRegistrationRequest(string? Name, JsonElement? Scopes);

/// <summary><c>POST /agents</c> (docs/http-api.md §9.1): the secret appears exactly once, in the answer that created the agent.</summary>
public sealed record AgentRegistrationResponse(string RequestId, string Status, string? ClientId = null, string? ClientSecret = null,
    string? Name = null, string? Scopes = null, string? Owner = null, long? ExpiresAt = null);

/// <summary>An agent's owner asks another user to let the agent ask them (docs/http-api.md §9.3).</summary>
public sealed record ConsentRequestBody(string? User);

/// <summary>
/// docs/http-api.md §9.3: where an owner's request for another user's consent stands. <see cref="User"/> is the handle of the
/// user asked; <see cref="Status"/> is pending, granted or revoked.
/// </summary>
public sealed record ConsentRequestResponse(string RequestId, string Status, string ClientId, string AgentName, string User, long? ExpiresAt = null);

/// <summary>One consent of the user's (docs/http-api.md §10.8): which agent, whose, since when.</summary>
public sealed record ConsentView(string ClientId, string AgentName, string? Owner, long CreatedAt, long? RevokedAt, bool Active, string ApprovalId);

public sealed record ConsentList(IReadOnlyList<ConsentView> Consents);

/// <summary>An Ed25519 device enrols with a one-time code and proves it holds the key (docs/http-api.md §10.1).</summary>
public sealed record EnrollRequest(string? Code, string? PublicKey, string? Name, string? Proof);

public sealed record EnrollResponse(string DeviceId, string UserId, string UserDid, string Handle, string Issuer);

/// <summary>
/// A request as an approver's device shows it (docs/http-api.md §10.2). <see cref="ClientOwner"/> is the handle of the
/// agent's owner, so the approver sees whose agent asks; none for requests Assent raises itself. <see cref="Payload"/>
/// is the base64url approval payload: what a device must show and signs, the rest is the server's summary of it.
/// </summary>
public sealed record PendingApproval(
    string Id,
    string Kind,
    string ClientId,
    string ClientName,
    string? ClientOwner,
    string Scope,
    string? BindingMessage,
    JsonElement? AuthorizationDetails,
    long CreatedAt,
    long ExpiresAt,
    string Payload,
    string? State = null,
    string? Resource = null,
    long? DecidedAt = null,
    string? Policy = null,
    QuorumProgress? Quorum = null);

/// <summary>
/// Where a quorum request stands (docs/policies.md §3): <see cref="Required"/> of <see cref="Of"/> distinct users must
/// approve; <see cref="Approved"/> and <see cref="Waiting"/> are handles. Shown as "1 of 2 approved, waiting for bob".
/// </summary>
public sealed record QuorumProgress(int Required, int Of, IReadOnlyList<string> Approved, IReadOnlyList<string> Waiting, IReadOnlyList<string> Denied);

public sealed record PendingList(IReadOnlyList<PendingApproval> Approvals);

/// <summary>
/// A decision (docs/http-api.md §10.4): an Ed25519 device sends <c>device_id</c> and its signature; a passkey sends its
/// assertion (<c>authenticator_data</c>, <c>client_data_json</c>, <c>signature</c>) and names itself by <c>device_id</c>
/// or <c>credential_id</c>.
/// </summary>
/// <remarks>Approving a <c>vault_release</c> also sends <see cref="VaultRelease"/>: the item key re-wrapped to the agent's key (docs/vault.md §4).</remarks>
public sealed record DecisionRequest(string? DeviceId, string? Decision, string? Signature, string? AuthenticatorData = null, string? ClientDataJson = null,
    string? CredentialId = null, string? VaultRelease = null);

/// <summary>The state of a request after a decision was taken; also the data of a stream's <c>settled</c> event.</summary>
public sealed record DecisionResponse(string Id, string State);

/// <summary>A device of the user's; times are Unix milliseconds.</summary>
public sealed record DeviceView(string Id, string Kind, string Name, long CreatedAt, long? RevokedAt, bool Active);

public sealed record DeviceList(string UserId, string UserDid, string Handle, IReadOnlyList<DeviceView> Devices);

public sealed record RenameRequest(string? Name);

/// <summary>One audit entry: its canonical bytes and chain hash, both base64url (docs/concepts.md §8.1).</summary>
public sealed record AuditEntry(long Seq, string Entry, string Hash);

/// <summary>A page of audit entries; <see cref="Next"/> is the sequence number to continue after, null on the last page.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Entries, long? Next);

/// <summary>The signed head of the audit chain: <c>{size, head, ts}</c> and its JWS (docs/concepts.md §8.3).</summary>
public sealed record AuditCheckpoint(long Size, string Head, long Ts, string Signature);

/// <summary>The generated JSON contract of these messages: no reflection, one wire style on both sides.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(DiscoveryDocument))]
[JsonSerializable(typeof(OAuthErrorBody))]
[JsonSerializable(typeof(BcAuthorizeResponse))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(DeviceAuthorizationResponse))]
[JsonSerializable(typeof(DeviceLoginRequest))]
[JsonSerializable(typeof(UserInfoResponse))]
[JsonSerializable(typeof(AgentRegistrationRequest))]
[JsonSerializable(typeof(AgentRegistrationResponse))]
[JsonSerializable(typeof(ConsentRequestBody))]
[JsonSerializable(typeof(ConsentRequestResponse))]
[JsonSerializable(typeof(ConsentList))]
[JsonSerializable(typeof(EnrollRequest))]
[JsonSerializable(typeof(EnrollResponse))]
[JsonSerializable(typeof(PendingApproval))]
[JsonSerializable(typeof(PendingList))]
[JsonSerializable(typeof(DecisionRequest))]
[JsonSerializable(typeof(DecisionResponse))]
[JsonSerializable(typeof(DeviceList))]
[JsonSerializable(typeof(RenameRequest))]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(AuditCheckpoint))]
public sealed partial class ProtocolJson : JsonSerializerContext;
