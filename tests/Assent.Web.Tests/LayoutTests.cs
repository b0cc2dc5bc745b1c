using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>The smaller things a phone shows (docs/http-api.md §12.1): tabs, headings, targets, confirmations, history colours.</summary>
[Collection(BrowserCollection.Name)]
public sealed class LayoutTests(BrowserHost host)
{
    [Fact]
    public async Task At_390_px_the_pending_tab_with_its_count_stays_on_one_line_and_no_visible_heading_repeats_the_tab()
    {
        var invite = await host.Server.InviteAsync("web-tabs");
        await using var phone = await host.PhoneAsync(width: 390, height: 844);
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-tabs");
        await host.Server.AskAsync(agent, "First of two");
        await host.Server.AskAsync(agent, "Second of two");
        await phone.Card("Second of two").WaitForAsync();
        await phone.Card("First of two").WaitForAsync();
        var page = phone.Page;

        var pending = page.Locator(".tabs button[data-tab=pending]");
        Assert.Equal("2", await pending.Locator(".badge").TextContentAsync());
        Assert.Equal(1, await page.GetByRole(AriaRole.Button, new() { Name = "Pending 2 waiting", Exact = true }).CountAsync());
        var tab = (await pending.BoundingBoxAsync())!;
        var history = (await page.Locator(".tabs button[data-tab=history]").BoundingBoxAsync())!;
        Assert.True(tab.Height <= 48 && Math.Abs(tab.Height - history.Height) < 1, $"the Pending tab is {tab.Height} px high, History {history.Height} px");
        // All five fit the width: none hides behind a sideways scroll.
        var widths = await page.EvalOnSelectorAsync<int[]>(".tabs", "(e) => [e.scrollWidth, e.clientWidth]");
        Assert.True(widths[0] <= widths[1], $"the tabs need {widths[0]} px of the {widths[1]} px at 390 px");

        foreach (var (name, label) in new[] { ("pending", "Pending"), ("history", "History"), ("devices", "Devices"), ("consents", "Access"), ("vault", "Vault") })
        {
            await page.ClickAsync($".tabs button[data-tab={name}]");
            var headings = await page.EvaluateAsync<string[]>("""
                () => [...document.querySelectorAll('h1, h2')].filter((h) => h.checkVisibility() && h.getBoundingClientRect().width > 1).map((h) => h.textContent.trim())
                """);
            Assert.DoesNotContain(label, headings);
        }
    }

    [Fact]
    public async Task The_brand_link_and_I_have_an_invite_code_are_at_least_44_px_targets()
    {
        await using var phone = await host.PhoneAsync();
        await phone.Page.GotoAsync("/app");
        await phone.Page.Locator("#v-signin").WaitForAsync();
        foreach (var selector in new[] { "header .brand", "#v-signin a[href='/app/enroll']" })
        {
            var box = (await phone.Page.Locator(selector).BoundingBoxAsync())!;
            Assert.True(box.Height >= 44 && box.Width >= 44, $"{selector} is {box.Width} × {box.Height} px");
        }
    }

    [Fact]
    public async Task Revoking_the_device_you_are_signed_in_with_asks_in_the_page_and_Cancel_changes_nothing()
    {
        var invite = await host.Server.InviteAsync("web-revoke-self");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var page = phone.Page;
        var dialogs = new List<string>();
        page.Dialog += (_, dialog) => { dialogs.Add(dialog.Message); _ = dialog.DismissAsync(); };
        await page.ClickAsync(".tabs button[data-tab=devices]");
        var row = page.Locator("#devices li", new() { HasText = "this session" });
        await row.WaitForAsync();

        await row.Locator("button", new() { HasText = "Revoke" }).ClickAsync();
        var confirm = row.Locator(".confirm");
        await confirm.WaitForAsync();
        Assert.Contains("signed out", await confirm.InnerTextAsync());
        Assert.Equal("Cancel", await page.EvaluateAsync<string>("() => document.activeElement.textContent"));
        await confirm.Locator("button[data-act=cancel]").ClickAsync();
        await confirm.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        Assert.True(Assert.Single(await host.Server.Store.Devices.ListAsync(invite.UserId, default)).Active);

        await row.Locator("button", new() { HasText = "Revoke" }).ClickAsync();
        await confirm.Locator("button[data-act=confirm]").ClickAsync();
        await page.Locator("#v-signin").WaitForAsync();
        Assert.False(Assert.Single(await host.Server.Store.Devices.ListAsync(invite.UserId, default)).Active);
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task History_shows_redeemed_in_the_same_green_as_approved()
    {
        var invite = await host.Server.InviteAsync("web-redeemed");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-redeemed");
        var redeemed = await host.Server.AskAsync(agent, "Used by the agent");
        await host.Server.AskAsync(agent, "Not used yet");
        foreach (var message in new[] { "Used by the agent", "Not used yet" })
        {
            var card = phone.Card(message);
            await card.Locator("button[data-act=approve]").ClickAsync();
            await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        }
        using (var token = await host.Server.TokenAsync(agent, redeemed))
        {
            Assert.True(token.IsSuccessStatusCode, await token.Content.ReadAsStringAsync());
        }

        await phone.Page.ClickAsync(".tabs button[data-tab=history]");
        var used = phone.Page.Locator("#history li", new() { HasText = "Used by the agent" }).GetByText("redeemed", new() { Exact = true });
        var approved = phone.Page.Locator("#history li", new() { HasText = "Not used yet" }).GetByText("approved", new() { Exact = true });
        await used.WaitForAsync();
        var colour = await used.EvaluateAsync<string>("(e) => getComputedStyle(e).color");
        Assert.Equal(await approved.EvaluateAsync<string>("(e) => getComputedStyle(e).color"), colour);
        Assert.NotEqual(await phone.Page.EvaluateAsync<string>("() => getComputedStyle(document.body).color"), colour);
    }
}
