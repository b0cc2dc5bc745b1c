using System.Text.Json;
using Assent.Cli.Output;
using Assent.Server.Common;

namespace Assent.Cli.Devices;

/// <summary>A device key as stored on this computer (docs/cli.md §4: <c>~/.assent/devices/</c>, mode 0600).</summary>
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
    DateTimeOffset CreatedAt);

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
