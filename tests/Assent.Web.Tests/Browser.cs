using System.Text.Json;
using Assent.Server.Tests;
using Microsoft.Playwright;

namespace Assent.Web.Tests;

/// <summary>
/// One Assent server and one headless Debian Chromium for the whole web suite (two shared
/// cores: one browser at a time). Chromium comes from apt, never from <c>playwright install</c>.
/// </summary>
public sealed class BrowserHost : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public TestServer Server { get; private set; } = null!;
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // Every tab of the suite comes from one address, and each enrolment and sign-in asks for options through a door
        // limited per address and minute (30 by default, docs/http-api.md §16): on a fast machine the suite can enrol more
        // than that within one minute, and a refused enrolment leaves its test waiting for the app. The limit itself is
        // tested against the server (Assent.Server.Tests, LimitTests).
        Server = await TestServer.StartAsync(configure: o => o.Limits.CreationsPerMinute = 10_000);
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.CloseAsync();
        Playwright.Dispose();
        await Server.DisposeAsync();
    }

    /// <summary>A fresh phone-sized tab with its own CDP virtual platform authenticator (UV capable, resident keys).</summary>
    /// <param name="server">Another server than the shared one (a test that stops or restarts its own).</param>
    /// <param name="dark">The dark colour scheme (prefers-color-scheme: dark).</param>
    /// <param name="bypassCsp">Lets a test inject a script (axe-core) the page's CSP would refuse.</param>
    /// <param name="width">The viewport's width in CSS pixels (320: the narrowest phones).</param>
    /// <param name="height">The viewport's height in CSS pixels (800 with a width of 1280: a laptop).</param>
    /// <param name="iPhone">A touch screen as the main pointer and an iPhone's user agent (the page's phone layout).</param>
    public async Task<Phone> PhoneAsync(TestServer? server = null, bool dark = false, bool bypassCsp = false, int width = 360, int height = 740,
        bool iPhone = false)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height },
            IsMobile = iPhone,
            HasTouch = iPhone,
            UserAgent = iPhone ? "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1" : null,
            // Amounts and times are formatted for the reader's locale; the tests read them in one.
            Locale = "en-US",
            BaseURL = (server ?? Server).BaseUri.ToString(),
            ColorScheme = dark ? ColorScheme.Dark : ColorScheme.Light,
            BypassCSP = bypassCsp,
        });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        var cdp = await context.NewCDPSessionAsync(page);
        await cdp.SendAsync("WebAuthn.enable", new Dictionary<string, object> { ["enableUI"] = false });
        var added = await cdp.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2",
                ["transport"] = "internal",
                ["hasResidentKey"] = true,
                ["hasUserVerification"] = true,
                ["isUserVerified"] = true,
                ["automaticPresenceSimulation"] = true,
            },
        });
        return new Phone(context, page, cdp, added!.Value.GetProperty("authenticatorId").GetString()!);
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserHost>
{
    public const string Name = "browser";
}

/// <summary>A captured assertion, as the web app would post it.</summary>
public sealed record Assertion(string CredentialId, string AuthenticatorData, string ClientDataJson, string Signature)
{
    public Dictionary<string, string> Body(string decision) => new()
    {
        ["decision"] = decision,
        ["credential_id"] = CredentialId,
        ["authenticator_data"] = AuthenticatorData,
        ["client_data_json"] = ClientDataJson,
        ["signature"] = Signature,
    };
}

public sealed class Phone(IBrowserContext context, IPage page, ICDPSession cdp, string firstAuthenticatorId) : IAsyncDisposable
{
    /// <summary>The pending request's card that shows <paramref name="text"/>.</summary>
    public ILocator Card(string text) => page.Locator("#pending li", new() { HasText = text });

    private string _authenticatorId = firstAuthenticatorId;

    public IPage Page => page;

    /// <summary>Opens the invite link, creates a passkey and waits for the pending list.</summary>
    public async Task EnrollAsync(string code, string name = "test phone")
    {
        await page.GotoAsync("/app/enroll?code=" + Uri.EscapeDataString(code));
        await page.FillAsync("#dev-name", name);
        await page.ClickAsync("#enroll-form button[type=submit]");
        await page.Locator("#v-main").WaitForAsync();
        // The live stream is open once its first comment arrived; give EventSource that moment.
        await page.WaitForFunctionAsync("() => document.querySelector('#empty') !== null");
    }

    /// <summary>Swaps in a second platform authenticator (e.g. to register another passkey for the same user).</summary>
    public async Task AddAuthenticatorAsync()
    {
        await cdp.SendAsync("WebAuthn.removeVirtualAuthenticator", new Dictionary<string, object> { ["authenticatorId"] = _authenticatorId });
        var added = await cdp.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2", ["transport"] = "internal", ["hasResidentKey"] = true,
                ["hasUserVerification"] = true, ["isUserVerified"] = true, ["automaticPresenceSimulation"] = true,
            },
        });
        _authenticatorId = added!.Value.GetProperty("authenticatorId").GetString()!;
    }

    public Task SetUserVerifiedAsync(bool verified) =>
        cdp.SendAsync("WebAuthn.setUserVerified", new Dictionary<string, object> { ["authenticatorId"] = _authenticatorId, ["isUserVerified"] = verified });

    /// <summary>Asks the authenticator for an assertion over SHA-256(decision ‖ 0x00 ‖ payload) without posting it.</summary>
    public async Task<Assertion> AssertAsync(string decision, byte[] payload, string userVerification = "required")
    {
        var result = await page.EvaluateAsync<JsonElement>(CaptureScript, new object[] { decision, Convert.ToBase64String(payload), userVerification });
        return new Assertion(result.GetProperty("credential_id").GetString()!, result.GetProperty("authenticator_data").GetString()!,
            result.GetProperty("client_data_json").GetString()!, result.GetProperty("signature").GetString()!);
    }

    private const string CaptureScript = """
        async ([decision, payloadB64, uv]) => {
          const b64e = (buf) => { const b = new Uint8Array(buf); let s = ''; for (const x of b) s += String.fromCharCode(x);
            return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''); };
          const payload = Uint8Array.from(atob(payloadB64), (c) => c.charCodeAt(0));
          const word = new TextEncoder().encode(decision);
          const input = new Uint8Array(word.length + 1 + payload.length);
          input.set(word, 0); input.set(payload, word.length + 1);
          const challenge = await crypto.subtle.digest('SHA-256', input);
          const cred = await navigator.credentials.get({ publicKey: { challenge, rpId: 'localhost', userVerification: uv, timeout: 10000 },
            signal: AbortSignal.timeout(10000) });
          const r = cred.response;
          return { credential_id: b64e(cred.rawId), authenticator_data: b64e(r.authenticatorData),
            client_data_json: b64e(r.clientDataJSON), signature: b64e(r.signature) };
        }
        """;

    public async ValueTask DisposeAsync() => await context.CloseAsync();
}
