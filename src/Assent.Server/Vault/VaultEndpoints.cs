using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Protocol.Messages;
using Assent.Protocol.Vault;
using Assent.Protocol.WebAuthn;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Vault;

/// <summary>
/// The end-to-end encrypted vault (docs/vault.md §6): the owner's recipient keys, items, sealed versions and wrapped keys.
/// The same handlers serve the device API (signed requests) and the web app (passkey session), like the approver's
/// endpoints. The server checks shapes, sizes and ownership and stores bytes; it never holds a key that opens an item.
/// </summary>
internal static class VaultEndpoints
{
    /// <summary>docs/vault.md §1: at most this many recipient keys per device (a device rotating its key keeps a few).</summary>
    public const int MaxKeysPerDevice = 10;

    /// <summary>Wraps per page and per upload (docs/vault.md §5.1).</summary>
    public const int MaxWrapsPerBatch = 500;

    /// <summary>An item's plaintext is at most 1 MiB; sealed, it is 29 bytes more (version byte, nonce, tag: docs/vault.md §2.1).</summary>
    public const int MaxCiphertextBytes = 1024 * 1024 + SealedOverhead;

    private const int SealedOverhead = VaultFormat.ItemOverhead;

    /// <summary>docs/vault.md §2.2: 0x01 ‖ E (32) ‖ nonce (12) ‖ AES-256-GCM of a 32-byte key (48): 93 bytes.</summary>
    public const int WrappedBytes = VaultFormat.WrappedKeySize;

    /// <summary>The PUT body: a sealed MiB as base64url, its wraps, and JSON around them.</summary>
    public const long MaxPutBodyBytes = 2 * 1024 * 1024;

    /// <summary>A full batch of wraps: 500 × (22-character id, version, 124-character wrapped key, JSON names), with room to spare.</summary>
    public const long MaxWrapsBodyBytes = 256 * 1024;

    /// <summary>How many items one user may keep, and how many versions one item.</summary>
    public const int MaxItemsPerUser = 50_000;

    public const int MaxVersionsPerItem = 1_000;

    /// <summary>The built-in client that raises re-wrap requests (docs/vault.md §5.1); no agent has this id.</summary>
    public const string ClientId = "assent-vault";

    public const string ClientName = "Assent vault";

    public static IEndpointRouteBuilder MapVault(this IEndpointRouteBuilder app)
    {
        Map(app.MapGroup(EndpointPaths.Authenticator + "/vault").WithTags("Vault").DisableAntiforgery().RequireAuthorization(AssentSchemes.Device), "signed request");
        Map(app.MapGroup(EndpointPaths.WebAuthn + "/vault").WithTags("Vault").DisableAntiforgery().RequireAuthorization(AssentSchemes.WebSession), "session cookie");
        return app;
    }

    private static void Map(RouteGroupBuilder group, string how)
    {
        group.MapGet("/keys", ListKeysAsync).WithSummary($"Your vault recipient keys with their proofs ({how})").Produces<VaultKeyList>();
        group.MapPost("/keys", RegisterKeyAsync).WithSummary($"Register an X25519 recipient key with its proof ({how})")
            .Accepts<VaultKeyRegistration>("application/json").Produces<VaultKeyRegistered>(StatusCodes.Status201Created);
        group.MapDelete("/keys/{kid}", RemoveKeyAsync).WithSummary($"Remove one of your recipient keys and its wrapped keys ({how})");
        group.MapGet("/items", ListItemsAsync).WithSummary($"Your vault items, by name ({how})").Produces<VaultItemList>();
        // Names may hold '/', so the rest of the path is the name; with ?kid= it is NAME/versions/N (one sealed version).
        group.MapGet("/items/{**path}", ItemOrVersionAsync)
            .WithSummary($"An item with its versions; with ?kid=KID, NAME/versions/N: one sealed version and its key wrapped to KID ({how})")
            .Produces<VaultItemDetail>().Produces<VaultSealedVersion>();
        group.MapPut("/items/{**name}", PutItemAsync).WithSummary($"Store a new version of an item: ciphertext and one wrap per recipient key ({how})")
            .Accepts<VaultPutRequest>("application/json").Produces<VaultItemView>(StatusCodes.Status201Created).Produces<VaultItemView>()
            .WithMetadata(new BodyLimit(MaxPutBodyBytes));
        group.MapDelete("/items/{**name}", RemoveItemAsync).WithSummary($"Remove an item with all its versions and wrapped keys ({how})");
        group.MapGet("/wraps", ListWrapsAsync).WithSummary($"Your item keys wrapped to one of your keys, a page at a time, to re-wrap them ({how})")
            .Produces<VaultWrapPage>();
        group.MapPost("/wraps", AddWrapsAsync).WithSummary($"Item keys wrapped to another of your recipient keys ({how})").Accepts<VaultWrapUpload>("application/json")
            .WithMetadata(new BodyLimit(MaxWrapsBodyBytes));
    }

    /// <summary>Raises the request body limit for one endpoint (the routing middleware applies it; the device scheme reads it too).</summary>
    private sealed record BodyLimit(long? MaxRequestBodySize) : IRequestSizeLimitMetadata;

    internal static async Task<IResult> ListKeysAsync(Approver approver, IVaultStore vault, CancellationToken ct)
    {
        var keys = await vault.ListKeysAsync(approver.User.Id, ct);
        return TypedResults.Json(new VaultKeyList(keys.Select(View).ToList()), VaultJson.Default.VaultKeyList);
    }

    private static VaultKeyView View(VaultKeyRecord k) => new(k.Kid, k.DeviceId, k.Kind, Base64Url.Encode(k.PublicKey),
        new VaultKeyProof(k.SignerDeviceId, Base64Url.Encode(k.Signature), k.AuthenticatorData is null ? null : Base64Url.Encode(k.AuthenticatorData),
            k.ClientDataJson is null ? null : Base64Url.Encode(k.ClientDataJson)), k.CreatedAt);

    internal static async Task<IResult> RegisterKeyAsync(HttpRequest request, Approver approver, IVaultStore vault, IDeviceStore devices,
        IdentityDirectory directory, PasskeyCeremonies passkeys, ApprovalService approvals, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, VaultJson.Default.VaultKeyRegistration, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (!Base64Url.TryDecode(body.PublicKey ?? "", out var publicKey) || publicKey.Length != X25519.KeySize || publicKey.All(b => b == 0))
        {
            return Problem.BadRequest("public_key must be a base64url X25519 public key (32 bytes)");
        }
        var kind = body.Kind ?? VaultKeyKinds.Device;
        if (kind is not (VaultKeyKinds.Device or VaultKeyKinds.Recovery))
        {
            return Problem.BadRequest("kind must be 'device' or 'recovery'");
        }
        var user = approver.User;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        VaultKeyRecord key;
        if (body.AuthenticatorData is not null || body.ClientDataJson is not null || body.CredentialId is not null)
        {
            // docs/vault.md §1: a passkey's proof is a WebAuthn assertion whose challenge is SHA-256(KeyProof), user verification required.
            if (!Base64Url.TryDecode(body.CredentialId ?? "", out var credentialId) || credentialId.Length is 0 or > WebAuthnVerifier.MaxCredentialIdLength ||
                !Base64Url.TryDecode(body.Signature ?? "", out var assertionSignature) || assertionSignature.Length is 0 or > 1024 ||
                !Base64Url.TryDecode(body.AuthenticatorData ?? "", out var authenticatorData) || authenticatorData.Length is 0 or > 1024 ||
                !Base64Url.TryDecode(body.ClientDataJson ?? "", out var clientDataJson) || clientDataJson.Length is 0 or > 2048)
            {
                return Problem.BadRequest("a passkey's proof needs credential_id, signature, authenticator_data and client_data_json, all base64url");
            }
            var device = await devices.FindByCredentialIdAsync(credentialId, ct);
            if (device is null || device.UserId != user.Id || !device.Active || device.Kind != DeviceKinds.WebAuthn || device.CredentialId is null ||
                !CryptographicOperations.FixedTimeEquals(device.CredentialId, credentialId))
            {
                return Problem.Unauthorized("credential_id names none of your active passkeys");
            }
            var proofDevice = kind == VaultKeyKinds.Recovery ? VaultKeyKinds.Recovery : device.Id;
            var challenge = SHA256.HashData(VaultFormat.KeyProofMessage(user.Id, proofDevice, publicKey));
            var verified = await passkeys.VerifyAssertionAsync(new StoredPasskey(device.CredentialId, device.PublicJwk, device.SignCount), authenticatorData,
                clientDataJson, assertionSignature, challenge, ct);
            if (!verified.Succeeded)
            {
                if (verified.Error.Code == WebAuthnFailures.SignCountRegression)
                {
                    await approvals.AuditSignCountRegressionAsync(device, null, verified.Error.Detail, ct);
                }
                return Problem.Unauthorized($"the passkey assertion was refused: {verified.Error.Code}: {verified.Error.Detail}");
            }
            if (!await approvals.AdvanceSignCountAsync(device, verified.Value.SignCount, null, ct))
            {
                return Problem.Unauthorized("the passkey assertion was refused: its signature counter did not advance");
            }
            key = new VaultKeyRecord(VaultFormat.KeyId(publicKey), user.Id, proofDevice, kind, publicKey, device.Id, assertionSignature, authenticatorData,
                clientDataJson, now);
        }
        else
        {
            if (approver.Session is not null)
            {
                return Problem.BadRequest("from the web app, prove the key with a passkey assertion (credential_id, authenticator_data, client_data_json, signature)");
            }
            if (!Base64Url.TryDecode(body.Signature ?? "", out var signature) || signature.Length != Ed25519.SignatureSize)
            {
                return Problem.BadRequest("signature must be a base64url Ed25519 signature (64 bytes) by this device over the key proof (docs/vault.md §1)");
            }
            var device = await directory.FindDeviceAsync(approver.DeviceId, ct);
            var jwk = device is null ? null : JsonSerializer.Deserialize(device.PublicJwk, JwkJson.Default.Jwk);
            var proofDevice = kind == VaultKeyKinds.Recovery ? VaultKeyKinds.Recovery : approver.DeviceId;
            if (jwk is null || !jwk.TryGetEd25519(out var devicePublicKey) ||
                !Ed25519.Verify(devicePublicKey, VaultFormat.KeyProofMessage(user.Id, proofDevice, publicKey), signature))
            {
                return Problem.Unauthorized($"the signature does not verify: sign \"assent-vault-key-v1\" ‖ len8(user id) ‖ user id ‖ len8(\"{proofDevice}\") ‖ " +
                                            "\"" + proofDevice + "\" ‖ public key with this device's key (docs/vault.md §1)");
            }
            key = new VaultKeyRecord(VaultFormat.KeyId(publicKey), user.Id, proofDevice, kind, publicKey, approver.DeviceId, signature, null, null, now);
        }
        var outcome = await vault.AddKeyAsync(key, MaxKeysPerDevice, new AuditEvent(VaultAudit.KeyRegistered, user.Id, approver.DeviceId, key.Kid,
            new Dictionary<string, string> { ["kind"] = kind, ["device_id"] = key.DeviceId }), ct);
        switch (outcome.Status)
        {
            case VaultKeyAdded.AlreadyRegistered:
                return TypedResults.Json(new VaultKeyRegistered(key.Kid), VaultJson.Default.VaultKeyRegistered);
            case VaultKeyAdded.Conflict:
                return Problem.Conflict("this key is already registered to another device or as another kind");
            case VaultKeyAdded.TooMany:
                return Problem.Conflict($"this device already has {MaxKeysPerDevice} vault keys; remove one first");
            case VaultKeyAdded.RecoveryExists:
                return Problem.Conflict("you already have a recovery key; remove it first (DELETE …/vault/keys/{kid})");
        }
        string? rewrap = null;
        if (outcome.RewrapNeeded && kind == VaultKeyKinds.Device)
        {
            rewrap = await RequestRewrapAsync(key, approver, devices, approvals, options, ct);
        }
        return TypedResults.Json(new VaultKeyRegistered(key.Kid, rewrap), VaultJson.Default.VaultKeyRegistered, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>
    /// docs/vault.md §5.1: a new device's key gets the owner's items once another of the owner's devices re-wraps them. The
    /// request shows the new key; the approving device checks its proof, re-wraps and uploads, then approves.
    /// </summary>
    private static async Task<string> RequestRewrapAsync(VaultKeyRecord key, Approver approver, IDeviceStore devices, ApprovalService approvals,
        AssentOptions options, CancellationToken ct)
    {
        var deviceName = (await devices.FindAsync(key.DeviceId, ct))?.Name ?? key.DeviceId;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString("type", VaultRelease.RewrapType);
            w.WriteString("kid", key.Kid);
            w.WriteString("device_id", key.DeviceId);
            w.WriteString("device_name", deviceName);
            w.WriteString("public_key", Base64Url.Encode(key.PublicKey));
            w.WriteEndObject();
            w.WriteEndArray();
        }
        var message = ApprovalText.BindingMessageProblem($"Give your new device '{deviceName}' access to your vault") is null
            ? $"Give your new device '{deviceName}' access to your vault"
            : "Give your new device access to your vault";
        var created = await approvals.CreateAsync(ApprovalKinds.VaultRewrap, ClientId, ClientName, approver.User, "vault", message,
            Encoding.UTF8.GetString(buffer.WrittenSpan), null, options.DefaultRequestExpiry, ct);
        return created.Approval.Id;
    }

    internal static async Task<IResult> RemoveKeyAsync(string kid, Approver approver, IVaultStore vault, CancellationToken ct)
    {
        if (kid.Length > 64 || !await vault.RemoveKeyAsync(approver.User.Id, kid, new AuditEvent(VaultAudit.KeyRemoved, approver.User.Id, approver.DeviceId, kid), ct))
        {
            return Problem.NotFound("you have no vault key with this kid");
        }
        return TypedResults.NoContent();
    }

    internal static async Task<IResult> ListItemsAsync(Approver approver, IVaultStore vault, CancellationToken ct)
    {
        return new VaultItemListResult(await vault.ListItemsJsonAsync(approver.User.Id, ct));
    }

    private static VaultItemView View(VaultItemRecord i) => new(i.Id, i.Name, i.Version, i.Size, i.CreatedAt, i.UpdatedAt);

    internal static async Task<IResult> ItemOrVersionAsync(string path, HttpRequest request, Approver approver, IVaultStore vault, CancellationToken ct)
    {
        path = PathName(path);
        if (request.Query.TryGetValue("kid", out var kids))
        {
            return await SealedVersionAsync(path, kids.ToString(), approver, vault, ct);
        }
        if (NameProblem(path) is { } bad)
        {
            return Problem.BadRequest(bad);
        }
        if (await vault.FindItemAsync(approver.User.Id, path, ct) is not { } item)
        {
            return Problem.NotFound("you have no vault item of this name");
        }
        var versions = await vault.ListVersionsAsync(item.Id, ct);
        return TypedResults.Json(new VaultItemDetail(item.Id, item.Name, item.Version, item.CreatedAt, item.UpdatedAt,
            versions.Select(v => new VaultVersionView(v.Version, v.Size, v.CreatedBy, v.CreatedAt)).ToList()), VaultJson.Default.VaultItemDetail);
    }

    private static async Task<IResult> SealedVersionAsync(string path, string kid, Approver approver, IVaultStore vault, CancellationToken ct)
    {
        const string Marker = "/versions/";
        var at = path.LastIndexOf(Marker, StringComparison.Ordinal);
        if (at <= 0 || !uint.TryParse(path.AsSpan(at + Marker.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture,
                out var version) || version == 0)
        {
            return Problem.BadRequest("with ?kid=, the path is …/vault/items/NAME/versions/N (N from 1)");
        }
        var name = path[..at];
        if (NameProblem(name) is { } bad)
        {
            return Problem.BadRequest(bad);
        }
        // The key must be the caller's own (or the owner's recovery key): a device reads only what it can open. The store checks
        // it in the same read (docs/vault.md §8).
        if (kid.Length is 0 or > 64 || await vault.FindSealedAsync(approver.User.Id, name, version, kid, approver.DeviceId, ct) is not { } sealedVersion)
        {
            return Problem.NotFound("no such item version wrapped to a key of this device");
        }
        return TypedResults.Json(new VaultSealedVersion(sealedVersion.ItemId, sealedVersion.Name, sealedVersion.Version, Base64Url.Encode(sealedVersion.Ciphertext),
            sealedVersion.Kid, Base64Url.Encode(sealedVersion.Wrapped)), VaultJson.Default.VaultSealedVersion);
    }

    /// <summary>A key registered by the calling device (the session's passkey in the web app), or the owner's recovery key (docs/vault.md §5.3).</summary>
    private static async Task<bool> IsCallersKeyAsync(Approver approver, string kid, IVaultStore vault, CancellationToken ct) =>
        kid.Length is > 0 and <= 64 &&
        (await vault.ListKeysAsync(approver.User.Id, ct)).Any(k => k.Kid == kid && (k.DeviceId == approver.DeviceId || k.Kind == VaultKeyKinds.Recovery));

    internal static async Task<IResult> PutItemAsync(string name, HttpRequest request, Approver approver, IVaultStore vault, TimeProvider time, CancellationToken ct)
    {
        name = PathName(name);
        if (NameProblem(name) is { } bad)
        {
            return Problem.BadRequest(bad);
        }
        var read = await RequestBodies.ReadJsonAsync(request, VaultServerJson.Default.VaultPutBody, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (!IsItemId(body.Id))
        {
            return Problem.BadRequest("id must be 22 base64url characters (16 random bytes, docs/vault.md §2.1)");
        }
        if (body.Version is not { } version || version is 0 or > MaxVersionsPerItem)
        {
            return Problem.BadRequest($"version must be a whole number from 1 to {MaxVersionsPerItem}: the item's latest version + 1, or 1 for a new name");
        }
        if (body.Ciphertext is not { } ciphertext || ciphertext.Length < SealedOverhead || ciphertext.Length > MaxCiphertextBytes || ciphertext[0] != VaultFormat.Version)
        {
            return Problem.BadRequest($"ciphertext must be a base64url sealed item of format version 1 (first byte 0x01), {SealedOverhead} to {MaxCiphertextBytes} bytes");
        }
        if (body.Wraps is not { Count: > 0 } wrapList || wrapList.Count > MaxKeysPerDevice * 64)
        {
            return Problem.BadRequest("wraps must list the item key wrapped to each of your recipient keys");
        }
        var wraps = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var wrap in wrapList)
        {
            if (wrap?.Kid is not { Length: > 0 and <= 64 } kid || !IsWrapped(wrap.Wrapped, out var wrapped))
            {
                return Problem.BadRequest($"each wrap needs a kid and wrapped: base64url, {WrappedBytes} bytes, first byte 0x01 (docs/vault.md §2.2)");
            }
            if (!wraps.TryAdd(kid, wrapped))
            {
                return Problem.BadRequest($"kid {kid} is wrapped to twice");
            }
        }
        var user = approver.User.Id;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (version == 1 && await vault.CountItemsAsync(user, ct) >= MaxItemsPerUser)
        {
            return Problem.Conflict($"you already have {MaxItemsPerUser} vault items; remove some first");
        }
        var outcome = await vault.PutAsync(user, name, body.Id!, version, ciphertext, wraps, approver.DeviceId, now,
            new AuditEvent(VaultAudit.ItemPut, user, approver.DeviceId, body.Id, new Dictionary<string, string>
            {
                ["name"] = name, ["version"] = version.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["size"] = ciphertext.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), ["kids"] = string.Join(' ', wraps.Keys.Order(StringComparer.Ordinal)),
            }), ct);
        return outcome.Status switch
        {
            VaultPutStatus.Created => TypedResults.Json(View(outcome.Item!), VaultJson.Default.VaultItemView, statusCode: StatusCodes.Status201Created),
            VaultPutStatus.Updated => TypedResults.Json(View(outcome.Item!), VaultJson.Default.VaultItemView),
            VaultPutStatus.KeysChanged => Problem.Conflict("recipient keys changed: wrap the item key to exactly your current keys (GET …/vault/keys) and send it again"),
            VaultPutStatus.IdConflict => Problem.Conflict("this id does not belong to this name: a new name needs a new id, an existing name keeps its own"),
            _ => Problem.Conflict("version must be the item's latest version + 1 (1 for a new name): someone else wrote first; read the item again"),
        };
    }

    internal static async Task<IResult> RemoveItemAsync(string name, Approver approver, IVaultStore vault, CancellationToken ct)
    {
        name = PathName(name);
        if (NameProblem(name) is { } bad)
        {
            return Problem.BadRequest(bad);
        }
        if (!await vault.RemoveItemAsync(approver.User.Id, name,
                new AuditEvent(VaultAudit.ItemRemoved, approver.User.Id, approver.DeviceId, name, new Dictionary<string, string> { ["name"] = name }), ct))
        {
            return Problem.NotFound("you have no vault item of this name");
        }
        return TypedResults.NoContent();
    }

    internal static async Task<IResult> ListWrapsAsync(HttpRequest request, Approver approver, IVaultStore vault, CancellationToken ct)
    {
        var kid = request.Query["kid"].ToString();
        string? afterItem = null;
        uint afterVersion = 0;
        if (request.Query["after"].ToString() is { Length: > 0 } after)
        {
            // The cursor is ITEM_ID.VERSION of the last wrap of the previous page.
            var dot = after.IndexOf('.', StringComparison.Ordinal);
            if (dot < 0 || !IsItemId(after[..dot]) ||
                !uint.TryParse(after.AsSpan(dot + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out afterVersion))
            {
                return Problem.BadRequest("after must be the next cursor of the previous page");
            }
            afterItem = after[..dot];
        }
        if (!await IsCallersKeyAsync(approver, kid, vault, ct))
        {
            return Problem.NotFound("kid must name a vault key of this device (or your recovery key)");
        }
        var page = await vault.ListWrapsAsync(approver.User.Id, kid, afterItem, afterVersion, MaxWrapsPerBatch, ct);
        var next = page.Count == MaxWrapsPerBatch ? $"{page[^1].ItemId}.{page[^1].Version.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : null;
        return TypedResults.Json(new VaultWrapPage(page.Select(w => new VaultItemWrap(w.ItemId, w.Version, Base64Url.Encode(w.Wrapped))).ToList(), next),
            VaultJson.Default.VaultWrapPage);
    }

    internal static async Task<IResult> AddWrapsAsync(HttpRequest request, Approver approver, IVaultStore vault, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, VaultJson.Default.VaultWrapUpload, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (body.Kid is not { Length: > 0 and <= 64 } kid)
        {
            return Problem.BadRequest("kid is required: the recipient key these wraps are for");
        }
        if (body.Wraps is not { Count: > 0 and <= MaxWrapsPerBatch } list)
        {
            return Problem.BadRequest($"wraps must hold 1 to {MaxWrapsPerBatch} wrapped keys");
        }
        var wraps = new List<VaultWrapRecord>(list.Count);
        var seen = new HashSet<(string, uint)>();
        foreach (var w in list)
        {
            if (w is null || !IsItemId(w.ItemId) || w.Version == 0 || !IsWrapped(w.Wrapped, out var wrapped))
            {
                return Problem.BadRequest($"each wrap needs item_id (22 base64url characters), version (from 1) and wrapped: base64url, {WrappedBytes} bytes, first byte 0x01");
            }
            if (!seen.Add((w.ItemId!, w.Version)))
            {
                return Problem.BadRequest($"item {w.ItemId} version {w.Version} is listed twice");
            }
            wraps.Add(new VaultWrapRecord(w.ItemId!, w.Version, wrapped));
        }
        var user = approver.User.Id;
        if (!(await vault.ListKeysAsync(user, ct)).Any(k => k.Kid == kid))
        {
            return Problem.NotFound("you have no vault key with this kid");
        }
        if (!await vault.AddWrapsAsync(user, kid, wraps, new AuditEvent(VaultAudit.WrapsAdded, user, approver.DeviceId, kid,
                new Dictionary<string, string> { ["count"] = wraps.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) }), ct))
        {
            return Problem.NotFound("every item_id and version must be one of your items' versions, and kid one of your keys; nothing was stored");
        }
        return TypedResults.NoContent();
    }

    /// <summary>The name as routed: a client may send '/' in a name raw or as %2F, which the server leaves encoded in the path.</summary>
    private static string PathName(string routed) => routed.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// docs/vault.md §6: 1–128 characters of <c>[A-Za-z0-9._@+/-]</c>. Segments between '/' are non-empty and neither "." nor
    /// "..", since URL clients rewrite those before the request is sent.
    /// </summary>
    internal static string? NameProblem(string name)
    {
        if (name.Length is 0 or > 128 || !name.All(c => c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '@' or '+' or '/' or '-') ||
            name.Split('/').Any(s => s is "" or "." or ".."))
        {
            return "an item name is 1 to 128 characters of A-Z a-z 0-9 . _ @ + / -, without empty, '.' or '..' segments between slashes";
        }
        return null;
    }

    internal static bool IsItemId(string? id) => id is { Length: 22 } && Base64Url.TryDecode(id, out var bytes) && bytes.Length == 16;

    internal static bool IsWrapped(string? value, out byte[] wrapped) =>
        Base64Url.TryDecode(value ?? "", out wrapped) && wrapped.Length == WrappedBytes && wrapped[0] == VaultFormat.Version;
}

/// <summary>The vault's audit entries: names, ids, versions and kids, never bytes (docs/vault.md §6).</summary>
internal static class VaultAudit
{
    public const string KeyRegistered = "vault.key_registered";
    public const string KeyRemoved = "vault.key_removed";
    public const string ItemPut = "vault.item_put";
    public const string ItemRemoved = "vault.item_removed";
    public const string WrapsAdded = "vault.wraps_added";
    public const string Released = "vault.released";
}
