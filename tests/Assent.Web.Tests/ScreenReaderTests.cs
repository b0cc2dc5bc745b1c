using System.Net;
using Assent.Server.Tests;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>
/// Where a new request shows and how a screen reader hears of it (docs/http-api.md §12.1): newest first, announced,
/// a heading per card, buttons named with their action, focus kept on the list after a decision.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ScreenReaderTests(BrowserHost host)
{
    [Fact]
    public async Task A_new_request_goes_to_the_top_is_announced_has_a_heading_and_buttons_named_with_its_action()
    {
        var invite = await host.Server.InviteAsync("web-sr-new");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-sr-new", name: "Billing bot");
        var page = phone.Page;
        await host.Server.AskAsync(agent, "Restart the billing service");
        await phone.Card("Restart the billing service").WaitForAsync();

        await host.Server.AskAsync(agent, "Pay invoice 7", """[{"type":"payment","amount":"1250.00","currency":"USD","recipient":"ACME Corp"}]""", "openid payments:write");
        await phone.Card("Pay invoice 7").WaitForAsync();

        // Newest first.
        Assert.Equal(["Pay invoice 7", "Restart the billing service"], await page.Locator("#pending li .message").AllTextContentsAsync());
        // Said in the live region, with who asks and what.
        var arrivals = page.Locator("#arrivals");
        Assert.Equal("status", await arrivals.GetAttributeAsync("role"));
        Assert.Equal("New request from Billing bot: pay $1,250.00 to ACME Corp.", await arrivals.TextContentAsync());
        // Buttons named with what they do; the visible word starts the name.
        Assert.Equal(1, await page.GetByRole(AriaRole.Button, new() { Name = "Approve: pay $1,250.00 to ACME Corp", Exact = true }).CountAsync());
        Assert.Equal(1, await page.GetByRole(AriaRole.Button, new() { Name = "Deny: pay $1,250.00 to ACME Corp", Exact = true }).CountAsync());
        Assert.Equal(1, await page.GetByRole(AriaRole.Button, new() { Name = "Approve: Restart the billing service", Exact = true }).CountAsync());
        Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = "Approve", Exact = true }).CountAsync());
        // One heading per card, naming who asks.
        var headings = page.Locator("#pending li").GetByRole(AriaRole.Heading, new() { Level = 2 });
        Assert.Equal(2, await headings.CountAsync());
        Assert.All(await headings.AllTextContentsAsync(), h => Assert.StartsWith("Billing bot", h));
    }

    [Fact]
    public async Task After_a_decision_focus_moves_to_the_next_card_and_after_the_last_to_the_empty_list()
    {
        var invite = await host.Server.InviteAsync("web-sr-focus");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-sr-focus");
        var page = phone.Page;
        await host.Server.AskAsync(agent, "Older request");
        await phone.Card("Older request").WaitForAsync();
        await host.Server.AskAsync(agent, "Newer request");
        var newer = phone.Card("Newer request");
        await newer.WaitForAsync();

        // By keyboard, as a screen reader user does.
        await newer.Locator("button[data-act=deny]").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await newer.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        await page.WaitForFunctionAsync("() => document.activeElement !== document.body");
        Assert.Equal("H2", await page.EvaluateAsync<string>("() => document.activeElement.tagName"));
        Assert.Contains("Older request", await page.EvaluateAsync<string>("() => document.activeElement.closest('li').textContent"));

        await phone.Card("Older request").Locator("button[data-act=deny]").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await phone.Card("Older request").WaitForAsync(new() { State = WaitForSelectorState.Detached });
        await page.WaitForFunctionAsync("() => document.activeElement && document.activeElement.id === 'empty'");
        Assert.Contains("Nothing is waiting", await page.Locator("#empty").InnerTextAsync());
    }

    [Fact]
    public async Task A_cli_sign_in_request_shows_at_the_top_of_a_long_list_within_the_first_screen()
    {
        var invite = await host.Server.InviteAsync("web-sr-cli");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-sr-cli");
        for (var i = 1; i <= 3; i++)
        {
            // A second between requests, as on a real clock (the test server's stands still): newest first is then well defined.
            host.Server.Clock.Advance(TimeSpan.FromSeconds(1));
            await host.Server.AskAsync(agent, $"Earlier request {i}: " + string.Join(" ", Enumerable.Repeat("words", 30)));
            await phone.Card($"Earlier request {i}").WaitForAsync();
        }
        host.Server.Clock.Advance(TimeSpan.FromSeconds(1));
        using var codeResponse = await host.Server.Http.PostAsync("/oauth/device/code",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["client_id"] = "assent-cli" }));
        var (status, code) = await TestServer.ReadAsync(codeResponse);
        Assert.Equal(HttpStatusCode.OK, status);

        await phone.Page.GotoAsync(code.GetProperty("verification_uri_complete").GetString()!);
        await phone.Page.Locator("#v-device").WaitForAsync();
        await phone.Page.PressAsync("#user-code", "Enter");
        var card = phone.Card(code.GetProperty("user_code").GetString()!);
        await card.WaitForAsync();

        // "Approve the sign-in request below": below, and on the first screen, buttons included.
        var approve = (await card.Locator("button[data-act=approve]").BoundingBoxAsync())!;
        var top = (await card.BoundingBoxAsync())!;
        Assert.True(approve.Y + approve.Height <= 740,
            $"the sign-in card's Approve button is at {approve.Y} px (the card at {top.Y}, {top.Height} px high), below the 740 px screen; first card: " +
            await phone.Page.Locator("#pending li").First.InnerTextAsync());
        Assert.Contains("Sign-in request", await phone.Page.Locator("#pending li").First.InnerTextAsync());
        // Focus on its heading, so a screen reader starts there.
        Assert.Contains("Sign-in request", await phone.Page.EvaluateAsync<string>("() => document.activeElement.closest('li h2').textContent"));
    }
}
