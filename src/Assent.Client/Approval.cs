using System.Text.Json;

namespace Assent.Client;

/// <summary>How a request ended.</summary>
public enum ApprovalStatus
{
    /// <summary>The human approved; the access token carries the device's evidence.</summary>
    Approved,

    /// <summary>The human denied (CIBA <c>access_denied</c>).</summary>
    Denied,

    /// <summary>Nobody decided before the request expired (CIBA <c>expired_token</c>).</summary>
    Expired,
}

/// <summary>The outcome of <see cref="AssentClient.ApproveAsync"/>: denied and expired are results, not exceptions.</summary>
/// <param name="Status">How the request ended.</param>
/// <param name="AuthReqId">The CIBA request handle (CIBA Core §7.3).</param>
/// <param name="AccessToken">The EdDSA access token (RFC 9068) carrying the device evidence; set when approved.</param>
/// <param name="IdToken">The CIBA ID token; set when approved.</param>
/// <param name="Scope">The scope granted, space-separated.</param>
/// <param name="ExpiresIn">Seconds until the access token expires.</param>
/// <param name="Claims">The access token's claims, unverified.</param>
public sealed record Approval(
    ApprovalStatus Status,
    string AuthReqId,
    string? AccessToken = null,
    string? IdToken = null,
    string? Scope = null,
    int? ExpiresIn = null,
    IReadOnlyDictionary<string, JsonElement>? Claims = null)
{
    /// <summary>True when the human approved and <see cref="AccessToken"/> is set.</summary>
    public bool Approved => Status == ApprovalStatus.Approved;

    /// <summary>
    /// The access token's claims as the server sent them, not verified: a relying party must use
    /// <see cref="Verification.TokenVerifier"/> before acting on them. Empty unless approved.
    /// </summary>
    public IReadOnlyDictionary<string, JsonElement> Claims { get; init; } = Claims ?? new Dictionary<string, JsonElement>();

    /// <summary>The sealed item and wrapped key an approved <c>vault_release</c> delivers with the token (docs/vault.md §4), unchecked.</summary>
    internal Assent.Protocol.Messages.VaultReleaseResult? VaultRelease { get; init; }
}
