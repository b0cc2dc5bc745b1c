using System.Text.Json;

namespace Assent.Client.Verification;

/// <summary>An access token that passed every requested check.</summary>
/// <param name="Issuer"><c>iss</c>, equal to the verifier's issuer.</param>
/// <param name="Subject"><c>sub</c>: the approver's DID.</param>
/// <param name="Audiences"><c>aud</c>, as a list.</param>
/// <param name="ClientId"><c>client_id</c>: the agent that asked.</param>
/// <param name="Scope"><c>scope</c>, space-separated.</param>
/// <param name="JwtId"><c>jti</c>.</param>
/// <param name="IssuedAt"><c>iat</c>.</param>
/// <param name="ExpiresAt"><c>exp</c>.</param>
/// <param name="BindingMessage"><c>binding_message</c>: what the human was shown.</param>
/// <param name="AuthorizationDetails"><c>authorization_details</c> (RFC 9396).</param>
/// <param name="Transaction"><c>txn</c>: the approval request id.</param>
/// <param name="KeyId">The issuer key that signed the token.</param>
/// <param name="Claims">Every claim, as sent.</param>
public sealed record VerifiedToken(
    string Issuer,
    string Subject,
    IReadOnlyList<string> Audiences,
    string? ClientId,
    string Scope,
    string JwtId,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    string? BindingMessage,
    JsonElement? AuthorizationDetails,
    string? Transaction,
    string KeyId,
    JsonElement Claims)
{
    /// <summary>The verification method (<c>did#device</c>) whose signature was checked, when evidence was checked.</summary>
    public string? EvidenceDevice { get; init; }

    /// <summary>Every verification method whose signature was checked, one per approving device (several for a quorum).</summary>
    public IReadOnlyList<string> EvidenceDevices { get; init; } = [];

    /// <summary>The distinct approvers (DIDs) the checked evidence proves; empty when evidence was not checked.</summary>
    public IReadOnlyList<string> Approvers { get; init; } = [];

    /// <summary>True when the token's <c>scope</c> contains <paramref name="scope"/>.</summary>
    public bool HasScope(string scope) => TokenVerifier.ContainsScope(Scope, scope);
}
