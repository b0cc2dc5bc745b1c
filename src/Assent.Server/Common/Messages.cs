using System.Text.Json;
using System.Text.Json.Serialization;
using Assent.Protocol.Jose;

namespace Assent.Server.Common;

internal sealed record OAuthErrorBody(string Error, string? ErrorDescription);

internal sealed record BcAuthorizeResponse(string AuthReqId, int ExpiresIn, int Interval);

internal sealed record TokenResponse(
    string AccessToken,
    string TokenType,
    int ExpiresIn,
    string? Scope,
    string? IdToken = null,
    string? RefreshToken = null,
    JsonElement? AuthorizationDetails = null);

/// <summary>RFC 8628 §3.2.</summary>
internal sealed record DeviceAuthorizationResponse(string DeviceCode, string UserCode, string VerificationUri, string VerificationUriComplete,
    int ExpiresIn, int Interval);

internal sealed record DeviceLoginRequest(string? UserCode);

/// <summary>OpenID Connect Core §5.3.2, with the members of docs/http-api.md §8.2.</summary>
internal sealed record UserInfoResponse(string Sub, string Scope, string ClientId, string? PreferredUsername);

internal sealed record AgentRegistrationRequest(string? Name, JsonElement? Scopes);

/// <summary><c>POST /agents</c> (docs/http-api.md §9.1): the secret appears exactly once, in the answer that created the agent.</summary>
internal sealed record AgentRegistrationResponse(string RequestId, string Status, string? ClientId = null, string? ClientSecret = null,
    string? Name = null, string? Scopes = null, string? Owner = null, long? ExpiresAt = null);

internal sealed record ConsentRequestBody(string? User);

/// <summary>
/// docs/http-api.md §9.3: where an owner's request for another user's consent stands. <see cref="User"/> is the handle of the
/// user asked; <see cref="Status"/> is pending, granted or revoked.
/// </summary>
internal sealed record ConsentRequestResponse(string RequestId, string Status, string ClientId, string AgentName, string User, long? ExpiresAt = null);

/// <summary>One consent of the user's (docs/http-api.md §10.8): which agent, whose, since when.</summary>
internal sealed record ConsentView(string ClientId, string AgentName, string? Owner, long CreatedAt, long? RevokedAt, bool Active, string ApprovalId);

internal sealed record ConsentList(IReadOnlyList<ConsentView> Consents);

internal sealed record EnrollRequest(string? Code, string? PublicKey, string? Name, string? Proof);

internal sealed record EnrollResponse(string DeviceId, string UserId, string UserDid, string Handle, string Issuer);

/// <summary>
/// A request as an approver's device shows it (docs/http-api.md §10.2). <see cref="ClientOwner"/> is the handle of the
/// agent's owner, so the approver sees whose agent asks; none for requests Assent raises itself.
/// </summary>
internal sealed record PendingApproval(
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
    long? DecidedAt = null);

internal sealed record PendingList(IReadOnlyList<PendingApproval> Approvals);

/// <summary>
/// A decision (docs/http-api.md §10.4): an Ed25519 device sends <c>device_id</c> and its signature; a passkey sends its
/// assertion (<c>authenticator_data</c>, <c>client_data_json</c>, <c>signature</c>) and names itself by <c>device_id</c>
/// or <c>credential_id</c>.
/// </summary>
internal sealed record DecisionRequest(string? DeviceId, string? Decision, string? Signature, string? AuthenticatorData = null, string? ClientDataJson = null,
    string? CredentialId = null);

internal sealed record DecisionResponse(string Id, string State);

internal sealed record DeviceView(string Id, string Kind, string Name, long CreatedAt, long? RevokedAt, bool Active);

internal sealed record DeviceList(string UserId, string UserDid, string Handle, IReadOnlyList<DeviceView> Devices);

internal sealed record RenameRequest(string? Name);

/// <summary>DID Core §5.2 member names are camelCase, unlike the rest of the API.</summary>
internal sealed record VerificationMethod(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("controller")] string Controller,
    [property: JsonPropertyName("publicKeyJwk")] Jwk PublicKeyJwk);

internal sealed record DidDocument(
    [property: JsonPropertyName("@context")] IReadOnlyList<string> Context,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("verificationMethod")] IReadOnlyList<VerificationMethod> VerificationMethod,
    [property: JsonPropertyName("authentication")] IReadOnlyList<string> Authentication,
    [property: JsonPropertyName("assertionMethod")] IReadOnlyList<string> AssertionMethod);

internal sealed record AuditEntryView(long Seq, string Entry, string Hash);

internal sealed record AuditPage(IReadOnlyList<AuditEntryView> Entries, long? Next);

internal sealed record AuditCheckpoint(long Size, string Head, long Ts, string Signature);

internal sealed record HealthReport(string Status, string Storage);

internal sealed record DiscoveryDocument(
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
    IReadOnlyList<string> ClaimsSupported);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(OAuthErrorBody))]
[JsonSerializable(typeof(BcAuthorizeResponse))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(EnrollRequest))]
[JsonSerializable(typeof(DeviceAuthorizationResponse))]
[JsonSerializable(typeof(DeviceLoginRequest))]
[JsonSerializable(typeof(UserInfoResponse))]
[JsonSerializable(typeof(AgentRegistrationRequest))]
[JsonSerializable(typeof(AgentRegistrationResponse))]
[JsonSerializable(typeof(EnrollResponse))]
[JsonSerializable(typeof(ConsentRequestBody))]
[JsonSerializable(typeof(ConsentRequestResponse))]
[JsonSerializable(typeof(ConsentList))]
[JsonSerializable(typeof(PendingApproval))]
[JsonSerializable(typeof(PendingList))]
[JsonSerializable(typeof(DecisionRequest))]
[JsonSerializable(typeof(DecisionResponse))]
[JsonSerializable(typeof(DeviceList))]
[JsonSerializable(typeof(RenameRequest))]
[JsonSerializable(typeof(DidDocument))]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(AuditCheckpoint))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(DiscoveryDocument))]
[JsonSerializable(typeof(JwkSet))]
internal sealed partial class ServerJson : JsonSerializerContext;
