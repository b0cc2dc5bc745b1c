using System.Security.Cryptography;
using Assent.Protocol.Crypto;

namespace Assent.Protocol.Tests.Crypto;

public sealed class X25519VectorTests
{
    // RFC 7748 §6.1.
    private const string AlicePrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    private const string AlicePublic = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    private const string BobPrivate = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    private const string BobPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    private const string SharedSecret = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

    public static TheoryData<string, string, string> SingleSteps()
    {
        // RFC 7748 §5.2: scalar, input u-coordinate, output u-coordinate.
        (string K, string U, string Out)[] vectors =
        [
            ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
             "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
             "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
            ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
             "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
             "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
        ];
        var data = new TheoryData<string, string, string>();
        foreach (var (k, u, o) in vectors)
        {
            data.Add(k, u, o);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(SingleSteps))]
    public void Rfc7748_single_step_vector(string scalar, string u, string expected)
    {
        var result = X25519.SharedSecret(Convert.FromHexString(scalar), Convert.FromHexString(u));
        Assert.Equal(expected, Convert.ToHexStringLower(result));
    }

    [Fact]
    public void Rfc7748_iterated_vector_after_1_and_1000_iterations()
    {
        // RFC 7748 §5.2: k = u = 9; each round k, u = X25519(k, u), k. (The 1,000,000 round
        // result is left out to keep the suite fast.)
        var k = new byte[32];
        k[0] = 9;
        var u = k.ToArray();
        for (var i = 1; i <= 1000; i++)
        {
            (k, u) = (X25519.SharedSecret(k, u), k);
            if (i == 1)
            {
                Assert.Equal("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079", Convert.ToHexStringLower(k));
            }
        }
        Assert.Equal("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51", Convert.ToHexStringLower(k));
    }

    [Fact]
    public void Rfc7748_diffie_hellman_vector()
    {
        Assert.Equal(AlicePublic, Convert.ToHexStringLower(X25519.PublicKeyFromPrivateKey(Convert.FromHexString(AlicePrivate))));
        Assert.Equal(BobPublic, Convert.ToHexStringLower(X25519.PublicKeyFromPrivateKey(Convert.FromHexString(BobPrivate))));
        Assert.Equal(SharedSecret, Convert.ToHexStringLower(X25519.SharedSecret(Convert.FromHexString(AlicePrivate), Convert.FromHexString(BobPublic))));
        Assert.Equal(SharedSecret, Convert.ToHexStringLower(X25519.SharedSecret(Convert.FromHexString(BobPrivate), Convert.FromHexString(AlicePublic))));
    }

    [Fact]
    public void Rfc7748_diffie_hellman_vector_from_one_import_gives_the_own_public_key_too()
    {
        // The overload the vault's wrap and unwrap use (docs/vault.md §2.2): Z and the private key's own public key at once.
        var alicePublic = new byte[32];
        var bobPublic = new byte[32];
        Assert.Equal(SharedSecret, Convert.ToHexStringLower(X25519.SharedSecret(Convert.FromHexString(AlicePrivate), Convert.FromHexString(BobPublic), alicePublic)));
        Assert.Equal(SharedSecret, Convert.ToHexStringLower(X25519.SharedSecret(Convert.FromHexString(BobPrivate), Convert.FromHexString(AlicePublic), bobPublic)));
        Assert.Equal((AlicePublic, BobPublic), (Convert.ToHexStringLower(alicePublic), Convert.ToHexStringLower(bobPublic)));
        Assert.Throws<CryptographicException>(() => X25519.SharedSecret(Convert.FromHexString(AlicePrivate), new byte[32], new byte[32]));
        Assert.Throws<ArgumentException>(() => X25519.SharedSecret(Convert.FromHexString(AlicePrivate), Convert.FromHexString(BobPublic), new byte[31]));
    }

    [Fact]
    public void An_all_zero_shared_secret_is_refused()
    {
        // RFC 7748 §6.1: u = 0 and u = 1 are small-order points; the result is all zeros.
        var scalar = Convert.FromHexString(AlicePrivate);
        var one = new byte[32];
        one[0] = 1;
        Assert.Throws<CryptographicException>(() => X25519.SharedSecret(scalar, new byte[32]));
        Assert.Throws<CryptographicException>(() => X25519.SharedSecret(scalar, one));
    }

    [Fact]
    public void Wrong_lengths_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => X25519.PublicKeyFromPrivateKey(new byte[31]));
        Assert.Throws<ArgumentException>(() => X25519.SharedSecret(new byte[32], new byte[33]));
        Assert.Throws<ArgumentException>(() => X25519.SharedSecret(new byte[16], Convert.FromHexString(BobPublic)));
    }

    [Fact]
    public void Both_sides_of_a_random_exchange_compute_the_same_secret()
    {
        for (var i = 0; i < 16; i++)
        {
            var a = RandomNumberGenerator.GetBytes(32);
            var b = RandomNumberGenerator.GetBytes(32);
            var aPub = X25519.PublicKeyFromPrivateKey(a);
            var bPub = X25519.PublicKeyFromPrivateKey(b);
            Assert.Equal(X25519.SharedSecret(a, bPub), X25519.SharedSecret(b, aPub));
        }
    }
}
