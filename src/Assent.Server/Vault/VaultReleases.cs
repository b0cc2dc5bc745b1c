using System.Buffers;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Protocol.Vault;
using Assent.Server.Storage;

namespace Assent.Server.Vault;

/// <summary>The item version a <c>vault_release</c> request names, as stored in its signed payload (docs/vault.md §4).</summary>
internal sealed record VaultReleaseDetail(string Item, string ItemId, uint Version, byte[] RecipientKey);

/// <summary>
/// Releasing one item to an agent (docs/vault.md §4): the <c>vault_release</c> detail resolved at bc-authorize, the key the
/// approving device re-wrapped stored with its decision, and both handed to the agent with its token.
/// </summary>
internal static class VaultReleases
{
    private const string Item = "item";
    private const string ItemId = "item_id";
    private const string Version = "version";
    private const string RecipientKey = "recipient_key";

    /// <summary>
    /// Rewrites the <c>vault_release</c> entry of normalized <paramref name="details"/> as
    /// <c>{"type","item","item_id","version","recipient_key"}</c> after checking the user has that item version (the latest when
    /// none is named) and the key is 32 bytes; other entries are kept as they are. Null <c>Details</c> with the reason when refused
    /// (RFC 9396 §5: invalid_authorization_details); the details unchanged when none is a vault_release.
    /// </summary>
    public static async Task<(string? Details, string? Refused)> ResolveAsync(string details, string userId, IVaultStore vault, CancellationToken ct)
    {
        using var doc = JsonDocument.Parse(details);
        var releases = doc.RootElement.EnumerateArray().Where(IsRelease).ToList();
        if (releases.Count == 0)
        {
            return (details, null);
        }
        if (releases.Count > 1)
        {
            return (null, "one vault_release per request: ask for each item separately");
        }
        var asked = releases[0];
        if (!asked.TryGetProperty(Item, out var itemValue) || itemValue.ValueKind != JsonValueKind.String || VaultEndpoints.NameProblem(itemValue.GetString()!) is not null)
        {
            return (null, "vault_release needs item: the name of the vault item (1 to 128 characters of A-Z a-z 0-9 . _ @ + / -)");
        }
        if (!asked.TryGetProperty(RecipientKey, out var keyValue) || keyValue.ValueKind != JsonValueKind.String ||
            !Base64Url.TryDecode(keyValue.GetString()!, out var recipientKey) || recipientKey.Length != X25519.KeySize || recipientKey.All(b => b == 0))
        {
            return (null, "vault_release needs recipient_key: the agent's fresh X25519 public key, base64url (32 bytes)");
        }
        uint? version = null;
        if (asked.TryGetProperty(Version, out var versionValue))
        {
            if (versionValue.ValueKind != JsonValueKind.Number || !versionValue.TryGetUInt32(out var v) || v == 0)
            {
                return (null, "vault_release version must be a whole number from 1");
            }
            version = v;
        }
        var name = itemValue.GetString()!;
        var item = await vault.FindItemAsync(userId, name, ct);
        if (item is null || version > item.Version)
        {
            // The same answer for a missing item and a missing version: an agent learns no more than that this release cannot be.
            return (null, version is null ? $"the user has no vault item '{name}'" : $"the user has no vault item '{name}' with version {version}");
        }
        var buffer = new ArrayBufferWriter<byte>(details.Length + 64);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var entry in doc.RootElement.EnumerateArray())
            {
                if (!IsRelease(entry))
                {
                    entry.WriteTo(w);
                    continue;
                }
                w.WriteStartObject();
                w.WriteString(AuthorizationDetailFields.Type, VaultRelease.Type);
                w.WriteString(Item, item.Name);
                w.WriteString(ItemId, item.Id);
                w.WriteNumber(Version, version ?? item.Version);
                w.WriteString(RecipientKey, Base64Url.Encode(recipientKey));
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return (System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan), null);
    }

    private static bool IsRelease(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(AuthorizationDetailFields.Type, out var t) && t.ValueKind == JsonValueKind.String &&
        t.GetString() == VaultRelease.Type;

    /// <summary>The resolved release a stored request asks for; null when it asks for none.</summary>
    public static VaultReleaseDetail? DetailOf(string? authorizationDetails)
    {
        if (authorizationDetails is null || !authorizationDetails.Contains(VaultRelease.Type, StringComparison.Ordinal))
        {
            return null;
        }
        using var doc = JsonDocument.Parse(authorizationDetails);
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (IsRelease(e) && e.TryGetProperty(Item, out var item) && e.TryGetProperty(ItemId, out var itemId) && e.TryGetProperty(Version, out var version) &&
                e.TryGetProperty(RecipientKey, out var key) && Base64Url.TryDecode(key.GetString() ?? "", out var recipientKey))
            {
                return new VaultReleaseDetail(item.GetString()!, itemId.GetString()!, version.GetUInt32(), recipientKey);
            }
        }
        return null;
    }

    /// <summary>The key re-wrapped to the agent, as a decision sends it: base64url, 93 bytes, format version 1 (docs/vault.md §2.2).</summary>
    public static bool TryParseWrapped(string value, out byte[] wrapped) => VaultEndpoints.IsWrapped(value, out wrapped);

    /// <summary>
    /// docs/vault.md §4: redeems the approved release request <paramref name="approval"/> (whose details hold
    /// <paramref name="detail"/>) and takes the key its approval stored, in one transaction: the token response member, handed
    /// out once (the stored key is deleted) and audited. <c>Approved</c> null when the request is not approved or was redeemed
    /// already; a null <c>Release</c> when its item was removed meanwhile or what is stored is not the signed item and version.
    /// </summary>
    public static async Task<(DecidedApproval? Approved, VaultReleaseResult? Release)> RedeemAsync(ApprovalRecord approval, VaultReleaseDetail detail, long now,
        AuditEvent redeemed, string actor, IVaultStore vault, CancellationToken ct)
    {
        var released = new AuditEvent(VaultAudit.Released, approval.UserId, actor, approval.Id, new Dictionary<string, string>
        {
            ["item"] = detail.Item, ["item_id"] = detail.ItemId, ["version"] = detail.Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["recipient_kid"] = VaultFormat.KeyId(detail.RecipientKey),
        });
        if (await vault.RedeemReleaseAsync(approval.Id, now, redeemed, released, ct) is not { } done)
        {
            return (null, null);
        }
        // The stored row is keyed by the approval alone; it must also be the item and version the signed details name.
        if (done.Release is not { Ciphertext: { } ciphertext, Name: { } name } taken || taken.ItemId != detail.ItemId || taken.Version != detail.Version)
        {
            return (done.Approval, null);
        }
        return (done.Approval, new VaultReleaseResult(name, taken.ItemId, taken.Version, Base64Url.Encode(ciphertext), Base64Url.Encode(taken.Wrapped)));
    }
}
