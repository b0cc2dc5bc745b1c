using System.Net;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;
using Assent.Server.Tests;
using Assent.Server.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Assent.Web.Tests;

/// <summary>
/// The web app's vault (docs/vault.md §7.3) against a real server: the browser's WebCrypto key registered with the
/// passkey, an item added in the page and opened in C# by another recipient key of the owner, a release approved in the
/// browser and decrypted by the agent, a new key's re-wrap approved in the browser. The test never holds the browser's key.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class VaultWebTests(BrowserHost host, ITestOutputHelper output)
{
    private TestServer Server => host.Server;

    /// <summary>A user with a passkey in a phone-sized tab and, optionally, a CLI device (a second invite for the same handle).</summary>
    private async Task<(Phone Phone, TestDevice Cli, string Handle)> OwnerAsync(string handle, bool bypassCsp = false, bool dark = false)
    {
        var invite = await Server.InviteAsync(handle);
        var phone = await host.PhoneAsync(bypassCsp: bypassCsp, dark: dark);
        await phone.EnrollAsync(invite.Code);
        var cli = await Server.EnrollAsync((await Server.InviteAsync(handle)).Code, "laptop");
        // The vault's code is no part of the first load: the Vault tab (or a vault approval) fetches it.
        Assert.False(await phone.Page.EvaluateAsync<bool>("() => 'AssentVault' in window"), "vault.js came with the first load");
        return (phone, cli, handle);
    }

    /// <summary>A CLI device registers an X25519 key with its Ed25519 proof over KeyProof (docs/vault.md §1).</summary>
    private async Task<(byte[] Private, string Kid, JsonElement Body)> RegisterCliKeyAsync(TestDevice device)
    {
        var secret = VaultFormat.NewPrivateKey();
        var publicKey = X25519.PublicKeyFromPrivateKey(secret);
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(publicKey),
            ["signature"] = Base64Url.Encode(Ed25519.Sign(device.Seed, VaultFormat.KeyProofMessage(device.UserId, device.DeviceId, publicKey))),
        });
        using var response = await Server.Http.SendAsync(device.Signed(HttpMethod.Post, "/authenticator/vault/keys", body));
        var (status, json) = await TestServer.ReadAsync(response);
        Assert.True(status is HttpStatusCode.Created or HttpStatusCode.OK, json.ToString());
        return (secret, VaultFormat.KeyId(publicKey), json);
    }

    private static async Task SetUpVaultAsync(Phone phone)
    {
        await phone.Page.ClickAsync(".tabs button[data-tab=vault]");
        await phone.Page.Locator("#vault-setup-go").ClickAsync();
        await phone.Page.Locator("#status", new() { HasText = "This browser has its vault key" }).WaitForAsync();
        await phone.Page.Locator("#vault-form:not([hidden])").WaitForAsync();
    }

    private static async Task AddAsync(Phone phone, string name, string secret, int version)
    {
        await phone.Page.FillAsync("#vault-name", name);
        await phone.Page.FillAsync("#vault-text", secret);
        await phone.Page.ClickAsync("#vault-form button[type=submit]");
        await phone.Page.Locator("#status", new() { HasText = $"Saved {name} (version {version})" }).WaitForAsync();
        await phone.Page.Locator("#vault-items li", new() { HasText = name }).WaitForAsync();
    }

    /// <summary>The sealed version as the CLI device reads it with its own key, opened in C#.</summary>
    private async Task<byte[]> OpenAsCliAsync(TestDevice cli, byte[] secret, string kid, string name, uint version)
    {
        // Every character a name may hold is a path character (RFC 3986 §3.3), so the name goes as it is: the device signs
        // the path the server reads, which decodes escapes such as %40.
        using var response = await Server.Http.SendAsync(cli.Signed(HttpMethod.Get, $"/authenticator/vault/items/{name}/versions/{version}?kid={kid}"));
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        var id = body.GetProperty("id").GetString()!;
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(body.GetProperty("wrapped").GetString()!), id, version, secret);
        return VaultFormat.OpenItem(itemKey, id, version, Base64Url.Decode(body.GetProperty("ciphertext").GetString()!));
    }

    [Fact]
    public async Task An_item_added_in_the_browser_opens_with_another_recipient_key_of_the_owner_and_a_name_used_again_is_a_new_version()
    {
        var (phone, cli, _) = await OwnerAsync("web-vault-put");
        await using var _ = phone;
        var (cliSecret, cliKid, _) = await RegisterCliKeyAsync(cli);
        await SetUpVaultAsync(phone);

        // The browser's key is registered for the passkey the session signed in with, with a passkey proof.
        using (var keys = await Server.Http.SendAsync(cli.Signed(HttpMethod.Get, "/authenticator/vault/keys")))
        {
            var (_, list) = await TestServer.ReadAsync(keys);
            var session = await phone.Page.EvaluateAsync<JsonElement>("async () => (await fetch('/webauthn/session')).json()");
            var web = list.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("kid").GetString() != cliKid);
            Assert.Equal(session.GetProperty("device_id").GetString(), web.GetProperty("device_id").GetString());
            Assert.False(string.IsNullOrEmpty(web.GetProperty("proof").GetProperty("authenticator_data").GetString()));
        }

        await AddAsync(phone, "github/token", "ghp_correct horse battery staple", 1);
        Assert.Equal("ghp_correct horse battery staple"u8.ToArray(), await OpenAsCliAsync(cli, cliSecret, cliKid, "github/token", 1));
        Assert.Contains("version 1", await phone.Page.Locator("#vault-items li", new() { HasText = "github/token" }).InnerTextAsync());

        await AddAsync(phone, "github/token", "ghp_rotated", 2);
        Assert.Equal("ghp_rotated"u8.ToArray(), await OpenAsCliAsync(cli, cliSecret, cliKid, "github/token", 2));
        Assert.Equal("ghp_correct horse battery staple"u8.ToArray(), await OpenAsCliAsync(cli, cliSecret, cliKid, "github/token", 1));

        // A name the format refuses is refused in the page, and nothing is stored.
        await phone.Page.FillAsync("#vault-name", "no spaces allowed");
        await phone.Page.FillAsync("#vault-text", "x");
        // (The input's pattern stops the form first; without it, the page's own check still refuses.)
        await phone.Page.EvaluateAsync("() => document.getElementById('vault-name').removeAttribute('pattern')");
        await phone.Page.ClickAsync("#vault-form button[type=submit]");
        await phone.Page.Locator("#alert", new() { HasText = "A name is 1 to 128" }).WaitForAsync();
        Assert.Equal(1, await phone.Page.Locator("#vault-items li").CountAsync());

        // Removing it, after the in-page confirmation.
        var row = phone.Page.Locator("#vault-items li", new() { HasText = "github/token" });
        await row.Locator("button", new() { HasText = "Remove" }).ClickAsync();
        await row.Locator(".confirm button[data-act=confirm]").ClickAsync();
        await phone.Page.Locator("#status", new() { HasText = "Removed github/token" }).WaitForAsync();
        await phone.Page.Locator("#no-vault-items:not([hidden])").WaitForAsync();
    }

    [Fact]
    public async Task A_file_of_1_MiB_is_added_and_one_byte_more_is_refused_in_the_page()
    {
        var (phone, cli, _) = await OwnerAsync("web-vault-file");
        await using var _ = phone;
        var (cliSecret, cliKid, _) = await RegisterCliKeyAsync(cli);
        await SetUpVaultAsync(phone);
        var file = System.Security.Cryptography.RandomNumberGenerator.GetBytes(1024 * 1024);
        await phone.Page.FillAsync("#vault-name", "certs/server.p12");
        await phone.Page.SetInputFilesAsync("#vault-file", new FilePayload { Name = "server.p12", MimeType = "application/octet-stream", Buffer = file });
        await phone.Page.ClickAsync("#vault-form button[type=submit]");
        await phone.Page.Locator("#status", new() { HasText = "Saved certs/server.p12 (version 1)" }).WaitForAsync(new() { Timeout = 30_000 });
        Assert.Equal(file, await OpenAsCliAsync(cli, cliSecret, cliKid, "certs/server.p12", 1));

        await phone.Page.FillAsync("#vault-name", "certs/too-big");
        await phone.Page.SetInputFilesAsync("#vault-file", new FilePayload { Name = "big.bin", MimeType = "application/octet-stream", Buffer = [.. file, 0] });
        await phone.Page.ClickAsync("#vault-form button[type=submit]");
        await phone.Page.Locator("#alert", new() { HasText = "A secret is at most 1 MiB" }).WaitForAsync();
        Assert.Equal(1, await phone.Page.Locator("#vault-items li").CountAsync());
    }

    [Fact]
    public async Task The_browser_approves_a_release_with_its_webcrypto_key_and_the_agent_decrypts()
    {
        var (phone, _, handle) = await OwnerAsync("web-vault-release");
        await using var _ = phone;
        await SetUpVaultAsync(phone);
        await AddAsync(phone, "db.password", "s3cret-for-the-agent", 1);

        // The agent: a fresh X25519 key pair in memory, and a CIBA request naming it (docs/vault.md §4).
        var agent = await Server.AgentAsync(handle);
        var agentSecret = VaultFormat.NewPrivateKey();
        var agentKey = Base64Url.Encode(X25519.PublicKeyFromPrivateKey(agentSecret));
        var authReqId = await Server.AskAsync(agent, "Deploy needs the database password",
            $$"""[{"type":"vault_release","item":"db.password","recipient_key":"{{agentKey}}"}]""");
        var token = Server.TokenAsync(agent, authReqId, wait: 30);

        await phone.Page.ClickAsync(".tabs button[data-tab=pending]");
        var card = phone.Card("Deploy needs the database password");
        await card.WaitForAsync();
        Assert.Contains("Release the secret db.password (version 1)", await card.InnerTextAsync());
        await card.Locator("button[data-act=approve]").ClickAsync();

        using var response = await token;
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        // The signed details name this item and this agent's key: the server could not have swapped it.
        var claims = JsonDocument.Parse(Base64Url.Decode(body.GetProperty("access_token").GetString()!.Split('.')[1])).RootElement;
        var detail = claims.GetProperty("authorization_details").EnumerateArray().Single();
        Assert.Equal(agentKey, detail.GetProperty("recipient_key").GetString());
        var release = body.GetProperty("vault_release");
        var itemId = release.GetProperty("item_id").GetString()!;
        Assert.Equal(detail.GetProperty("item_id").GetString(), itemId);
        var version = release.GetProperty("version").GetUInt32();
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(release.GetProperty("wrapped").GetString()!), itemId, version, agentSecret);
        Assert.Equal("s3cret-for-the-agent"u8.ToArray(),
            VaultFormat.OpenItem(itemKey, itemId, version, Base64Url.Decode(release.GetProperty("ciphertext").GetString()!)));
    }

    [Fact]
    public async Task A_release_asked_of_a_browser_without_its_vault_key_is_not_approved_and_says_why()
    {
        var (phone, cli, handle) = await OwnerAsync("web-vault-nokey");
        await using var _ = phone;
        var (cliSecret, cliKid, _) = await RegisterCliKeyAsync(cli);
        // The item is stored by the CLI device alone: this browser never set up its key.
        var itemId = VaultFormat.NewItemId();
        var itemKey = VaultFormat.NewPrivateKey();
        var put = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["id"] = itemId, ["version"] = 1, ["ciphertext"] = Base64Url.Encode(VaultFormat.SealItem(itemKey, itemId, 1, "cli only"u8)),
            ["wraps"] = new[] { new Dictionary<string, string> { ["kid"] = cliKid,
                ["wrapped"] = Base64Url.Encode(VaultFormat.WrapKey(itemKey, itemId, 1, X25519.PublicKeyFromPrivateKey(cliSecret))) } },
        });
        using (var stored = await Server.Http.SendAsync(cli.Signed(HttpMethod.Put, "/authenticator/vault/items/cli-item", put)))
        {
            Assert.Equal(HttpStatusCode.Created, stored.StatusCode);
        }
        var agent = await Server.AgentAsync(handle);
        var agentKey = Base64Url.Encode(X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey()));
        await Server.AskAsync(agent, "Needs the cli item", $$"""[{"type":"vault_release","item":"cli-item","recipient_key":"{{agentKey}}"}]""");
        var card = phone.Card("Needs the cli item");
        await card.WaitForAsync();
        await card.Locator("button[data-act=approve]").ClickAsync();
        await card.Locator(".problem", new() { HasText = "This browser has no vault key" }).WaitForAsync();
        // Nothing was sent: the request is still pending, and Approve can be pressed again (or Deny).
        Assert.Single(await cli.PendingAsync());
        Assert.True(await card.Locator("button[data-act=deny]").IsEnabledAsync());
    }

    [Fact]
    public async Task Approving_a_new_key_in_the_browser_rewraps_every_item_for_it()
    {
        var (phone, cli, _) = await OwnerAsync("web-vault-rewrap");
        await using var _ = phone;
        await SetUpVaultAsync(phone);
        await AddAsync(phone, "a", "first", 1);
        await AddAsync(phone, "a", "second", 2);
        await AddAsync(phone, "b@example", "third", 1);

        // A new CLI key arrives while items exist: the server asks the owner's other devices to re-wrap them for it.
        var (cliSecret, cliKid, registered) = await RegisterCliKeyAsync(cli);
        Assert.False(string.IsNullOrEmpty(registered.GetProperty("rewrap_approval_id").GetString()));
        await phone.Page.ClickAsync(".tabs button[data-tab=pending]");
        var card = phone.Page.Locator("#pending li", new() { HasText = "share your vault secrets with the new key of laptop" });
        await card.WaitForAsync();
        await card.Locator("button[data-act=approve]").ClickAsync();
        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });

        Assert.Equal("first"u8.ToArray(), await OpenAsCliAsync(cli, cliSecret, cliKid, "a", 1));
        Assert.Equal("second"u8.ToArray(), await OpenAsCliAsync(cli, cliSecret, cliKid, "a", 2));
        Assert.Equal("third"u8.ToArray(), await OpenAsCliAsync(cli, cliSecret, cliKid, "b@example", 1));
    }

    [Fact]
    public async Task A_second_browser_gets_the_items_when_the_first_approves_and_cannot_approve_its_own_key()
    {
        var (first, _, handle) = await OwnerAsync("web-vault-second");
        await using var _ = first;
        await SetUpVaultAsync(first);
        await AddAsync(first, "shared/secret", "both browsers open this", 1);

        // A second passkey in another browser of the same owner sets up its vault key: the server asks for a re-wrap.
        await using var second = await host.PhoneAsync();
        await second.EnrollAsync((await Server.InviteAsync(handle)).Code, "second browser");
        await SetUpVaultAsync(second);
        await second.Page.Locator("#status", new() { HasText = "Approve the request on one of your other devices" }).WaitForAsync();

        // Its own browser cannot approve it: it holds nothing to share.
        await second.Page.ClickAsync(".tabs button[data-tab=pending]");
        var own = second.Page.Locator("#pending li", new() { HasText = "new key of second browser" });
        await own.WaitForAsync();
        await own.Locator("button[data-act=approve]").ClickAsync();
        await own.Locator(".problem", new() { HasText = "This browser cannot open your secrets yet" }).WaitForAsync();

        // The first browser approves: it re-wraps for the second browser's key.
        await first.Page.ClickAsync(".tabs button[data-tab=pending]");
        var card = first.Page.Locator("#pending li", new() { HasText = "new key of second browser" });
        await card.WaitForAsync();
        await card.Locator("button[data-act=approve]").ClickAsync();
        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });

        // Now the second browser can release the item to an agent, with its own key.
        var agent = await Server.AgentAsync(handle);
        var agentSecret = VaultFormat.NewPrivateKey();
        var agentKey = Base64Url.Encode(X25519.PublicKeyFromPrivateKey(agentSecret));
        var authReqId = await Server.AskAsync(agent, "Second browser releases",
            $$"""[{"type":"vault_release","item":"shared/secret","recipient_key":"{{agentKey}}"}]""");
        var token = Server.TokenAsync(agent, authReqId, wait: 30);
        var release = second.Card("Second browser releases");
        await release.WaitForAsync();
        await release.Locator("button[data-act=approve]").ClickAsync();
        using var response = await token;
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        var r = body.GetProperty("vault_release");
        var itemId = r.GetProperty("item_id").GetString()!;
        var itemKey = VaultFormat.UnwrapKey(Base64Url.Decode(r.GetProperty("wrapped").GetString()!), itemId, 1, agentSecret);
        Assert.Equal("both browsers open this"u8.ToArray(), VaultFormat.OpenItem(itemKey, itemId, 1, Base64Url.Decode(r.GetProperty("ciphertext").GetString()!)));
    }

    private SqliteConnection Database() => new($"Data Source={Path.Combine(Server.DataDirectory, StoreFactory.SqliteFileName)}");

    private async Task<object?> QueryAsync(string sql)
    {
        await using var db = Database();
        await db.OpenAsync();
        await using var command = db.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync();
    }

    /// <summary>Runs one statement on the server's SQLite database behind its back, as an attacker with the database would.</summary>
    private async Task<int> TamperAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var db = Database();
        await db.OpenAsync();
        await using var command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task A_server_that_changes_a_sealed_item_or_lists_a_key_without_a_proof_is_refused_by_the_browser()
    {
        var (phone, cli, handle) = await OwnerAsync("web-vault-tamper");
        await using var _ = phone;
        await SetUpVaultAsync(phone);
        await AddAsync(phone, "prod/key", "do not leak", 1);

        // One flipped byte of the sealed item: the browser refuses to release it, and sends nothing.
        var sealedItem = (byte[])(await QueryAsync("SELECT ciphertext FROM vault_versions WHERE item_id = (SELECT id FROM vault_items WHERE name = 'prod/key')"))!;
        sealedItem[15] ^= 0x01;
        Assert.Equal(1, await TamperAsync("UPDATE vault_versions SET ciphertext = $c WHERE item_id = (SELECT id FROM vault_items WHERE name = 'prod/key')",
            ("$c", sealedItem)));
        var agent = await Server.AgentAsync(handle);
        var agentKey = Base64Url.Encode(X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey()));
        await Server.AskAsync(agent, "Needs the prod key", $$"""[{"type":"vault_release","item":"prod/key","recipient_key":"{{agentKey}}"}]""");
        await phone.Page.ClickAsync(".tabs button[data-tab=pending]");
        var card = phone.Card("Needs the prod key");
        await card.WaitForAsync();
        await card.Locator("button[data-act=approve]").ClickAsync();
        var problem = card.Locator(".problem");
        await phone.Page.Locator("#pending li .problem:not(:empty)").WaitForAsync();
        Assert.Contains("the sealed item does not open", await problem.TextContentAsync());
        Assert.Single(await cli.PendingAsync());

        // A recipient key the server slips in (under the CLI device, with a signature that is not the device's): the browser
        // encrypts nothing to it, so no new version is stored.
        var planted = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        Assert.Equal(1, await TamperAsync("""
            INSERT INTO vault_keys(user_id, kid, device_id, kind, public_key, signer_device_id, signature, created_at)
            VALUES ($user, $kid, $device, 'device', $key, $device, $sig, 0)
            """, ("$user", cli.UserId), ("$kid", VaultFormat.KeyId(planted)), ("$device", cli.DeviceId), ("$key", planted),
            ("$sig", System.Security.Cryptography.RandomNumberGenerator.GetBytes(64))));
        await phone.Page.ClickAsync(".tabs button[data-tab=vault]");
        await phone.Page.FillAsync("#vault-name", "prod/key");
        await phone.Page.FillAsync("#vault-text", "rotated");
        await phone.Page.ClickAsync("#vault-form button[type=submit]");
        await phone.Page.Locator("#alert", new() { HasText = "has no valid proof from your devices" }).WaitForAsync();
        Assert.Contains("version 1", await phone.Page.Locator("#vault-items li", new() { HasText = "prod/key" }).InnerTextAsync());
        using var detail = await Server.Http.SendAsync(cli.Signed(HttpMethod.Get, "/authenticator/vault/items/prod/key"));
        Assert.Equal(1, (await TestServer.ReadAsync(detail)).Body.GetProperty("version").GetInt32());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_vault_view_and_a_release_card_have_no_axe_violations(bool dark)
    {
        var theme = dark ? "dark" : "light";
        var (phone, _, handle) = await OwnerAsync("web-vault-axe-" + theme, bypassCsp: true, dark: dark);
        await using var _ = phone;
        var page = phone.Page;
        await page.ClickAsync(".tabs button[data-tab=vault]");
        await page.Locator("#vault-setup:not([hidden])").WaitForAsync();
        var findings = new List<string>(await AxeAsync(page, theme + " vault, not set up"));
        await SetUpVaultAsync(phone);
        await AddAsync(phone, "api/key", "k", 1);
        findings.AddRange(await AxeAsync(page, theme + " vault"));
        await PictureAsync(page, "vault-" + theme);
        await page.Locator("#vault-items li button", new() { HasText = "Remove" }).ClickAsync();
        await page.Locator("#vault-items .confirm").WaitForAsync();
        findings.AddRange(await AxeAsync(page, theme + " vault, removing"));
        await page.ClickAsync("#vault-items .confirm button[data-act=cancel]");

        var agent = await Server.AgentAsync(handle);
        var agentKey = Base64Url.Encode(X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey()));
        await Server.AskAsync(agent, "Needs the API key", $$"""[{"type":"vault_release","item":"api/key","recipient_key":"{{agentKey}}"}]""");
        await page.ClickAsync(".tabs button[data-tab=pending]");
        await phone.Card("Needs the API key").WaitForAsync();
        // Five tabs, one with its count, fit a 360 px phone: none hides behind a sideways scroll.
        var widths = await page.EvalOnSelectorAsync<int[]>(".tabs", "(e) => [e.scrollWidth, e.clientWidth]");
        Assert.True(widths[0] <= widths[1], $"the tabs need {widths[0]} px of the {widths[1]} px at 360 px");
        findings.AddRange(await AxeAsync(page, theme + " release card"));
        await PictureAsync(page, "vault-release-" + theme);
        Assert.True(findings.Count == 0, string.Join("\n", findings));
    }

    /// <summary>With <c>ASSENT_SCREENSHOTS=DIR</c> (as ScreenshotTests), the view is kept there as <c>app-NAME.png</c> to look at.</summary>
    private static async Task PictureAsync(IPage page, string name)
    {
        if (Environment.GetEnvironmentVariable("ASSENT_SCREENSHOTS") is { Length: > 0 } dir)
        {
            await page.ScreenshotAsync(new() { Path = Path.Combine(dir, $"app-{name}.png"), FullPage = true, Animations = ScreenshotAnimations.Disabled });
        }
    }

    /// <summary>axe-core (tests/interop) on the page as it is: its serious and critical violations, one line per element.</summary>
    private async Task<IReadOnlyList<string>> AxeAsync(IPage page, string view)
    {
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        if (!await page.EvaluateAsync<bool>("() => typeof window.axe === 'object'"))
        {
            await page.AddScriptTagAsync(new() { Path = AccessibilityTests.AxeScript.Value });
        }
        var violations = await page.EvaluateAsync<JsonElement>("""
            async () => (await axe.run(document, { resultTypes: ['violations'] })).violations.map((v) => ({
              id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ') + ' — ' + n.failureSummary.replace(/\s+/g, ' ')) }))
            """);
        var found = new List<string>();
        foreach (var v in violations.EnumerateArray())
        {
            var line = $"{view}: {v.GetProperty("impact").GetString()} {v.GetProperty("id").GetString()}: " +
                string.Join("; ", v.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()));
            output.WriteLine(line);
            found.Add(line);
        }
        return found;
    }
}
