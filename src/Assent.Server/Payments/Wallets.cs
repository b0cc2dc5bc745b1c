using System.Collections.Concurrent;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Payments;

/// <summary>
/// Users' payment wallets (docs/payments.md §4): an EVM secp256k1 key the server makes, sealed under the
/// key-encryption key exactly as the signing keys are (<see cref="MasterKey.Seal"/>, AES-256-GCM, the associated data
/// naming the user so a sealed key cannot be moved to another user's row). The key is opened only to sign an
/// authorization whose approval this class is handed, and never leaves the server. secp256k1 is NBitcoin.Secp256k1,
/// Keccak BouncyCastle's (<see cref="EvmSigning"/>).
/// </summary>
internal sealed class Wallets(IWalletStore store, MasterKey master, TimeProvider time)
{
    /// <summary>Sealed keys proven to open to their wallet's address, at most this many remembered (then forgotten all at once).</summary>
    private const int MaxCheckedKeys = 4096;

    /// <summary>
    /// Which sealed keys were proven, once, to open to the key of their wallet's address: a hash of the user, the address
    /// and the sealed bytes — never the key. AES-GCM authenticates the sealed bytes, so the same bytes always open to the
    /// same key and the proof stays true; a row whose address or sealed key changed hashes differently and is checked
    /// again. This saves deriving the public key (a scalar multiplication, as costly as the signature) on every
    /// payment. The unsealed key itself is not cached: opening it is one AES-GCM decryption of 32 bytes (microseconds),
    /// and a key kept open in memory would outlive the payment it was opened for.
    /// </summary>
    private readonly ConcurrentDictionary<string, bool> _checkedKeys = new(StringComparer.Ordinal);

    private static readonly BigInteger HalfOrder = BigInteger.Parse("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0", System.Globalization.NumberStyles.HexNumber);

    private static string AssociatedData(string userId) => "assent-wallet-v1:" + userId;

    /// <summary>The user's wallet, made now unless they have one; <c>Created</c> says which.</summary>
    public async Task<(WalletRecord Wallet, bool Created)> CreateAsync(string userId, CancellationToken ct)
    {
        if (await store.FindAsync(userId, ct) is { } existing)
        {
            return (existing, false);
        }
        var secret = EvmSigning.NewSecret();
        try
        {
            var record = new WalletRecord(userId, EvmSigning.AddressOf(secret), master.Seal(secret, AssociatedData(userId)),
                time.GetUtcNow().ToUnixTimeMilliseconds());
            var created = await store.TryCreateAsync(record, new AuditEvent(PaymentAuditTypes.WalletCreated, userId, userId, record.Address), ct);
            // Two creations at once: the other one's wallet is the user's.
            return created ? (record, true) : ((await store.FindAsync(userId, ct))!, false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    public Task<WalletRecord?> FindAsync(string userId, CancellationToken ct) => store.FindAsync(userId, ct);

    /// <summary>
    /// The EIP-712 typed data of an EIP-3009 <c>TransferWithAuthorization</c> (EIP-3009 §"transferWithAuthorization"),
    /// in the <c>eth_signTypedData_v4</c> JSON form.
    /// </summary>
    public static string TransferWithAuthorization(string tokenName, string tokenVersion, long chainId, string token, Eip3009Authorization a)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WritePropertyName("types");
            w.WriteStartObject();
            Fields(w, "EIP712Domain", ("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address"));
            Fields(w, "TransferWithAuthorization", ("from", "address"), ("to", "address"), ("value", "uint256"), ("validAfter", "uint256"),
                ("validBefore", "uint256"), ("nonce", "bytes32"));
            w.WriteEndObject();
            w.WriteString("primaryType", "TransferWithAuthorization");
            w.WritePropertyName("domain");
            w.WriteStartObject();
            w.WriteString("name", tokenName);
            w.WriteString("version", tokenVersion);
            w.WriteNumber("chainId", chainId);
            w.WriteString("verifyingContract", token);
            w.WriteEndObject();
            w.WritePropertyName("message");
            w.WriteStartObject();
            w.WriteString("from", a.From);
            w.WriteString("to", a.To);
            w.WriteString("value", a.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("validAfter", a.ValidAfter.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("validBefore", a.ValidBefore.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("nonce", a.Nonce);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());

        static void Fields(Utf8JsonWriter w, string type, params (string Name, string Type)[] fields)
        {
            w.WritePropertyName(type);
            w.WriteStartArray();
            foreach (var (name, t) in fields)
            {
                w.WriteStartObject();
                w.WriteString("name", name);
                w.WriteString("type", t);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
    }

    /// <summary>
    /// Signs an EIP-3009 <c>TransferWithAuthorization</c> of <paramref name="token"/> (the EIP-712 typed data
    /// <see cref="TransferWithAuthorization"/> writes) with the wallet's key: 65 bytes <c>r ‖ s ‖ v</c> as 0x-hex, with
    /// <c>s</c> in the lower half of the curve order and <c>v</c> 27 or 28, as USDC's <c>ecrecover</c> (and
    /// OpenZeppelin's ECDSA) demand. The signature is deterministic (RFC 6979): signing the same approved authorization
    /// again gives the same bytes.
    /// </summary>
    public string SignTransferWithAuthorization(WalletRecord wallet, string tokenName, string tokenVersion, long chainId, string token, Eip3009Authorization a)
    {
        var hash = EvmSigning.TransferWithAuthorizationHash(tokenName, tokenVersion, chainId, token, a);
        var secret = master.Open(wallet.SealedKey, AssociatedData(wallet.UserId));
        try
        {
            var proof = CheckedKey(wallet);
            if (!_checkedKeys.ContainsKey(proof))
            {
                if (!string.Equals(EvmSigning.AddressOf(secret), wallet.Address, StringComparison.OrdinalIgnoreCase))
                {
                    throw new CryptographicException("the sealed wallet key does not match the wallet's address");
                }
                if (_checkedKeys.Count >= MaxCheckedKeys)
                {
                    _checkedKeys.Clear();
                }
                _checkedKeys[proof] = true;
            }
            var signature = "0x" + Convert.ToHexStringLower(EvmSigning.Sign(secret, hash));
            CheckShape(signature);
            return signature;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    private static string CheckedKey(WalletRecord wallet)
    {
        var material = System.Text.Encoding.UTF8.GetBytes(wallet.UserId + "\n" + wallet.Address + "\n" + Convert.ToBase64String(wallet.SealedKey));
        return Convert.ToBase64String(SHA256.HashData(material));
    }

    /// <summary>Refuses a signature USDC would refuse, so none ever leaves: high s or v not 27/28 (EIP-2, EIP-155 aside).</summary>
    internal static void CheckShape(string signature)
    {
        var bytes = Convert.FromHexString(signature.StartsWith("0x", StringComparison.Ordinal) ? signature[2..] : signature);
        if (bytes.Length != 65 || new BigInteger(bytes.AsSpan(32, 32), isUnsigned: true, isBigEndian: true) > HalfOrder || bytes[64] is not (27 or 28))
        {
            throw new CryptographicException("the wallet produced a signature that is not low-s with v 27/28");
        }
    }
}
