using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Nethereum.Signer;
using Nethereum.Signer.EIP712;
using Nethereum.Util;

namespace Assent.Server.Payments;

/// <summary>
/// Users' payment wallets (docs/payments.md §4): an EVM secp256k1 key the server makes, sealed under the
/// key-encryption key exactly as the signing keys are (<see cref="MasterKey.Seal"/>, AES-256-GCM, the associated data
/// naming the user so a sealed key cannot be moved to another user's row). The key is opened only to sign an
/// authorization whose approval this class is handed, and never leaves the server. secp256k1, Keccak and EIP-712
/// are Nethereum's (CONVENTIONS: a well-kept library over hand-written crypto).
/// </summary>
internal sealed class Wallets(IWalletStore store, MasterKey master, TimeProvider time)
{
    private static readonly BigInteger HalfOrder = BigInteger.Parse("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0", System.Globalization.NumberStyles.HexNumber);

    private static string AssociatedData(string userId) => "assent-wallet-v1:" + userId;

    /// <summary>The user's wallet, made now unless they have one; <c>Created</c> says which.</summary>
    public async Task<(WalletRecord Wallet, bool Created)> CreateAsync(string userId, CancellationToken ct)
    {
        if (await store.FindAsync(userId, ct) is { } existing)
        {
            return (existing, false);
        }
        var key = EthECKey.GenerateKey();
        var secret = key.GetPrivateKeyAsBytes();
        try
        {
            var record = new WalletRecord(userId, new AddressUtil().ConvertToChecksumAddress(key.GetPublicAddress()), master.Seal(secret, AssociatedData(userId)),
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
    /// Signs typed data with the wallet's key: 65 bytes <c>r ‖ s ‖ v</c> as hex, with <c>s</c> in the lower half of the
    /// curve order and <c>v</c> 27 or 28, as USDC's <c>ecrecover</c> (and OpenZeppelin's ECDSA) demand. The signature is
    /// deterministic (RFC 6979): signing the same approved authorization again gives the same bytes.
    /// </summary>
    public string Sign(WalletRecord wallet, string typedDataJson)
    {
        var secret = master.Open(wallet.SealedKey, AssociatedData(wallet.UserId));
        try
        {
            var key = new EthECKey(secret, true);
            if (!string.Equals(key.GetPublicAddress(), wallet.Address, StringComparison.OrdinalIgnoreCase))
            {
                throw new CryptographicException("the sealed wallet key does not match the wallet's address");
            }
            var signature = new Eip712TypedDataSigner().SignTypedDataV4(typedDataJson, key);
            CheckShape(signature);
            return signature;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
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
