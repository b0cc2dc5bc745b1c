using System.Security.Cryptography;

namespace Assent.Protocol.Crypto;

/// <summary>The process-wide Ed25519 backend: libsodium when it loads, Portable.BouncyCastle otherwise.</summary>
public static class Ed25519
{
    public const int SeedSize = 32;
    public const int PublicKeySize = 32;
    public const int SignatureSize = 64;

    private static readonly Lazy<IEd25519> Selected = new(Select);

    public static IEd25519 Backend => Selected.Value;

    public static byte[] NewSeed() => RandomNumberGenerator.GetBytes(SeedSize);

    public static byte[] PublicKeyFromSeed(ReadOnlySpan<byte> seed) => Backend.PublicKeyFromSeed(seed);

    public static byte[] Sign(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> message) => Backend.Sign(seed, message);

    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature) =>
        Backend.Verify(publicKey, message, signature);

    private static IEd25519 Select()
    {
        if (Environment.GetEnvironmentVariable("ASSENT_ED25519_BACKEND") is "bouncycastle")
        {
            return new BouncyCastleEd25519();
        }
        return LibsodiumEd25519.TryCreate() ?? (IEd25519)new BouncyCastleEd25519();
    }
}
