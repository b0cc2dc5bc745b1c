using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>
/// The web app's WebCrypto code of the vault format (vault.js) against docs/vault.md §2.4 and against the C# VaultFormat:
/// the published vectors byte for byte, sealed and wrapped in each language and opened in the other, and tampering refused.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class VaultFormatTests(BrowserHost host)
{
    // docs/vault.md §2.4.
    private const string ItemId = "AAECAwQFBgcICQoLDA0ODw";
    private const string RecipientPrivate = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    private const string RecipientPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    private const string EphemeralPrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    private const string Kid = "giQqigT_IKcuzHl0FVJ3k5ts3_TWNAxvsC08UZsfcM8";
    private const string ItemAad = "617373656e742d7661756c742d6974656d2d76311641414543417751464267634943516f4c4441304f447700000003";
    private const string WrapAad = "617373656e742d7661756c742d777261702d76311641414543417751464267634943516f4c4441304f4477000000032b" +
        "676951716967545f494b63757a486c3046564a336b357473335f54574e41787673433038555a7366634d38";
    private const string Sealed = "01101112131415161718191a1b1e91ea642caa4e93a21a7a6e6a590b32a3242b7c62e224c586898e026e46b8ba36d2487494805c34095a5c5a";
    private const string Wrapped = "018520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a202122232425262728292a2bf034bb49" +
        "c835896e067bdd0ce079056916c8c62960329e988d27d2f5fbd8d26b7c0289b29b89633aff34cfe95110e4f4";
    private const string Proof = "617373656e742d7661756c742d6b65792d763103755f3103645f31de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";

    /// <summary>A page of the app with vault.js loaded as the app loads it (its own file, same origin, under the page's CSP).</summary>
    private async Task<Phone> PageWithFormatAsync()
    {
        var phone = await host.PhoneAsync();
        await phone.Page.GotoAsync("/app");
        await phone.Page.Locator("#v-signin").WaitForAsync();
        await phone.Page.AddScriptTagAsync(new() { Url = "/app/vault.js" });
        await phone.Page.WaitForFunctionAsync("() => window.AssentVault && window.AssentVault.format");
        return phone;
    }

    [Fact]
    public async Task The_web_app_reproduces_the_published_vectors_byte_for_byte()
    {
        await using var phone = await PageWithFormatAsync();
        var r = await phone.Page.EvaluateAsync<JsonElement>("""
            async ([itemId, rPub, ePriv, rPriv]) => {
              const F = window.AssentVault.format;
              const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
              const unhex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
              const seq = (start, n) => Uint8Array.from({ length: n }, (_, i) => start + i);
              const K = seq(0, 32), plaintext = new TextEncoder().encode('correct horse battery staple');
              const sealed = await F.sealItem(K, itemId, 3, plaintext, seq(0x10, 12));
              const wrapped = await F.wrapKey(K, itemId, 3, unhex(rPub), unhex(ePriv), seq(0x20, 12));
              const bob = await F.importPrivate(unhex(rPriv));
              const unwrapped = await F.unwrapKey(wrapped, itemId, 3, bob);
              const opened = new TextDecoder().decode(await F.openItem(unwrapped, itemId, 3, sealed));
              return {
                kid: await F.keyId(unhex(rPub)), itemAad: hex(F.itemAad(itemId, 3)), wrapAad: hex(F.wrapAad(itemId, 3, await F.keyId(unhex(rPub)))),
                sealed: hex(sealed), wrapped: hex(wrapped), proof: hex(F.keyProof('u_1', 'd_1', unhex(rPub))), unwrapped: hex(unwrapped), opened,
              };
            }
            """, new object[] { ItemId, RecipientPublic, EphemeralPrivate, RecipientPrivate });
        Assert.Equal(Kid, r.GetProperty("kid").GetString());
        Assert.Equal(ItemAad, r.GetProperty("itemAad").GetString());
        Assert.Equal(WrapAad, r.GetProperty("wrapAad").GetString());
        Assert.Equal(Sealed, r.GetProperty("sealed").GetString());
        Assert.Equal(Wrapped, r.GetProperty("wrapped").GetString());
        Assert.Equal(Proof, r.GetProperty("proof").GetString());
        Assert.Equal(Convert.ToHexStringLower(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()), r.GetProperty("unwrapped").GetString());
        Assert.Equal("correct horse battery staple", r.GetProperty("opened").GetString());
    }

    [Fact]
    public async Task What_the_browser_seals_and_wraps_opens_in_csharp_and_the_other_way_round()
    {
        await using var phone = await PageWithFormatAsync();
        var recipient = VaultFormat.NewPrivateKey();
        var recipientPublic = X25519.PublicKeyFromPrivateKey(recipient);
        var secret = RandomNumberGenerator.GetBytes(4096);
        var itemId = VaultFormat.NewItemId();

        // Browser → C#: a random item key and nonce, a fresh ephemeral key made by WebCrypto.
        var fromBrowser = await phone.Page.EvaluateAsync<JsonElement>("""
            async ([itemId, rPub, secret]) => {
              const F = window.AssentVault.format;
              const K = crypto.getRandomValues(new Uint8Array(32));
              return { sealed: F.b64e(await F.sealItem(K, itemId, 7, F.b64d(secret))), wrapped: F.b64e(await F.wrapKey(K, itemId, 7, F.b64d(rPub))) };
            }
            """, new object[] { itemId, Base64Url.Encode(recipientPublic), Base64Url.Encode(secret) });
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(fromBrowser.GetProperty("wrapped").GetString()!), itemId, 7, recipient);
        Assert.Equal(secret, VaultFormat.OpenItem(itemKey, itemId, 7, Base64Url.Decode(fromBrowser.GetProperty("sealed").GetString()!)));

        // C# → browser, then every kind of tampering the browser must refuse.
        var key = RandomNumberGenerator.GetBytes(32);
        var sealedItem = VaultFormat.SealItem(key, itemId, 2, secret);
        var wrapped = VaultFormat.WrapKey(key, itemId, 2, recipientPublic);
        var flippedWrap = (byte[])wrapped.Clone();
        flippedWrap[60] ^= 1;
        var flippedItem = (byte[])sealedItem.Clone();
        flippedItem[100] ^= 1;
        var smallOrder = (byte[])wrapped.Clone();
        smallOrder.AsSpan(1, 32).Clear();
        var r = await phone.Page.EvaluateAsync<JsonElement>("""
            async ([itemId, rPriv, sealed, wrapped, flippedWrap, flippedItem, smallOrder]) => {
              const F = window.AssentVault.format, d = F.b64d;
              const me = await F.importPrivate(d(rPriv));
              const refused = async (f) => { try { await f(); return 'opened'; } catch (e) { return e.name + ': ' + e.message; } };
              const K = await F.unwrapKey(d(wrapped), itemId, 2, me);
              return {
                opened: F.b64e(await F.openItem(K, itemId, 2, d(sealed))),
                flippedWrap: await refused(() => F.unwrapKey(d(flippedWrap), itemId, 2, me)),
                otherVersion: await refused(() => F.unwrapKey(d(wrapped), itemId, 3, me)),
                otherItem: await refused(() => F.unwrapKey(d(wrapped), 'AAECAwQFBgcICQoLDA0OEA', 2, me)),
                otherRecipient: await refused(async () => F.unwrapKey(d(wrapped), itemId, 2, await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']))),
                smallOrder: await refused(() => F.unwrapKey(d(smallOrder), itemId, 2, me)),
                flippedItem: await refused(() => F.openItem(K, itemId, 2, d(flippedItem))),
                itemOtherVersion: await refused(() => F.openItem(K, itemId, 1, d(sealed))),
                futureFormat: await refused(() => F.openItem(K, itemId, 2, Uint8Array.of(2, ...d(sealed).subarray(1)))),
              };
            }
            """, new object[] { itemId, Base64Url.Encode(recipient), Base64Url.Encode(sealedItem), Base64Url.Encode(wrapped), Base64Url.Encode(flippedWrap),
                Base64Url.Encode(flippedItem), Base64Url.Encode(smallOrder) });
        Assert.Equal(Base64Url.Encode(secret), r.GetProperty("opened").GetString());
        foreach (var name in new[] { "flippedWrap", "otherVersion", "otherItem", "otherRecipient" })
        {
            Assert.StartsWith("VaultError: the wrapped key does not open", r.GetProperty(name).GetString());
        }
        Assert.Contains("small-order", r.GetProperty("smallOrder").GetString());
        Assert.StartsWith("VaultError: the sealed item does not open", r.GetProperty("flippedItem").GetString());
        Assert.StartsWith("VaultError: the sealed item does not open", r.GetProperty("itemOtherVersion").GetString());
        Assert.Equal("VaultError: not a version 1 sealed item", r.GetProperty("futureFormat").GetString());
    }
}
