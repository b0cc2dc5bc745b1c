using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using NBitcoin.Secp256k1;
using Org.BouncyCastle.Crypto.Digests;

namespace Assent.Server.Payments;

/// <summary>
/// The EVM cryptography of payment wallets (docs/payments.md §5): secp256k1 keys and signatures, Keccak-256, and the
/// EIP-712 hash of an EIP-3009 <c>TransferWithAuthorization</c>.
/// <list type="bullet">
/// <item>secp256k1 is NBitcoin.Secp256k1, the C# port of Bitcoin Core's libsecp256k1: deterministic RFC 6979 nonces,
/// <c>s</c> normalised to the lower half of the order, and the recovery id computed while signing. Nethereum's signer
/// (BouncyCastle) found the recovery id by recovering public keys afterwards and cost several milliseconds a
/// signature; the signatures are byte for byte the same (RFC 6979 is deterministic; a test holds them equal).</item>
/// <item>Keccak-256 is BouncyCastle's (the digest Nethereum's own <c>Sha3Keccack</c> wraps).</item>
/// <item>The EIP-712 hash is written out here for the one struct this server signs, rather than through Nethereum's
/// generic encoder, which parses the typed data JSON and re-derives the type encoding on every call (about as costly
/// as the signature itself). The struct is seven 32-byte words (EIP-712 §"Definition of encodeData"); a test holds
/// the hash equal to Nethereum's <c>Eip712TypedDataEncoder</c> for the same typed data.</item>
/// </list>
/// </summary>
internal static class EvmSigning
{
    /// <summary>EIP-712 §"Definition of domainSeparator": the domain type USDC (FiatTokenV2) uses.</summary>
    private static readonly byte[] DomainTypeHash =
        Keccak(Encoding.ASCII.GetBytes("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"));

    /// <summary>EIP-3009 §"transferWithAuthorization": <c>TRANSFER_WITH_AUTHORIZATION_TYPEHASH</c>.</summary>
    private static readonly byte[] TransferTypeHash =
        Keccak(Encoding.ASCII.GetBytes("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"));

    public static byte[] Keccak(ReadOnlySpan<byte> data)
    {
        var digest = new KeccakDigest(256);
        digest.BlockUpdate(data);
        var hash = new byte[32];
        digest.DoFinal(hash);
        return hash;
    }

    /// <summary>
    /// The EIP-712 hash signed for a <c>TransferWithAuthorization</c> of <paramref name="token"/> (domain <c>{name,
    /// version, chainId, verifyingContract}</c>): <c>keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))</c>
    /// (EIP-712 §"Specification of the eth_signTypedData JSON RPC", EIP-191 version 0x01).
    /// </summary>
    public static byte[] TransferWithAuthorizationHash(string tokenName, string tokenVersion, long chainId, string token, Eip3009Authorization a)
    {
        Span<byte> domain = stackalloc byte[5 * 32];
        DomainTypeHash.CopyTo(domain);
        Keccak(Encoding.UTF8.GetBytes(tokenName)).CopyTo(domain[32..]);
        Keccak(Encoding.UTF8.GetBytes(tokenVersion)).CopyTo(domain[64..]);
        Uint(chainId, domain.Slice(96, 32));
        Address(token, domain.Slice(128, 32));

        Span<byte> message = stackalloc byte[7 * 32];
        TransferTypeHash.CopyTo(message);
        Address(a.From, message.Slice(32, 32));
        Address(a.To, message.Slice(64, 32));
        Uint(a.Value, message.Slice(96, 32));
        Uint(a.ValidAfter, message.Slice(128, 32));
        Uint(a.ValidBefore, message.Slice(160, 32));
        Bytes32(a.Nonce, message.Slice(192, 32));

        Span<byte> signed = stackalloc byte[2 + 64];
        signed[0] = 0x19;
        signed[1] = 0x01;
        Keccak(domain).CopyTo(signed[2..]);
        Keccak(message).CopyTo(signed[34..]);
        return Keccak(signed);
    }

    /// <summary>
    /// A 65-byte signature <c>r ‖ s ‖ v</c> of <paramref name="hash"/>: RFC 6979 nonce, <c>s</c> low (libsecp256k1
    /// normalises it, and flips the recovery id with it), <c>v</c> = 27 + recovery id as Ethereum's <c>ecrecover</c> reads it.
    /// </summary>
    public static byte[] Sign(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> hash)
    {
        if (hash.Length != 32)
        {
            throw new ArgumentException("a secp256k1 signature is over a 32-byte hash", nameof(hash));
        }
        using var key = PrivateKey(secret);
        if (!key.TrySignRecoverable(hash, out var signature) || signature is null)
        {
            throw new CryptographicException("secp256k1 signing failed");
        }
        var bytes = new byte[65];
        signature.WriteToSpanCompact(bytes.AsSpan(0, 64), out var recoveryId);
        bytes[64] = (byte)(27 + recoveryId);
        return bytes;
    }

    /// <summary>The EIP-55 checksummed address of a secp256k1 key: the last 20 bytes of the Keccak-256 of its uncompressed public key.</summary>
    public static string AddressOf(ReadOnlySpan<byte> secret)
    {
        using var key = PrivateKey(secret);
        Span<byte> point = stackalloc byte[65];
        key.CreatePubKey().WriteToSpan(false, point, out _);
        var hash = Keccak(point[1..]);
        return new Nethereum.Util.AddressUtil().ConvertToChecksumAddress("0x" + Convert.ToHexStringLower(hash.AsSpan(12)));
    }

    /// <summary>A new secp256k1 private key: 32 random bytes in [1, n), drawn again in the (2^-128) case they are not.</summary>
    public static byte[] NewSecret()
    {
        while (true)
        {
            var secret = RandomNumberGenerator.GetBytes(32);
            if (ECPrivKey.TryCreate(secret, out var key))
            {
                key!.Dispose();
                return secret;
            }
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    private static ECPrivKey PrivateKey(ReadOnlySpan<byte> secret) =>
        secret.Length == 32 && ECPrivKey.TryCreate(secret, out var key) && key is not null
            ? key
            : throw new CryptographicException("the wallet key is not a secp256k1 private key");

    /// <summary>EIP-712 <c>encodeData</c> of an <c>address</c>: the 20 bytes, left-padded to 32.</summary>
    private static void Address(string address, Span<byte> word)
    {
        if (!X402.EvmAddress().IsMatch(address))
        {
            throw new ArgumentException($"'{X402.Shorten(address)}' is not an EVM address", nameof(address));
        }
        word.Clear();
        Convert.FromHexString(address.AsSpan(2), word[12..], out _, out _);
    }

    /// <summary>EIP-712 <c>encodeData</c> of a <c>uint256</c>: big-endian, 32 bytes.</summary>
    private static void Uint(BigInteger value, Span<byte> word)
    {
        word.Clear();
        var length = value.GetByteCount(isUnsigned: true);
        if (value.Sign < 0 || length > 32)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "not a uint256");
        }
        value.TryWriteBytes(word[(32 - length)..], out _, isUnsigned: true, isBigEndian: true);
    }

    private static void Uint(long value, Span<byte> word)
    {
        if (value < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "not a uint256");
        }
        word.Clear();
        BinaryPrimitives.WriteInt64BigEndian(word[24..], value);
    }

    /// <summary>EIP-712 <c>encodeData</c> of a <c>bytes32</c>: the 32 bytes themselves, from 0x-prefixed hex.</summary>
    private static void Bytes32(string hex, Span<byte> word)
    {
        var digits = hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex.AsSpan(2) : hex.AsSpan();
        if (digits.Length != 64 || Convert.FromHexString(digits, word, out _, out var written) != System.Buffers.OperationStatus.Done || written != 32)
        {
            throw new ArgumentException("a bytes32 is 32 bytes of hex", nameof(hex));
        }
    }
}
