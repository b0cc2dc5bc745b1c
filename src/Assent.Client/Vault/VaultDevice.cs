using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Client.Authenticator;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Messages;
using Assent.Protocol.Vault;

namespace Assent.Client.Vault;

/// <summary>Who a device is to the vault: the owner (id and DID, both inside the signed key proofs) and the device's Ed25519 key.</summary>
internal sealed record VaultOwner(string UserId, string UserDid, string DeviceId, byte[] Seed);

/// <summary>
/// The owner's device side of the vault (docs/vault.md §3–5): seal and wrap items, open them, re-wrap an item key to an agent
/// for an approved release, and re-wrap every item for another recipient key. Everything the server returns is checked before
/// it is used: recipient keys by their proofs against the DID document, ciphertexts and wrapped keys by their AES-GCM tags
/// over AADs that name the item, version and recipient.
/// </summary>
/// <param name="client">The device-signed API client.</param>
/// <param name="owner">The owner and this device.</param>
/// <param name="privateKey">This device's X25519 private key (32 bytes); the caller keeps and clears it.</param>
/// <param name="http">For the DID document.</param>
internal sealed class VaultDevice(AuthenticatorClient client, VaultOwner owner, byte[] privateKey, HttpClient http)
{
    /// <summary>The most plaintext an item holds (docs/vault.md §6).</summary>
    public const int MaxItemSize = 1024 * 1024;

    private const int MaxWrapsPerUpload = 500;

    private string? _kid;

    public byte[] PublicKey { get; } = X25519.PublicKeyFromPrivateKey(privateKey);

    public string Kid => _kid ??= VaultFormat.KeyId(PublicKey);

    /// <summary>A device key's registration: the device's Ed25519 signature over KeyProof(user, device, P).</summary>
    public static VaultKeyRegistration DeviceRegistration(VaultOwner owner, ReadOnlySpan<byte> publicKey) =>
        new(Base64Url.Encode(publicKey), Base64Url.Encode(Ed25519.Sign(owner.Seed, VaultFormat.KeyProofMessage(owner.UserId, owner.DeviceId, publicKey))),
            VaultKeyKinds.Device);

    /// <summary>The recovery key's registration: signed by this device over KeyProof(user, "recovery", P).</summary>
    public static VaultKeyRegistration RecoveryRegistration(VaultOwner owner, ReadOnlySpan<byte> publicKey) =>
        new(Base64Url.Encode(publicKey), Base64Url.Encode(Ed25519.Sign(owner.Seed,
            VaultFormat.KeyProofMessage(owner.UserId, VaultKeyProofs.RecoveryDeviceId, publicKey))), VaultKeyKinds.Recovery);

    /// <summary>
    /// The owner's recipient keys, each proven by a device of the owner's DID document. One that is not proven stops the call:
    /// the server requires a wrap for every key, and wrapping to an unproven key could hand the item to whoever holds it.
    /// </summary>
    public async Task<IReadOnlyList<(VaultKeyView Key, byte[] PublicKey)>> RecipientsAsync(CancellationToken ct)
    {
        // Independent reads: asked at once, so a put waits for one round trip instead of three.
        var listing = client.ListVaultKeysAsync(ct);
        var resolving = MethodsAsync(ct);
        var keys = await listing;
        var methods = await resolving;
        var proven = new List<(VaultKeyView, byte[])>();
        foreach (var key in keys.Keys)
        {
            var (publicKey, error) = VaultKeyProofs.Check(key, owner.UserId, owner.UserDid, methods);
            if (publicKey is null)
            {
                var hint = key.Kind == VaultKeyKinds.Recovery ? "; replace the recovery key: assent vault recovery-key --replace" : "";
                throw new AssentVaultException($"recipient key {key.Kid} ({key.Kind} {key.DeviceId}) is not proven: {error}; nothing was wrapped to it{hint}");
            }
            proven.Add((key, publicKey));
        }
        if (!proven.Any(k => k.Item1.Kid == Kid))
        {
            throw new AssentVaultException($"this device's vault key {Kid} is not registered with the server");
        }
        return proven;
    }

    /// <summary>Seals <paramref name="plaintext"/> as the next version of <paramref name="name"/> and wraps its key to every proven recipient.</summary>
    public async Task<VaultItemView> PutAsync(string name, ReadOnlyMemory<byte> plaintext, CancellationToken ct)
    {
        if (plaintext.Length > MaxItemSize)
        {
            throw new ArgumentException($"an item holds at most {MaxItemSize} bytes (1 MiB)");
        }
        var finding = FindAsync(name, ct);
        var recipients = await RecipientsAsync(ct);
        var current = await finding;
        // docs/vault.md §3 step 2: the item's own id for a new version, a fresh one for a new name; the version is sealed into the AAD.
        var (id, version) = current is null ? (VaultFormat.NewItemId(), 1u) : (current.Id, current.Version + 1);
        var itemKey = RandomNumberGenerator.GetBytes(VaultFormat.KeySize);
        byte[] sealedItem;
        List<VaultWrap> wraps;
        try
        {
            sealedItem = VaultFormat.SealItem(itemKey, id, version, plaintext.Span);
            wraps = recipients.Select(r => new VaultWrap(r.Key.Kid, Base64Url.Encode(VaultFormat.WrapKey(itemKey, id, version, r.PublicKey)))).ToList();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(itemKey);
        }
        var stored = await client.PutVaultItemAsync(name, id, version, sealedItem, wraps, ct);
        if (stored.Id != id || stored.Version != version || stored.Name != name)
        {
            throw new AssentVaultException($"the server stored {stored.Name} {stored.Id} version {stored.Version}, not {name} {id} version {version}");
        }
        return stored;
    }

    /// <summary>The item, or null when the owner has none of that name.</summary>
    public async Task<VaultItemDetail?> FindAsync(string name, CancellationToken ct)
    {
        try
        {
            return await client.GetVaultItemAsync(name, ct);
        }
        catch (AssentProblemException e) when (e.Status == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Opens a version (the latest when null) with this device's key: the wrapped key and the ciphertext must both open.</summary>
    public async Task<(VaultSealedVersion Sealed, byte[] Plaintext)> OpenAsync(string name, uint? version, CancellationToken ct)
    {
        string? expectedId = null;
        if (version is null)
        {
            var item = await client.GetVaultItemAsync(name, ct);
            (expectedId, version) = (item.Id, item.Version);
        }
        var sealedVersion = await client.GetSealedVersionAsync(name, version.Value, Kid, ct);
        if (sealedVersion.Name != name || sealedVersion.Version != version || sealedVersion.Kid != Kid || (expectedId is not null && sealedVersion.Id != expectedId))
        {
            throw new AssentVaultException($"the server answered for {sealedVersion.Name} version {sealedVersion.Version} (key {sealedVersion.Kid}), not {name} version {version}");
        }
        return (sealedVersion, Open(sealedVersion.Id, version.Value, sealedVersion.Wrapped, sealedVersion.Ciphertext, privateKey));
    }

    /// <summary>
    /// For an approved <c>vault_release</c> (docs/vault.md §4 step 2): the item key of the signed (item id, version), unwrapped with
    /// this device's key, checked to open the sealed version, and wrapped to the signed recipient key. Returns the wrapped key, b64u.
    /// </summary>
    public async Task<string> ReleaseAsync(ApprovalPayload payload, CancellationToken ct)
    {
        var release = ReleaseDetail.From(payload.AuthorizationDetails);
        var sealedVersion = await client.GetSealedVersionAsync(release.Item, release.Version, Kid, ct);
        if (sealedVersion.Id != release.ItemId || sealedVersion.Version != release.Version)
        {
            throw new AssentVaultException($"the server sent {sealedVersion.Id} version {sealedVersion.Version}, not the signed {release.ItemId} version {release.Version}");
        }
        var itemKey = UnwrapChecked(sealedVersion.Id, release.Version, sealedVersion.Wrapped, privateKey);
        try
        {
            CryptographicOperations.ZeroMemory(OpenWith(itemKey, sealedVersion.Id, release.Version, sealedVersion.Ciphertext));
            return Base64Url.Encode(VaultFormat.WrapKey(itemKey, release.ItemId, release.Version, release.RecipientKey));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(itemKey);
        }
    }

    /// <summary>
    /// For an approved <c>vault_rewrap</c> (docs/vault.md §5.1): the new key must be the one listed with a valid proof by the
    /// signed device; then every item key this device holds is re-wrapped to it. Returns how many wraps were uploaded.
    /// </summary>
    public async Task<int> RewrapForAsync(ApprovalPayload payload, CancellationToken ct)
    {
        var detail = Single(payload.AuthorizationDetails, VaultRelease.RewrapType);
        var kid = Text(detail, "kid");
        var deviceId = Text(detail, "device_id");
        if (deviceId == owner.DeviceId)
        {
            throw new AssentVaultException("this request re-wraps the items for this very device; approve it on another of your devices");
        }
        if (!Base64Url.TryDecode(Text(detail, "public_key"), out var publicKey) || publicKey.Length != X25519.KeySize || VaultFormat.KeyId(publicKey) != kid)
        {
            throw new AssentVaultException("the vault_rewrap request's public_key is not 32 bytes whose kid it names");
        }
        var keys = await client.ListVaultKeysAsync(ct);
        var listed = keys.Keys.FirstOrDefault(k => k.Kid == kid)
            ?? throw new AssentVaultException($"the key {kid} to re-wrap for is not registered (any more)");
        if (listed.DeviceId != deviceId || listed.Kind != VaultKeyKinds.Device)
        {
            throw new AssentVaultException($"the key {kid} is registered for {listed.Kind} {listed.DeviceId}, not device {deviceId} as signed");
        }
        var (proven, error) = VaultKeyProofs.Check(listed, owner.UserId, owner.UserDid, await MethodsAsync(ct));
        if (proven is null || !CryptographicOperations.FixedTimeEquals(proven, publicKey))
        {
            throw new AssentVaultException($"the key {kid} of device {deviceId} is not proven: {error ?? "another public key is listed"}");
        }
        return await RewrapAllAsync(privateKey, Kid, publicKey, ct);
    }

    /// <summary>
    /// Every item key wrapped to <paramref name="sourceKid"/>, unwrapped with <paramref name="sourcePrivateKey"/> and wrapped to
    /// <paramref name="targetPublicKey"/>, uploaded page by page. A wrap that does not open stops it: the server changed it.
    /// </summary>
    public async Task<int> RewrapAllAsync(byte[] sourcePrivateKey, string sourceKid, byte[] targetPublicKey, CancellationToken ct)
    {
        var targetKid = VaultFormat.KeyId(targetPublicKey);
        var count = 0;
        string? after = null;
        do
        {
            var page = await client.ListVaultWrapsAsync(sourceKid, after, ct);
            var batch = new List<VaultItemWrap>(page.Wraps.Count);
            foreach (var wrap in page.Wraps)
            {
                var itemKey = UnwrapChecked(wrap.ItemId, wrap.Version, wrap.Wrapped, sourcePrivateKey);
                try
                {
                    batch.Add(new VaultItemWrap(wrap.ItemId, wrap.Version, Base64Url.Encode(VaultFormat.WrapKey(itemKey, wrap.ItemId, wrap.Version, targetPublicKey))));
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(itemKey);
                }
            }
            foreach (var chunk in batch.Chunk(MaxWrapsPerUpload))
            {
                await client.UploadVaultWrapsAsync(new VaultWrapUpload(targetKid, chunk), ct);
                count += chunk.Length;
            }
            if (page.Next is not null && page.Next == after)
            {
                throw new AssentProtocolException("the server returned the same page of wraps twice");
            }
            after = page.Next;
        }
        while (after is not null);
        return count;
    }

    /// <summary>Opens a sealed version with a wrapped key: both must open under the (item id, version) they claim.</summary>
    public static byte[] Open(string itemId, uint version, string wrapped, string ciphertext, byte[] recipientPrivateKey)
    {
        var itemKey = UnwrapChecked(itemId, version, wrapped, recipientPrivateKey);
        try
        {
            return OpenWith(itemKey, itemId, version, ciphertext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(itemKey);
        }
    }

    private static byte[] UnwrapChecked(string itemId, uint version, string wrapped, byte[] recipientPrivateKey)
    {
        if (!Base64Url.TryDecode(wrapped, out var bytes))
        {
            throw new AssentVaultException($"the wrapped key of {itemId} version {version} is not base64url");
        }
        try
        {
            return VaultFormat.UnwrapKey(bytes, itemId, version, recipientPrivateKey);
        }
        catch (Exception e) when (e is VaultFormatException or ArgumentException)
        {
            throw new AssentVaultException($"the wrapped key of {itemId} version {version} does not open ({e.Message}): the server changed it, or it belongs elsewhere", e);
        }
    }

    private static byte[] OpenWith(byte[] itemKey, string itemId, uint version, string ciphertext)
    {
        if (!Base64Url.TryDecode(ciphertext, out var bytes))
        {
            throw new AssentVaultException($"the ciphertext of {itemId} version {version} is not base64url");
        }
        try
        {
            return VaultFormat.OpenItem(itemKey, itemId, version, bytes);
        }
        catch (Exception e) when (e is VaultFormatException or ArgumentException)
        {
            throw new AssentVaultException($"the ciphertext of {itemId} version {version} does not open ({e.Message}): the server changed it, or it belongs elsewhere", e);
        }
    }

    private Task<IReadOnlyDictionary<string, Protocol.Jose.Jwk>> MethodsAsync(CancellationToken ct) =>
        new DidDocuments(http, TimeProvider.System, TimeSpan.Zero).MethodsAsync(owner.UserDid, ct);

    /// <summary>The one detail of <paramref name="type"/> in signed details (docs/vault.md §4: one per request).</summary>
    internal static JsonElement Single(JsonElement? details, string type)
    {
        if (details is not { ValueKind: JsonValueKind.Array } list)
        {
            throw new AssentVaultException($"the request carries no {type} authorization details");
        }
        var matching = list.EnumerateArray().Where(d => d.ValueKind == JsonValueKind.Object && d.TryGetProperty("type", out var t) &&
                                                        t.ValueKind == JsonValueKind.String && t.GetString() == type).ToList();
        return matching.Count == 1 ? matching[0] : throw new AssentVaultException($"the request must carry exactly one {type} detail; it carries {matching.Count}");
    }

    internal static string Text(JsonElement detail, string name) =>
        detail.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new AssentVaultException($"the signed detail lacks {name}");

    /// <summary>Whether the details hold a detail of <paramref name="type"/>.</summary>
    public static bool Has(JsonElement? details, string type) =>
        details is { ValueKind: JsonValueKind.Array } list && list.EnumerateArray().Any(d => d.ValueKind == JsonValueKind.Object &&
            d.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == type);
}

/// <summary>The signed <c>vault_release</c> detail: <c>{type, item, item_id, version, recipient_key}</c> (docs/vault.md §4).</summary>
internal sealed record ReleaseDetail(string Item, string ItemId, uint Version, byte[] RecipientKey)
{
    public static ReleaseDetail From(JsonElement? details)
    {
        var detail = VaultDevice.Single(details, VaultRelease.Type);
        var item = VaultDevice.Text(detail, "item");
        var itemId = VaultDevice.Text(detail, "item_id");
        if (!detail.TryGetProperty("version", out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetUInt32(out var version) || version == 0)
        {
            throw new AssentVaultException("the signed vault_release detail lacks a version");
        }
        if (!Base64Url.TryDecode(VaultDevice.Text(detail, "recipient_key"), out var recipient) || recipient.Length != X25519.KeySize)
        {
            throw new AssentVaultException("the signed recipient_key is not 32 bytes of base64url");
        }
        return new ReleaseDetail(item, itemId, version, recipient);
    }
}
