using Assent.Client.Verification;

namespace Assent.Client.Vault;

/// <summary>
/// The outcome of <see cref="AssentClient.GetSecretAsync"/>. When <see cref="Status"/> is <see cref="ApprovalStatus.Approved"/>,
/// <see cref="Value"/> holds the secret, opened in this process after every check of docs/vault.md §4 passed; denied and expired
/// are results, as for <see cref="AssentClient.ApproveAsync"/>.
/// </summary>
/// <param name="Status">How the request ended.</param>
/// <param name="Item">The item's name, as asked for.</param>
/// <param name="AuthReqId">The CIBA request handle.</param>
/// <param name="Value">The secret's bytes; null unless approved. The caller should clear it when done.</param>
/// <param name="ItemId">The item id the owner's device signed for.</param>
/// <param name="Version">The version released.</param>
/// <param name="Token">The verified access token whose evidence names this release.</param>
public sealed record VaultSecret(ApprovalStatus Status, string Item, string AuthReqId, byte[]? Value = null, string? ItemId = null, uint? Version = null,
    VerifiedToken? Token = null)
{
    /// <summary>True when the secret was released and opened.</summary>
    public bool Released => Status == ApprovalStatus.Approved && Value is not null;
}

/// <summary>How to ask for a vault item (<see cref="AssentClient.GetSecretAsync"/>).</summary>
public sealed class VaultReleaseOptions
{
    /// <summary>The version to ask for; the latest when null.</summary>
    public uint? Version { get; set; }

    /// <summary>The binding message shown to the owner; default <c>Release NAME</c>.</summary>
    public string? Message { get; set; }

    /// <summary>Scopes besides openid, space-separated (default none).</summary>
    public string? Scope { get; set; }

    /// <summary>The owner: a user DID or handle (default the client's <see cref="AssentClientOptions.UserDid"/>).</summary>
    public string? User { get; set; }

    /// <summary>How long to wait for the decision (default <see cref="AssentClientOptions.DefaultTimeout"/>).</summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>
    /// Called with the key id (RFC 7638 thumbprint) of this call's fresh recipient key before the request is sent. Show it where
    /// the owner can compare it with the key id their device shows for the release: a server that put its own key in the
    /// request is then seen before the owner approves, not only after.
    /// </summary>
    public Action<string>? KeyCreated { get; set; }
}

/// <summary>
/// Vault bytes or details that fail a check (docs/vault.md §3–4): a ciphertext or wrapped key that does not open, a release for
/// another item, version or recipient key, a recipient key whose proof does not verify. The server (or someone between) changed
/// something; nothing was accepted.
/// </summary>
public sealed class AssentVaultException(string message, Exception? inner = null) : Exception(message, inner);
