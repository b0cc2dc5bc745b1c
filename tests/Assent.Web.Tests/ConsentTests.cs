using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Server.Tests;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>The web app shows whose agent asks, and lists and revokes the agents of others the user allows (docs/concepts.md §3.1).</summary>
[Collection(BrowserCollection.Name)]
public sealed class ConsentTests(BrowserHost host)
{
    private TestServer Server => host.Server;

    /// <summary>The user signs the CLI in (RFC 8628, pushed to their device) and approves it there: their session token.</summary>
    private async Task<string> SessionOfAsync(TestDevice device)
    {
        using var started = await Server.Http.PostAsync("/oauth/device/code", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = "assent-cli", ["login_hint"] = device.Handle,
        }));
        var deviceCode = (await TestServer.ReadAsync(started)).Body.GetProperty("device_code").GetString()!;
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var token = await Server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:device_code", ["device_code"] = deviceCode, ["client_id"] = "assent-cli",
        }));
        return (await TestServer.ReadAsync(token)).Body.GetProperty("access_token").GetString()!;
    }

    private Task<HttpResponseMessage> AskAsync(TestAgent agent, string loginHint, string message) =>
        Server.BcAuthorizeAsync(agent, new() { ["scope"] = "openid approve:action", ["login_hint"] = loginHint, ["binding_message"] = message });

    [Fact]
    public async Task Another_users_agent_is_shown_with_its_owner_and_flagged_and_the_user_stops_allowing_it_from_the_agents_tab()
    {
        var invite = await Server.InviteAsync("web-consent");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var own = await Server.AgentAsync(invite.Handle, name: "own-bot");
        var bob = await Server.UserWithDeviceAsync("web-consent-bob");
        var agent = await Server.AgentAsync(bob.Handle, name: "own-bot");
        var access = await SessionOfAsync(bob);

        // Bob asks; she consents on the card with her passkey.
        using var ask = new HttpRequestMessage(HttpMethod.Post, $"/agents/{agent.ClientId}/consents")
        {
            Content = new StringContent(JsonSerializer.Serialize(new { user = invite.Handle }), Encoding.UTF8, "application/json"),
        };
        ask.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
        ask.Headers.TryAddWithoutValidation("Prefer", "wait=30");
        var held = Server.Http.SendAsync(ask);
        var consentCard = phone.Card("to ask you for approvals");
        await consentCard.WaitForAsync();
        Assert.StartsWith("Consent request from", await consentCard.Locator(".agent").TextContentAsync());
        Assert.Contains($"Allow web-consent-bob's agent 'own-bot' ({agent.ClientId})", await consentCard.Locator(".message").TextContentAsync());
        await consentCard.Locator("button[data-act=approve]").ClickAsync();
        using (var granted = await held)
        {
            Assert.Equal(HttpStatusCode.Created, granted.StatusCode);
        }

        // The same name as her own agent, told apart by client id and owner, and flagged.
        using (var asked = await AskAsync(agent, invite.Handle, "Wire 900 EUR to Mallory"))
        {
            Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
        }
        using (var asked = await AskAsync(own, invite.Handle, "Wire 10 EUR to Trent"))
        {
            Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
        }
        var foreign = phone.Card("Mallory");
        var mine = phone.Card("Trent");
        await foreign.WaitForAsync();
        await mine.WaitForAsync();
        Assert.Equal($"own-bot ({agent.ClientId}) by web-consent-bob", await foreign.Locator(".agent").TextContentAsync());
        Assert.Equal("Another user's agent: it belongs to web-consent-bob, not to you.", await foreign.Locator(".foreign").TextContentAsync());
        Assert.True(await foreign.Locator(".foreign").IsVisibleAsync());
        Assert.Equal($"own-bot ({own.ClientId}) by web-consent", await mine.Locator(".agent").TextContentAsync());
        Assert.Equal(0, await mine.Locator(".foreign").CountAsync());

        // Agents tab: she stops allowing it, and its next request is refused.
        await phone.Page.ClickAsync(".tabs button[data-tab=consents]");
        var row = phone.Page.Locator($"#consents li[data-id='{agent.ClientId}']");
        await row.WaitForAsync();
        Assert.Contains("web-consent-bob", await row.TextContentAsync());
        await row.Locator("button", new() { HasText = "Revoke" }).ClickAsync();
        // Asked in the page, in the row itself.
        await row.Locator(".confirm button[data-act=confirm]").ClickAsync();
        await phone.Page.Locator("#status", new() { HasText = "can no longer ask you" }).WaitForAsync();
        await row.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        Assert.True(await phone.Page.Locator("#no-consents").IsVisibleAsync());
        using var refused = await AskAsync(agent, invite.Handle, "Wire 900 EUR to Mallory again");
        Assert.Equal("unauthorized_client", await TestServer.ErrorOf(refused));
    }
}
