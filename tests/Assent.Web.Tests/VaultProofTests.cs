using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;
using Assent.Server.Tests;

namespace Assent.Web.Tests;

/// <summary>
/// The web app checks every recipient key's proof against the owner's DID document before it wraps an item key to it
/// (docs/vault.md §1, §3 step 1): a CLI device's Ed25519 signature, a passkey's assertion over SHA-256(KeyProof), and
/// the recovery key's proof by the device that made it. A key the server swapped, moved or invented is refused.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class VaultProofTests(BrowserHost host)
{
    [Fact]
    public async Task Key_proofs_are_checked_against_the_did_document_and_a_swapped_or_unsigned_key_is_refused()
    {
        var invite = await host.Server.InviteAsync("web-vault-proof");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        // A CLI device of the same user (a second invite for the same handle adds a device).
        var cli = await host.Server.EnrollAsync((await host.Server.InviteAsync("web-vault-proof")).Code);
        var stranger = await host.Server.UserWithDeviceAsync();
        await phone.Page.AddScriptTagAsync(new() { Url = "/app/vault.js" });

        var cliKey = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var recoveryKey = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var other = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        object Key(byte[] p, string deviceId, string kind, string signer, byte[] signature, string? kid = null) => new Dictionary<string, object>
        {
            ["kid"] = kid ?? VaultFormat.KeyId(p), ["device_id"] = deviceId, ["kind"] = kind, ["public_key"] = Base64Url.Encode(p),
            ["proof"] = new Dictionary<string, string> { ["signer_device_id"] = signer, ["signature"] = Base64Url.Encode(signature) },
        };
        byte[] Sign(TestDevice d, string deviceId, byte[] p) => Ed25519.Sign(d.Seed, VaultFormat.KeyProofMessage(cli.UserId, deviceId, p));
        var cases = new Dictionary<string, object>
        {
            ["cli"] = Key(cliKey, cli.DeviceId, "device", cli.DeviceId, Sign(cli, cli.DeviceId, cliKey)),
            ["recovery"] = Key(recoveryKey, "recovery", "recovery", cli.DeviceId, Sign(cli, "recovery", recoveryKey)),
            // The server swaps the public key under a genuine proof, or relabels it.
            ["swapped"] = Key(other, cli.DeviceId, "device", cli.DeviceId, Sign(cli, cli.DeviceId, cliKey)),
            ["wrong kid"] = Key(cliKey, cli.DeviceId, "device", cli.DeviceId, Sign(cli, cli.DeviceId, cliKey), VaultFormat.KeyId(other)),
            // A device key passed off as the recovery key, and a proof signed by another user's device.
            ["device proof as recovery"] = Key(cliKey, "recovery", "recovery", cli.DeviceId, Sign(cli, cli.DeviceId, cliKey)),
            ["another user's device"] = Key(cliKey, stranger.DeviceId, "device", stranger.DeviceId,
                Ed25519.Sign(stranger.Seed, VaultFormat.KeyProofMessage(cli.UserId, stranger.DeviceId, cliKey))),
            ["signed for another user"] = Key(cliKey, cli.DeviceId, "device", cli.DeviceId,
                Ed25519.Sign(cli.Seed, VaultFormat.KeyProofMessage(stranger.UserId, cli.DeviceId, cliKey))),
        };

        var results = await phone.Page.EvaluateAsync<JsonElement>("""
            async ([cases, webKey]) => {
              const F = window.AssentVault.format;
              const s = await (await fetch('/webauthn/session')).json();
              const doc = await (await fetch('/users/' + s.user_id + '/did.json')).json();
              const out = {};
              for (const [name, key] of Object.entries(cases)) out[name] = await F.verifyKey(key, s.user_id, s.user_did, doc, s.rp_id);
              // This browser's passkey signs a key the way the web app registers its own (challenge = SHA-256(KeyProof)).
              const P = F.b64d(webKey);
              const challenge = await crypto.subtle.digest('SHA-256', F.keyProof(s.user_id, s.device_id, P));
              const cred = await navigator.credentials.get({ publicKey: { challenge, rpId: s.rp_id, userVerification: 'required',
                allowCredentials: [{ type: 'public-key', id: F.b64d(s.credential_id) }] } });
              const r = cred.response;
              const proof = { signer_device_id: s.device_id, signature: F.b64e(r.signature), authenticator_data: F.b64e(r.authenticatorData),
                client_data_json: F.b64e(r.clientDataJSON) };
              const passkey = { kid: await F.keyId(P), device_id: s.device_id, kind: 'device', public_key: webKey, proof };
              out.passkey = await F.verifyKey(passkey, s.user_id, s.user_did, doc, s.rp_id);
              out.credentialIsTheSessions = F.b64e(cred.rawId) === s.credential_id;
              const flipped = F.b64d(proof.signature); flipped[flipped.length - 5] ^= 1;
              out['passkey, changed signature'] = await F.verifyKey({ ...passkey, proof: { ...proof, signature: F.b64e(flipped) } }, s.user_id, s.user_did, doc, s.rp_id);
              const other = crypto.getRandomValues(new Uint8Array(32));
              out['passkey, swapped key'] = await F.verifyKey({ ...passkey, kid: await F.keyId(other), public_key: F.b64e(other) }, s.user_id, s.user_did, doc, s.rp_id);
              out['passkey, another rp'] = await F.verifyKey(passkey, s.user_id, s.user_did, doc, 'evil.example');
              return out;
            }
            """, new object[] { cases, Base64Url.Encode(X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey())) });

        Assert.True(results.GetProperty("cli").GetBoolean());
        Assert.True(results.GetProperty("recovery").GetBoolean());
        Assert.True(results.GetProperty("passkey").GetBoolean());
        Assert.True(results.GetProperty("credentialIsTheSessions").GetBoolean());
        foreach (var refused in new[] { "swapped", "wrong kid", "device proof as recovery", "another user's device", "signed for another user",
            "passkey, changed signature", "passkey, swapped key", "passkey, another rp" })
        {
            Assert.False(results.GetProperty(refused).GetBoolean(), refused);
        }
    }
}
