using Assent.Server.Approvals;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>A request several users decide (docs/policies.md §3) as the web app shows it: where it stands, as <c>assent device watch</c> says it.</summary>
[Collection(BrowserCollection.Name)]
public sealed class QuorumTests(BrowserHost host)
{
    [Fact]
    public async Task A_quorum_card_says_who_approved_and_who_is_awaited_and_stays_without_buttons_after_your_approval()
    {
        var invite = await host.Server.InviteAsync("web-quorum-a");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var bob = await host.Server.UserWithDeviceAsync("web-quorum-b");
        var agent = await host.Server.AgentAsync(invite.Handle);
        // Bound to this test's agent: policies are server-wide.
        await host.Server.Service<PolicyBook>().AddAsync(new PolicyDraft("webquorum" + Guid.NewGuid().ToString("N")[..8], 10, agent.ClientId, null, null, null,
            null, null, "quorum", 2, [invite.Handle, bob.Handle]), "test", default);
        await host.Server.AskAsync(agent, "Move the treasury");
        var card = phone.Card("Move the treasury");
        await card.WaitForAsync();
        var line = card.Locator(".quorum");
        Assert.Matches("^0 of 2 approved, waiting for web-quorum-[ab], web-quorum-[ab]$", await line.TextContentAsync());

        await card.Locator("button[data-act=approve]").ClickAsync();

        await card.Locator(".feedback", new() { HasText = "You approved" }).WaitForAsync();
        Assert.Equal("1 of 2 approved (web-quorum-a), waiting for web-quorum-b", await line.TextContentAsync());
        Assert.True(await card.Locator("button[data-act=approve]").IsHiddenAsync());
        Assert.Equal("Assent", await phone.Page.TitleAsync());
        // Still there after a reload, as the server lists it, and still without buttons.
        await phone.Page.ReloadAsync();
        await card.Locator(".feedback", new() { HasText = "You approved" }).WaitForAsync();
        Assert.Equal("1 of 2 approved (web-quorum-a), waiting for web-quorum-b", await line.TextContentAsync());
        Assert.True(await card.Locator("button[data-act=approve]").IsHiddenAsync());

        // Bob's approval completes it: the card leaves.
        using (var decided = await bob.DecideOnlyPendingAsync("approve"))
        {
            Assert.True(decided.IsSuccessStatusCode, await decided.Content.ReadAsStringAsync());
        }
        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });
    }
}
