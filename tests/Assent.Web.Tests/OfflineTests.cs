using System.Net;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>No Face ID spent for nothing, no signed decision lost to a dropped network (docs/http-api.md §12.1).</summary>
[Collection(BrowserCollection.Name)]
public sealed class OfflineTests(BrowserHost host)
{
    // Counts the passkey prompts the page makes.
    private const string CountPrompts = """
        () => {
          window.__prompts = 0;
          const get = navigator.credentials.get.bind(navigator.credentials);
          navigator.credentials.get = (options) => { window.__prompts++; return get(options); };
        }
        """;

    [Fact]
    public async Task Offline_the_passkey_is_not_asked_and_the_card_says_why()
    {
        var invite = await host.Server.InviteAsync("web-offline");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-offline");
        await host.Server.AskAsync(agent, "Ship release 7");
        var card = phone.Card("Ship release 7");
        await card.WaitForAsync();
        await phone.Page.EvaluateAsync(CountPrompts);

        await phone.Page.Context.SetOfflineAsync(true);
        await card.Locator("button[data-act=approve]").ClickAsync();

        await card.Locator("[role=alert]", new() { HasText = "offline" }).WaitForAsync();
        Assert.Equal(0, await phone.Page.EvaluateAsync<int>("() => window.__prompts"));
        Assert.True(await card.Locator("button[data-act=approve]").IsEnabledAsync());
        await phone.Page.Context.SetOfflineAsync(false);
    }

    [Fact]
    public async Task A_signed_decision_that_could_not_be_sent_is_sent_again_until_it_arrives()
    {
        var invite = await host.Server.InviteAsync("web-resend");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-resend");
        var authReqId = await host.Server.AskAsync(agent, "Renew the certificate");
        var card = phone.Card("Renew the certificate");
        await card.WaitForAsync();
        await phone.Page.EvaluateAsync(CountPrompts);
        // The first two sends are lost on the way, as on a train going through a tunnel.
        var lost = 0;
        await phone.Page.RouteAsync("**/decision", async route =>
        {
            if (Interlocked.Increment(ref lost) <= 2)
            {
                await route.AbortAsync("internetdisconnected");
            }
            else
            {
                await route.ContinueAsync();
            }
        });
        var token = host.Server.TokenAsync(agent, authReqId, wait: 30);

        await card.Locator("button[data-act=approve]").ClickAsync();

        await card.Locator(".feedback", new() { HasText = "Not sent yet — retrying" }).WaitForAsync();
        await card.Locator(".feedback", new() { HasText = "✓ Approved" }).WaitForAsync();
        using var response = await token;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(3, lost);
        // One Face ID for it all.
        Assert.Equal(1, await phone.Page.EvaluateAsync<int>("() => window.__prompts"));
    }
}
