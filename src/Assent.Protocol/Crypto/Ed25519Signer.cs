using NSec.Cryptography;

namespace Assent.Protocol.Crypto;

/// <summary>
/// One Ed25519 key imported once, for a signer that signs many messages (the issuer's current key):
/// <see cref="Ed25519.Sign"/> imports the seed on every call, which costs more than the signature.
/// Safe to use from several threads at once.
/// </summary>
public sealed class Ed25519Signer : IDisposable
{
    private readonly Key _key;

    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public Ed25519Signer(ReadOnlySpan<byte> seed)
    {
        _key = Ed25519.ImportSeed(seed);
        PublicKey = _key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <summary>The 32-byte public key (RFC 8032 §5.1.5).</summary>
    public byte[] PublicKey { get; }

    /// <summary>Signs <paramref name="message"/> (RFC 8032 §5.1.6); returns the 64-byte signature.</summary>
    public byte[] Sign(ReadOnlySpan<byte> message) => SignatureAlgorithm.Ed25519.Sign(_key, message);

    public void Dispose() => _key.Dispose();
}
