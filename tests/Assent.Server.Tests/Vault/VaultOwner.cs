using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;

namespace Assent.Server.Tests.Vault;

/// <summary>
/// An owner's device using the vault as docs/vault.md §3 describes: its own X25519 key, sealing and wrapping on the device,
/// opening what it reads back. Works against an in-process server or a server process (whatever signs its requests).
/// </summary>
internal sealed class VaultOwner(HttpClient http, Func<HttpMethod, string, byte[]?, HttpRequestMessage> signed, string userId, string deviceId, byte[] seed)
{
    public byte[] Private { get; } = VaultFormat.NewPrivateKey();

    public byte[] Public => X25519.PublicKeyFromPrivateKey(Private);

    public string Kid => VaultFormat.KeyId(Public);

    public string UserId => userId;

    public string DeviceId => deviceId;

    /// <summary>Item keys this device made, so a test can look for them where they must never be.</summary>
    public List<byte[]> ItemKeys { get; } = [];

    public static VaultOwner Of(TestServer server, TestDevice device) => new(server.Http, device.Signed, device.UserId, device.DeviceId, device.Seed);

    public async Task<(HttpStatusCode Status, JsonElement Body)> CallAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = signed(method, path, body is null ? null : Encoding.UTF8.GetBytes(body as string ?? JsonSerializer.Serialize(body)));
        using var response = await http.SendAsync(request);
        return await TestServer.ReadAsync(response);
    }

    public byte[] Proof(string proofDevice, byte[] publicKey) => Ed25519.Sign(seed, VaultFormat.KeyProofMessage(userId, proofDevice, publicKey));

    public Task<(HttpStatusCode Status, JsonElement Body)> RegisterAsync() =>
        CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(Public),
            ["signature"] = Base64Url.Encode(Proof(deviceId, Public)),
        });

    public async Task<List<(string Kid, byte[] PublicKey)>> KeysAsync()
    {
        var (status, body) = await CallAsync(HttpMethod.Get, "/authenticator/vault/keys");
        Assert.Equal(HttpStatusCode.OK, status);
        return body.GetProperty("keys").EnumerateArray()
            .Select(k => (k.GetProperty("kid").GetString()!, Base64Url.Decode(k.GetProperty("public_key").GetString()!))).ToList();
    }

    /// <summary>The PUT body for <paramref name="plaintext"/>, sealed under a fresh item key wrapped to every key listed.</summary>
    public object PutBody(string id, uint version, byte[] plaintext, IEnumerable<(string Kid, byte[] PublicKey)> keys)
    {
        var itemKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(VaultFormat.KeySize);
        ItemKeys.Add(itemKey);
        return new Dictionary<string, object>
        {
            ["id"] = id,
            ["version"] = version,
            ["ciphertext"] = Base64Url.Encode(VaultFormat.SealItem(itemKey, id, version, plaintext)),
            ["wraps"] = keys.Select(k => new Dictionary<string, string>
            {
                ["kid"] = k.Kid, ["wrapped"] = Base64Url.Encode(VaultFormat.WrapKey(itemKey, id, version, k.PublicKey)),
            }).ToList(),
        };
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> PutAsync(string name, byte[] plaintext, string id, uint version) =>
        await CallAsync(HttpMethod.Put, "/authenticator/vault/items/" + name, PutBody(id, version, plaintext, await KeysAsync()));

    /// <summary>Reads one sealed version with the key wrapped to this device, and opens it.</summary>
    public async Task<byte[]> OpenAsync(string name, uint version)
    {
        var (status, body) = await CallAsync(HttpMethod.Get, $"/authenticator/vault/items/{name}/versions/{version}?kid={Kid}");
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        var id = body.GetProperty("id").GetString()!;
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(body.GetProperty("wrapped").GetString()!), id, version, Private);
        return VaultFormat.OpenItem(itemKey, id, version, Base64Url.Decode(body.GetProperty("ciphertext").GetString()!));
    }
}
