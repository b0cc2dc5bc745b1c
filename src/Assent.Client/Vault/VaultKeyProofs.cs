using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Protocol.Messages;
using Assent.Protocol.Vault;
using Assent.Protocol.WebAuthn;

namespace Assent.Client.Vault;

/// <summary>
/// Checks a recipient key's registration proof (docs/vault.md §1, §3 step 1) against the signing keys of the owner's DID
/// document, so that a device wraps an item key only to a key one of the owner's own devices vouched for, whatever the
/// server lists.
/// </summary>
internal static class VaultKeyProofs
{
    /// <summary>The device id the recovery key's proof names (docs/vault.md §1).</summary>
    public const string RecoveryDeviceId = "recovery";

    /// <summary>The key's public bytes when its proof holds; otherwise why not.</summary>
    /// <param name="key">The key as the server lists it.</param>
    /// <param name="userId">The owner's user id (it is inside the signed proof).</param>
    /// <param name="userDid">The owner's DID; the signer must be one of its verification methods.</param>
    /// <param name="methods">The DID document's verification methods by id.</param>
    public static (byte[]? PublicKey, string? Error) Check(VaultKeyView key, string userId, string userDid, IReadOnlyDictionary<string, Jwk> methods)
    {
        if (!Base64Url.TryDecode(key.PublicKey, out var publicKey) || publicKey.Length != X25519.KeySize)
        {
            return (null, "its public key is not 32 bytes of base64url");
        }
        if (key.Kid != VaultFormat.KeyId(publicKey))
        {
            return (null, "its kid is not the thumbprint of its public key");
        }
        if (key.Proof is not { } proof || !Base64Url.TryDecode(proof.Signature, out var signature))
        {
            return (null, "it carries no proof");
        }
        string provenFor;
        switch (key.Kind)
        {
            case VaultKeyKinds.Device:
                // A device registers its own key: the signer is the device the key is for.
                if (proof.SignerDeviceId != key.DeviceId)
                {
                    return (null, $"it is listed for device {key.DeviceId} but signed by {proof.SignerDeviceId}");
                }
                provenFor = key.DeviceId;
                break;
            case VaultKeyKinds.Recovery:
                provenFor = RecoveryDeviceId;
                break;
            default:
                return (null, $"its kind '{key.Kind}' is unknown");
        }
        if (!methods.TryGetValue($"{userDid}#{proof.SignerDeviceId}", out var jwk))
        {
            return (null, $"its signer {proof.SignerDeviceId} is not a device in the owner's DID document (unknown or revoked)");
        }
        var message = VaultFormat.KeyProofMessage(userId, provenFor, publicKey);
        if (proof.AuthenticatorData is null)
        {
            return jwk.TryGetEd25519(out var signer) && Ed25519.Verify(signer, message, signature)
                ? (publicKey, null)
                : (null, $"the signature of {proof.SignerDeviceId} over it does not verify");
        }
        // A passkey signs SHA-256(KeyProof) as its WebAuthn challenge, with user verification (docs/vault.md §1).
        if (!Base64Url.TryDecode(proof.AuthenticatorData, out var authenticatorData) || proof.ClientDataJson is null ||
            !Base64Url.TryDecode(proof.ClientDataJson, out var clientDataJson))
        {
            return (null, "its passkey proof is malformed");
        }
        if (!WebAuthnVerifier.IsUsableKey(jwk, out var keyError))
        {
            return (null, $"the signer's key is not usable: {keyError.Detail}");
        }
        var result = WebAuthnVerifier.VerifyAssertionSignature(authenticatorData, clientDataJson, signature, jwk, SHA256.HashData(message),
            requireUserVerification: true);
        return result.Succeeded ? (publicKey, null) : (null, $"the passkey assertion over it does not verify: {result.Error.Detail}");
    }
}
