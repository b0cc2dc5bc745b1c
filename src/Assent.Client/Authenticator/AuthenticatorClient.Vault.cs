using System.Buffers;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Assent.Protocol.Devices;
using Assent.Protocol.Messages;

namespace Assent.Client.Authenticator;

// The vault endpoints of the device API (docs/vault.md §6, /authenticator/vault/…): bytes in and out only. Sealing, wrapping
// and every check of what comes back happen in the caller (VaultDevice); the server never holds a key that opens an item.
public sealed partial class AuthenticatorClient
{
    private const string VaultPrefix = Prefix + "/vault";

    /// <summary>The owner's registered recipient keys (device keys and the recovery key), each with the proof that registered it.</summary>
    public Task<VaultKeyList> ListVaultKeysAsync(CancellationToken ct) =>
        SendAsync(HttpMethod.Get, VaultPrefix + "/keys", null, signed: true, VaultJson.Default.VaultKeyList, ct);

    /// <summary>Registers an X25519 public key; <paramref name="registration"/> carries the device's signature over the key proof.</summary>
    public Task<VaultKeyRegistered> RegisterVaultKeyAsync(VaultKeyRegistration registration, CancellationToken ct) =>
        SendAsync(HttpMethod.Post, VaultPrefix + "/keys", JsonSerializer.SerializeToUtf8Bytes(registration, VaultJson.Default.VaultKeyRegistration),
            signed: true, VaultJson.Default.VaultKeyRegistered, ct);

    /// <summary>Removes one of the owner's recipient keys and every item key wrapped to it.</summary>
    public Task DeleteVaultKeyAsync(string kid, CancellationToken ct) =>
        SendNoContentAsync(HttpMethod.Delete, $"{VaultPrefix}/keys/{Uri.EscapeDataString(kid)}", null, ct);

    /// <summary>The owner's items, by name (metadata only).</summary>
    public async Task<VaultItemList> ListVaultItemsAsync(CancellationToken ct)
    {
        const string Path = VaultPrefix + "/items";
        var uri = new Uri(_base + Path);
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        var key = RequireDevice();
        request.Headers.TryAddWithoutValidation("Authorization", DeviceSignatures.SignRequest(key.DeviceId, key.Seed, "GET", uri.PathAndQuery, [], _time.GetUtcNow()));
        using var response = await Transport.SendAsync(_http, server, request, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw await ProblemAsync(response, ct);
        }
        // Up to 50,000 items: read in one pass over the buffered body (Vault.VaultItemListReader), not through the serializer.
        var body = await response.Content.ReadAsByteArrayAsync(ct);
        try
        {
            return Vault.VaultItemListReader.Parse(body);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new AssentProtocolException($"GET {Path} answered with JSON of an unexpected shape: {e.Message}");
        }
    }

    /// <summary>One item with its versions, newest first.</summary>
    /// <exception cref="AssentProblemException">404 when the owner has no item of that name.</exception>
    public Task<VaultItemDetail> GetVaultItemAsync(string name, CancellationToken ct) =>
        SendAsync(HttpMethod.Get, ItemPath(name), null, signed: true, VaultJson.Default.VaultItemDetail, ct);

    /// <summary>Stores a new version (or a new item) already sealed and wrapped by the caller.</summary>
    /// <exception cref="AssentProblemException">409 when someone wrote first or the recipient keys changed.</exception>
    public Task<VaultItemView> PutVaultItemAsync(string name, VaultPutRequest put, CancellationToken ct) =>
        SendAsync(HttpMethod.Put, ItemPath(name), JsonSerializer.SerializeToUtf8Bytes(put, VaultJson.Default.VaultPutRequest), signed: true,
            VaultJson.Default.VaultItemView, ct);

    /// <summary>
    /// As <see cref="PutVaultItemAsync(string, VaultPutRequest, CancellationToken)"/> from the sealed bytes: the same JSON, with the
    /// ciphertext encoded as base64url straight into the body's UTF-8 (no string of it, twice its size in UTF-16, on the way).
    /// </summary>
    internal Task<VaultItemView> PutVaultItemAsync(string name, string id, uint version, ReadOnlySpan<byte> sealedItem, IReadOnlyList<VaultWrap> wraps,
        CancellationToken ct) =>
        SendAsync(HttpMethod.Put, ItemPath(name), PutBody(id, version, sealedItem, wraps), signed: true, VaultJson.Default.VaultItemView, ct);

    /// <summary>The <see cref="VaultPutRequest"/> document, byte for byte as <see cref="VaultJson"/> writes it.</summary>
    internal static byte[] PutBody(string id, uint version, ReadOnlySpan<byte> sealedItem, IReadOnlyList<VaultWrap> wraps)
    {
        var encodedLength = System.Buffers.Text.Base64Url.GetEncodedLength(sealedItem.Length);
        var encoded = ArrayPool<byte>.Shared.Rent(encodedLength);
        try
        {
            System.Buffers.Text.Base64Url.EncodeToUtf8(sealedItem, encoded, out _, out var written);
            var buffer = new ArrayBufferWriter<byte>(written + 128 + wraps.Count * 256);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("id", id);
                w.WriteNumber("version", version);
                w.WriteString("ciphertext", encoded.AsSpan(0, written));
                w.WriteStartArray("wraps");
                foreach (var wrap in wraps)
                {
                    w.WriteStartObject();
                    w.WriteString("kid", wrap.Kid);
                    w.WriteString("wrapped", wrap.Wrapped);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(encoded);
        }
    }

    /// <summary>One sealed version with its item key wrapped to <paramref name="kid"/>, a key this device registered.</summary>
    public Task<VaultSealedVersion> GetSealedVersionAsync(string name, uint version, string kid, CancellationToken ct) =>
        SendAsync(HttpMethod.Get, $"{ItemPath(name)}/versions/{version.ToString(CultureInfo.InvariantCulture)}?kid={Uri.EscapeDataString(kid)}", null,
            signed: true, VaultJson.Default.VaultSealedVersion, ct);

    /// <summary>Removes an item with all its versions and wrapped keys.</summary>
    public Task DeleteVaultItemAsync(string name, CancellationToken ct) => SendNoContentAsync(HttpMethod.Delete, ItemPath(name), null, ct);

    /// <summary>One page of the item keys wrapped to <paramref name="kid"/> (the caller's own key), after <paramref name="after"/>.</summary>
    public Task<VaultWrapPage> ListVaultWrapsAsync(string kid, string? after, CancellationToken ct) =>
        SendAsync(HttpMethod.Get, $"{VaultPrefix}/wraps?kid={Uri.EscapeDataString(kid)}" + (after is null ? "" : "&after=" + Uri.EscapeDataString(after)), null,
            signed: true, VaultJson.Default.VaultWrapPage, ct);

    /// <summary>Uploads item keys wrapped to another recipient key of the same owner (at most 500 per call).</summary>
    public Task UploadVaultWrapsAsync(VaultWrapUpload upload, CancellationToken ct) =>
        SendNoContentAsync(HttpMethod.Post, VaultPrefix + "/wraps", JsonSerializer.SerializeToUtf8Bytes(upload, VaultJson.Default.VaultWrapUpload), ct);

    // A name may hold '/': it stays a path separator (the server's route takes the rest of the path), each segment escaped.
    private static string ItemPath(string name) => $"{VaultPrefix}/items/{string.Join('/', name.Split('/').Select(Uri.EscapeDataString))}";

    private async Task SendNoContentAsync(HttpMethod method, string path, byte[]? body, CancellationToken ct)
    {
        var uri = new Uri(_base + path);
        using var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        var key = RequireDevice();
        request.Headers.TryAddWithoutValidation("Authorization",
            DeviceSignatures.SignRequest(key.DeviceId, key.Seed, method.Method, uri.PathAndQuery, body ?? [], _time.GetUtcNow()));
        using var response = await Transport.SendAsync(_http, server, request, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw await ProblemAsync(response, ct);
        }
    }
}
