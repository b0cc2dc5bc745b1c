using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Assent.Web.Tests;

/// <summary>
/// Web Push in the app (docs/http-api.md §12.6): the notification switch, the service worker's notification for a pushed
/// request, and a tap on it opening that request.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class PushTests(BrowserHost host, ITestOutputHelper output)
{
    /// <summary>
    /// Chromium's real PushManager needs its push service (FCM) on the network, which the tests do not have, and is off in
    /// the incognito contexts Playwright makes; this stands in for it with a subscription as the browser would make it,
    /// recording the applicationServerKey asked for.
    /// </summary>
    private const string PushManagerStandIn = """
        (() => {
          const b64e = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
          const keys = { p256dh: 'BKa9o1gmRDxZhgjTAXXlo-emWJ9Qkd9hz6QvWF5KiKpLvx53i6OTrpk3TgQPA1BZsTllMn-dieDws5N4fCLsH6g', auth: 'q3m3Y6Ct4aJCjRFm-vVJwg' };
          let current = null;
          window.__push = { subscribed: [], unsubscribed: 0 };
          PushManager.prototype.getSubscription = async function () { return current; };
          PushManager.prototype.subscribe = async function (options) {
            const key = b64e(options.applicationServerKey);
            window.__push.subscribed.push({ key, userVisibleOnly: options.userVisibleOnly });
            const endpoint = 'https://push.example.net/send/' + Math.random().toString(36).slice(2);
            current = {
              endpoint, options: { applicationServerKey: options.applicationServerKey, userVisibleOnly: true },
              toJSON: () => ({ endpoint, expirationTime: null, keys }),
              unsubscribe: async () => { window.__push.unsubscribed++; current = null; return true; },
            };
            return current;
          };
        })();
        """;

    [Fact]
    public async Task The_notification_switch_subscribes_with_the_servers_key_and_off_forgets_the_subscription_on_both_sides()
    {
        var invite = await host.Server.InviteAsync("web-push-switch");
        await using var phone = await host.PhoneAsync();
        await phone.Page.Context.GrantPermissionsAsync(["notifications"]);
        await phone.Page.AddInitScriptAsync(PushManagerStandIn);
        await phone.EnrollAsync(invite.Code);
        var user = (await host.Server.Store.Users.FindByHandleAsync("web-push-switch", default))!;

        await phone.Page.ClickAsync("[data-tab=devices]");
        var toggle = phone.Page.Locator("#push-switch");
        await phone.Page.Locator("#push-note", new() { HasText = "Off." }).WaitForAsync();
        Assert.False(await toggle.IsCheckedAsync());

        await toggle.ClickAsync();
        await phone.Page.Locator("#push-note", new() { HasText = "On:" }).WaitForAsync();
        var asked = await phone.Page.EvaluateAsync<JsonElement>("() => window.__push.subscribed");
        var subscribed = Assert.Single(asked.EnumerateArray());
        Assert.Equal(host.Server.Service<Assent.Server.Push.VapidKeys>().PublicKey, subscribed.GetProperty("key").GetString());
        Assert.True(subscribed.GetProperty("userVisibleOnly").GetBoolean());
        var stored = Assert.Single(await host.Server.Store.PushSubscriptions.ListActiveAsync(user.Id, default));
        Assert.StartsWith("https://push.example.net/send/", stored.Endpoint);
        Assert.True(await toggle.IsCheckedAsync());

        await toggle.ClickAsync();
        await phone.Page.Locator("#push-note", new() { HasText = "Off." }).WaitForAsync();
        Assert.Equal(1, await phone.Page.EvaluateAsync<int>("() => window.__push.unsubscribed"));
        Assert.Empty(await host.Server.Store.PushSubscriptions.ListActiveAsync(user.Id, default));
        Assert.False(await toggle.IsCheckedAsync());
    }

    [Fact]
    public async Task Where_the_browser_cannot_subscribe_the_switch_stays_off_says_why_and_stores_nothing()
    {
        // The real PushManager: Chromium refuses push subscriptions in incognito contexts (Playwright's) and without
        // its push service, answering AbortError.
        var invite = await host.Server.InviteAsync("web-push-refused");
        await using var phone = await host.PhoneAsync();
        await phone.Page.Context.GrantPermissionsAsync(["notifications"]);
        await phone.EnrollAsync(invite.Code);
        var user = (await host.Server.Store.Users.FindByHandleAsync("web-push-refused", default))!;
        await phone.Page.ClickAsync("[data-tab=devices]");
        await phone.Page.Locator("#push-note", new() { HasText = "Off." }).WaitForAsync();

        await phone.Page.Locator("#push-switch").ClickAsync();

        await phone.Page.Locator("#push-note", new() { HasText = "could not subscribe to its push service" }).WaitForAsync();
        Assert.False(await phone.Page.Locator("#push-switch").IsCheckedAsync());
        Assert.Empty(await host.Server.Store.PushSubscriptions.ListActiveAsync(user.Id, default));
    }

    [Fact]
    public async Task A_push_shows_a_notification_for_the_request_and_tapping_it_opens_the_request()
    {
        var invite = await host.Server.InviteAsync("web-push-open");
        await using var phone = await host.PhoneAsync();
        var page = phone.Page;
        await page.Context.GrantPermissionsAsync(["notifications"]);
        var cdp = await page.Context.NewCDPSessionAsync(page);
        var registrations = new List<JsonElement>();
        cdp.Event("ServiceWorker.workerRegistrationUpdated").OnEvent += (_, e) =>
        {
            lock (registrations)
            {
                registrations.AddRange(e!.Value.GetProperty("registrations").EnumerateArray().Select(r => r.Clone()));
            }
        };
        // Each version of the worker as the browser reports it (status: installing ... activated): a push is only delivered
        // to an activated one, and the states are printed when no notification shows.
        var versions = new List<(string Registration, string Status, string Running)>();
        cdp.Event("ServiceWorker.workerVersionUpdated").OnEvent += (_, e) =>
        {
            lock (versions)
            {
                versions.AddRange(e!.Value.GetProperty("versions").EnumerateArray().Select(v => (v.GetProperty("registrationId").GetString()!,
                    v.GetProperty("status").GetString()!, v.GetProperty("runningStatus").GetString()!)));
            }
        };
        await cdp.SendAsync("ServiceWorker.enable");
        await phone.EnrollAsync(invite.Code);
        await page.EvaluateAsync("() => navigator.serviceWorker.ready");
        var agent = await host.Server.AgentAsync("web-push-open", name: "Deploy bot");
        await host.Server.AskAsync(agent, "Deploy release 7 to production");
        var card = phone.Card("Deploy release 7");
        await card.WaitForAsync();
        var id = await card.GetAttributeAsync("data-id");
        // The pushed request is read from the server, not from the page's list: start from another tab.
        await page.ClickAsync("[data-tab=history]");

        string registrationId;
        lock (registrations)
        {
            registrationId = registrations.First(r => r.GetProperty("scopeURL").GetString()!.EndsWith("/app", StringComparison.Ordinal))
                .GetProperty("registrationId").GetString()!;
        }
        // navigator.serviceWorker.ready resolves while the worker may still be activating; under load that can last.
        for (var i = 0; i < 300 && !Activated(); i++)
        {
            await Task.Delay(100);
        }
        Assert.True(Activated(), $"the worker of registration {registrationId} was never activated: {Versions()}");
        // What the server's payload is (PushNotifier.Payload), delivered as the browser would after decrypting it.
        var payload = JsonSerializer.Serialize(new { id, title = "Approval request from Deploy bot", body = "Deploy release 7 to production", url = $"/app#/requests/{id}" });
        await cdp.SendAsync("ServiceWorker.deliverPushMessage", new Dictionary<string, object>
        {
            ["origin"] = host.Server.BaseUri.GetLeftPart(UriPartial.Authority), ["registrationId"] = registrationId, ["data"] = payload,
        });

        JsonElement shown = default;
        for (var i = 0; i < 300; i++)
        {
            shown = await page.EvaluateAsync<JsonElement>("""
                async () => (await (await navigator.serviceWorker.ready).getNotifications())
                  .map((n) => ({ title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url }))
                """);
            if (shown.GetArrayLength() > 0)
            {
                break;
            }
            await Task.Delay(50);
        }
        output.WriteLine(shown.GetRawText());
        Assert.True(shown.GetArrayLength() == 1, $"one notification shown, not {shown.GetRawText()}; worker versions: {Versions()}");
        var notification = shown.EnumerateArray().Single();
        Assert.Equal("Approval request from Deploy bot", notification.GetProperty("title").GetString());
        Assert.Equal("Deploy release 7 to production", notification.GetProperty("body").GetString());
        Assert.Equal(id, notification.GetProperty("tag").GetString());
        Assert.Equal($"/app#/requests/{id}", notification.GetProperty("url").GetString());

        bool Activated()
        {
            lock (versions)
            {
                return versions.Any(v => v.Registration == registrationId && v.Status == "activated");
            }
        }

        string Versions()
        {
            lock (versions)
            {
                return string.Join(", ", versions.Select(v => $"{v.Registration}:{v.Status}/{v.Running}"));
            }
        }

        // CDP cannot tap a notification: the service worker's own notificationclick handler is run on the notification it
        // showed, by an event dispatched inside the worker.
        await EvaluateInWorkerAsync(cdp, """
            (async () => {
              const [n] = await self.registration.getNotifications();
              try { self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n })); } catch (e) { /* waitUntil on an untrusted event */ }
              return 'dispatched';
            })()
            """);

        var opened = page.Locator("#pending li.pushed");
        await opened.WaitForAsync();
        Assert.Equal(id, await opened.GetAttributeAsync("data-id"));
        Assert.False(await page.Locator("#t-pending").IsHiddenAsync());
        Assert.True(await opened.Locator(".approve").EvaluateAsync<bool>("(b) => document.activeElement === b"));
        // The click closed the notification.
        Assert.Equal(0, await page.EvaluateAsync<int>("async () => (await (await navigator.serviceWorker.ready).getNotifications()).length"));
    }

    /// <summary>
    /// Runs <paramref name="expression"/> in this page's service worker (CDP Target.attachToTarget, then Runtime.evaluate
    /// sent through Target.sendMessageToTarget: Playwright's CDP session talks to one target only).
    /// </summary>
    private async Task EvaluateInWorkerAsync(ICDPSession pageCdp, string expression)
    {
        var context = (await pageCdp.SendAsync("Target.getTargetInfo"))!.Value.GetProperty("targetInfo").GetProperty("browserContextId").GetString();
        var browser = await host.Browser.NewBrowserCDPSessionAsync();
        var targets = (await browser.SendAsync("Target.getTargets"))!.Value.GetProperty("targetInfos").EnumerateArray()
            .Where(t => t.GetProperty("type").GetString() == "service_worker" && t.GetProperty("browserContextId").GetString() == context).ToArray();
        var worker = Assert.Single(targets).GetProperty("targetId").GetString()!;
        var answered = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        browser.Event("Target.receivedMessageFromTarget").OnEvent += (_, e) =>
        {
            var message = e!.Value.GetProperty("message").GetString()!;
            if (JsonDocument.Parse(message).RootElement.TryGetProperty("id", out var id) && id.GetInt32() == 1)
            {
                answered.TrySetResult(message);
            }
        };
        var session = (await browser.SendAsync("Target.attachToTarget", new Dictionary<string, object> { ["targetId"] = worker, ["flatten"] = false }))!
            .Value.GetProperty("sessionId").GetString()!;
        var evaluate = JsonSerializer.Serialize(new { id = 1, method = "Runtime.evaluate", @params = new { expression, awaitPromise = true, returnByValue = true } });
        await browser.SendAsync("Target.sendMessageToTarget", new Dictionary<string, object> { ["sessionId"] = session, ["message"] = evaluate });
        var answer = await answered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        output.WriteLine("worker: " + answer);
        Assert.Contains("dispatched", answer);
        await browser.DetachAsync();
    }
}
