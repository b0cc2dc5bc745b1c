using System.Diagnostics;
using System.Net;
using Assent.Server.Tests;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Assent.Web.Tests;

/// <summary>The pending list stays true to the server through expiry, dropped streams and restarts (docs/http-api.md §11, §12.1).</summary>
[Collection(BrowserCollection.Name)]
public sealed class PendingListTests(BrowserHost host, ITestOutputHelper output)
{
    [Fact]
    public async Task A_card_greys_out_at_its_expiry_and_after_a_restart_the_list_is_the_servers()
    {
        // Its own server: this test stops and restarts it. Its clock stands still unless moved, so only the page's
        // clock can see the short request expire.
        await using var server = await TestServer.StartAsync();
        var invite = await server.InviteAsync("web-restart");
        await using var phone = await host.PhoneAsync(server);
        await phone.EnrollAsync(invite.Code);
        var agent = await server.AgentAsync("web-restart");
        var page = phone.Page;

        await AskAsync(server, agent, "Short-lived request", expiry: 8);
        var shortLived = page.Locator("#pending li", new() { HasText = "Short-lived request" });
        await shortLived.WaitForAsync();
        Assert.Matches(@"Expires in 0:0\d", await shortLived.Locator(".expiry").TextContentAsync());
        // Greyed out locally at expires_at, with nothing from the server, its buttons off.
        await page.Locator("#pending li.expired", new() { HasText = "Short-lived request" }).WaitForAsync(new() { Timeout = 15_000 });
        Assert.True(await shortLived.Locator("button[data-act=approve]").IsDisabledAsync());
        Assert.Contains("Expired", await shortLived.InnerTextAsync());

        await AskAsync(server, agent, "Gone while offline", expiry: 600);
        await AskAsync(server, agent, "Still waiting", expiry: 3600);
        await page.Locator("#pending li", new() { HasText = "Still waiting" }).WaitForAsync();
        Assert.True(await page.Locator("#conn").IsHiddenAsync());

        // The open stream ends on shutdown instead of holding the stopping process until its timeout.
        var stop = Stopwatch.StartNew();
        await server.StopKeepingDataAsync();
        stop.Stop();
        output.WriteLine($"stopped with an open stream in {stop.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(stop.Elapsed < TimeSpan.FromSeconds(5), $"stopping took {stop.Elapsed}");
        await page.Locator("#conn").WaitForAsync();
        Assert.Contains("Reconnecting", await page.Locator("#conn").TextContentAsync());

        // While the server was down, one request expired by its clock; the restarted server no longer lists it.
        server.Clock.Advance(TimeSpan.FromSeconds(700));
        await server.RestartAsync();
        await page.Locator("#conn").WaitForAsync(new() { State = WaitForSelectorState.Hidden, Timeout = 15_000 });
        await page.Locator("#pending li", new() { HasText = "Gone while offline" }).WaitForAsync(new() { State = WaitForSelectorState.Detached });
        await page.Locator("#pending li", new() { HasText = "Short-lived request" }).WaitForAsync(new() { State = WaitForSelectorState.Detached });
        Assert.Equal(["Still waiting"], await page.Locator("#pending li .message").AllTextContentsAsync());
        Assert.Equal("1", await page.TextContentAsync("#count .badge"));
    }

    [Fact]
    public async Task Until_the_first_list_arrives_the_page_says_it_is_checking_and_an_empty_list_says_what_to_do_next()
    {
        var invite = await host.Server.InviteAsync("web-loading");
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-loading");
        await host.Server.AskAsync(agent, "Waiting behind a slow network");
        var card = phone.Card("Waiting behind a slow network");
        await card.WaitForAsync();
        var page = phone.Page;
        // The stream and the list held back, as on a slow network just after the app opens.
        var release = new TaskCompletionSource();
        await page.RouteAsync("**/webauthn/stream", async route => { await release.Task; await route.ContinueAsync(); });
        await page.RouteAsync("**/webauthn/approvals", async route => { await release.Task; await route.ContinueAsync(); });

        await page.ReloadAsync();
        await page.Locator("#v-main").WaitForAsync();
        var empty = page.Locator("#empty");
        Assert.True(await empty.IsVisibleAsync());
        Assert.Equal("Checking for requests…", (await empty.InnerTextAsync()).Trim());

        release.SetResult();
        await card.WaitForAsync();
        Assert.True(await empty.IsHiddenAsync());
        await card.Locator("button[data-act=deny]").ClickAsync();
        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        await empty.WaitForAsync();
        var said = await empty.InnerTextAsync();
        Assert.StartsWith("Nothing is waiting for you.", said);
        // What to do next: where requests show, and how to hear of them with the app closed.
        Assert.Contains("shows up here", said);
        Assert.Contains("notifications", said);
        Assert.DoesNotContain("Checking", said);
    }

    [Theory]
    [InlineData(410, "expired")]
    [InlineData(409, "already answered")]
    public async Task A_decision_answered_409_or_410_removes_the_card_and_says_why(int status, string says)
    {
        var invite = await host.Server.InviteAsync("web-gone-" + status);
        await using var phone = await host.PhoneAsync();
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-gone-" + status);
        await host.Server.AskAsync(agent, "Decided elsewhere " + status);
        var card = phone.Card("Decided elsewhere");
        await card.WaitForAsync();
        // As if the news had not reached this page: the server answers the decision as already settled.
        await phone.Page.RouteAsync("**/decision", route => route.FulfillAsync(new()
        {
            Status = status, ContentType = "application/problem+json", Body = $$"""{"status":{{status}},"detail":"the request has expired"}""",
        }));

        await card.Locator("button[data-act=approve]").ClickAsync();

        await card.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        Assert.Contains(says, await phone.Page.TextContentAsync("#alert"));
    }

    private static async Task AskAsync(TestServer server, TestAgent agent, string message, int expiry)
    {
        using var response = await server.BcAuthorizeAsync(agent, new Dictionary<string, string>
        {
            ["scope"] = "openid approve:action", ["login_hint"] = agent.Owner, ["binding_message"] = message,
            ["requested_expiry"] = expiry.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
