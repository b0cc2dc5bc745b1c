using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.Crypto;

namespace Assent.Protocol.Vault;

/// <summary>
/// The vault's byte format, version 1 (docs/vault.md §2): items sealed with AES-256-GCM under a random item key, and
/// item keys wrapped to X25519 recipient keys (ephemeral X25519 → HKDF-SHA256 → AES-256-GCM). The server stores only
/// what this class produces and never holds a key that opens it.
/// </summary>
/// <remarks>
/// The primitives are the platform's (AES-GCM and HKDF from System.Security.Cryptography, X25519 from NSec); only the
/// framing is ours, because it is the format itself: labels, length-prefixed context and the version byte.
/// </remarks>
public static class VaultFormat
{
    /// <summary>The first byte of every sealed item and wrapped key.</summary>
    public const byte Version = 1;

    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;

    /// <summary>A wrapped item key: version ‖ ephemeral public key ‖ nonce ‖ AES-256-GCM(item key) ‖ tag.</summary>
    public const int WrappedKeySize = 1 + X25519.KeySize + NonceSize + KeySize + TagSize;

    /// <summary>The framing of a sealed item: version ‖ nonce ‖ … ‖ tag.</summary>
    public const int ItemOverhead = 1 + NonceSize + TagSize;

    /// <summary>The longest item id and recipient key id the format frames (they are length-prefixed with one byte).</summary>
    public const int MaxIdLength = 255;

    public static ReadOnlySpan<byte> ItemLabel => "assent-vault-item-v1"u8;
    public static ReadOnlySpan<byte> WrapLabel => "assent-vault-wrap-v1"u8;
    public static ReadOnlySpan<byte> KeyLabel => "assent-vault-key-v1"u8;

    /// <summary>
    /// The id of an X25519 public key: its RFC 7638 JWK thumbprint, base64url of SHA-256 over
    /// <c>{"crv":"X25519","kty":"OKP","x":"…"}</c> (members in lexicographic order, no whitespace; RFC 8037 §2).
    /// </summary>
    public static string KeyId(ReadOnlySpan<byte> publicKey)
    {
        RequireKey(publicKey, nameof(publicKey));
        var json = "{\"crv\":\"X25519\",\"kty\":\"OKP\",\"x\":\"" + Base64Url.Encode(publicKey) + "\"}";
        return Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(json)));
    }

    /// <summary>A fresh item id: 16 random bytes, base64url (22 characters).</summary>
    public static string NewItemId() => Base64Url.Encode(RandomNumberGenerator.GetBytes(16));

    /// <summary>A fresh X25519 private key (RFC 7748 §5: any 32 bytes; clamping happens inside the function).</summary>
    public static byte[] NewPrivateKey() => RandomNumberGenerator.GetBytes(X25519.KeySize);

    /// <summary>AAD of an item: <c>"assent-vault-item-v1" ‖ len8(item id) ‖ item id ‖ u32be(version)</c>.</summary>
    public static byte[] ItemAad(string itemId, uint version)
    {
        var id = IdBytes(itemId, nameof(itemId));
        var aad = new byte[ItemLabel.Length + 1 + id.Length + 4];
        var span = aad.AsSpan();
        ItemLabel.CopyTo(span);
        span = span[ItemLabel.Length..];
        span[0] = (byte)id.Length;
        id.CopyTo(span[1..]);
        BinaryPrimitives.WriteUInt32BigEndian(span[(1 + id.Length)..], version);
        return aad;
    }

    /// <summary>
    /// AAD of a wrapped key: <c>"assent-vault-wrap-v1" ‖ len8(item id) ‖ item id ‖ u32be(version) ‖ len8(kid) ‖ kid</c>,
    /// where kid is the recipient's <see cref="KeyId"/>.
    /// </summary>
    public static byte[] WrapAad(string itemId, uint version, string recipientKeyId)
    {
        var id = IdBytes(itemId, nameof(itemId));
        var kid = IdBytes(recipientKeyId, nameof(recipientKeyId));
        var aad = new byte[WrapLabel.Length + 1 + id.Length + 4 + 1 + kid.Length];
        var span = aad.AsSpan();
        WrapLabel.CopyTo(span);
        span = span[WrapLabel.Length..];
        span[0] = (byte)id.Length;
        id.CopyTo(span[1..]);
        span = span[(1 + id.Length)..];
        BinaryPrimitives.WriteUInt32BigEndian(span, version);
        span[4] = (byte)kid.Length;
        kid.CopyTo(span[5..]);
        return aad;
    }

    /// <summary>
    /// What a device signs to register its X25519 key (docs/vault.md §1):
    /// <c>"assent-vault-key-v1" ‖ len8(user id) ‖ user id ‖ len8(device id) ‖ device id ‖ public key</c>.
    /// A CLI device signs it with Ed25519; a passkey signs its SHA-256 as the WebAuthn challenge.
    /// </summary>
    public static byte[] KeyProofMessage(string userId, string deviceId, ReadOnlySpan<byte> publicKey)
    {
        RequireKey(publicKey, nameof(publicKey));
        var user = IdBytes(userId, nameof(userId));
        var device = IdBytes(deviceId, nameof(deviceId));
        var message = new byte[KeyLabel.Length + 1 + user.Length + 1 + device.Length + X25519.KeySize];
        var span = message.AsSpan();
        KeyLabel.CopyTo(span);
        span = span[KeyLabel.Length..];
        span[0] = (byte)user.Length;
        user.CopyTo(span[1..]);
        span = span[(1 + user.Length)..];
        span[0] = (byte)device.Length;
        device.CopyTo(span[1..]);
        publicKey.CopyTo(span[(1 + device.Length)..]);
        return message;
    }

    /// <summary>Seals a secret: <c>0x01 ‖ nonce ‖ AES-256-GCM(itemKey, nonce, plaintext, ItemAad)</c> with a random nonce.</summary>
    public static byte[] SealItem(ReadOnlySpan<byte> itemKey, string itemId, uint version, ReadOnlySpan<byte> plaintext) =>
        SealItem(itemKey, itemId, version, plaintext, RandomNumberGenerator.GetBytes(NonceSize));

    /// <summary>As <see cref="SealItem(ReadOnlySpan{byte}, string, uint, ReadOnlySpan{byte})"/> with a given nonce: for test vectors only.</summary>
    public static byte[] SealItem(ReadOnlySpan<byte> itemKey, string itemId, uint version, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> nonce)
    {
        RequireKey(itemKey, nameof(itemKey));
        if (nonce.Length != NonceSize)
        {
            throw new ArgumentException($"a nonce is {NonceSize} bytes", nameof(nonce));
        }
        var sealedItem = new byte[ItemOverhead + plaintext.Length];
        sealedItem[0] = Version;
        nonce.CopyTo(sealedItem.AsSpan(1));
        using var gcm = new AesGcm(itemKey, TagSize);
        gcm.Encrypt(nonce, plaintext, sealedItem.AsSpan(1 + NonceSize, plaintext.Length), sealedItem.AsSpan(1 + NonceSize + plaintext.Length), ItemAad(itemId, version));
        return sealedItem;
    }

    /// <summary>Opens a sealed item.</summary>
    /// <exception cref="VaultFormatException">Not version 1, too short, or the tag does not match (tampered, or another item, version or key).</exception>
    public static byte[] OpenItem(ReadOnlySpan<byte> itemKey, string itemId, uint version, ReadOnlySpan<byte> sealedItem)
    {
        RequireKey(itemKey, nameof(itemKey));
        if (sealedItem.Length < ItemOverhead || sealedItem[0] != Version)
        {
            throw new VaultFormatException("not a version 1 sealed item");
        }
        var length = sealedItem.Length - ItemOverhead;
        var plaintext = new byte[length];
        try
        {
            using var gcm = new AesGcm(itemKey, TagSize);
            gcm.Decrypt(sealedItem.Slice(1, NonceSize), sealedItem.Slice(1 + NonceSize, length), sealedItem[^TagSize..], plaintext, ItemAad(itemId, version));
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            throw new VaultFormatException("the sealed item does not open: tampered, or not this item, version or key");
        }
        return plaintext;
    }

    /// <summary>Wraps an item key to a recipient's X25519 public key with a fresh ephemeral key and nonce.</summary>
    public static byte[] WrapKey(ReadOnlySpan<byte> itemKey, string itemId, uint version, ReadOnlySpan<byte> recipientPublicKey)
    {
        var ephemeral = NewPrivateKey();
        try
        {
            return WrapKey(itemKey, itemId, version, recipientPublicKey, ephemeral, RandomNumberGenerator.GetBytes(NonceSize));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ephemeral);
        }
    }

    /// <summary>
    /// As <see cref="WrapKey(ReadOnlySpan{byte}, string, uint, ReadOnlySpan{byte})"/> with a given ephemeral private key and nonce:
    /// for test vectors only. <c>0x01 ‖ E ‖ nonce ‖ AES-256-GCM(HKDF-SHA256(X25519(e, R), salt = E ‖ R, info = label), nonce, itemKey, WrapAad)</c>.
    /// </summary>
    public static byte[] WrapKey(ReadOnlySpan<byte> itemKey, string itemId, uint version, ReadOnlySpan<byte> recipientPublicKey,
        ReadOnlySpan<byte> ephemeralPrivateKey, ReadOnlySpan<byte> nonce)
    {
        RequireKey(itemKey, nameof(itemKey));
        RequireKey(recipientPublicKey, nameof(recipientPublicKey));
        if (nonce.Length != NonceSize)
        {
            throw new ArgumentException($"a nonce is {NonceSize} bytes", nameof(nonce));
        }
        var wrapped = new byte[WrappedKeySize];
        wrapped[0] = Version;
        var ephemeralPublic = wrapped.AsSpan(1, X25519.KeySize);
        nonce.CopyTo(wrapped.AsSpan(1 + X25519.KeySize));
        // One import of the ephemeral key gives both E and Z.
        var shared = X25519.SharedSecret(ephemeralPrivateKey, recipientPublicKey, ephemeralPublic);
        var wrapKey = WrappingKey(shared, ephemeralPublic, recipientPublicKey);
        try
        {
            using var gcm = new AesGcm(wrapKey, TagSize);
            var body = wrapped.AsSpan(1 + X25519.KeySize + NonceSize);
            gcm.Encrypt(nonce, itemKey, body[..KeySize], body[KeySize..], WrapAad(itemId, version, KeyId(recipientPublicKey)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(wrapKey);
        }
        return wrapped;
    }

    /// <summary>Unwraps an item key with the recipient's X25519 private key.</summary>
    /// <exception cref="VaultFormatException">Malformed, a small-order ephemeral key, or the tag does not match (tampered, or another item, version or recipient).</exception>
    public static byte[] UnwrapKey(ReadOnlySpan<byte> wrapped, string itemId, uint version, ReadOnlySpan<byte> recipientPrivateKey)
    {
        if (wrapped.Length != WrappedKeySize || wrapped[0] != Version)
        {
            throw new VaultFormatException($"not a version 1 wrapped key of {WrappedKeySize} bytes");
        }
        var recipientPublic = new byte[X25519.KeySize];
        var ephemeralPublic = wrapped.Slice(1, X25519.KeySize);
        byte[] shared;
        try
        {
            // One import of the recipient's key gives both its public key (for the salt and the kid) and Z.
            shared = X25519.SharedSecret(recipientPrivateKey, ephemeralPublic, recipientPublic);
        }
        catch (CryptographicException)
        {
            throw new VaultFormatException("the wrapped key's ephemeral key is a small-order point");
        }
        var wrapKey = WrappingKey(shared, ephemeralPublic, recipientPublic);
        var itemKey = new byte[KeySize];
        try
        {
            using var gcm = new AesGcm(wrapKey, TagSize);
            var body = wrapped[(1 + X25519.KeySize + NonceSize)..];
            gcm.Decrypt(wrapped.Slice(1 + X25519.KeySize, NonceSize), body[..KeySize], body[KeySize..], itemKey,
                WrapAad(itemId, version, KeyId(recipientPublic)));
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(itemKey);
            throw new VaultFormatException("the wrapped key does not open: tampered, or not this item, version or recipient");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(wrapKey);
        }
        return itemKey;
    }

    /// <summary>HKDF-SHA256 (RFC 5869 §2) of the X25519 secret, salt = ephemeral ‖ recipient public key, info = the wrap label.</summary>
    private static byte[] WrappingKey(byte[] shared, ReadOnlySpan<byte> ephemeralPublic, ReadOnlySpan<byte> recipientPublic)
    {
        Span<byte> salt = stackalloc byte[2 * X25519.KeySize];
        ephemeralPublic.CopyTo(salt);
        recipientPublic.CopyTo(salt[X25519.KeySize..]);
        var key = new byte[KeySize];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, key, salt, WrapLabel);
        CryptographicOperations.ZeroMemory(shared);
        return key;
    }

    private static void RequireKey(ReadOnlySpan<byte> key, string name)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"a key is {KeySize} bytes", name);
        }
    }

    private static byte[] IdBytes(string id, string name)
    {
        var bytes = Encoding.UTF8.GetBytes(id);
        if (bytes.Length is 0 or > MaxIdLength)
        {
            throw new ArgumentException($"an id is 1 to {MaxIdLength} UTF-8 bytes", name);
        }
        return bytes;
    }
}

/// <summary>Vault bytes that do not open or do not parse: the server or the network changed them, or they belong elsewhere.</summary>
public sealed class VaultFormatException(string message) : Exception(message);
