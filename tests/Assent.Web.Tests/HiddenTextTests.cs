using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Protocol.Did;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Tests;

namespace Assent.Web.Tests;

[Collection(BrowserCollection.Name)]
public sealed class HiddenTextTests(BrowserHost host)
{
    private TestServer Server => host.Server;

    [Fact]
    public async Task A_stored_request_with_characters_that_hide_or_reorder_text_shows_each_as_a_marked_code_point()
    {
        var invite = await Server.InviteAsync("web-hidden");
        // An agent and a request stored before the server refused such text (or by another server): written straight into its database.
        var now = Server.Clock.GetUtcNow();
        var clientId = Ids.New("agt");
        await Server.Store.Clients.TryCreateAsync(new ClientRecord(clientId, Ids.Hash("unused"), "deploy\u2066bot", invite.UserId, "openid approve:action",
            now.ToUnixTimeMilliseconds(), null), new AuditEvent(AuditTypes.AgentCreated, invite.UserId, "test", clientId), default);
        const string message = "Pay ACME \u202E00.521 EUR\U000E0041";
        const string details = """[{"type":"payment","amount":"\u202e00.521","currency":"EUR","\u202eyek":"x","memo":"a\u200bb","lines":["\u0000"]}]""";
        var id = Ids.Ordered("apr", now);
        var payload = ApprovalPayload.Build(Server.Options.IssuerString, id, DidWeb.ForUser(Server.Options.IssuerUri, invite.UserId), clientId, "deploy\u2066bot",
            "openid approve:action", message, Encoding.UTF8.GetBytes(details), now.ToUnixTimeSeconds(), now.AddMinutes(5).ToUnixTimeSeconds(), "n");
        await Server.Store.Approvals.CreateAsync(new ApprovalRecord(id, Ids.Hash(id), ApprovalKinds.Ciba, clientId, invite.UserId, "openid approve:action",
                message, details, null, payload, ApprovalState.Pending, now.ToUnixTimeMilliseconds(), now.AddMinutes(5).ToUnixTimeMilliseconds()),
            new AuditEvent(AuditTypes.ApprovalCreated, invite.UserId, clientId, id), default);

        await using var phone = await host.PhoneAsync();
        // The passkey's name follows the server's rule too: refused, and the invite is not spent.
        await phone.Page.GotoAsync("/app/enroll?code=" + Uri.EscapeDataString(invite.Code));
        await phone.Page.FillAsync("#dev-name", "phone\u202Eenohp");
        await phone.Page.ClickAsync("#enroll-form button[type=submit]");
        await phone.Page.Locator("#alert", new() { HasText = "name contains U+202E (bidi override)" }).WaitForAsync();
        await phone.EnrollAsync(invite.Code);
        var card = phone.Card("ACME");
        await card.WaitForAsync();

        Assert.Equal("Pay ACME ⟨U+202E⟩00.521 EUR⟨U+E0041⟩", await card.Locator(".message").TextContentAsync());
        Assert.Equal(["⟨U+202E⟩", "⟨U+E0041⟩"], await card.Locator(".message .hidden-char").AllTextContentsAsync());
        Assert.Equal("deploy⟨U+2066⟩bot", await card.Locator(".agent .agent-name").TextContentAsync());
        Assert.Equal($"deploy⟨U+2066⟩bot ({clientId}) by web-hidden", await card.Locator(".agent").TextContentAsync());
        Assert.Equal("⟨U+202E⟩00.521 EUR", await card.Locator(".amount").TextContentAsync());
        // Member names and values of every detail, nested ones included.
        Assert.Equal(["⟨U+202E⟩yek"], await card.Locator("dt", new() { HasText = "yek" }).AllTextContentsAsync());
        Assert.Equal(["a⟨U+200B⟩b"], await card.Locator("dd", new() { HasText = "a⟨U+200B⟩b" }).AllTextContentsAsync());
        Assert.Equal(["[\"\\u0000\"]"], await card.Locator("dd", new() { HasText = "\\u0000" }).AllTextContentsAsync());
        var all = await card.TextContentAsync();
        foreach (var hidden in new[] { "\u202E", "\u2066", "\u200B", "\u0000", "\U000E0041" })
        {
            Assert.DoesNotContain(hidden, all, StringComparison.Ordinal);
        }
        // Renaming the passkey (what the Devices tab sends) follows the rule as well.
        var deviceId = Assert.Single(await Server.Store.Devices.ListAsync(invite.UserId, default)).Id;
        var renamed = await phone.Page.EvaluateAsync<JsonElement>("""
            async (id) => {
              const r = await fetch('/webauthn/devices/' + encodeURIComponent(id), { method: 'PATCH', credentials: 'same-origin',
                headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'phone\u2028two' }) });
              return { status: r.status, detail: (await r.json()).detail };
            }
            """, deviceId);
        Assert.Equal(400, renamed.GetProperty("status").GetInt32());
        Assert.Equal("name contains U+2028 (line separator)", renamed.GetProperty("detail").GetString());
        // Marked apart from the text around it, and kept whole inside right-to-left text (CSS unicode-bidi: isolate).
        Assert.True(await card.Locator(".message .hidden-char").First.EvaluateAsync<bool>(
            "e => getComputedStyle(e).color !== getComputedStyle(e.parentElement).color && getComputedStyle(e).unicodeBidi === 'isolate'"));
    }
}
