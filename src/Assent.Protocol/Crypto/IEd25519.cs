namespace Assent.Protocol.Crypto;

/// <summary>An Ed25519 (RFC 8032) and X25519 (RFC 7748) implementation.</summary>
public interface IEd25519
{
    string Name { get; }

    /// <summary>Derives the 32-byte public key from a 32-byte seed (RFC 8032 §5.1.5).</summary>
    byte[] PublicKeyFromSeed(ReadOnlySpan<byte> seed);

    /// <summary>Signs with the 32-byte seed; returns the 64-byte signature.</summary>
    byte[] Sign(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> message);

    /// <summary>Verifies a 64-byte signature against a 32-byte public key; false for any malformed input.</summary>
    bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature);

    /// <summary>X25519 scalar multiplication with the base point (RFC 7748 §6.1).</summary>
    byte[] X25519PublicKey(ReadOnlySpan<byte> privateKey);

    /// <summary>X25519 shared secret; throws on an all-zero result (RFC 7748 §6.1 check).</summary>
    byte[] X25519(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey);
}
