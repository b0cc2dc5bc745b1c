using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;

namespace Assent.Protocol.Tests.Vault;

/// <summary>The vault format v1 (docs/vault.md §2): the published vectors, round trips, and every kind of tampering.</summary>
public sealed class VaultFormatTests
{
    // docs/vault.md §2.6. Recipient = Bob and ephemeral = Alice of RFC 7748 §6.1, so a third party can check the X25519 step first.
    private const string ItemId = "AAECAwQFBgcICQoLDA0ODw";
    private const uint ItemVersion = 3;
    private const string RecipientPrivate = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    private const string RecipientPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    private const string EphemeralPrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    private const string RecipientKid = "giQqigT_IKcuzHl0FVJ3k5ts3_TWNAxvsC08UZsfcM8";
    private const string ExpectedItemAad = "617373656e742d7661756c742d6974656d2d76311641414543417751464267634943516f4c4441304f447700000003";
    private const string ExpectedWrapAad = "617373656e742d7661756c742d777261702d76311641414543417751464267634943516f4c4441304f4477000000032b" +
        "676951716967545f494b63757a486c3046564a336b357473335f54574e41787673433038555a7366634d38";
    private const string ExpectedSealed = "01101112131415161718191a1b1e91ea642caa4e93a21a7a6e6a590b32a3242b7c62e224c586898e026e46b8ba36d24874" +
        "94805c34095a5c5a";
    private const string ExpectedWrapped = "018520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a202122232425262728292a2bf034bb49" +
        "c835896e067bdd0ce079056916c8c62960329e988d27d2f5fbd8d26b7c0289b29b89633aff34cfe95110e4f4";
    private const string ExpectedWrappingKey = "4cc4a2c863af1c080d93254a4b08d1174eb06291d5e84280588f9b1f7d9d8dd4";
    private const string ExpectedProof = "617373656e742d7661756c742d6b65792d763103755f3103645f31de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    private static readonly byte[] Plaintext = "correct horse battery staple"u8.ToArray();

    private static byte[] Hex(string hex) => Convert.FromHexString(hex);
    private static byte[] Sequence(int start, int count) => Enumerable.Range(start, count).Select(i => (byte)i).ToArray();
    private static byte[] ItemKey => Sequence(0, 32);

    [Fact]
    public void The_published_vector_is_reproduced_byte_for_byte()
    {
        Assert.Equal(RecipientKid, VaultFormat.KeyId(Hex(RecipientPublic)));
        Assert.Equal(ExpectedItemAad, Convert.ToHexStringLower(VaultFormat.ItemAad(ItemId, ItemVersion)));
        Assert.Equal(ExpectedWrapAad, Convert.ToHexStringLower(VaultFormat.WrapAad(ItemId, ItemVersion, RecipientKid)));
        Assert.Equal(ExpectedSealed, Convert.ToHexStringLower(VaultFormat.SealItem(ItemKey, ItemId, ItemVersion, Plaintext, Sequence(0x10, 12))));
        Assert.Equal(ExpectedWrapped,
            Convert.ToHexStringLower(VaultFormat.WrapKey(ItemKey, ItemId, ItemVersion, Hex(RecipientPublic), Hex(EphemeralPrivate), Sequence(0x20, 12))));
        Assert.Equal(ExpectedProof, Convert.ToHexStringLower(VaultFormat.KeyProofMessage("u_1", "d_1", Hex(RecipientPublic))));
    }

    [Fact]
    public void The_wrapping_key_is_hkdf_sha256_of_the_rfc7748_secret_with_both_public_keys_as_salt()
    {
        // The intermediate value of docs/vault.md §2.6, computed here from the primitives alone.
        var shared = X25519.SharedSecret(Hex(EphemeralPrivate), Hex(RecipientPublic));
        var salt = X25519.PublicKeyFromPrivateKey(Hex(EphemeralPrivate)).Concat(Hex(RecipientPublic)).ToArray();
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, 32, salt, "assent-vault-wrap-v1"u8.ToArray());
        Assert.Equal(ExpectedWrappingKey, Convert.ToHexStringLower(key));
        var wrapped = Hex(ExpectedWrapped);
        using var gcm = new AesGcm(key, 16);
        var itemKey = new byte[32];
        gcm.Decrypt(wrapped.AsSpan(33, 12), wrapped.AsSpan(45, 32), wrapped.AsSpan(77), itemKey, Hex(ExpectedWrapAad));
        Assert.Equal(ItemKey, itemKey);
    }

    [Fact]
    public void The_published_vector_opens_with_the_recipient_key()
    {
        var itemKey = VaultFormat.UnwrapKey(Hex(ExpectedWrapped), ItemId, ItemVersion, Hex(RecipientPrivate));
        Assert.Equal(ItemKey, itemKey);
        Assert.Equal(Plaintext, VaultFormat.OpenItem(itemKey, ItemId, ItemVersion, Hex(ExpectedSealed)));
    }

    [Fact]
    public void A_random_round_trip_uses_fresh_nonces_and_ephemeral_keys()
    {
        var recipient = VaultFormat.NewPrivateKey();
        var recipientPublic = X25519.PublicKeyFromPrivateKey(recipient);
        var itemKey = RandomNumberGenerator.GetBytes(32);
        var secret = RandomNumberGenerator.GetBytes(4096);
        var first = VaultFormat.SealItem(itemKey, ItemId, 1, secret);
        var second = VaultFormat.SealItem(itemKey, ItemId, 1, secret);
        Assert.NotEqual(first, second);
        var wrapA = VaultFormat.WrapKey(itemKey, ItemId, 1, recipientPublic);
        var wrapB = VaultFormat.WrapKey(itemKey, ItemId, 1, recipientPublic);
        Assert.NotEqual(wrapA.AsSpan(1, 32).ToArray(), wrapB.AsSpan(1, 32).ToArray());
        Assert.Equal(VaultFormat.WrappedKeySize, wrapA.Length);
        Assert.Equal(secret, VaultFormat.OpenItem(VaultFormat.UnwrapKey(wrapB, ItemId, 1, recipient), ItemId, 1, first));
    }

    public static TheoryData<int> EveryByteOfAWrappedKey() => [.. Enumerable.Range(0, VaultFormat.WrappedKeySize)];

    [Theory]
    [MemberData(nameof(EveryByteOfAWrappedKey))]
    public void A_changed_byte_anywhere_in_a_wrapped_key_is_detected(int index)
    {
        var wrapped = Hex(ExpectedWrapped);
        wrapped[index] ^= 0x01;
        Assert.Throws<VaultFormatException>(() => VaultFormat.UnwrapKey(wrapped, ItemId, ItemVersion, Hex(RecipientPrivate)));
    }

    [Fact]
    public void A_changed_byte_anywhere_in_a_sealed_item_is_detected()
    {
        var pristine = Hex(ExpectedSealed);
        for (var i = 0; i < pristine.Length; i++)
        {
            var copy = (byte[])pristine.Clone();
            copy[i] ^= 0x80;
            Assert.Throws<VaultFormatException>(() => VaultFormat.OpenItem(ItemKey, ItemId, ItemVersion, copy));
        }
        Assert.Throws<VaultFormatException>(() => VaultFormat.OpenItem(ItemKey, ItemId, ItemVersion, pristine[..^1]));
        Assert.Throws<VaultFormatException>(() => VaultFormat.OpenItem(ItemKey, ItemId, ItemVersion, pristine[..28]));
    }

    [Fact]
    public void A_wrapped_key_or_item_moved_to_another_item_version_or_recipient_does_not_open()
    {
        var wrapped = Hex(ExpectedWrapped);
        Assert.Throws<VaultFormatException>(() => VaultFormat.UnwrapKey(wrapped, "AAECAwQFBgcICQoLDA0OEA", ItemVersion, Hex(RecipientPrivate)));
        Assert.Throws<VaultFormatException>(() => VaultFormat.UnwrapKey(wrapped, ItemId, ItemVersion + 1, Hex(RecipientPrivate)));
        Assert.Throws<VaultFormatException>(() => VaultFormat.UnwrapKey(wrapped, ItemId, ItemVersion, VaultFormat.NewPrivateKey()));
        var sealedItem = Hex(ExpectedSealed);
        Assert.Throws<VaultFormatException>(() => VaultFormat.OpenItem(ItemKey, "AAECAwQFBgcICQoLDA0OEA", ItemVersion, sealedItem));
        Assert.Throws<VaultFormatException>(() => VaultFormat.OpenItem(ItemKey, ItemId, 2, sealedItem));
        Assert.Throws<VaultFormatException>(() => VaultFormat.OpenItem(RandomNumberGenerator.GetBytes(32), ItemId, ItemVersion, sealedItem));
    }

    [Fact]
    public void A_wrap_whose_ephemeral_key_is_a_small_order_point_is_refused()
    {
        var wrapped = Hex(ExpectedWrapped);
        wrapped.AsSpan(1, 32).Clear();
        var e = Assert.Throws<VaultFormatException>(() => VaultFormat.UnwrapKey(wrapped, ItemId, ItemVersion, Hex(RecipientPrivate)));
        Assert.Contains("small-order", e.Message);
    }

    [Fact]
    public void Another_format_version_is_refused_before_any_decryption()
    {
        var wrapped = Hex(ExpectedWrapped);
        wrapped[0] = 2;
        Assert.Contains("version 1", Assert.Throws<VaultFormatException>(() => VaultFormat.UnwrapKey(wrapped, ItemId, ItemVersion, Hex(RecipientPrivate))).Message);
        var sealedItem = Hex(ExpectedSealed);
        sealedItem[0] = 0;
        Assert.Contains("version 1", Assert.Throws<VaultFormatException>(() => VaultFormat.OpenItem(ItemKey, ItemId, ItemVersion, sealedItem)).Message);
    }

    [Fact]
    public void Framed_fields_are_length_prefixed_so_neighbouring_values_cannot_be_shifted()
    {
        // Without the length bytes, ("ab", kid "c…") and ("a", kid "bc…") would frame the same AAD.
        Assert.NotEqual(VaultFormat.WrapAad("ab", 1, "cd"), VaultFormat.WrapAad("a", 1, "bcd"));
        Assert.NotEqual(VaultFormat.KeyProofMessage("ab", "c", new byte[32]), VaultFormat.KeyProofMessage("a", "bc", new byte[32]));
        Assert.Throws<ArgumentException>(() => VaultFormat.ItemAad("", 1));
        Assert.Throws<ArgumentException>(() => VaultFormat.ItemAad(new string('x', 256), 1));
        Assert.Equal(20 + 1 + 255 + 4, VaultFormat.ItemAad(new string('x', 255), 1).Length);
        Assert.Throws<ArgumentException>(() => VaultFormat.KeyId(new byte[31]));
        Assert.Throws<ArgumentException>(() => VaultFormat.SealItem(new byte[16], ItemId, 1, Plaintext));
    }

    [Fact]
    public void The_key_id_is_the_rfc7638_thumbprint_of_the_okp_jwk()
    {
        var key = Hex(RecipientPublic);
        var jwk = $"{{\"crv\":\"X25519\",\"kty\":\"OKP\",\"x\":\"{Base64Url.Encode(key)}\"}}";
        Assert.Equal(Base64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(jwk))), VaultFormat.KeyId(key));
    }
}
