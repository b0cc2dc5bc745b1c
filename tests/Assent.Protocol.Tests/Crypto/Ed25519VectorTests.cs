using System.Numerics;
using System.Security.Cryptography;
using Assent.Protocol.Crypto;

namespace Assent.Protocol.Tests.Crypto;

public sealed class Ed25519VectorTests
{
    private sealed record Vector(string SecretKey, string PublicKey, string Message, string Signature);

    // RFC 8032 §7.1, Ed25519 (pure) test vectors, hex as printed in the RFC.
    private static readonly Dictionary<string, Vector> Rfc8032 = new()
    {
        ["TEST 1"] = new(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ["TEST 2"] = new(
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da" +
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ["TEST 3"] = new(
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac" +
            "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
        ["TEST 1024"] = new(
            "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
            "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
            "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98" +
            "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8" +
            "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d" +
            "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc" +
            "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe" +
            "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e" +
            "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef" +
            "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7" +
            "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1" +
            "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2" +
            "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24" +
            "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270" +
            "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc" +
            "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07" +
            "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba" +
            "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a" +
            "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e" +
            "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7" +
            "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c" +
            "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8" +
            "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df" +
            "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08" +
            "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649" +
            "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4" +
            "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3" +
            "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e" +
            "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f" +
            "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5" +
            "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1" +
            "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d" +
            "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c" +
            "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
            "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350" +
            "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"),
        ["TEST SHA(abc)"] = new(
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589" +
            "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
    };

    // RFC 8032 §5.1: L = 2^252 + 27742317777372353535851937790883648493, the group order.
    private static readonly BigInteger L = BigInteger.Pow(2, 252) + BigInteger.Parse("27742317777372353535851937790883648493");

    // libsodium's ge25519_has_small_order list, compared with the sign bit cleared: the points of
    // order 1, 2, 4 and 8 and the non-canonical encodings p and p + 1 of y = 0 and y = 1. With a
    // small-order key, R = (0, 1) and S = 0 verify for every message unless the verifier refuses them.
    private static readonly byte[][] SmallOrderPoints =
    [
        Convert.FromHexString("0000000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("0100000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        Convert.FromHexString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        Convert.FromHexString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ];

    public static TheoryData<string> Vectors() => new(Rfc8032.Keys);

    [Fact]
    public void The_1024_vector_message_is_1023_bytes_as_the_rfc_says()
    {
        Assert.Equal(1023, Convert.FromHexString(Rfc8032["TEST 1024"].Message).Length);
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Rfc8032_vector_derives_the_public_key(string vector)
    {
        var v = Rfc8032[vector];
        Assert.Equal(v.PublicKey, Hex(Ed25519.PublicKeyFromSeed(Convert.FromHexString(v.SecretKey))));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Rfc8032_vector_signs_to_the_exact_signature(string vector)
    {
        var v = Rfc8032[vector];
        var signature = Ed25519.Sign(Convert.FromHexString(v.SecretKey), Convert.FromHexString(v.Message));
        Assert.Equal(v.Signature, Hex(signature));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Rfc8032_vector_verifies(string vector)
    {
        var v = Rfc8032[vector];
        Assert.True(Ed25519.Verify(
            Convert.FromHexString(v.PublicKey), Convert.FromHexString(v.Message), Convert.FromHexString(v.Signature)));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void A_flipped_bit_anywhere_is_refused(string vector)
    {
        var v = Rfc8032[vector];
        var pk = Convert.FromHexString(v.PublicKey);
        var msg = Convert.FromHexString(v.Message);
        var sig = Convert.FromHexString(v.Signature);

        // R's first and last bit, S's first bit, S's top bit (which also makes S >= L).
        foreach (var bit in new[] { 0, 255, 256, 511 })
        {
            Assert.False(Ed25519.Verify(pk, msg, Flip(sig, bit)), $"signature bit {bit}");
        }
        // Key: low bit of y and the sign bit of x.
        foreach (var bit in new[] { 0, 255 })
        {
            Assert.False(Ed25519.Verify(Flip(pk, bit), msg, sig), $"key bit {bit}");
        }
        if (msg.Length > 0)
        {
            Assert.False(Ed25519.Verify(pk, Flip(msg, 0), sig), "first message bit");
            Assert.False(Ed25519.Verify(pk, Flip(msg, msg.Length * 8 - 1), sig), "last message bit");
        }
        else
        {
            Assert.False(Ed25519.Verify(pk, [0], sig), "one byte appended to the empty message");
        }
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void A_non_canonical_S_is_refused(string vector)
    {
        // RFC 8032 §5.1.7 step 1: S must be < L, otherwise (R, S + L) is a second valid
        // signature for the same message (malleability).
        var v = Rfc8032[vector];
        var sig = Convert.FromHexString(v.Signature);
        var s = new BigInteger(sig.AsSpan(32), isUnsigned: true, isBigEndian: false);
        Assert.True(s < L);
        var malleated = sig.ToArray();
        Assert.True((s + L).TryWriteBytes(malleated.AsSpan(32), out var written, isUnsigned: true, isBigEndian: false));
        malleated.AsSpan(32 + written).Clear();

        Assert.False(Ed25519.Verify(Convert.FromHexString(v.PublicKey), Convert.FromHexString(v.Message), malleated));
    }

    [Fact]
    public void Wrong_lengths_are_refused_or_rejected()
    {
        var v = Rfc8032["TEST 2"];
        var pk = Convert.FromHexString(v.PublicKey);
        var msg = Convert.FromHexString(v.Message);
        var sig = Convert.FromHexString(v.Signature);

        Assert.False(Ed25519.Verify(pk[..31], msg, sig));
        Assert.False(Ed25519.Verify([.. pk, 0], msg, sig));
        Assert.False(Ed25519.Verify(pk, msg, sig[..63]));
        Assert.False(Ed25519.Verify(pk, msg, [.. sig, 0]));
        Assert.False(Ed25519.Verify([], msg, []));

        var seed = Convert.FromHexString(v.SecretKey);
        Assert.Throws<ArgumentException>(() => Ed25519.Sign(seed[..31], msg));
        Assert.Throws<ArgumentException>(() => Ed25519.Sign([.. seed, 0], msg));
        Assert.Throws<ArgumentException>(() => Ed25519.PublicKeyFromSeed(seed[..31]));
        Assert.Throws<ArgumentException>(() => Ed25519.PublicKeyFromSeed([]));
        Assert.Throws<ArgumentException>(() => new Ed25519Signer(seed[..31]));
    }

    [Fact]
    public void Random_keys_and_signatures_of_any_length_are_refused_without_an_exception()
    {
        var msg = "approve"u8.ToArray();
        for (var i = 0; i < 500; i++)
        {
            // Every length up to 70 for each part, the right ones (32 and 64) included; random
            // bytes also hit non-canonical encodings (y >= p) and points that do not decode.
            var pk = RandomNumberGenerator.GetBytes(i % 71);
            var sig = RandomNumberGenerator.GetBytes(i * 7 % 71);
            Assert.False(Ed25519.Verify(pk, msg, sig));
            Assert.False(Ed25519.Verify(RandomNumberGenerator.GetBytes(32), msg, RandomNumberGenerator.GetBytes(64)));
        }
    }

    [Fact]
    public void The_identity_key_with_an_identity_R_and_zero_S_is_refused()
    {
        // A = R = (0, 1) and S = 0 satisfy [S]B = R + [k]A for every message; only a check
        // for small-order points stops it. A device key must bind the payload it signed.
        var identity = new byte[32];
        identity[0] = 1;
        byte[] signature = [.. identity, .. new byte[32]];
        Assert.False(Ed25519.Verify(identity, "approve"u8, signature));
        Assert.False(Ed25519.Verify(identity, "deny"u8, signature));
    }

    [Fact]
    public void Every_small_order_key_and_R_is_refused_with_either_sign_bit()
    {
        var v = Rfc8032["TEST 2"];
        var pk = Convert.FromHexString(v.PublicKey);
        var msg = Convert.FromHexString(v.Message);
        var sig = Convert.FromHexString(v.Signature);
        foreach (var point in SmallOrderPoints)
        {
            foreach (var sign in new byte[] { 0x00, 0x80 })
            {
                var encoded = point.ToArray();
                encoded[31] |= sign;
                byte[] forged = [.. encoded, .. new byte[32]];
                Assert.False(Ed25519.Verify(encoded, msg, forged), $"key {Hex(encoded)}");
                Assert.False(Ed25519.Verify(encoded, msg, sig), $"key {Hex(encoded)} with a real signature");
                Assert.False(Ed25519.Verify(pk, msg, [.. encoded, .. sig.AsSpan(32)]), $"R {Hex(encoded)}");
            }
        }
    }

    [Fact]
    public void The_small_order_list_holds_only_small_order_points()
    {
        // Checked without trusting the list's source: map y to the Montgomery u = (1 + y) / (1 - y)
        // (RFC 7748 §4.1) and multiply by a clamped scalar, a multiple of the cofactor 8; only a
        // point of order dividing 8 lands on u = 0, which X25519 refuses.
        var scalar = RandomNumberGenerator.GetBytes(32);
        foreach (var point in SmallOrderPoints)
        {
            if (ToMontgomery(point) is { } u)
            {
                Assert.Throws<CryptographicException>(() => X25519.SharedSecret(scalar, u));
            }
        }
        // The control: a real key maps to a point X25519 accepts.
        var real = ToMontgomery(Convert.FromHexString(Rfc8032["TEST 1"].PublicKey));
        Assert.NotNull(real);
        Assert.Equal(32, X25519.SharedSecret(scalar, real).Length);
    }

    /// <summary>The Montgomery u of an Edwards encoding, or null for the identity (y = 1).</summary>
    private static byte[]? ToMontgomery(byte[] edwards)
    {
        var p = BigInteger.Pow(2, 255) - 19;
        var copy = edwards.ToArray();
        copy[31] &= 0x7f;
        var y = new BigInteger(copy, isUnsigned: true) % p;
        if (y.IsOne)
        {
            return null;
        }
        var u = (1 + y) * BigInteger.ModPow((1 - y + p) % p, p - 2, p) % p;
        var bytes = new byte[32];
        Assert.True(u.TryWriteBytes(bytes, out _, isUnsigned: true));
        return bytes;
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void A_signer_holding_the_imported_key_signs_the_rfc_vectors_exactly(string vector)
    {
        var v = Rfc8032[vector];
        using var signer = new Ed25519Signer(Convert.FromHexString(v.SecretKey));
        Assert.Equal(v.PublicKey, Hex(signer.PublicKey));
        Assert.Equal(v.Signature, Hex(signer.Sign(Convert.FromHexString(v.Message))));
    }

    [Fact]
    public void A_signer_and_a_per_call_signature_give_the_same_bytes_and_both_verify()
    {
        for (var i = 0; i < 32; i++)
        {
            var seed = Ed25519.NewSeed();
            var message = RandomNumberGenerator.GetBytes(i * 37);
            using var signer = new Ed25519Signer(seed);
            Assert.Equal(Ed25519.PublicKeyFromSeed(seed), signer.PublicKey);

            // Ed25519 is deterministic (RFC 8032 §5.1.6): one key and message, one signature.
            var signature = signer.Sign(message);
            Assert.Equal(Ed25519.Sign(seed, message), signature);
            Assert.True(Ed25519.Verify(signer.PublicKey, message, signature));
        }
    }

    [Fact]
    public void A_disposed_signer_refuses_to_sign()
    {
        var signer = new Ed25519Signer(Ed25519.NewSeed());
        signer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => signer.Sign("approve"u8));
    }

    private static byte[] Flip(byte[] data, int bit)
    {
        var copy = data.ToArray();
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }

    private static string Hex(byte[] data) => Convert.ToHexStringLower(data);
}
