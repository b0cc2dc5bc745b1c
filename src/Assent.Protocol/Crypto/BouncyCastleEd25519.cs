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
        if (publicKey.Length != 32 || signature.Length != 64 || HasSmallOrder(publicKey) || HasSmallOrder(signature[..32]))
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

    // libsodium's ge25519_has_small_order list, compared with the sign bit cleared: the points of
    // order 1, 2, 4 and 8 and the non-canonical encodings p and p + 1 of y = 0 and y = 1. With a
    // small-order key, R = (0, 1) and S = 0 verify for every message; Portable.BouncyCastle 1.8
    // accepts that and libsodium refuses it, and the two backends must give the same answer.
    private static readonly byte[][] SmallOrderEncodings =
    [
        Convert.FromHexString("0000000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("0100000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        Convert.FromHexString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        Convert.FromHexString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ];

    internal static IReadOnlyList<byte[]> SmallOrderPoints => SmallOrderEncodings;

    private static bool HasSmallOrder(ReadOnlySpan<byte> point)
    {
        Span<byte> y = stackalloc byte[32];
        point.CopyTo(y);
        y[31] &= 0x7f;
        foreach (var bad in SmallOrderEncodings)
        {
            if (y.SequenceEqual(bad))
            {
                return true;
            }
        }
        return false;
    }

    private static void Require(ReadOnlySpan<byte> value, int length, string name)
    {
        if (value.Length != length)
        {
            throw new ArgumentException($"{name} must be {length} bytes", name);
        }
    }
}
