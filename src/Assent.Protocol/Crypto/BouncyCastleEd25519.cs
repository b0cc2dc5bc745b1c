using Org.BouncyCastle.Math.EC.Rfc7748;
using Org.BouncyCastle.Math.EC.Rfc8032;
using BcEd25519 = Org.BouncyCastle.Math.EC.Rfc8032.Ed25519;

namespace Assent.Protocol.Crypto;

/// <summary>Managed Ed25519/X25519 (Portable.BouncyCastle): the fallback where libsodium is absent.</summary>
public sealed class BouncyCastleEd25519 : IEd25519
{
    public string Name => "bouncycastle";

    public byte[] PublicKeyFromSeed(ReadOnlySpan<byte> seed)
    {
        Require(seed, 32, nameof(seed));
        var pk = new byte[BcEd25519.PublicKeySize];
        BcEd25519.GeneratePublicKey(seed.ToArray(), 0, pk, 0);
        return pk;
    }

    public byte[] Sign(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> message)
    {
        Require(seed, 32, nameof(seed));
        var sk = seed.ToArray();
        var pk = new byte[BcEd25519.PublicKeySize];
        BcEd25519.GeneratePublicKey(sk, 0, pk, 0);
        var sig = new byte[BcEd25519.SignatureSize];
        var msg = message.ToArray();
        BcEd25519.Sign(sk, 0, pk, 0, msg, 0, msg.Length, sig, 0);
        Array.Clear(sk);
        return sig;
    }

    public bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != 32 || signature.Length != 64)
        {
            return false;
        }
        var msg = message.ToArray();
        try
        {
            return BcEd25519.Verify(signature.ToArray(), 0, publicKey.ToArray(), 0, msg, 0, msg.Length);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    public byte[] X25519PublicKey(ReadOnlySpan<byte> privateKey)
    {
        Require(privateKey, 32, nameof(privateKey));
        var q = new byte[32];
        Org.BouncyCastle.Math.EC.Rfc7748.X25519.ScalarMultBase(privateKey.ToArray(), 0, q, 0);
        return q;
    }

    public byte[] X25519(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey)
    {
        Require(privateKey, 32, nameof(privateKey));
        Require(peerPublicKey, 32, nameof(peerPublicKey));
        var q = new byte[32];
        if (!Org.BouncyCastle.Math.EC.Rfc7748.X25519.CalculateAgreement(privateKey.ToArray(), 0, peerPublicKey.ToArray(), 0, q, 0))
        {
            // RFC 7748 §6.1: abort on the all-zero shared secret.
            throw new System.Security.Cryptography.CryptographicException("X25519 produced the all-zero value");
        }
        return q;
    }

    private static void Require(ReadOnlySpan<byte> value, int length, string name)
    {
        if (value.Length != length)
        {
            throw new ArgumentException($"{name} must be {length} bytes", name);
        }
    }
}
