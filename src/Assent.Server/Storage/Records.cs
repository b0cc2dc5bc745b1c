namespace Assent.Server.Storage;

/// <summary>Approval states (docs/concepts.md §4.1). Numeric values are stored; never renumber.</summary>
public enum ApprovalState
{
    Pending = 0,
    Approved = 1,
    Denied = 2,
    Expired = 3,
    Cancelled = 4,
    Redeemed = 5,
}

/// <summary>The states' names on the wire (streams, history, decisions).</summary>
public static class StateNames
{
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Denied = "denied";
    public const string Expired = "expired";
    public const string Cancelled = "cancelled";
    public const string Redeemed = "redeemed";

    public static string Of(ApprovalState state) => state switch
    {
        ApprovalState.Pending => Pending,
        ApprovalState.Approved => Approved,
        ApprovalState.Denied => Denied,
        ApprovalState.Expired => Expired,
        ApprovalState.Cancelled => Cancelled,
        _ => Redeemed,
    };
}

/// <summary>The states as SQL spells them, named once: statements interpolate these, never a bare digit.</summary>
internal static class StateCodes
{
    public static readonly string Pending = Code(ApprovalState.Pending);
    public static readonly string Approved = Code(ApprovalState.Approved);
    public static readonly string Denied = Code(ApprovalState.Denied);
    public static readonly string Expired = Code(ApprovalState.Expired);
    public static readonly string Cancelled = Code(ApprovalState.Cancelled);
    public static readonly string Redeemed = Code(ApprovalState.Redeemed);

    private static string Code(ApprovalState state) => ((int)state).ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>What an approval request is for: an agent's CIBA request, or one Assent raises itself.</summary>
public static class ApprovalKinds
{
    public const string Ciba = "ciba";
    public const string AgentRegistration = "agent_registration";
    public const string DeviceLogin = "device_login";

    /// <summary>An agent's owner asks another user to let the agent ask them (docs/concepts.md §3.1).</summary>
    public const string AgentConsent = "agent_consent";

    /// <summary>A backend's challenge (docs/challenges.md): raised with an API key, read and consumed at <c>/v1/challenges</c>.</summary>
    public const string Challenge = "challenge";

    /// <summary>An agent asks to pay an HTTP 402 from its owner's wallet (docs/payments.md): raised and read at <c>/v1/payments</c>.</summary>
    public const string Payment = "payment";

    /// <summary>A signed-in human asks for an API key; their own device approves it (docs/challenges.md §1).</summary>
    public const string ApiKey = "api_key";

    /// <summary>A new vault key asks the owner's other devices to re-wrap the items for it (docs/vault.md §5.1).</summary>
    public const string VaultRewrap = "vault_rewrap";

    /// <summary>
    /// The kinds whose <c>authorization_details</c> type only the server writes: an agent sending one through
    /// CIBA would dress its own request up as one of them, so bc-authorize refuses these types.
    /// </summary>
    public static readonly IReadOnlyList<string> ServerRaised = [AgentRegistration, AgentConsent, Challenge, ApiKey, VaultRewrap];
}

public static class DeviceKinds
{
    public const string WebAuthn = "webauthn";
    public const string Ed25519 = "ed25519";
}

internal sealed record UserRecord(string Id, string Handle, bool IsAdmin, long CreatedAt);

internal sealed record InviteRecord(byte[] CodeHash, string UserId, long ExpiresAt, long? UsedAt);

internal sealed record DeviceRecord(
    string Id,
    string UserId,
    string Kind,
    string Name,
    string PublicJwk,
    byte[]? CredentialId,
    long SignCount,
    long CreatedAt,
    long? RevokedAt)
{
    public bool Active => RevokedAt is null;
}

internal sealed record ClientRecord(
    string Id,
    byte[] SecretHash,
    string Name,
    string OwnerUserId,
    string Scopes,
    long CreatedAt,
    long? RevokedAt);

/// <summary>
/// A user's consent that an agent owned by someone else may ask them for approvals (docs/concepts.md §3.1). It
/// exists only through the user's own device approving an <see cref="ApprovalKinds.AgentConsent"/> request,
/// <see cref="ApprovalId"/>; at most one per user and agent is active (not revoked).
/// </summary>
internal sealed record ConsentRecord(string ApprovalId, string UserId, string ClientId, long CreatedAt, long? RevokedAt)
{
    public bool Active => RevokedAt is null;
}

/// <summary>
/// An approval request. <see cref="Quorum"/> of <see cref="Approvers"/> distinct approvers must approve it;
/// one of one unless a policy says otherwise. <see cref="Policy"/> names the policy that applied (<c>name@version</c>). The state is computed in each decision's own transaction.
/// </summary>
internal sealed record ApprovalRecord(
    string Id,
    byte[] HandleHash,
    string Kind,
    string ClientId,
    string UserId,
    string Scope,
    string? BindingMessage,
    string? AuthorizationDetails,
    string? Resource,
    byte[] Payload,
    ApprovalState State,
    long CreatedAt,
    long ExpiresAt,
    long? DecidedAt = null,
    long? RedeemedAt = null,
    int Quorum = 1,
    int Approvers = 1,
    string? Policy = null)
{
    /// <summary>
    /// Who may decide a quorum request (docs/policies.md §3): written with the request to approval_approvers, not a
    /// column; null for a request its own user decides, and on every request read back.
    /// </summary>
    public IReadOnlyList<string>? EligibleUsers { get; init; }
}

/// <summary>
/// One approver's signed decision on a request, stored as its own row (docs/storage.md §3). <see cref="Decision"/>
/// is <see cref="ApprovalState.Approved"/> or <see cref="ApprovalState.Denied"/>; <see cref="Evidence"/> is the
/// evidence object of docs/tokens.md §4, stored once and copied verbatim into tokens.
/// </summary>
internal sealed record DecisionRecord(string ApprovalId, string UserId, string DeviceId, ApprovalState Decision, string Evidence, long DecidedAt);

/// <summary>A request together with the approving decisions behind it: what a token is built from.</summary>
internal sealed record DecidedApproval(ApprovalRecord Approval, IReadOnlyList<DecisionRecord> Decisions);

internal sealed record SigningKeyRecord(string Kid, byte[] PublicKey, byte[] EncryptedSeed, long CreatedAt, long? RetiredAt);

/// <summary>
/// An RFC 8628 device authorization: both codes stored only as hashes. <see cref="ApprovalId"/> is set
/// once, when the login is pushed to a user (login_hint) or a device binds the user code.
/// </summary>
internal sealed record DeviceAuthorizationRecord(
    string Id,
    byte[] DeviceCodeHash,
    byte[] UserCodeHash,
    string ClientId,
    string Scope,
    string RequestedFrom,
    string? ApprovalId,
    long CreatedAt,
    long ExpiresAt);

/// <summary>
/// One refresh token of a human session. Every use consumes it (<see cref="UsedAt"/>) and issues the next
/// of the same family; <see cref="ApprovalId"/> is the approval that started a CLI session (its evidence). A web
/// client's token (OpenID Connect Core §11, <c>offline_access</c>) has none: it keeps the passkey sign-in it came from
/// instead (<see cref="DeviceId"/>, <see cref="AuthTime"/>, <see cref="Amr"/>).
/// </summary>
internal sealed record RefreshTokenRecord(
    byte[] TokenHash,
    string FamilyId,
    string UserId,
    string ClientId,
    string Scope,
    string? ApprovalId,
    long CreatedAt,
    long ExpiresAt,
    long? UsedAt = null,
    long? RevokedAt = null,
    string? DeviceId = null,
    long? AuthTime = null,
    string? Amr = null);

internal enum RefreshOutcome
{
    Rotated,
    Unknown,
    Expired,
    Revoked,

    /// <summary>A consumed token came back: the whole family is now revoked (RFC 9700 §4.14.2).</summary>
    Reused,
}

/// <summary>One audit event before it is sealed into the chain.</summary>
internal sealed record AuditEvent(string Type, string? UserId, string? Actor, string? Subject, IReadOnlyDictionary<string, string>? Data = null);

/// <summary>One sealed audit entry: the canonical bytes exactly as hashed, and the chain hash.</summary>
internal sealed record AuditRow(long Seq, byte[] Entry, byte[] Hash);

/// <summary>What a server-issued WebAuthn challenge is for; stored, so never renamed.</summary>
internal static class ChallengePurposes
{
    public const string Register = "register";
    public const string SignIn = "signin";
}

/// <summary>
/// A single-use WebAuthn challenge (WebAuthn L3 §13.4.3), stored hashed. A registration
/// challenge names the user it enrols and, when it came with an invite, that invite's hash.
/// </summary>
internal sealed record WebAuthnChallengeRecord(byte[] ChallengeHash, string Purpose, string? UserId, byte[]? InviteHash, long ExpiresAt);

/// <summary>A web app session opened by a passkey sign-in; only the hash of the cookie token is stored.</summary>
internal sealed record WebSessionRecord(byte[] TokenHash, string UserId, string DeviceId, long CreatedAt, long ExpiresAt);

/// <summary>
/// A web application that signs its users in through Assent (OpenID Connect authorization code, docs/http-api.md §17).
/// Its own table, apart from agents: a web client never asks for approvals. <see cref="SecretHash"/> is null for a
/// public client (PKCE only). Redirect URIs are matched exactly (RFC 9700 §2.1).
/// </summary>
internal sealed record WebClientRecord(
    string Id,
    byte[]? SecretHash,
    string Name,
    IReadOnlyList<string> RedirectUris,
    IReadOnlyList<string> PostLogoutRedirectUris,
    string IdTokenAlg,
    long CreatedAt,
    long? RevokedAt)
{
    public bool IsPublic => SecretHash is null;
}

/// <summary>
/// An authorization code (RFC 6749 §4.1.2), stored only as its hash, bound to everything the token request must repeat.
/// <see cref="IssuedJti"/> names the access token the first redemption issued, so a replay can revoke it.
/// </summary>
internal sealed record AuthorizationCodeRecord(
    byte[] CodeHash,
    string ClientId,
    string UserId,
    string DeviceId,
    string RedirectUri,
    string Scope,
    string? CodeChallenge,
    string? Nonce,
    long AuthTime,
    string Amr,
    long CreatedAt,
    long ExpiresAt,
    long? UsedAt = null,
    string? IssuedJti = null,
    long? IssuedExpiresAt = null);

/// <summary>A user's remembered consent to a web client (<c>web_consents</c>), with the client's name for the list.</summary>
internal sealed record WebConsentRecord(string ClientId, string ClientName, string Scope, long CreatedAt);

/// <summary>What became of presenting an authorization code.</summary>
internal enum CodeRedemption
{
    Redeemed,
    Unknown,
    Expired,

    /// <summary>Used before (RFC 6749 §4.1.2): refused, and what it issued is revoked.</summary>
    Replayed,

    /// <summary>Presented by another client, for another redirect URI or with a wrong verifier: refused, nothing spent.</summary>
    Mismatch,
}

/// <summary>An ES256 or RS256 signing key for ID tokens of clients that ask for it; the PKCS#8 private key sealed like the Ed25519 seeds.</summary>
internal sealed record JoseKeyRecord(string Kid, string Alg, string PublicJwk, byte[] EncryptedPrivateKey, long CreatedAt, long? RetiredAt);
