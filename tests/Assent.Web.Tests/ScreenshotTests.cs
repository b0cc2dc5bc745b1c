namespace Assent.Web.Tests;

/// <summary>
/// The phone screen with a pending payment, as docs/http-api.md §12.1 pictures it: light, dark and 320 px wide. Each
/// picture stays small enough for the docs (under 80 KB). With <c>ASSENT_SCREENSHOTS=DIR</c> they are kept there as
/// <c>app-pending-{light,dark,320}-{TAG}.png</c> (<c>ASSENT_SCREENSHOTS_TAG</c>, default <c>after</c>); that is how
/// docs/images was made, once from the app before a change and once after it.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ScreenshotTests(BrowserHost host)
{
    [Theory]
    [InlineData("light", false, 390)]
    [InlineData("dark", true, 390)]
    [InlineData("320", false, 320)]
    public async Task The_pending_card_pictured_for_the_docs_is_a_small_png(string name, bool dark, int width)
    {
        var handle = "web-shot-" + name;
        var invite = await host.Server.InviteAsync(handle);
        await using var phone = await host.PhoneAsync(dark: dark, width: width);
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync(handle, name: "Payments bot");
        await host.Server.AskAsync(agent, "Pay invoice 2026-114 for March hosting, as agreed with Dana on the 3rd",
            """[{"type":"payment","amount":"1250.00","currency":"USD","recipient":"ACME Corp","invoice_number":"2026-114"}]""", "openid payments:write");
        var card = phone.Card("Pay invoice 2026-114");
        await card.WaitForAsync();
        await phone.Page.EvaluateAsync("() => document.fonts.ready");

        var dir = Environment.GetEnvironmentVariable("ASSENT_SCREENSHOTS") is { Length: > 0 } kept ? kept : Directory.CreateTempSubdirectory("assent-shots").FullName;
        var tag = Environment.GetEnvironmentVariable("ASSENT_SCREENSHOTS_TAG") is { Length: > 0 } t ? t : "after";
        var path = Path.Combine(dir, $"app-pending-{name}-{tag}.png");
        var png = await phone.Page.ScreenshotAsync(new() { Path = path, Animations = Microsoft.Playwright.ScreenshotAnimations.Disabled });

        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.True(png.Length < 80 * 1024, $"{path} is {png.Length} bytes");
    }
}
