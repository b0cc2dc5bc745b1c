using System.Security.Cryptography;
using System.Text.Json;
using Assent.Client.Vault;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Messages;
using Assent.Protocol.Vault;

namespace Assent.Client;

public sealed partial class AssentClient
{
    private TokenVerifier? _verifier;

    /// <summary>
    /// Asks the owner to release one vault item to this agent and opens it here (docs/vault.md §4): a fresh X25519 key pair
    /// held only in memory for this call, a CIBA request whose <c>vault_release</c> detail carries its public key, the wait for
    /// the decision, then the checks: the token verifies with the device's evidence (no mandate stands in for the human), its
    /// signed details name <paramref name="name"/> and <b>this</b> public key, the delivered item is the signed item id and
    /// version, and the wrapped key and the ciphertext both open. The private key is cleared before the call returns.
    /// </summary>
    /// <param name="name">The item's name.</param>
    /// <param name="options">Version, message, scope, user, timeout; null for the defaults (the latest version).</param>
    /// <param name="ct">Cancels the wait (the request is withdrawn, as for <see cref="ApproveAsync"/>).</param>
    /// <returns>The secret when approved; Denied or Expired otherwise.</returns>
    /// <exception cref="AssentVaultException">A check failed: the server (or someone between) changed the release. Nothing was opened.</exception>
    /// <exception cref="AssentOAuthException">The server refused the request (e.g. <c>invalid_authorization_details</c> for an unknown item).</exception>
    /// <exception cref="AssentUnreachableException">The server could not be reached.</exception>
    /// <exception cref="AssentTimeoutException">No decision within the timeout.</exception>
    public async Task<VaultSecret> GetSecretAsync(string name, VaultReleaseOptions? options, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        options ??= new VaultReleaseOptions();
        var privateKey = VaultFormat.NewPrivateKey();
        try
        {
            var publicKey = X25519.PublicKeyFromPrivateKey(privateKey);
            options.KeyCreated?.Invoke(VaultFormat.KeyId(publicKey));
            var approval = await ApproveAsync(options.Message ?? $"Release {name}", new ApproveOptions
            {
                Scope = options.Scope,
                User = options.User,
                Timeout = options.Timeout,
                Details = ReleaseRequest(name, options.Version, publicKey),
            }, ct);
            if (!approval.Approved)
            {
                return new VaultSecret(approval.Status, name, approval.AuthReqId);
            }
            var endpoints = await DiscoverAsync(ct);
            VerifiedToken token;
            try
            {
                // The evidence ties the signed payload (and so the recipient key in it) to the owner's device; a mandate has no
                // human looking at this release, so it is not accepted for one.
                token = await Verifier(endpoints.Issuer).VerifyAsync(approval.AccessToken!,
                    new VerifyOptions { Audience = _options.ClientId, CheckEvidence = true, AllowMandates = false }, ct);
            }
            catch (TokenVerificationException e)
            {
                throw new AssentVaultException($"the release's token does not verify ({e.Code}): {e.Message}", e);
            }
            var signed = ReleaseDetail.From(token.AuthorizationDetails);
            if (signed.Item != name)
            {
                throw new AssentVaultException($"the approved release is for item '{signed.Item}', not '{name}'");
            }
            // docs/vault.md §4 step 3: a server that put its own key in the request is caught here, by the device's signature.
            if (!CryptographicOperations.FixedTimeEquals(signed.RecipientKey, publicKey))
            {
                throw new AssentVaultException("the approved release names another recipient key than this request's; refusing it");
            }
            if (options.Version is { } wanted && signed.Version != wanted)
            {
                throw new AssentVaultException($"the approved release is for version {signed.Version}, not {wanted}");
            }
            var release = approval.VaultRelease ?? throw new AssentVaultException("the token response carries no vault_release");
            if (release.Item != name || release.ItemId != signed.ItemId || release.Version != signed.Version)
            {
                throw new AssentVaultException(
                    $"the server delivered {release.Item} ({release.ItemId}) version {release.Version}, not the approved {name} ({signed.ItemId}) version {signed.Version}");
            }
            var value = VaultDevice.Open(signed.ItemId, signed.Version, release.Wrapped, release.Ciphertext, privateKey);
            return new VaultSecret(ApprovalStatus.Approved, name, approval.AuthReqId, value, signed.ItemId, signed.Version, token);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(privateKey);
        }
    }

    /// <summary>Shorthand for <see cref="GetSecretAsync(string, VaultReleaseOptions?, CancellationToken)"/> with defaults.</summary>
    public Task<VaultSecret> GetSecretAsync(string name, CancellationToken ct) => GetSecretAsync(name, null, ct);

    /// <summary><c>[{"type":"vault_release","item","recipient_key"[,"version"]}]</c> (docs/vault.md §4 step 1).</summary>
    private static JsonElement ReleaseRequest(string name, uint? version, byte[] publicKey)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString("type", VaultRelease.Type);
            w.WriteString("item", name);
            if (version is { } v)
            {
                w.WriteNumber("version", v);
            }
            w.WriteString("recipient_key", Base64Url.Encode(publicKey));
            w.WriteEndObject();
            w.WriteEndArray();
        }
        using var doc = JsonDocument.Parse(buffer.ToArray());
        return doc.RootElement.Clone();
    }

    private TokenVerifier Verifier(string issuer)
    {
        var verifier = _verifier;
        if (verifier is null || verifier.Issuer != issuer.TrimEnd('/'))
        {
            verifier = new TokenVerifier(issuer, new TokenVerifierOptions { HttpClient = _options.HttpClient, TimeProvider = _time });
            _verifier = verifier;
        }
        return verifier;
    }
}
