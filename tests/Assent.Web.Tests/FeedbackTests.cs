using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>What the app says, where and how (docs/http-api.md §12.1): on the card, in words for people, errors as alerts.</summary>
[Collection(BrowserCollection.Name)]
public sealed class FeedbackTests(BrowserHost host)
{
    // Every text the card's feedback line showed, in order (a MutationObserver: the steps pass faster than a poll).
    private const string RecordFeedback = """
        (li) => {
          window.__said = [];
          new MutationObserver(() => {
            for (const p of li.querySelectorAll('.feedback, .problem')) if (p.textContent && window.__said.at(-1) !== p.textContent) window.__said.push(p.textContent);
          }).observe(li, { subtree: true, childList: true, characterData: true });
        }
        """;

    [Fact]
    public async Task Approving_says_on_the_card_that_it_waits_for_the_passkey_and_then_that_it_is_approved()
    {
        var invite = await host.Server.InviteAsync("web-feedback");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-feedback");
        await host.Server.AskAsync(agent, "Restart the billing service");
        var card = phone.Card("Restart the billing service");
        await card.WaitForAsync();
        await card.EvaluateAsync(RecordFeedback);

        await card.Locator("button[data-act=approve]").ClickAsync();

        await card.Locator(".feedback", new() { HasText = "✓ Approved" }).WaitForAsync();
        Assert.Equal("status", await card.Locator(".feedback").GetAttributeAsync("role"));
        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        var said = await phone.Page.EvaluateAsync<string[]>("() => window.__said");
        Assert.StartsWith("Waiting for your passkey", said[0]);
        Assert.Equal("✓ Approved", said[^1]);
        // Nothing about it in the bar at the top, which may be off-screen.
        Assert.Equal("", await phone.Page.TextContentAsync("#status"));
    }

    [Fact]
    public async Task A_refused_decision_is_an_alert_on_the_card_in_plain_words_and_the_buttons_work_again()
    {
        var invite = await host.Server.InviteAsync("web-refused");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-refused");
        await host.Server.AskAsync(agent, "Rotate the API key");
        var card = phone.Card("Rotate the API key");
        await card.WaitForAsync();
        await phone.Page.RouteAsync("**/decision", route => route.FulfillAsync(new()
        {
            Status = 401, ContentType = "application/problem+json",
            Body = """{"status":401,"detail":"the passkey assertion was refused: user_not_verified"}""",
        }));

        await card.Locator("button[data-act=approve]").ClickAsync();

        var problem = card.Locator("[role=alert]");
        await problem.Locator("text=Your passkey could not be checked").WaitForAsync();
        Assert.DoesNotContain("user_not_verified", await card.InnerTextAsync());
        Assert.True(await card.Locator("button[data-act=approve]").IsEnabledAsync());
    }

    [Fact]
    public async Task A_wrong_sign_in_code_is_an_alert_in_plain_words_that_is_gone_after_signing_out()
    {
        var invite = await host.Server.InviteAsync("web-wrong-code");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var page = phone.Page;

        await page.GotoAsync("/device?user_code=WRONG");
        await page.Locator("#v-device").WaitForAsync();
        await page.PressAsync("#user-code", "Enter");
        var alert = page.Locator("#alert");
        await alert.Locator("text=8 letters").WaitForAsync();
        Assert.Equal("alert", await alert.GetAttributeAsync("role"));
        Assert.DoesNotContain("user_code", await alert.TextContentAsync());

        await page.GotoAsync("/device?user_code=BCDF-GHJK");
        await page.PressAsync("#user-code", "Enter");
        await alert.Locator("text=No sign-in is waiting").WaitForAsync();
        await page.ClickAsync("#signout");
        await page.Locator("#v-signin").WaitForAsync();
        Assert.Equal("", await alert.TextContentAsync());
        Assert.True(await alert.IsHiddenAsync());
    }
}
