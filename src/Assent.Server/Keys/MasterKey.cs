using System.Security.Cryptography;
using System.Text;
using Assent.Protocol;
using Assent.Server.Common;

namespace Assent.Server.Keys;

/// <summary>
/// The key-encryption key (docs/deployment.md §3): from <c>ASSENT_MASTER_KEY</c> (32 bytes, base64 or
/// base64url) or from <c>master.key</c> (mode 0600) in the data directory, created on first use.
/// Signing keys are stored only sealed under it with AES-256-GCM.
/// </summary>
internal sealed class MasterKey
{
    public const string EnvironmentVariable = "ASSENT_MASTER_KEY";
    public const string FileName = "master.key";
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly byte[] _key;

    private MasterKey(byte[] key) => _key = key;

    public static MasterKey Load(string? dataDirectory)
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return new MasterKey(Decode(fromEnv.Trim(), EnvironmentVariable));
        }
        if (string.IsNullOrEmpty(dataDirectory))
        {
            throw new InvalidOperationException($"no key-encryption key: set {EnvironmentVariable} or give a data directory");
        }
        var path = Path.Combine(dataDirectory, FileName);
        if (!File.Exists(path))
        {
            SecureFile.EnsurePrivateDirectory(dataDirectory);
            // CreateNew: if another process won the race, its key is the one read below.
            SecureFile.TryCreateNew(path, Encoding.ASCII.GetBytes(Base64Url.Encode(RandomNumberGenerator.GetBytes(32)) + "\n"));
        }
        if (SecureFile.IsExposed(path))
        {
            throw new InvalidOperationException($"{path} is readable by other users; run: chmod 600 {path}");
        }
        return new MasterKey(Decode(File.ReadAllText(path).Trim(), path));
    }

    public static MasterKey FromBytes(byte[] key) => key.Length == 32 ? new MasterKey(key) : throw new ArgumentException("master key must be 32 bytes");

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
