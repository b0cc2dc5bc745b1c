using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>Spending mandates (docs/policies.md §7) as the web app shows them under Access: the limits signed, what is left, and revoking.</summary>
[Collection(BrowserCollection.Name)]
public sealed class MandateViewTests(BrowserHost host)
{
    [Fact]
    public async Task A_signed_spending_limit_is_listed_under_Access_and_revoked_in_its_row()
    {
        var invite = await host.Server.InviteAsync("web-mandate");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync(invite.Handle);
        var expires = DateTimeOffset.UtcNow.AddDays(30).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        await host.Server.AskAsync(agent, "Search budget",
            $$"""[{"type":"mandate","currency":"USD","per_payment":"0.50","total":"1250","period":"day","expires_at":"{{expires}}"}]""", "openid payments:write");
        var card = phone.Card("Search budget");
        await card.WaitForAsync();
        await card.Locator("button[data-act=approve]").ClickAsync();
        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });

        await phone.Page.ClickAsync(".tabs button[data-tab=consents]");
        var row = phone.Page.Locator("#mandates li");
        await row.WaitForAsync();
        var text = await row.TextContentAsync();
        // Amounts as money in the reader's locale (en-US here), the period in words.
        Assert.Contains("up to $0.50 a payment, $1,250.00 a day", text);
        Assert.Contains("$1,250.00 left", text);
        Assert.True(await phone.Page.Locator("#no-mandates").IsHiddenAsync());

        await row.Locator("button", new() { HasText = "Revoke" }).ClickAsync();
        await row.Locator(".confirm button[data-act=confirm]").ClickAsync();
        await phone.Page.Locator("#status", new() { HasText = "will ask you again" }).WaitForAsync();
        await phone.Page.Locator("#mandates li", new() { HasText = "revoked" }).WaitForAsync();
        Assert.Equal(0, await phone.Page.Locator("#mandates li button", new() { HasText = "Revoke" }).CountAsync());

        // Revoked: a payment inside the old limits waits for a human again.
        await host.Server.AskAsync(agent, "Search 1",
            """[{"type":"payment","amount":"0.20","currency":"USD","payee":"api.search.example"}]""", "openid payments:write");
        await phone.Page.ClickAsync(".tabs button[data-tab=pending]");
        await phone.Card("Search 1").WaitForAsync();
    }

    [Fact]
    public async Task A_mandates_payments_are_listed_in_its_row_with_when_how_much_to_whom_and_what_was_left()
    {
        var invite = await host.Server.InviteAsync("web-mandate-payments");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync(invite.Handle);
        var expires = DateTimeOffset.UtcNow.AddDays(30).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        await host.Server.AskAsync(agent, "Search budget",
            $$"""[{"type":"mandate","currency":"USD","per_payment":"0.50","total":"1.00","period":"none","expires_at":"{{expires}}"}]""", "openid payments:write");
        var card = phone.Card("Search budget");
        await card.WaitForAsync();
        await card.Locator("button[data-act=approve]").ClickAsync();
        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        // Two payments the mandate covers, with no card for either.
        foreach (var amount in new[] { "0.20", "0.30" })
        {
            await host.Server.AskAsync(agent, "Search " + amount,
                $$"""[{"type":"payment","amount":"{{amount}}","currency":"USD","payee":"api.search.example"}]""", "openid payments:write");
        }

        await phone.Page.ClickAsync(".tabs button[data-tab=consents]");
        var row = phone.Page.Locator("#mandates li", new() { HasText = "2 payments" });
        await row.WaitForAsync();
        await row.Locator("button[data-act=payments]").ClickAsync();
        var payments = row.Locator(".mandate-payments li");
        await payments.First.WaitForAsync();

        // Newest first: what each paid, to whom, and what the mandate had left after it.
        Assert.Equal(2, await payments.CountAsync());
        var newest = await payments.Nth(0).TextContentAsync();
        Assert.Contains("$0.30", newest);
        Assert.Contains("to api.search.example", newest);
        Assert.Contains("$0.50 left", newest);
        var oldest = await payments.Nth(1).TextContentAsync();
        Assert.Contains("$0.20", oldest);
        Assert.Contains("$0.80 left", oldest);
        Assert.Equal("true", await row.Locator("button[data-act=payments]").GetAttributeAsync("aria-expanded"));

        // The same button folds them away again.
        await row.Locator("button[data-act=payments]").ClickAsync();
        await payments.First.WaitForAsync(new() { State = WaitForSelectorState.Detached });
    }
}
