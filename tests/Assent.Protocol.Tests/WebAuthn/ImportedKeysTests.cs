using System.Numerics;
using System.Security.Cryptography;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

/// <summary>
/// The verifier keeps the public keys it imported (ImportedKeys): a kept key must only ever stand for exactly the key it
/// was imported from, a refused key is refused every time, the cache stays bounded, and one key checks on many threads.
/// </summary>
[Collection(ImportedKeysCollection.Name)]
public sealed class ImportedKeysTests
{
    private static readonly byte[] Challenge = SHA256.HashData("imported keys"u8);

    // P-256's field prime, 2^256 − 2^224 + 2^192 + 2^96 − 1 (SEC 2 §2.4.2).
    private static readonly BigInteger P256Prime = BigInteger.Pow(2, 256) - BigInteger.Pow(2, 224) + BigInteger.Pow(2, 192) + BigInteger.Pow(2, 96) - 1;

    private static WebAuthnResult<VerifiedAssertion> Verify(Jwk jwk, byte[] signature) =>
        WebAuthnVerifier.VerifyAssertionSignature(TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(Challenge), signature, jwk, Challenge);

    [Fact]
    public void A_kept_p256_key_never_stands_for_the_key_with_the_same_x_and_the_other_y()
    {
        // (x, y) and (x, p − y) are both on the curve: two keys that share x. A cache named by x alone would mix them up.
        using var passkey = TestPasskey.Create("ES256");
        var jwk = passkey.Jwk;
        Base64Url.TryDecode(jwk.Y!, out var y);
        var negatedY = (P256Prime - new BigInteger(y, isUnsigned: true, isBigEndian: true)).ToByteArray(isUnsigned: true, isBigEndian: true);
        var mirror = jwk with { Y = Base64Url.Encode([.. new byte[32 - negatedY.Length], .. negatedY]) };
        var signature = passkey.Sign(TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(Challenge));

        Assert.True(Verify(jwk, signature).Succeeded);
        Assert.True(WebAuthnVerifier.IsUsableKey(mirror, out _));
        Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(mirror, signature).Error?.Code);
        // And the other way round: the mirror imported first, the real key still verifies its own signature.
        Assert.True(Verify(jwk, signature).Succeeded);
    }

    [Theory]
    [InlineData("ES256", "RS256")]
    [InlineData("RS256", "ES256")]
    [InlineData("RS256", "RS256")]
    [InlineData("ES256", "ES256")]
    public void A_signature_verifies_only_with_its_own_kept_key(string first, string second)
    {
        using var a = TestPasskey.Create(first);
        using var b = TestPasskey.Create(second);
        var signedByA = a.Sign(TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(Challenge));
        var signedByB = b.Sign(TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(Challenge));

        for (var round = 0; round < 2; round++)
        {
            Assert.True(Verify(a.Jwk, signedByA).Succeeded);
            Assert.True(Verify(b.Jwk, signedByB).Succeeded);
            Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(b.Jwk, signedByA).Error?.Code);
            Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(a.Jwk, signedByB).Error?.Code);
        }
    }

    [Fact]
    public void A_point_off_the_curve_is_refused_every_time_and_not_kept()
    {
        var x = new byte[32];
        var y = new byte[32];
        x[31] = 1;
        y[31] = 1; // (1, 1) is not on P-256
        var jwk = new Jwk("EC", "P-256", Base64Url.Encode(x), Base64Url.Encode(y));
        var before = ImportedKeys.Count;

        for (var i = 0; i < 3; i++)
        {
            Assert.False(WebAuthnVerifier.IsUsableKey(jwk, out var error));
            Assert.Equal(new WebAuthnError(WebAuthnFailures.InvalidKey, "the P-256 point is not on the curve"), error);
        }
        Assert.Equal(before, ImportedKeys.Count);
    }

    [Fact]
    public void The_cache_holds_at_most_its_capacity()
    {
        for (var i = 0; i < ImportedKeys.Capacity + 100; i++)
        {
            // A key object without key material is cheap to make; only the bound is under test here.
            ImportedKeys.GetOrImport($"test {i}", ECDsa.Create);
            Assert.InRange(ImportedKeys.Count, 1, ImportedKeys.Capacity);
        }
    }

    [Fact]
    public void One_kept_key_checks_assertions_on_many_threads_at_once()
    {
        using var passkey = TestPasskey.Create("ES256");
        var jwk = passkey.Jwk;
        var signature = passkey.Sign(TestPasskey.AuthenticatorData(), TestPasskey.ClientDataJson(Challenge));
        var wrong = signature.ToArray();
        wrong[^1] ^= 1;
        var outcomes = new bool[256];

        Parallel.For(0, outcomes.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            outcomes[i] = Verify(jwk, i % 2 == 0 ? signature : wrong).Succeeded);

        Assert.All(Enumerable.Range(0, outcomes.Length), i => Assert.Equal(i % 2 == 0, outcomes[i]));
    }
}

/// <summary>The tests that count the keys kept run alone, so no other test adds keys meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ImportedKeysCollection
{
    public const string Name = "ImportedKeys";
}
