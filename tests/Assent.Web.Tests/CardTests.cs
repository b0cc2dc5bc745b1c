using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>How a pending request reads on a phone (docs/http-api.md §12.1): amount and payee first, numbers whole.</summary>
[Collection(BrowserCollection.Name)]
public sealed class CardTests(BrowserHost host)
{
    [Fact]
    public async Task At_320_px_the_amount_is_grouped_on_one_line_above_the_payee_and_a_long_message_is_clamped_with_More()
    {
        var invite = await host.Server.InviteAsync("web-amount");
        await using var phone = await host.PhoneAsync(width: 320);
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-amount");
        var message = "Quarterly settlement " + string.Join(" ", Enumerable.Range(1, 30).Select(i => "line" + i));
        await host.Server.AskAsync(agent, message,
            """[{"type":"payment","amount":"1250000000.00","currency":"USD","recipient":"ACME Corp"}]""", "openid payments:write");
        var card = phone.Card("Quarterly settlement");
        await card.WaitForAsync();

        var amount = card.Locator(".amount");
        Assert.Equal("$1,250,000,000.00", await amount.TextContentAsync());
        // One line, wholly visible: never wrapped mid-number, never cut.
        var fits = await amount.EvaluateAsync<bool>("(e) => e.scrollWidth <= e.clientWidth && e.getClientRects().length === 1");
        Assert.True(fits, "the amount does not fit its card");
        var box = (await amount.BoundingBoxAsync())!;
        var lineHeight = await amount.EvaluateAsync<double>("(e) => parseFloat(getComputedStyle(e).lineHeight)");
        Assert.True(box.Height < lineHeight * 1.5, $"the amount takes {box.Height} px, more than one line of {lineHeight} px");
        var cardBox = (await card.BoundingBoxAsync())!;
        Assert.True(box.X + box.Width <= cardBox.X + cardBox.Width, "the amount runs out of its card");

        // Amount, then payee, then the agent's message in regular weight.
        var payee = card.Locator(".payee");
        Assert.Equal("to ACME Corp", await payee.TextContentAsync());
        var text = card.Locator(".message");
        Assert.True(box.Y < (await payee.BoundingBoxAsync())!.Y);
        Assert.True((await payee.BoundingBoxAsync())!.Y < (await text.BoundingBoxAsync())!.Y);
        Assert.Equal("400", await text.EvaluateAsync<string>("(e) => getComputedStyle(e).fontWeight"));

        // Clamped, with "More" to read the rest.
        var clamped = (await text.BoundingBoxAsync())!.Height;
        var more = card.Locator("button.more");
        Assert.True(await more.IsVisibleAsync());
        Assert.Equal("false", await more.GetAttributeAsync("aria-expanded"));
        await more.ClickAsync();
        Assert.Equal("true", await more.GetAttributeAsync("aria-expanded"));
        Assert.True((await text.BoundingBoxAsync())!.Height > clamped * 1.3);
        Assert.Equal(message, await text.TextContentAsync());
    }

    [Fact]
    public async Task Amounts_use_the_currencys_minor_units_and_never_lose_a_digit()
    {
        var invite = await host.Server.InviteAsync("web-minor");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-minor");
        foreach (var (amount, currency, label) in new[] { ("1250", "JPY", "yen"), ("1.5", "BHD", "dinar"), ("0.001", "USD", "fraction") })
        {
            await host.Server.AskAsync(agent, "Pay in " + label,
                $$"""[{"type":"payment","amount":"{{amount}}","currency":"{{currency}}","recipient":"Shop"}]""", "openid payments:write");
        }
        async Task<string?> Shown(string label)
        {
            var card = phone.Card("Pay in " + label);
            await card.WaitForAsync();
            return (await card.Locator(".amount").TextContentAsync())?.Replace('\u00a0', ' ');
        }
        Assert.Equal("¥1,250", await Shown("yen"));
        Assert.Equal("BHD 1.500", await Shown("dinar"));
        Assert.Equal("$0.001", await Shown("fraction"));
        // A short message needs no "More".
        Assert.True(await phone.Card("Pay in yen").Locator("button.more").IsHiddenAsync());
    }

    [Fact]
    public async Task The_card_leads_with_who_asks_and_when_and_keeps_technical_fields_under_Details_with_readable_labels()
    {
        var invite = await host.Server.InviteAsync("web-who");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-who");
        await host.Server.AskAsync(agent, "Pay the hosting bill",
            """[{"type":"payment","amount":"42.00","currency":"EUR","recipient":"Hoster","invoice_number":"INV-7"}]""", "openid payments:write");
        var card = phone.Card("Pay the hosting bill");
        await card.WaitForAsync();

        // First line: the agent's name, in the page's own colour and bold, its owner, and how long ago it asked.
        var head = card.Locator(".head");
        Assert.StartsWith("Test agent", await head.Locator(".agent-name").TextContentAsync());
        Assert.Contains("by web-who", await head.InnerTextAsync());
        Assert.Equal("700", await head.Locator(".agent-name").EvaluateAsync<string>("(e) => getComputedStyle(e).fontWeight"));
        Assert.Matches(@"^(just now|\d+ s ago|\d+ min ago|\d+ h ago)$", await head.Locator(".ago").TextContentAsync());
        Assert.Matches(@"^Expires in \d+:\d\d$", await card.Locator(".expiry").TextContentAsync());

        // No jargon in sight; the technical fields wait behind "Details", in words.
        var visible = await card.InnerTextAsync();
        Assert.DoesNotContain("Scope", visible);
        Assert.DoesNotContain("payments:write", visible);
        Assert.DoesNotContain("invoice_number", visible);
        var details = card.Locator("details.tech");
        Assert.False(await details.EvaluateAsync<bool>("(e) => e.open"));
        await details.Locator("summary", new() { HasText = "Details" }).ClickAsync();
        var text = await details.InnerTextAsync();
        Assert.Contains("Make a payment", text);
        Assert.Contains("Invoice number", text);
        Assert.Contains("INV-7", text);
        Assert.Contains("Payment", text);
    }
}
