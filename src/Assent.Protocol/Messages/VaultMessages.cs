using System.Text.Json.Serialization;

namespace Assent.Protocol.Messages;

// The end-to-end encrypted vault (docs/vault.md). Bytes travel as base64url without padding; times are Unix milliseconds,
// as in the rest of the device API. The server stores and returns these bytes; it never holds a key that opens them.

/// <summary>The <c>authorization_details</c> type an agent asks with to receive one vault item (docs/vault.md §4).</summary>
public static class VaultRelease
{
    public const string Type = "vault_release";

    /// <summary>The type a new key's device asks the owner's other devices with, to have the items re-wrapped for it.</summary>
    public const string RewrapType = "vault_rewrap";
}

/// <summary>Kinds of vault recipient key: a device's own key, or the owner's printed recovery key.</summary>
public static class VaultKeyKinds
{
    public const string Device = "device";
    public const string Recovery = "recovery";
}

/// <summary>
/// Registers an X25519 public key (docs/vault.md §1). The proof is over <c>VaultFormat.KeyProofMessage</c>: an Ed25519
/// <see cref="Signature"/> by the calling CLI device, or a passkey assertion (<see cref="AuthenticatorData"/>,
/// <see cref="ClientDataJson"/>, <see cref="Signature"/>, <see cref="CredentialId"/>) whose challenge is the message's SHA-256.
/// </summary>
public sealed record VaultKeyRegistration(string? PublicKey, string? Signature, string? Kind = null, string? AuthenticatorData = null,
    string? ClientDataJson = null, string? CredentialId = null);

/// <summary>The signature that bound a recipient key to the device that registered it, for clients to check before wrapping.</summary>
public sealed record VaultKeyProof(string SignerDeviceId, string Signature, string? AuthenticatorData = null, string? ClientDataJson = null);

public sealed record VaultKeyView(string Kid, string DeviceId, string Kind, string PublicKey, VaultKeyProof Proof, long CreatedAt);

public sealed record VaultKeyList(IReadOnlyList<VaultKeyView> Keys);

/// <summary>The registered key's id; <see cref="RewrapApprovalId"/> names the request the owner's other devices see when items exist.</summary>
public sealed record VaultKeyRegistered(string Kid, string? RewrapApprovalId = null);

/// <summary>An item key wrapped to one recipient key.</summary>
public sealed record VaultWrap(string Kid, string Wrapped);

/// <summary>
/// Stores a new version of an item: <see cref="Id"/> and <see cref="Version"/> are chosen by the client (a fresh id and 1 for
/// a new name, the item's id and its latest version + 1 otherwise) because both are sealed into the AAD before upload.
/// </summary>
public sealed record VaultPutRequest(string? Id, uint? Version, string? Ciphertext, IReadOnlyList<VaultWrap>? Wraps);

public sealed record VaultItemView(string Id, string Name, uint Version, long Size, long CreatedAt, long UpdatedAt);

public sealed record VaultItemList(IReadOnlyList<VaultItemView> Items);

public sealed record VaultVersionView(uint Version, long Size, string CreatedBy, long CreatedAt);

public sealed record VaultItemDetail(string Id, string Name, uint Version, long CreatedAt, long UpdatedAt, IReadOnlyList<VaultVersionView> Versions);

/// <summary>One sealed version with the item key wrapped to the asking device's key <see cref="Kid"/>.</summary>
public sealed record VaultSealedVersion(string Id, string Name, uint Version, string Ciphertext, string Kid, string Wrapped);

/// <summary>A wrapped key of one item version, for re-wrapping to another recipient.</summary>
public sealed record VaultItemWrap(string ItemId, uint Version, string Wrapped);

public sealed record VaultWrapPage(IReadOnlyList<VaultItemWrap> Wraps, string? Next);

/// <summary>Wraps for another recipient key of the same owner (a new device, or the recovery key), in batches.</summary>
public sealed record VaultWrapUpload(string? Kid, IReadOnlyList<VaultItemWrap>? Wraps);

/// <summary>
/// What an approved <c>vault_release</c> delivers with the token (an RFC 6749 §5.1 extension member): the sealed item and its
/// key wrapped to the agent's ephemeral key, both to be checked by the agent against the token's signed details.
/// </summary>
public sealed record VaultReleaseResult(string Item, string ItemId, uint Version, string Ciphertext, string Wrapped);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VaultKeyRegistration))]
[JsonSerializable(typeof(VaultKeyList))]
[JsonSerializable(typeof(VaultKeyRegistered))]
[JsonSerializable(typeof(VaultPutRequest))]
[JsonSerializable(typeof(VaultItemView))]
[JsonSerializable(typeof(VaultItemList))]
[JsonSerializable(typeof(VaultItemDetail))]
[JsonSerializable(typeof(VaultSealedVersion))]
[JsonSerializable(typeof(VaultWrapPage))]
[JsonSerializable(typeof(VaultWrapUpload))]
[JsonSerializable(typeof(VaultReleaseResult))]
public sealed partial class VaultJson : JsonSerializerContext;
