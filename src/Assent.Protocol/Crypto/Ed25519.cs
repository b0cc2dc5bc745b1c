using System.Security.Cryptography;
using NSec.Cryptography;

namespace Assent.Protocol.Crypto;

/// <summary>
/// Ed25519 (RFC 8032 §5.1) on NSec.Cryptography, which runs libsodium's implementation. Keys cross
/// this API as raw bytes: the 32-byte seed (what the server seals at rest) and the 32-byte public key.
/// </summary>
public static class Ed25519
{
    public const int SeedSize = 32;
    public const int PublicKeySize = 32;
    public const int SignatureSize = 64;

    private static SignatureAlgorithm Algorithm => SignatureAlgorithm.Ed25519;

    public static byte[] NewSeed() => RandomNumberGenerator.GetBytes(SeedSize);

    /// <summary>Derives the 32-byte public key from a 32-byte seed (RFC 8032 §5.1.5).</summary>
    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public static byte[] PublicKeyFromSeed(ReadOnlySpan<byte> seed)
    {
        using var key = ImportSeed(seed);
        return key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <summary>Signs with the 32-byte seed (RFC 8032 §5.1.6); returns the 64-byte signature.</summary>
    /// <remarks>Each call imports the seed; to sign often with one key, hold an <see cref="Ed25519Signer"/>.</remarks>
    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public static byte[] Sign(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> message)
    {
        using var key = ImportSeed(seed);
        return Algorithm.Sign(key, message);
    }

    /// <summary>
    /// Verifies a 64-byte signature against a 32-byte public key (RFC 8032 §5.1.7). False, never an
    /// exception, for any malformed input: wrong lengths, a non-canonical S or key, a small-order key or R.
    /// </summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature) =>
        signature.Length == SignatureSize &&
        // Import only checks the length; libsodium's verify refuses S >= L, a non-canonical or
        // small-order key and a small-order R, so one key cannot sign every message.
        PublicKey.TryImport(Algorithm, publicKey, KeyBlobFormat.RawPublicKey, out var key) && key is not null &&
        Algorithm.Verify(key, message, signature);

    /// <summary>The seed as an NSec key the caller disposes; its private part lives in libsodium's guarded memory.</summary>
    internal static Key ImportSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedSize)
        {
            throw new ArgumentException($"an Ed25519 seed must be {SeedSize} bytes", nameof(seed));
        }
        // The default creation parameters allow no export: the seed never leaves the key again.
        return Key.Import(Algorithm, seed, KeyBlobFormat.RawPrivateKey);
    }
}
