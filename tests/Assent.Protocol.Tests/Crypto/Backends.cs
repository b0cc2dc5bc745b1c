using Assent.Protocol.Crypto;

namespace Assent.Protocol.Tests.Crypto;

/// <summary>Both Ed25519/X25519 backends by name, so theories show which one failed.</summary>
internal static class Backends
{
    public const string Libsodium = "libsodium";
    public const string BouncyCastle = "bouncycastle";

    public static readonly string[] Names = [Libsodium, BouncyCastle];

    public static IEd25519 Get(string name) => name switch
    {
        // The test script installs libsodium23; a silent fallback would test one backend twice.
        Libsodium => LibsodiumEd25519.TryCreate() ?? throw new InvalidOperationException("libsodium.so.23 did not load"),
        BouncyCastle => new BouncyCastleEd25519(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var name in Names)
        {
            data.Add(name);
        }
        return data;
    }
}
