using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Assent.Web.Tests;

/// <summary>The app as an installed one (docs/http-api.md §12.1): manifest, icon, service worker, counts at a glance.</summary>
[Collection(BrowserCollection.Name)]
public sealed class InstallTests(BrowserHost host, ITestOutputHelper output)
{
    [Fact]
    public async Task The_app_is_installable_with_a_manifest_an_icon_and_a_favicon()
    {
        using (var favicon = await host.Server.Http.GetAsync("/favicon.ico"))
        {
            Assert.Equal(HttpStatusCode.OK, favicon.StatusCode);
            Assert.StartsWith("image/", favicon.Content.Headers.ContentType!.MediaType);
        }
        var manifest = JsonDocument.Parse(await host.Server.Http.GetStringAsync("/app/manifest.webmanifest")).RootElement;
        Assert.Equal("/app", manifest.GetProperty("start_url").GetString());
        Assert.Equal("standalone", manifest.GetProperty("display").GetString());

        await using var phone = await host.PhoneAsync();
        await phone.Page.GotoAsync("/app");
        await phone.Page.Locator("#v-signin").WaitForAsync();
        // Chromium's own verdict on the manifest, its icon and the page (CDP Page.getInstallabilityErrors), but for
        // "in-incognito": every Playwright context is one.
        var cdp = await phone.Page.Context.NewCDPSessionAsync(phone.Page);
        string[] errors = [];
        for (var i = 0; i < 20; i++)
        {
            var answer = await cdp.SendAsync("Page.getInstallabilityErrors");
            output.WriteLine(answer!.Value.GetRawText());
            errors = answer.Value.GetProperty("installabilityErrors").EnumerateArray()
                .Select(e => e.GetProperty("errorId").GetString()!).Where(e => e != "in-incognito").ToArray();
            if (errors.Length == 0)
            {
                break;
            }
            await Task.Delay(250);
        }
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData("/app")]
    [InlineData("/app/app.js")]
    [InlineData("/app/app.css")]
    public async Task The_shell_is_sent_compressed_to_clients_that_accept_it_and_as_is_to_others(string path)
    {
        using var handler = new HttpClientHandler { AutomaticDecompression = DecompressionMethods.None };
        using var http = new HttpClient(handler) { BaseAddress = host.Server.BaseUri };
        var plain = await http.GetByteArrayAsync(path);
        foreach (var (accept, coding) in new[] { ("gzip, deflate, br", "br"), ("gzip", "gzip") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path) { Headers = { { "Accept-Encoding", accept } } };
            using var response = await http.SendAsync(request);
            Assert.Equal(coding, Assert.Single(response.Content.Headers.ContentEncoding));
            Assert.Contains("Accept-Encoding", response.Headers.Vary);
            var packed = await response.Content.ReadAsByteArrayAsync();
            Assert.True(packed.Length < plain.Length / 2, $"{path} as {coding}: {packed.Length} of {plain.Length} bytes");
            using var unpacked = new MemoryStream();
            await using (var decoder = coding == "br"
                ? (Stream)new System.IO.Compression.BrotliStream(new MemoryStream(packed), System.IO.Compression.CompressionMode.Decompress)
                : new System.IO.Compression.GZipStream(new MemoryStream(packed), System.IO.Compression.CompressionMode.Decompress))
            {
                await decoder.CopyToAsync(unpacked);
            }
            Assert.Equal(plain, unpacked.ToArray());
        }
    }

    [Fact]
    public async Task Offline_the_app_still_opens_from_its_service_worker_and_says_it_is_offline()
    {
        await using var phone = await host.PhoneAsync();
        await phone.Page.GotoAsync("/app");
        await phone.Page.Locator("#v-signin").WaitForAsync();
        phone.Page.Console += (_, m) => output.WriteLine("console: " + m.Text);
        var ready = await phone.Page.EvaluateAsync<string>("""
            () => Promise.race([navigator.serviceWorker.ready.then(() => 'ready'), new Promise((r) => setTimeout(() => r('not ready'), 10000))])
            """);
        Assert.Equal("ready", ready);

        await phone.Page.Context.SetOfflineAsync(true);
        await phone.Page.GotoAsync("/app");

        await phone.Page.Locator("#alert", new() { HasText = "Can't reach Assent" }).WaitForAsync();
        Assert.Equal("Assent", await phone.Page.TextContentAsync(".brand"));
        await phone.Page.Context.SetOfflineAsync(false);
    }

    [Fact]
    public async Task The_title_and_the_app_badge_count_the_pending_requests()
    {
        var invite = await host.Server.InviteAsync("web-badge");
        await using var phone = await host.PhoneAsync();
        // Records what the page asks of the Badging API (headless Chromium has no icon to badge).
        await phone.Page.AddInitScriptAsync("""
            navigator.setAppBadge = (n) => { window.__badge = n; return Promise.resolve(); };
            navigator.clearAppBadge = () => { window.__badge = 0; return Promise.resolve(); };
            """);
        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync("web-badge");
        await host.Server.AskAsync(agent, "First thing");
        await host.Server.AskAsync(agent, "Second thing");
        await phone.Card("Second thing").WaitForAsync();

        await phone.Page.WaitForFunctionAsync("() => document.title === '(2) Assent'");
        Assert.Equal(2, await phone.Page.EvaluateAsync<int>("() => window.__badge"));
        await phone.Card("First thing").Locator("button[data-act=deny]").ClickAsync();
        await phone.Page.WaitForFunctionAsync("() => document.title === '(1) Assent'");
        Assert.Equal(1, await phone.Page.EvaluateAsync<int>("() => window.__badge"));
    }
}
