using System.Runtime.InteropServices;

namespace Assent.Protocol.Crypto;

/// <summary>Ed25519/X25519 through the system libsodium (Debian libsodium23): the fast path.</summary>
public sealed partial class LibsodiumEd25519 : IEd25519
{
    private const string Lib = "libsodium.so.23";

    private LibsodiumEd25519()
    {
    }

    public string Name => "libsodium";

    /// <summary>Returns the backend, or null when libsodium cannot be loaded or initialised.</summary>
    public static LibsodiumEd25519? TryCreate()
    {
        try
        {
            // sodium_init: 0 = initialised, 1 = already initialised, -1 = failure.
            return sodium_init() >= 0 ? new LibsodiumEd25519() : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return null;
        }
    }

    public unsafe byte[] PublicKeyFromSeed(ReadOnlySpan<byte> seed)
    {
        RequireLength(seed, Ed25519.SeedSize, nameof(seed));
        var pk = new byte[32];
        Span<byte> sk = stackalloc byte[64];
        fixed (byte* s = seed)
        fixed (byte* p = pk)
        fixed (byte* k = sk)
        {
            Check(crypto_sign_seed_keypair(p, k, s));
        }
        sk.Clear();
        return pk;
    }

    public unsafe byte[] Sign(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> message)
    {
        RequireLength(seed, Ed25519.SeedSize, nameof(seed));
        var sig = new byte[64];
        Span<byte> pk = stackalloc byte[32];
        Span<byte> sk = stackalloc byte[64];
        fixed (byte* s = seed)
        fixed (byte* p = pk)
        fixed (byte* k = sk)
        fixed (byte* m = message)
        fixed (byte* g = sig)
        {
            Check(crypto_sign_seed_keypair(p, k, s));
            Check(crypto_sign_detached(g, out _, m, (ulong)message.Length, k));
        }
        sk.Clear();
        return sig;
    }

    public unsafe bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != 32 || signature.Length != 64)
        {
            return false;
        }
        fixed (byte* p = publicKey)
        fixed (byte* m = message)
        fixed (byte* g = signature)
        {
            return crypto_sign_verify_detached(g, m, (ulong)message.Length, p) == 0;
        }
    }

    public unsafe byte[] X25519PublicKey(ReadOnlySpan<byte> privateKey)
    {
        RequireLength(privateKey, 32, nameof(privateKey));
        var q = new byte[32];
        fixed (byte* n = privateKey)
        fixed (byte* o = q)
        {
            Check(crypto_scalarmult_curve25519_base(o, n));
        }
        return q;
    }

    public unsafe byte[] X25519(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey)
    {
        RequireLength(privateKey, 32, nameof(privateKey));
        RequireLength(peerPublicKey, 32, nameof(peerPublicKey));
        var q = new byte[32];
        fixed (byte* n = privateKey)
        fixed (byte* p = peerPublicKey)
        fixed (byte* o = q)
        {
            // libsodium returns -1 for an all-zero output (RFC 7748 §6.1).
            if (crypto_scalarmult_curve25519(o, n, p) != 0)
            {
                throw new System.Security.Cryptography.CryptographicException("X25519 produced the all-zero value");
            }
        }
        return q;
    }

    private static void RequireLength(ReadOnlySpan<byte> value, int length, string name)
    {
        if (value.Length != length)
        {
            throw new ArgumentException($"{name} must be {length} bytes", name);
        }
    }

    private static void Check(int rc)
    {
        if (rc != 0)
        {
            throw new System.Security.Cryptography.CryptographicException("libsodium call failed");
        }
    }

    [LibraryImport(Lib)]
    private static partial int sodium_init();

    [LibraryImport(Lib)]
    private static unsafe partial int crypto_sign_seed_keypair(byte* pk, byte* sk, byte* seed);

    [LibraryImport(Lib)]
    private static unsafe partial int crypto_sign_detached(byte* sig, out ulong siglen, byte* m, ulong mlen, byte* sk);

    [LibraryImport(Lib)]
    private static unsafe partial int crypto_sign_verify_detached(byte* sig, byte* m, ulong mlen, byte* pk);

    [LibraryImport(Lib)]
    private static unsafe partial int crypto_scalarmult_curve25519_base(byte* q, byte* n);

    [LibraryImport(Lib)]
    private static unsafe partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);
}
