using System.Security.Cryptography;
using NSec.Cryptography;

namespace Assent.Protocol.Crypto;

/// <summary>X25519 (RFC 7748 §5, §6.1) on NSec.Cryptography, with keys and shared secrets as raw 32-byte values.</summary>
public static class X25519
{
    public const int KeySize = 32;

    private static KeyAgreementAlgorithm Algorithm => KeyAgreementAlgorithm.X25519;

    /// <summary>The public key: the private key times the base point u = 9 (RFC 7748 §6.1).</summary>
    /// <exception cref="ArgumentException">The private key is not 32 bytes.</exception>
    public static byte[] PublicKeyFromPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        using var key = ImportPrivateKey(privateKey);
        return key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <summary>
    /// The shared secret X25519(privateKey, peerPublicKey). The peer key's top bit is ignored and
    /// values of p and above are reduced (RFC 7748 §5).
    /// </summary>
    /// <exception cref="ArgumentException">A key is not 32 bytes.</exception>
    /// <exception cref="CryptographicException">The result is all zeros: the peer sent a small-order point (RFC 7748 §6.1).</exception>
    public static byte[] SharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey)
    {
        if (peerPublicKey.Length != KeySize)
        {
            throw new ArgumentException($"an X25519 public key must be {KeySize} bytes", nameof(peerPublicKey));
        }
        using var key = ImportPrivateKey(privateKey);
        var peer = PublicKey.Import(Algorithm, peerPublicKey, KeyBlobFormat.RawPublicKey);
        // NSec returns no secret where libsodium refuses the all-zero output (RFC 7748 §6.1). The raw
        // secret is what callers ask for, so NSec must be allowed to hand it out.
        using var secret = Algorithm.Agree(key, peer, new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport })
            ?? throw new CryptographicException("X25519 produced the all-zero value");
        return secret.Export(SharedSecretBlobFormat.RawSharedSecret);
    }

    /// <summary>
    /// <see cref="SharedSecret(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> that also writes the private key's own public key into
    /// <paramref name="ownPublicKey"/> (32 bytes), from a single import of the private key: the public key comes with the import.
    /// </summary>
    /// <exception cref="ArgumentException">A key, or <paramref name="ownPublicKey"/>, is not 32 bytes.</exception>
    /// <exception cref="CryptographicException">The result is all zeros: the peer sent a small-order point (RFC 7748 §6.1).</exception>
    public static byte[] SharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey, Span<byte> ownPublicKey)
    {
        if (peerPublicKey.Length != KeySize || ownPublicKey.Length != KeySize)
        {
            throw new ArgumentException($"an X25519 public key must be {KeySize} bytes", peerPublicKey.Length != KeySize ? nameof(peerPublicKey) : nameof(ownPublicKey));
        }
        using var key = ImportPrivateKey(privateKey);
        key.PublicKey.TryExport(KeyBlobFormat.RawPublicKey, ownPublicKey, out _);
        var peer = PublicKey.Import(Algorithm, peerPublicKey, KeyBlobFormat.RawPublicKey);
        using var secret = Algorithm.Agree(key, peer, new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport })
            ?? throw new CryptographicException("X25519 produced the all-zero value");
        return secret.Export(SharedSecretBlobFormat.RawSharedSecret);
    }

    private static Key ImportPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != KeySize)
        {
            throw new ArgumentException($"an X25519 private key must be {KeySize} bytes", nameof(privateKey));
        }
        return Key.Import(Algorithm, privateKey, KeyBlobFormat.RawPrivateKey);
    }
}
