using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Tests.Vault;

/// <summary>The vault's HTTP API (docs/vault.md §6) through the device API, against one shared server.</summary>
public sealed class VaultTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private readonly TestServer _server = fixture.Server;

    private async Task<(TestDevice Device, VaultOwner Owner)> OwnerAsync()
    {
        var device = await _server.UserWithDeviceAsync();
        var owner = VaultOwner.Of(_server, device);
        var (status, body) = await owner.RegisterAsync();
        Assert.True(status == HttpStatusCode.Created, body.ToString());
        Assert.Equal(owner.Kid, body.GetProperty("kid").GetString());
        return (device, owner);
    }

    private static string Names(JsonElement list) => string.Join(",", list.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("name").GetString()));

    [Fact]
    public async Task An_item_is_put_listed_shown_opened_by_version_and_removed()
    {
        var (_, owner) = await OwnerAsync();
        var id = VaultFormat.NewItemId();
        var (created, view) = await owner.PutAsync("db/password", "hunter2"u8.ToArray(), id, 1);
        Assert.True(created == HttpStatusCode.Created, view.ToString());
        Assert.Equal(1u, view.GetProperty("version").GetUInt32());
        var (updated, second) = await owner.PutAsync("db/password", "hunter3"u8.ToArray(), id, 2);
        Assert.True(updated == HttpStatusCode.OK, second.ToString());
        Assert.Equal(2u, second.GetProperty("version").GetUInt32());
        Assert.Equal(HttpStatusCode.Created, (await owner.PutAsync("api.key", "k"u8.ToArray(), VaultFormat.NewItemId(), 1)).Status);

        var (_, list) = await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/items");
        Assert.Equal("api.key,db/password", Names(list));
        var (shown, detail) = await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/items/db/password");
        Assert.Equal(HttpStatusCode.OK, shown);
        Assert.Equal(id, detail.GetProperty("id").GetString());
        Assert.Equal([2u, 1u], detail.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetUInt32()));
        Assert.Equal(owner.DeviceId, detail.GetProperty("versions")[0].GetProperty("created_by").GetString());

        Assert.Equal("hunter2", Encoding.UTF8.GetString(await owner.OpenAsync("db/password", 1)));
        Assert.Equal("hunter3", Encoding.UTF8.GetString(await owner.OpenAsync("db%2Fpassword", 2)));

        Assert.Equal(HttpStatusCode.NoContent, (await owner.CallAsync(HttpMethod.Delete, "/authenticator/vault/items/db/password")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/items/db/password")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await owner.CallAsync(HttpMethod.Get, $"/authenticator/vault/items/db/password/versions/1?kid={owner.Kid}")).Status);
        Assert.Equal("api.key", Names((await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/items")).Body));
        Assert.Equal(HttpStatusCode.NotFound, (await owner.CallAsync(HttpMethod.Delete, "/authenticator/vault/items/db/password")).Status);
    }

    [Fact]
    public async Task Every_malformed_put_is_refused_with_a_4xx_and_stores_nothing()
    {
        var (_, owner) = await OwnerAsync();
        var id = VaultFormat.NewItemId();
        Assert.Equal(HttpStatusCode.Created, (await owner.PutAsync("kept", "v1"u8.ToArray(), id, 1)).Status);
        var keys = await owner.KeysAsync();
        var other = new VaultOwner(_server.Http, (_, _, _) => throw new InvalidOperationException(), owner.UserId, "x", new byte[32]);

        Dictionary<string, object> Good(string itemId, uint version) => (Dictionary<string, object>)owner.PutBody(itemId, version, "secret"u8.ToArray(), keys);
        Dictionary<string, object> With(string key, object? value, string? itemId = null, uint version = 1)
        {
            var body = Good(itemId ?? VaultFormat.NewItemId(), version);
            if (value is null)
            {
                body.Remove(key);
            }
            else
            {
                body[key] = value;
            }
            return body;
        }
        var cases = new List<(string Name, object Body, HttpStatusCode Status)>
        {
            ("bad~name", Good(VaultFormat.NewItemId(), 1), HttpStatusCode.BadRequest),
            ("bad=name", Good(VaultFormat.NewItemId(), 1), HttpStatusCode.BadRequest),
            (new string('a', 129), Good(VaultFormat.NewItemId(), 1), HttpStatusCode.BadRequest),
            ("a//b", Good(VaultFormat.NewItemId(), 1), HttpStatusCode.BadRequest),
            ("new1", With("id", "short"), HttpStatusCode.BadRequest),
            ("new2", With("id", null), HttpStatusCode.BadRequest),
            ("new3", With("version", null), HttpStatusCode.BadRequest),
            ("new4", With("version", 0), HttpStatusCode.BadRequest),
            ("new5", With("ciphertext", Base64Url.Encode(new byte[28])), HttpStatusCode.BadRequest),
            ("new6", With("ciphertext", Base64Url.Encode([2, .. new byte[40]])), HttpStatusCode.BadRequest),
            ("new7", With("ciphertext", "not base64url!"), HttpStatusCode.BadRequest),
            ("new8", With("wraps", new List<object>()), HttpStatusCode.BadRequest),
            ("new9", With("wraps", new[] { new Dictionary<string, string> { ["kid"] = owner.Kid, ["wrapped"] = Base64Url.Encode(new byte[93]) } }), HttpStatusCode.BadRequest),
            ("new10", With("wraps", new[] { new Dictionary<string, string> { ["kid"] = owner.Kid, ["wrapped"] = Base64Url.Encode([1, .. new byte[91]]) } }),
                HttpStatusCode.BadRequest),
            // A kid that is not the owner's, or a missing one: the keys changed.
            ("new11", With("wraps", new[] { new Dictionary<string, string> { ["kid"] = other.Kid, ["wrapped"] = Base64Url.Encode([1, .. new byte[92]]) } }),
                HttpStatusCode.Conflict),
            // A new name must start at version 1, and must not take an id another item has.
            ("new12", Good(VaultFormat.NewItemId(), 2), HttpStatusCode.Conflict),
            ("new13", Good(id, 1), HttpStatusCode.Conflict),
            // An existing name: latest + 1 only, and its own id.
            ("kept", Good(id, 1), HttpStatusCode.Conflict),
            ("kept", Good(id, 3), HttpStatusCode.Conflict),
            ("kept", Good(VaultFormat.NewItemId(), 2), HttpStatusCode.Conflict),
        };
        foreach (var (name, body, expected) in cases)
        {
            var (status, problem) = await owner.CallAsync(HttpMethod.Put, "/authenticator/vault/items/" + name, body);
            Assert.True(status == expected, $"{name}: {status} {problem}");
            Assert.True(problem.TryGetProperty("detail", out _), $"{name}: not a problem document: {problem}");
        }
        var (notJson, _) = await owner.CallAsync(HttpMethod.Put, "/authenticator/vault/items/new14", "{");
        Assert.Equal(HttpStatusCode.BadRequest, notJson);

        Assert.Equal("kept", Names((await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/items")).Body));
        var (_, detail) = await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/items/kept");
        Assert.Equal(1, detail.GetProperty("versions").GetArrayLength());
        Assert.Equal("v1", Encoding.UTF8.GetString(await owner.OpenAsync("kept", 1)));
    }

    [Fact]
    public async Task A_sealed_item_of_one_mebibyte_is_accepted_and_one_byte_more_is_refused()
    {
        var (_, owner) = await OwnerAsync();
        var keys = await owner.KeysAsync();
        var big = new byte[1024 * 1024];
        var id = VaultFormat.NewItemId();
        var (status, body) = await owner.CallAsync(HttpMethod.Put, "/authenticator/vault/items/big", owner.PutBody(id, 1, big, keys));
        Assert.True(status == HttpStatusCode.Created, body.ToString());
        Assert.Equal(big.Length + VaultFormat.ItemOverhead, body.GetProperty("size").GetInt64());
        Assert.Equal(big, await owner.OpenAsync("big", 1));
        var (tooBig, _) = await owner.CallAsync(HttpMethod.Put, "/authenticator/vault/items/big2", owner.PutBody(VaultFormat.NewItemId(), 1, new byte[big.Length + 1], keys));
        Assert.Equal(HttpStatusCode.BadRequest, tooBig);
        Assert.Equal("big", Names((await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/items")).Body));
    }

    [Fact]
    public async Task Another_users_items_and_keys_are_invisible_to_them()
    {
        var (_, alice) = await OwnerAsync();
        var (_, mallory) = await OwnerAsync();
        var id = VaultFormat.NewItemId();
        Assert.Equal(HttpStatusCode.Created, (await alice.PutAsync("shared-name", "alice's"u8.ToArray(), id, 1)).Status);

        Assert.Equal([mallory.Kid], (await mallory.KeysAsync()).Select(k => k.Kid));
        Assert.Equal("", Names((await mallory.CallAsync(HttpMethod.Get, "/authenticator/vault/items")).Body));
        Assert.Equal(HttpStatusCode.NotFound, (await mallory.CallAsync(HttpMethod.Get, "/authenticator/vault/items/shared-name")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await mallory.CallAsync(HttpMethod.Get, $"/authenticator/vault/items/shared-name/versions/1?kid={alice.Kid}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await mallory.CallAsync(HttpMethod.Get, $"/authenticator/vault/wraps?kid={alice.Kid}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await mallory.CallAsync(HttpMethod.Delete, "/authenticator/vault/items/shared-name")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await mallory.CallAsync(HttpMethod.Delete, $"/authenticator/vault/keys/{alice.Kid}")).Status);
        // Mallory's wraps for Alice's item, to her own key: refused, nothing stored.
        var (upload, _) = await mallory.CallAsync(HttpMethod.Post, "/authenticator/vault/wraps", new Dictionary<string, object>
        {
            ["kid"] = mallory.Kid,
            ["wraps"] = new[] { new Dictionary<string, object> { ["item_id"] = id, ["version"] = 1, ["wrapped"] = Base64Url.Encode([1, .. new byte[92]]) } },
        });
        Assert.Equal(HttpStatusCode.NotFound, upload);
        // The same name is Mallory's own item, with an id of her own.
        Assert.Equal(HttpStatusCode.Created, (await mallory.PutAsync("shared-name", "mallory's"u8.ToArray(), VaultFormat.NewItemId(), 1)).Status);
        Assert.Equal("alice's", Encoding.UTF8.GetString(await alice.OpenAsync("shared-name", 1)));
        Assert.Equal("mallory's", Encoding.UTF8.GetString(await mallory.OpenAsync("shared-name", 1)));
    }

    [Fact]
    public async Task Key_registration_checks_its_proof_is_idempotent_and_limits_keys_per_device_and_recovery_keys()
    {
        var (device, owner) = await OwnerAsync();
        var (again, same) = await owner.RegisterAsync();
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.Equal(owner.Kid, same.GetProperty("kid").GetString());

        var stranger = VaultFormat.NewPrivateKey();
        var strangerPublic = X25519.PublicKeyFromPrivateKey(stranger);
        // A proof naming another device, or over another key, does not verify.
        foreach (var signature in new[] { owner.Proof("dev_other", strangerPublic), owner.Proof(device.DeviceId, owner.Public) })
        {
            var (status, _) = await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
            {
                ["public_key"] = Base64Url.Encode(strangerPublic), ["signature"] = Base64Url.Encode(signature),
            });
            Assert.Equal(HttpStatusCode.Unauthorized, status);
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(new byte[31]), ["signature"] = Base64Url.Encode(new byte[64]),
        })).Status);

        // The recovery key is proved over the device id "recovery"; one per user.
        var recovery = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var (registered, _) = await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(recovery), ["signature"] = Base64Url.Encode(owner.Proof("recovery", recovery)), ["kind"] = "recovery",
        });
        Assert.Equal(HttpStatusCode.Created, registered);
        var secondRecovery = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        Assert.Equal(HttpStatusCode.Conflict, (await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(secondRecovery), ["signature"] = Base64Url.Encode(owner.Proof("recovery", secondRecovery)), ["kind"] = "recovery",
        })).Status);

        for (var i = 1; i < 10; i++)
        {
            var extra = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
            Assert.Equal(HttpStatusCode.Created, (await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
            {
                ["public_key"] = Base64Url.Encode(extra), ["signature"] = Base64Url.Encode(owner.Proof(device.DeviceId, extra)),
            })).Status);
        }
        var eleventh = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        Assert.Equal(HttpStatusCode.Conflict, (await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(eleventh), ["signature"] = Base64Url.Encode(owner.Proof(device.DeviceId, eleventh)),
        })).Status);

        var (_, list) = await owner.CallAsync(HttpMethod.Get, "/authenticator/vault/keys");
        var keys = list.GetProperty("keys").EnumerateArray().ToList();
        Assert.Equal(11, keys.Count);
        // Each key is served with its proof, which a client checks against the signer's key.
        var publicKey = Ed25519.PublicKeyFromSeed(device.Seed);
        Assert.All(keys, k =>
        {
            var proof = k.GetProperty("proof");
            Assert.Equal(device.DeviceId, proof.GetProperty("signer_device_id").GetString());
            Assert.True(Ed25519.Verify(publicKey, VaultFormat.KeyProofMessage(owner.UserId, k.GetProperty("device_id").GetString()!,
                Base64Url.Decode(k.GetProperty("public_key").GetString()!)), Base64Url.Decode(proof.GetProperty("signature").GetString()!)));
        });
        Assert.Single(keys, k => k.GetProperty("kind").GetString() == "recovery" && k.GetProperty("device_id").GetString() == "recovery");
    }

    [Fact]
    public async Task A_new_key_of_an_owner_with_items_raises_a_rewrap_request_and_receives_wraps_uploaded_for_it()
    {
        var first = await _server.UserWithDeviceAsync();
        var owner = VaultOwner.Of(_server, first);
        Assert.Equal(HttpStatusCode.Created, (await owner.RegisterAsync()).Status);
        var id = VaultFormat.NewItemId();
        Assert.Equal(HttpStatusCode.Created, (await owner.PutAsync("note", "hello"u8.ToArray(), id, 1)).Status);

        // A second key (a device may hold up to ten) stands in for a new device's: the rule is the same, the owner has items and other keys.
        var newKey = new VaultOwner(_server.Http, first.Signed, first.UserId, first.DeviceId, first.Seed);
        var (status, registered) = await newKey.RegisterAsync();
        Assert.True(status == HttpStatusCode.Created, registered.ToString());
        var approvalId = registered.GetProperty("rewrap_approval_id").GetString()!;
        var pending = Assert.Single(await first.PendingAsync(), p => p.GetProperty("id").GetString() == approvalId);
        Assert.Equal("vault_rewrap", pending.GetProperty("kind").GetString());
        var detail = pending.GetProperty("authorization_details")[0];
        Assert.Equal(newKey.Kid, detail.GetProperty("kid").GetString());
        Assert.Equal(Base64Url.Encode(newKey.Public), detail.GetProperty("public_key").GetString());

        // A put now needs a wrap for the new key too.
        Assert.Equal(HttpStatusCode.Conflict, (await owner.CallAsync(HttpMethod.Put, "/authenticator/vault/items/note",
            owner.PutBody(id, 2, "x"u8.ToArray(), [(owner.Kid, owner.Public)]))).Status);

        // The approving device pages its own wraps, re-wraps and uploads them for the new key.
        var (_, page) = await owner.CallAsync(HttpMethod.Get, $"/authenticator/vault/wraps?kid={owner.Kid}");
        var wrap = Assert.Single(page.GetProperty("wraps").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, page.TryGetProperty("next", out var next) ? next.ValueKind : JsonValueKind.Null);
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(wrap.GetProperty("wrapped").GetString()!), id, 1, owner.Private);
        var (uploaded, problem) = await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/wraps", new Dictionary<string, object>
        {
            ["kid"] = newKey.Kid,
            ["wraps"] = new[] { new Dictionary<string, object> { ["item_id"] = id, ["version"] = 1, ["wrapped"] = Base64Url.Encode(VaultFormat.WrapKey(itemKey, id, 1, newKey.Public)) } },
        });
        Assert.True(uploaded == HttpStatusCode.NoContent, problem.ToString());
        Assert.Equal("hello", Encoding.UTF8.GetString(await newKey.OpenAsync("note", 1)));
    }

    [Fact]
    public async Task Wraps_are_paged_by_item_and_version_and_an_upload_naming_a_version_that_does_not_exist_stores_nothing()
    {
        var (_, owner) = await OwnerAsync();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var id = VaultFormat.NewItemId();
            ids.Add(id);
            Assert.Equal(HttpStatusCode.Created, (await owner.PutAsync($"item{i}", [(byte)i], id, 1)).Status);
            Assert.Equal(HttpStatusCode.OK, (await owner.PutAsync($"item{i}", [(byte)i, 1], id, 2)).Status);
        }
        var (_, page) = await owner.CallAsync(HttpMethod.Get, $"/authenticator/vault/wraps?kid={owner.Kid}");
        var listed = page.GetProperty("wraps").EnumerateArray().Select(w => (w.GetProperty("item_id").GetString()!, w.GetProperty("version").GetUInt32())).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal).SelectMany(id => new[] { (id, 1u), (id, 2u) }), listed);
        var middle = listed[2];
        var (_, after) = await owner.CallAsync(HttpMethod.Get, $"/authenticator/vault/wraps?kid={owner.Kid}&after={middle.Item1}.{middle.Item2}");
        Assert.Equal(listed.Skip(3), after.GetProperty("wraps").EnumerateArray().Select(w => (w.GetProperty("item_id").GetString()!, w.GetProperty("version").GetUInt32())));
        Assert.Equal(HttpStatusCode.BadRequest, (await owner.CallAsync(HttpMethod.Get, $"/authenticator/vault/wraps?kid={owner.Kid}&after=nonsense")).Status);

        var recovery = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var recoveryKid = VaultFormat.KeyId(recovery);
        Assert.Equal(HttpStatusCode.Created, (await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/keys", new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(recovery), ["signature"] = Base64Url.Encode(owner.Proof("recovery", recovery)), ["kind"] = "recovery",
        })).Status);
        var wrapped = Base64Url.Encode([1, .. new byte[92]]);
        var (refused, _) = await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/wraps", new Dictionary<string, object>
        {
            ["kid"] = recoveryKid,
            ["wraps"] = new[]
            {
                new Dictionary<string, object> { ["item_id"] = ids[0], ["version"] = 1, ["wrapped"] = wrapped },
                new Dictionary<string, object> { ["item_id"] = ids[0], ["version"] = 3, ["wrapped"] = wrapped },
            },
        });
        Assert.Equal(HttpStatusCode.NotFound, refused);
        var (_, none) = await owner.CallAsync(HttpMethod.Get, $"/authenticator/vault/wraps?kid={recoveryKid}");
        Assert.Equal(0, none.GetProperty("wraps").GetArrayLength());
        var (tooMany, _) = await owner.CallAsync(HttpMethod.Post, "/authenticator/vault/wraps", new Dictionary<string, object>
        {
            ["kid"] = recoveryKid,
            ["wraps"] = Enumerable.Range(1, 501).Select(v => new Dictionary<string, object> { ["item_id"] = ids[0], ["version"] = v, ["wrapped"] = wrapped }).ToArray(),
        });
        Assert.Equal(HttpStatusCode.BadRequest, tooMany);
    }

    [Fact]
    public async Task Revoking_a_device_removes_its_keys_and_every_wrap_to_them()
    {
        var (device, owner) = await OwnerAsync();
        var id = VaultFormat.NewItemId();
        Assert.Equal(HttpStatusCode.Created, (await owner.PutAsync("doomed", "x"u8.ToArray(), id, 1)).Status);
        Assert.Equal(1, await CountAsync("vault_wraps", owner.UserId));

        using var revoke = device.Signed(HttpMethod.Delete, $"/authenticator/devices/{device.DeviceId}");
        using var revoked = await _server.Http.SendAsync(revoke);
        Assert.True(revoked.IsSuccessStatusCode, await revoked.Content.ReadAsStringAsync());

        Assert.Equal(0, await CountAsync("vault_wraps", owner.UserId));
        Assert.Equal(0, await CountAsync("vault_keys", owner.UserId));
        // The item stays (a recovery key or another device may still hold it); nothing opens it through this device.
        Assert.Equal(1, await CountAsync("vault_items", owner.UserId));
    }

    private async Task<long> CountAsync(string table, string userId) =>
        await _server.Store.Database.ReadAsync(s => s.AllAsync($"SELECT count(*) FROM {table} WHERE user_id = $1", r => r.GetInt64(0), userId), default) is [var n] ? n : -1;

    [Fact]
    public async Task The_did_document_lists_the_devices_vault_keys_for_key_agreement()
    {
        var (device, owner) = await OwnerAsync();
        using var response = await _server.Http.GetAsync($"/users/{owner.UserId}/did.json");
        var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var did = doc.GetProperty("id").GetString()!;
        Assert.Equal([$"{did}#{owner.Kid}"], doc.GetProperty("keyAgreement").EnumerateArray().Select(e => e.GetString()));
        var method = Assert.Single(doc.GetProperty("verificationMethod").EnumerateArray(), m => m.GetProperty("id").GetString() == $"{did}#{owner.Kid}");
        Assert.Equal("JsonWebKey2020", method.GetProperty("type").GetString());
        var jwk = method.GetProperty("publicKeyJwk");
        Assert.Equal(("OKP", "X25519", Base64Url.Encode(owner.Public)), (jwk.GetProperty("kty").GetString(), jwk.GetProperty("crv").GetString(), jwk.GetProperty("x").GetString()));
        Assert.DoesNotContain($"{did}#{owner.Kid}", doc.GetProperty("authentication").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains($"{did}#{device.DeviceId}", doc.GetProperty("authentication").EnumerateArray().Select(e => e.GetString()));
    }

    [Theory]
    [InlineData("GET", "/authenticator/vault/items")]
    [InlineData("GET", "/webauthn/vault/items")]
    [InlineData("GET", "/webauthn/vault/keys")]
    [InlineData("PUT", "/webauthn/vault/items/x")]
    [InlineData("POST", "/authenticator/vault/wraps")]
    public async Task Every_vault_endpoint_needs_a_signed_request_or_a_session(string method, string path)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method != "GET")
        {
            request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        }
        using var response = await _server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
