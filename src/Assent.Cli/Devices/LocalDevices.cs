using System.Text.Json;
using Assent.Cli.Output;
using Assent.Client.Authenticator;
using Assent.Client.Vault;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;
using Assent.Server.Common;

namespace Assent.Cli.Devices;

/// <summary>
/// A device key as stored on this computer (docs/cli.md §4: <c>~/.assent/devices/</c>, mode 0600). Beside the Ed25519 seed,
/// <see cref="VaultKey"/> is the device's X25519 private key for the vault (docs/vault.md §1), kept the same way;
/// <see cref="VaultKeyRegisteredAt"/> says when the server accepted its public key. Files written before the vault lack both.
/// </summary>
internal sealed record DeviceFile(
    string DeviceId,
    string Server,
    string Issuer,
    string UserId,
    string UserDid,
    string Handle,
    string Name,
    string Seed,
    string PublicKey,
    DateTimeOffset CreatedAt,
    string? VaultKey = null,
    DateTimeOffset? VaultKeyRegisteredAt = null);

/// <summary>The device keys enrolled from this computer, one JSON file each.</summary>
internal sealed class LocalDevices(string root)
{
    public static LocalDevices ForCurrentUser()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home))
        {
            throw CliException.Invalid("cannot find the home directory for ~/.assent; set HOME");
        }
        return new LocalDevices(Path.Combine(home, ".assent"));
    }

    public string Directory => Path.Combine(root, "devices");

    public string PathOf(string deviceId) => Path.Combine(Directory, deviceId + ".json");

    public string Save(DeviceFile device)
    {
        SecureFile.EnsurePrivateDirectory(root);
        SecureFile.EnsurePrivateDirectory(Directory);
        var path = PathOf(device.DeviceId);
        SecureFile.WriteAtomic(path, JsonSerializer.SerializeToUtf8Bytes(device, CliJson.Default.DeviceFile));
        return path;
    }

    /// <summary>All readable device files, newest first.</summary>
    public IReadOnlyList<DeviceFile> List()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return [];
        }
        var devices = new List<DeviceFile>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "*.json"))
        {
            // Like ssh with private keys: a key others can read is no longer this device's alone.
            if (SecureFile.IsExposed(path))
            {
                throw CliException.Invalid($"{path} is readable by other users; run: chmod 600 {path}");
            }
            try
            {
                if (JsonSerializer.Deserialize(File.ReadAllBytes(path), CliJson.Default.DeviceFile) is { } device)
                {
                    devices.Add(device);
                }
            }
            catch (JsonException)
            {
                Console.Error.WriteLine($"warning: skipping {path}: not a device key file");
            }
        }
        return devices.OrderByDescending(d => d.CreatedAt).ToList();
    }

    /// <summary>The device to act with: the one named, else the only one (for the server, if given), else the most recent.</summary>
    public DeviceFile Select(string? deviceId, Uri? server)
    {
        var all = List();
        if (all.Count == 0)
        {
            throw CliException.Invalid("no device is enrolled on this computer; run: assent device enroll --server URL --code CODE");
        }
        if (deviceId is not null)
        {
            return all.FirstOrDefault(d => d.DeviceId == deviceId)
                ?? throw CliException.Invalid($"no local device {deviceId}; see: assent device list");
        }
        var candidates = server is null ? all : all.Where(d => ServerUrl.SameServer(d.Server, server)).ToList();
        return candidates.FirstOrDefault()
            ?? throw CliException.Invalid($"no device is enrolled with {server}; run: assent device enroll --server {server} --code CODE");
    }
}

/// <summary>
/// This device's vault key (docs/vault.md §1): created at enrolment, or on the first run that talks to the server for a device
/// enrolled before the vault; saved beside the Ed25519 key, then registered with the device's signature over its proof.
/// </summary>
internal static class DeviceVaultKeys
{
    /// <summary>The device with its vault key saved, and registered with the server unless it already was.</summary>
    public static async Task<DeviceFile> EnsureAsync(LocalDevices local, DeviceFile device, AuthenticatorClient client, TextWriter notes, CancellationToken ct)
    {
        if (device.VaultKey is null)
        {
            var created = VaultFormat.NewPrivateKey();
            device = device with { VaultKey = Base64Url.Encode(created), VaultKeyRegisteredAt = null };
            local.Save(device);
        }
        if (device.VaultKeyRegisteredAt is not null)
        {
            return device;
        }
        var privateKey = PrivateKey(device);
        var registered = await client.RegisterVaultKeyAsync(VaultDevice.DeviceRegistration(Owner(device), X25519.PublicKeyFromPrivateKey(privateKey)), ct);
        device = device with { VaultKeyRegisteredAt = DateTimeOffset.UtcNow };
        local.Save(device);
        if (registered.RewrapApprovalId is { } approval)
        {
            // docs/vault.md §5.1: the owner's other devices re-wrap the existing items for this one once the owner approves.
            await notes.WriteLineAsync($"This device's vault key {registered.Kid} is registered. To open existing vault items here, approve request {approval} " +
                                       "on another of your devices (or run: assent vault recover --key KEY with the recovery key).");
        }
        return device;
    }

    public static VaultOwner Owner(DeviceFile device) => new(device.UserId, device.UserDid, device.DeviceId, Seed(device));

    public static byte[] PrivateKey(DeviceFile device) =>
        device.VaultKey is { } text && Base64Url.TryDecode(text, out var key) && key.Length == X25519.KeySize
            ? key
            : throw CliException.Invalid($"the key file of {device.DeviceId} is damaged (vault_key); enrol this computer again");

    private static byte[] Seed(DeviceFile device) =>
        Base64Url.TryDecode(device.Seed, out var seed) && seed.Length == Ed25519.SeedSize
            ? seed
            : throw CliException.Invalid($"the key file of {device.DeviceId} is damaged (seed); enrol this computer again");
}
