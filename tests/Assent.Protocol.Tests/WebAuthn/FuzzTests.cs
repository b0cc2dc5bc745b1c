using System.Security.Cryptography;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

/// <summary>Deterministic fuzzing of the offline verifier: garbage is refused, and nothing throws.</summary>
public sealed class FuzzTests
{
    private static readonly byte[] Challenge = SHA256.HashData("fuzz challenge"u8);

    [Theory]
    [InlineData("ES256")]
    [InlineData("RS256")]
    [InlineData("EdDSA")]
    public void Seeded_random_and_mutated_inputs_are_refused_without_exceptions(string kind)
    {
        using var passkey = TestPasskey.Create(kind);
        var authData = TestPasskey.AuthenticatorData();
        var clientData = TestPasskey.ClientDataJson(Challenge);
        var signature = passkey.Sign(authData, clientData);
        var random = new Random(20_240_917);
        for (var i = 0; i < 2_000; i++)
        {
            var a = i % 3 == 0 ? Mutate(random, authData) : authData;
            var c = i % 3 == 1 ? Mutate(random, clientData) : clientData;
            var s = i % 3 == 2 ? Mutate(random, signature) : signature;
            var result = WebAuthnVerifier.VerifyAssertionSignature(a, c, s, passkey.Jwk, Challenge);
            Assert.Equal(a.SequenceEqual(authData) && c.SequenceEqual(clientData) && s.SequenceEqual(signature), result.Succeeded);
            ClientData.TryParse(Random(random), out _, out _);
            Assert.False(WebAuthnVerifier.VerifyAssertionSignature(Random(random), Random(random), Random(random), passkey.Jwk, Challenge).Succeeded);
        }
    }

    [Fact]
    public void Every_single_bit_flip_of_signed_bytes_fails_verification()
    {
        foreach (var kind in new[] { "ES256", "RS256", "EdDSA" })
        {
            using var passkey = TestPasskey.Create(kind);
            var authData = TestPasskey.AuthenticatorData();
            var clientData = TestPasskey.ClientDataJson(Challenge);
            var signature = passkey.Sign(authData, clientData);
            foreach (var (input, which) in new[] { (authData, 0), (clientData, 1), (signature, 2) })
            {
                for (var bit = 0; bit < input.Length * 8; bit++)
                {
                    var flipped = input.ToArray();
                    flipped[bit / 8] ^= (byte)(1 << (bit % 8));
                    var result = WebAuthnVerifier.VerifyAssertionSignature(which == 0 ? flipped : authData, which == 1 ? flipped : clientData,
                        which == 2 ? flipped : signature, passkey.Jwk, Challenge);
                    Assert.False(result.Succeeded, $"{kind}: bit {bit} of input {which}");
                }
            }
        }
    }

    private static byte[] Random(Random random)
    {
        var bytes = new byte[random.Next(0, 96)];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[] valid)
    {
        var list = valid.ToList();
        for (var m = random.Next(1, 5); m > 0 && list.Count > 0; m--)
        {
            var at = random.Next(list.Count);
            switch (random.Next(3))
            {
                case 0:
                    list[at] ^= (byte)random.Next(1, 256);
                    break;
                case 1:
                    list.Insert(at, (byte)random.Next(256));
                    break;
                default:
                    list.RemoveAt(at);
                    break;
            }
        }
        return [.. list];
    }
}
