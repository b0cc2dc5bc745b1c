using Assent.Server.Storage;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>Enrolment made for the device it is opened on (docs/http-api.md §12.1): a phone makes its passkey, a computer shows the QR first.</summary>
[Collection(BrowserCollection.Name)]
public sealed class EnrollTests(BrowserHost host)
{
    [Fact]
    public async Task On_a_phone_the_invite_link_shows_one_sentence_and_Continue_with_Face_ID_with_the_QR_and_the_CLI_out_of_the_way()
    {
        var invite = await host.Server.InviteAsync("web-enrol-phone");
        await using var phone = await host.PhoneAsync(width: 390, height: 844, iPhone: true);
        var page = phone.Page;
        await page.GotoAsync("/app/enroll?code=" + Uri.EscapeDataString(invite.Code));
        await page.Locator("#v-enroll").WaitForAsync();

        var go = page.Locator("#enroll-go");
        Assert.Equal("Continue with Face ID", await go.TextContentAsync());
        var box = (await go.BoundingBoxAsync())!;
        Assert.True(box.Y + box.Height <= 844, $"the button ends at {box.Y + box.Height} px, below the first screen");
        // What a passkey is, in one plain sentence.
        var what = await page.Locator("#passkey-what").InnerTextAsync();
        Assert.Contains("passkey", what);
        Assert.Contains("Face ID", what);
        Assert.Single(what.Split(". ", StringSplitOptions.RemoveEmptyEntries));
        // Nothing else to read or type: no QR of this very screen, no terminal command, the code already in the link.
        Assert.True(await page.Locator("#qr").IsHiddenAsync());
        Assert.False(await page.Locator("#cli-enroll").IsVisibleAsync());
        Assert.False(await page.Locator("#code").IsVisibleAsync());
        var shown = await page.Locator("#v-enroll").InnerTextAsync();
        Assert.DoesNotContain("assent device enroll", shown);
        Assert.DoesNotContain("Scan", shown);

        await go.ClickAsync();
        await page.Locator("#v-main").WaitForAsync();
        var device = Assert.Single(await host.Server.Store.Devices.ListAsync(invite.UserId, default));
        Assert.Equal(DeviceKinds.WebAuthn, device.Kind);
        Assert.Equal("iPhone", device.Name);
    }

    [Fact]
    public async Task On_a_computer_the_QR_comes_first_and_the_CLI_command_waits_behind_a_disclosure()
    {
        var invite = await host.Server.InviteAsync("web-enrol-desk");
        await using var desk = await host.PhoneAsync(width: 1280, height: 800);
        var page = desk.Page;
        await page.GotoAsync("/app/enroll?code=" + Uri.EscapeDataString(invite.Code));
        await page.Locator("#v-enroll").WaitForAsync();
        await page.Locator("#qr-img").WaitForAsync();

        var qr = (await page.Locator("#qr-img").BoundingBoxAsync())!;
        var form = (await page.Locator("#enroll-form").BoundingBoxAsync())!;
        Assert.True(qr.Y + qr.Height <= form.Y, "the QR is not above the form");
        Assert.True(qr.Y + qr.Height <= 800, "the QR is not on the first screen");
        Assert.Contains("passkey", await page.Locator("#passkey-what").InnerTextAsync());
        Assert.Equal(invite.Code, await page.InputValueAsync("#code"));

        var cli = page.Locator("#cli-enroll");
        Assert.False(await cli.IsVisibleAsync());
        await page.Locator("#cli summary").ClickAsync();
        Assert.True(await cli.IsVisibleAsync());
        Assert.Equal($"assent device enroll --server {host.Server.BaseUri.GetLeftPart(UriPartial.Authority)} --code {invite.Code}", await cli.TextContentAsync());
    }
}
