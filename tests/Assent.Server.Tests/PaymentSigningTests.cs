using System.Numerics;
using System.Security.Cryptography;
using Assent.Server.Keys;
using Assent.Server.Payments;
using Assent.Server.Storage;
using Nethereum.ABI.EIP712;
using Nethereum.Signer;
using Nethereum.Signer.EIP712;

namespace Assent.Server.Tests;

/// <summary>
/// The wallet's signer (docs/payments.md §5) against Nethereum's, which it replaced: the same EIP-712 hash, the same
/// address, and — RFC 6979 being deterministic — byte for byte the same signatures, low s with v 27/28.
/// </summary>
public sealed class PaymentSigningTests
{
    /// <summary>A well-known test key (web3.js documentation) and its address.</summary>
    private const string FixedKey = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    private const string FixedAddress = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
    private const string Usdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    private const string Seller = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    private static readonly BigInteger HalfOrder = BigInteger.Parse("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0", System.Globalization.NumberStyles.HexNumber);

    private static Eip3009Authorization Authorization(string from, BigInteger value, string nonce, string to = Seller) =>
        new(from, to, value, 1796212800, 1796213460, nonce);

    [Fact]
    public void The_fixed_key_signs_a_transfer_exactly_as_Nethereum_did_and_recovers_to_its_address()
    {
        var secret = Convert.FromHexString(FixedKey);
        Assert.Equal(FixedAddress, EvmSigning.AddressOf(secret));
        var a = Authorization(FixedAddress, 10000, "0x" + new string('1', 64));
        var typed = Wallets.TransferWithAuthorization("USDC", "2", 84532, Usdc, a);

        var hash = EvmSigning.TransferWithAuthorizationHash("USDC", "2", 84532, Usdc, a);
        Assert.Equal(Convert.ToHexString(Eip712TypedDataEncoder.Current.EncodeAndHashTypedData(typed)), Convert.ToHexString(hash));

        var signature = "0x" + Convert.ToHexStringLower(EvmSigning.Sign(secret, hash));
        Assert.Equal(new Eip712TypedDataSigner().SignTypedDataV4(typed, new EthECKey(secret, true)), signature);
        Assert.Equal(FixedAddress, new Eip712TypedDataSigner().RecoverFromSignatureV4(typed, signature), ignoreCase: true);
    }

    [Fact]
    public void Random_keys_and_transfers_sign_as_Nethereum_did_low_s_with_v_27_or_28()
    {
        // Enough signatures that both recovery ids and both halves of s before normalisation come up (each about half the time).
        var vs = new HashSet<byte>();
        for (var i = 0; i < 24; i++)
        {
            var secret = EvmSigning.NewSecret();
            var key = new EthECKey(secret, true);
            var address = EvmSigning.AddressOf(secret);
            Assert.Equal(key.GetPublicAddress(), address, ignoreCase: true);
            var value = new BigInteger(RandomNumberGenerator.GetBytes(12), isUnsigned: true);
            var a = Authorization(address, value, "0x" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
                to: new Nethereum.Util.AddressUtil().ConvertToChecksumAddress("0x" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20))));
            var (name, version, chainId) = i % 2 == 0 ? ("USD Coin", "2", 8453L) : ("USDC", "2", 84532L);
            var typed = Wallets.TransferWithAuthorization(name, version, chainId, Usdc, a);

            var hash = EvmSigning.TransferWithAuthorizationHash(name, version, chainId, Usdc, a);
            Assert.Equal(Convert.ToHexString(Eip712TypedDataEncoder.Current.EncodeAndHashTypedData(typed)), Convert.ToHexString(hash));
            var bytes = EvmSigning.Sign(secret, hash);
            Assert.Equal(new Eip712TypedDataSigner().SignTypedDataV4(typed, key), "0x" + Convert.ToHexStringLower(bytes));
            Assert.True(new BigInteger(bytes.AsSpan(32, 32), isUnsigned: true, isBigEndian: true) <= HalfOrder);
            Assert.Contains(bytes[64], new byte[] { 27, 28 });
            vs.Add(bytes[64]);
            Assert.Equal(address, new Eip712TypedDataSigner().RecoverFromSignatureV4(typed, "0x" + Convert.ToHexStringLower(bytes)), ignoreCase: true);
        }
        Assert.Equal(2, vs.Count);
    }

    [Fact]
    public void A_wallet_signs_with_its_sealed_key_and_refuses_a_row_whose_address_is_not_its_key()
    {
        var master = MasterKey.FromBytes(RandomNumberGenerator.GetBytes(32));
        var wallets = new Wallets(new NoWallets(), master, TimeProvider.System);
        var secret = Convert.FromHexString(FixedKey);
        var wallet = new WalletRecord("usr_1", FixedAddress, master.Seal(secret, "assent-wallet-v1:usr_1"), 0);
        var a = Authorization(FixedAddress, 10000, "0x" + new string('2', 64));
        var typed = Wallets.TransferWithAuthorization("USDC", "2", 84532, Usdc, a);

        var signature = wallets.SignTransferWithAuthorization(wallet, "USDC", "2", 84532, Usdc, a);
        Assert.Equal(new Eip712TypedDataSigner().SignTypedDataV4(typed, new EthECKey(secret, true)), signature);
        // Signed again (the key proven once): the same bytes.
        Assert.Equal(signature, wallets.SignTransferWithAuthorization(wallet, "USDC", "2", 84532, Usdc, a));

        // The same sealed key under another address is checked again, not taken on the earlier proof.
        Assert.Throws<CryptographicException>(() => wallets.SignTransferWithAuthorization(wallet with { Address = Seller }, "USDC", "2", 84532, Usdc, a));
        // A sealed key moved to another user's row does not open (its associated data names the user).
        Assert.ThrowsAny<CryptographicException>(() => wallets.SignTransferWithAuthorization(wallet with { UserId = "usr_2" }, "USDC", "2", 84532, Usdc, a));
    }

    [Fact]
    public void Malformed_authorization_fields_are_refused_before_anything_is_signed()
    {
        var ok = Authorization(FixedAddress, 1, "0x" + new string('3', 64));
        Assert.Throws<ArgumentException>(() => EvmSigning.TransferWithAuthorizationHash("USDC", "2", 84532, Usdc, ok with { Nonce = "0x1234" }));
        Assert.Throws<ArgumentException>(() => EvmSigning.TransferWithAuthorizationHash("USDC", "2", 84532, Usdc, ok with { To = "0x1234" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => EvmSigning.TransferWithAuthorizationHash("USDC", "2", 84532, Usdc, ok with { Value = BigInteger.One << 256 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => EvmSigning.TransferWithAuthorizationHash("USDC", "2", 84532, Usdc, ok with { ValidAfter = -1 }));
        Assert.Throws<CryptographicException>(() => EvmSigning.Sign(new byte[32], new byte[32]));
    }

    private sealed class NoWallets : IWalletStore
    {
        public Task<bool> TryCreateAsync(WalletRecord wallet, AuditEvent audit, CancellationToken ct) => throw new NotSupportedException();

        public Task<WalletRecord?> FindAsync(string userId, CancellationToken ct) => throw new NotSupportedException();
    }
}
