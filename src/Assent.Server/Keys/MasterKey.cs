using System.Security.Cryptography;
using System.Text;
using Assent.Protocol;
using Assent.Server.Common;

namespace Assent.Server.Keys;

/// <summary>
/// The key-encryption key (docs/deployment.md §3), from the first of: <c>ASSENT_MASTER_KEY</c> (32 bytes, base64 or
/// base64url); the file <see cref="AssentOptions.MasterKeyFile"/>; <c>master.key</c> in the data directory. A key file
/// must be readable by its owner only (0600); an absent one is created so, but never in a directory that does not exist.
/// Signing keys are stored only sealed under it with AES-256-GCM.
/// </summary>
internal sealed class MasterKey
{
    public const string EnvironmentVariable = "ASSENT_MASTER_KEY";
    public const string FileName = "master.key";
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly byte[] _key;

    private MasterKey(byte[] key, string? keyFile)
    {
        _key = key;
        KeyFile = keyFile;
    }

    /// <summary>The full path of the file the key was read from; null when it came from <see cref="EnvironmentVariable"/>.</summary>
    public string? KeyFile { get; }

    /// <summary>Where the key came from, for messages.</summary>
    public string Source => KeyFile ?? EnvironmentVariable;

    public static MasterKey Load(AssentOptions options)
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return new MasterKey(Decode(fromEnv.Trim(), EnvironmentVariable), null);
        }
        if (!string.IsNullOrWhiteSpace(options.MasterKeyFile))
        {
            var file = Path.GetFullPath(options.MasterKeyFile);
            if (!File.Exists(file))
            {
                // A path whose directory is missing is a mistake, not the place for a new key.
                if (!Directory.Exists(Path.GetDirectoryName(file)))
                {
                    throw new InvalidOperationException($"the key-encryption key file {file} does not exist, nor does its directory");
                }
                if (SecureFile.TryCreateNew(file, NewKeyFile()))
                {
                    Console.Error.WriteLine($"Created a new key-encryption key in {file} (mode 0600): back it up, apart from the database.");
                }
            }
            return Read(file);
        }
        if (string.IsNullOrEmpty(options.DataDirectory))
        {
            throw new InvalidOperationException($"no key-encryption key: set {EnvironmentVariable} or give a data directory");
        }
        var path = Path.Combine(options.DataDirectory, FileName);
        if (!File.Exists(path))
        {
            SecureFile.EnsurePrivateDirectory(options.DataDirectory);
            // CreateNew: if another process won the race, its key is the one read below.
            SecureFile.TryCreateNew(path, NewKeyFile());
        }
        return Read(Path.GetFullPath(path));
    }

    /// <summary>
    /// A warning for a server that keeps its key inside its data directory outside development (an issuer that is not
    /// loopback): whoever copies the directory, or a backup of it, holds the database and the key that opens its
    /// signing keys, and can forge tokens. Null when the key is elsewhere or the issuer is localhost.
    /// </summary>
    public string? PlacementWarning(AssentOptions options)
    {
        if (KeyFile is null || options.IssuerUri.IsLoopback)
        {
            return null;
        }
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.DataDirectory)) + Path.DirectorySeparatorChar;
        return KeyFile.StartsWith(data, StringComparison.Ordinal)
            ? $"warning: the key-encryption key {KeyFile} is inside the data directory, so whoever copies the directory can forge tokens; " +
              "keep it elsewhere with --master-key-file or ASSENT_MASTER_KEY (docs/deployment.md §3)"
            : null;
    }

    private static MasterKey Read(string path)
    {
        if (SecureFile.IsExposed(path))
        {
            throw new InvalidOperationException($"{path} is readable by other users; run: chmod 600 {path}");
        }
        return new MasterKey(Decode(File.ReadAllText(path).Trim(), path), path);
    }

    private static byte[] NewKeyFile() => Encoding.ASCII.GetBytes(Base64Url.Encode(RandomNumberGenerator.GetBytes(32)) + "\n");

    public static MasterKey FromBytes(byte[] key) => key.Length == 32 ? new MasterKey(key, null) : throw new ArgumentException("master key must be 32 bytes");

    /// <summary>
    /// A 32-byte key for one purpose, derived with HKDF-SHA256 (RFC 5869) so that the key-encryption key itself keys nothing
    /// else: the same on every node that holds this key, and changed with it.
    /// </summary>
    public byte[] Derive(string purpose) => HKDF.DeriveKey(HashAlgorithmName.SHA256, _key, 32, [], Encoding.UTF8.GetBytes(purpose));

    public byte[] Seal(ReadOnlySpan<byte> plaintext, string associatedData)
    {
        var output = new byte[NonceSize + plaintext.Length + TagSize];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var gcm = new AesGcm(_key, TagSize);
        gcm.Encrypt(nonce, plaintext, output.AsSpan(NonceSize, plaintext.Length), output.AsSpan(NonceSize + plaintext.Length), Encoding.UTF8.GetBytes(associatedData));
        return output;
    }

    public byte[] Open(ReadOnlySpan<byte> sealedData, string associatedData)
    {
        if (sealedData.Length < NonceSize + TagSize)
        {
            throw new CryptographicException("sealed value is too short");
        }
        var length = sealedData.Length - NonceSize - TagSize;
        var plaintext = new byte[length];
        using var gcm = new AesGcm(_key, TagSize);
        gcm.Decrypt(sealedData[..NonceSize], sealedData.Slice(NonceSize, length), sealedData[^TagSize..], plaintext, Encoding.UTF8.GetBytes(associatedData));
        return plaintext;
    }

    private static byte[] Decode(string text, string source)
    {
        byte[]? key = null;
        if (!Base64Url.TryDecode(text, out key))
        {
            try
            {
                key = Convert.FromBase64String(text);
            }
            catch (FormatException)
            {
                key = null;
            }
        }
        return key is { Length: 32 } ? key : throw new InvalidOperationException($"{source} must hold 32 bytes in base64 or base64url");
    }
}
