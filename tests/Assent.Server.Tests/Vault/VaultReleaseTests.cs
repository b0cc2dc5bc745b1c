using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;

namespace Assent.Server.Tests.Vault;

/// <summary>Releasing one item to an agent (docs/vault.md §4): bc-authorize, the device's re-wrap with its decision, the token.</summary>
public sealed class VaultReleaseTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private readonly TestServer _server = fixture.Server;

    internal sealed record Setup(TestDevice Device, VaultOwner Owner, TestAgent Agent, string ItemId);

    internal static async Task<Setup> OwnerWithItemAsync(TestServer server, string name, string secret)
    {
        var device = await server.UserWithDeviceAsync();
        var owner = VaultOwner.Of(server, device);
        Assert.Equal(HttpStatusCode.Created, (await owner.RegisterAsync()).Status);
        var id = VaultFormat.NewItemId();
        Assert.Equal(HttpStatusCode.Created, (await owner.PutAsync(name, Encoding.UTF8.GetBytes(secret), id, 1)).Status);
        return new Setup(device, owner, await server.AgentAsync(device.Handle), id);
    }

    internal static string ReleaseDetails(string item, byte[] recipientKey, uint? version = null) =>
        JsonSerializer.Serialize(new[]
        {
            version is null
                ? new Dictionary<string, object> { ["type"] = "vault_release", ["item"] = item, ["recipient_key"] = Base64Url.Encode(recipientKey) }
                : new Dictionary<string, object> { ["type"] = "vault_release", ["item"] = item, ["recipient_key"] = Base64Url.Encode(recipientKey), ["version"] = version },
        });

    /// <summary>What the approving device does (docs/vault.md §4 step 2): unwrap its own key, check it opens, wrap it to the agent.</summary>
    internal static async Task<byte[]> RewrapForAgentAsync(VaultOwner owner, JsonElement detail)
    {
        var itemId = detail.GetProperty("item_id").GetString()!;
        var version = detail.GetProperty("version").GetUInt32();
        var (status, body) = await owner.CallAsync(HttpMethod.Get, $"/authenticator/vault/items/{detail.GetProperty("item").GetString()}/versions/{version}?kid={owner.Kid}");
        Assert.Equal(HttpStatusCode.OK, status);
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(body.GetProperty("wrapped").GetString()!), itemId, version, owner.Private);
        VaultFormat.OpenItem(itemKey, itemId, version, Base64Url.Decode(body.GetProperty("ciphertext").GetString()!));
        return VaultFormat.WrapKey(itemKey, itemId, version, Base64Url.Decode(detail.GetProperty("recipient_key").GetString()!));
    }

    internal static Task<HttpResponseMessage> DecideAsync(TestServer server, TestDevice device, JsonElement pending, string decision, byte[]? vaultRelease)
    {
        var body = new Dictionary<string, string>
        {
            ["device_id"] = device.DeviceId,
            ["decision"] = decision,
            ["signature"] = Base64Url.Encode(device.SignDecision(decision, pending.GetProperty("payload").GetString()!)),
        };
        if (vaultRelease is not null)
        {
            body["vault_release"] = Base64Url.Encode(vaultRelease);
        }
        return server.Http.PostAsync($"/authenticator/approvals/{pending.GetProperty("id").GetString()}/decision", TestDevice.JsonBody(body));
    }

    [Fact]
    public async Task An_approved_release_hands_the_agent_the_item_sealed_and_its_key_wrapped_to_the_agents_key_once()
    {
        var setup = await OwnerWithItemAsync(_server, "prod/db", "s3cret-value");
        Assert.Equal(HttpStatusCode.OK, (await setup.Owner.PutAsync("prod/db", "newer"u8.ToArray(), setup.ItemId, 2)).Status);
        var agentKey = VaultFormat.NewPrivateKey();
        var agentPublic = X25519.PublicKeyFromPrivateKey(agentKey);
        var authReqId = await _server.AskAsync(setup.Agent, "Release prod/db", ReleaseDetails("prod/db", agentPublic, version: 1));

        // The detail the device signs names the item by id and version, and the agent's key.
        var pending = Assert.Single(await setup.Device.PendingAsync());
        var detail = pending.GetProperty("authorization_details")[0];
        Assert.Equal(("vault_release", "prod/db", setup.ItemId, 1u, Base64Url.Encode(agentPublic)),
            (detail.GetProperty("type").GetString(), detail.GetProperty("item").GetString(), detail.GetProperty("item_id").GetString(),
                detail.GetProperty("version").GetUInt32(), detail.GetProperty("recipient_key").GetString()));
        Assert.Contains(setup.ItemId, Encoding.UTF8.GetString(Base64Url.Decode(pending.GetProperty("payload").GetString()!)));

        // An approve without the re-wrapped key, or a malformed one, decides nothing.
        using (var bare = await DecideAsync(_server, setup.Device, pending, "approve", null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bare.StatusCode);
        }
        using (var malformed = await DecideAsync(_server, setup.Device, pending, "approve", new byte[93]))
        {
            Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        }
        var wrapped = await RewrapForAgentAsync(setup.Owner, detail);
        using (var denyWithKey = await DecideAsync(_server, setup.Device, pending, "deny", wrapped))
        {
            Assert.Equal(HttpStatusCode.BadRequest, denyWithKey.StatusCode);
        }
        Assert.Single(await setup.Device.PendingAsync());
        using (var approved = await DecideAsync(_server, setup.Device, pending, "approve", wrapped))
        {
            Assert.True(approved.IsSuccessStatusCode, await approved.Content.ReadAsStringAsync());
        }

        using var token = await _server.TokenAsync(setup.Agent, authReqId);
        var (status, body) = await TestServer.ReadAsync(token);
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        var release = body.GetProperty("vault_release");
        Assert.Equal(("prod/db", setup.ItemId, 1u), (release.GetProperty("item").GetString(), release.GetProperty("item_id").GetString(), release.GetProperty("version").GetUInt32()));
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(release.GetProperty("wrapped").GetString()!), setup.ItemId, 1, agentKey);
        Assert.Equal("s3cret-value", Encoding.UTF8.GetString(VaultFormat.OpenItem(itemKey, setup.ItemId, 1, Base64Url.Decode(release.GetProperty("ciphertext").GetString()!))));
        Assert.Equal(detail.GetProperty("recipient_key").GetString(), body.GetProperty("authorization_details")[0].GetProperty("recipient_key").GetString());

        // Redeemed once: the stored key is gone.
        Assert.Equal([0L], await _server.Store.Database.ReadAsync(s => s.AllAsync("SELECT count(*) FROM vault_releases WHERE approval_id = $1", r => r.GetInt64(0),
            pending.GetProperty("id").GetString()), default));
        using var again = await _server.TokenAsync(setup.Agent, authReqId);
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
    }

    [Fact]
    public async Task The_latest_version_is_released_when_none_is_named_and_a_denied_release_delivers_nothing()
    {
        var setup = await OwnerWithItemAsync(_server, "token", "v1");
        Assert.Equal(HttpStatusCode.OK, (await setup.Owner.PutAsync("token", "v2"u8.ToArray(), setup.ItemId, 2)).Status);
        var authReqId = await _server.AskAsync(setup.Agent, "Release token", ReleaseDetails("token", X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey())));
        var pending = Assert.Single(await setup.Device.PendingAsync());
        Assert.Equal(2u, pending.GetProperty("authorization_details")[0].GetProperty("version").GetUInt32());
        using (var denied = await DecideAsync(_server, setup.Device, pending, "deny", null))
        {
            Assert.True(denied.IsSuccessStatusCode, await denied.Content.ReadAsStringAsync());
        }
        using var token = await _server.TokenAsync(setup.Agent, authReqId);
        Assert.Equal("access_denied", await TestServer.ErrorOf(token));
    }

    [Fact]
    public async Task A_release_of_an_item_or_version_the_user_lacks_or_with_a_bad_key_is_refused_at_bc_authorize()
    {
        var setup = await OwnerWithItemAsync(_server, "exists", "x");
        var key = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var other = await OwnerWithItemAsync(_server, "theirs", "y");
        foreach (var details in new[]
        {
            ReleaseDetails("missing", key), ReleaseDetails("exists", key, version: 2), ReleaseDetails("theirs", key),
            ReleaseDetails("exists", new byte[31]), ReleaseDetails("exists", new byte[32]), ReleaseDetails("bad name", key),
            "[{\"type\":\"vault_release\",\"recipient_key\":\"" + Base64Url.Encode(key) + "\"}]",
            "[{\"type\":\"vault_release\",\"item\":\"exists\",\"recipient_key\":\"" + Base64Url.Encode(key) + "\",\"version\":0}]",
            "[" + ReleaseDetails("exists", key)[1..^1] + "," + ReleaseDetails("exists", key)[1..^1] + "]",
            // The re-wrap request is the server's own: no agent may raise one.
            "[{\"type\":\"vault_rewrap\",\"kid\":\"k\",\"public_key\":\"" + Base64Url.Encode(key) + "\"}]",
        })
        {
            using var response = await _server.BcAuthorizeAsync(setup.Agent, new Dictionary<string, string>
            {
                ["scope"] = "openid approve:action", ["login_hint"] = setup.Device.Handle, ["binding_message"] = "release", ["authorization_details"] = details,
            });
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, details);
            Assert.Equal("invalid_authorization_details", await TestServer.ErrorOf(response));
        }
        Assert.Empty(await setup.Device.PendingAsync());
        Assert.NotEqual(other.Device.UserId, setup.Device.UserId);
    }

    [Fact]
    public async Task A_vault_release_on_a_request_that_releases_nothing_is_refused()
    {
        var setup = await OwnerWithItemAsync(_server, "plain", "x");
        await _server.AskAsync(setup.Agent, "Deploy");
        var pending = Assert.Single(await setup.Device.PendingAsync());
        using var response = await DecideAsync(_server, setup.Device, pending, "approve", [1, .. new byte[92]]);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Single(await setup.Device.PendingAsync());
    }

    [Fact]
    public async Task A_release_approved_for_one_item_is_not_redeemed_for_another()
    {
        var setup = await OwnerWithItemAsync(_server, "asked", "the one asked for");
        var otherId = VaultFormat.NewItemId();
        Assert.Equal(HttpStatusCode.Created, (await setup.Owner.PutAsync("other", "never released"u8.ToArray(), otherId, 1)).Status);
        var agentKey = VaultFormat.NewPrivateKey();
        var authReqId = await _server.AskAsync(setup.Agent, "Release asked", ReleaseDetails("asked", X25519.PublicKeyFromPrivateKey(agentKey)));
        var pending = Assert.Single(await setup.Device.PendingAsync());
        var approvalId = pending.GetProperty("id").GetString()!;
        using (var approved = await DecideAsync(_server, setup.Device, pending, "approve", await RewrapForAgentAsync(setup.Owner, pending.GetProperty("authorization_details")[0])))
        {
            Assert.True(approved.IsSuccessStatusCode);
        }
        // A server that points the stored release at another item (here: its database edited) hands out nothing for it.
        await _server.Store.Database.WriteAsync(async w => await w.ExecAsync("UPDATE vault_releases SET item_id = $2 WHERE approval_id = $1", approvalId, otherId), default);
        using var token = await _server.TokenAsync(setup.Agent, authReqId);
        var (status, body) = await TestServer.ReadAsync(token);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body.TryGetProperty("vault_release", out _), body.ToString());
    }

    [Fact]
    public async Task Putting_removing_and_releasing_are_audited_with_names_ids_versions_and_kids_only()
    {
        var setup = await OwnerWithItemAsync(_server, "audited", "audited secret");
        var agentKey = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var authReqId = await _server.AskAsync(setup.Agent, "Release audited", ReleaseDetails("audited", agentKey));
        var pending = Assert.Single(await setup.Device.PendingAsync());
        using (var approved = await DecideAsync(_server, setup.Device, pending, "approve", await RewrapForAgentAsync(setup.Owner, pending.GetProperty("authorization_details")[0])))
        {
            Assert.True(approved.IsSuccessStatusCode);
        }
        using (var token = await _server.TokenAsync(setup.Agent, authReqId))
        {
            Assert.Equal(HttpStatusCode.OK, token.StatusCode);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await setup.Owner.CallAsync(HttpMethod.Delete, "/authenticator/vault/items/audited")).Status);

        await _server.Store.Database.SettleAuditAsync(default);
        var entries = (await _server.Store.Audit.ReadAsync(0, 1000, setup.Device.UserId, default))
            .Select(r => JsonDocument.Parse(r.Entry).RootElement.Clone()).ToList();
        string Text(JsonElement e) => e.ToString();
        var types = entries.Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Contains("vault.key_registered", types);
        Assert.Contains("vault.item_put", types);
        Assert.Contains("vault.item_removed", types);
        var released = Assert.Single(entries, e => e.GetProperty("type").GetString() == "vault.released");
        Assert.Contains(setup.ItemId, Text(released));
        Assert.Contains(VaultFormat.KeyId(agentKey), Text(released));
        var put = Assert.Single(entries, e => e.GetProperty("type").GetString() == "vault.item_put");
        Assert.Contains("audited", Text(put));
        Assert.Contains(setup.Owner.Kid, Text(put));
        Assert.DoesNotContain(entries, e => Text(e).Contains("audited secret", StringComparison.Ordinal));
    }
}
