using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Assent.Server.Tests;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Assent.Web.Tests;

/// <summary>
/// axe-core (tests/interop, pinned in its package-lock.json) over every view of the app in both colour schemes, and
/// the non-text contrast axe does not measure (WCAG 2.2 1.4.11: input borders at least 3:1).
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class AccessibilityTests(BrowserHost host, ITestOutputHelper output)
{
    private const string Payment = """[{"type":"payment","amount":"1250.00","currency":"USD","recipient":"ACME Corp"}]""";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Every_view_has_no_serious_or_critical_axe_finding_and_inputs_have_visible_borders(bool dark)
    {
        var theme = dark ? "dark" : "light";
        var handle = "web-axe-" + theme;
        var invite = await host.Server.InviteAsync(handle);
        // The page's CSP admits no injected script: the context bypasses it for axe alone.
        await using var phone = await host.PhoneAsync(dark: dark, bypassCsp: true);
        var page = phone.Page;
        var findings = new List<string>();

        await page.GotoAsync("/app");
        await page.Locator("#v-signin").WaitForAsync();
        findings.AddRange(await AxeAsync(page, theme + " sign-in"));

        await page.GotoAsync("/app/enroll?code=" + Uri.EscapeDataString(invite.Code));
        await page.Locator("#v-enroll").WaitForAsync();
        await page.Locator("#qr-img").WaitForAsync();
        findings.AddRange(await AxeAsync(page, theme + " enrol"));
        foreach (var input in new[] { "#code", "#dev-name" })
        {
            var contrast = await BorderContrastAsync(page, input);
            output.WriteLine($"{theme} {input} border contrast {contrast:F2}:1");
            Assert.True(contrast >= 3, $"{theme}: the border of {input} is {contrast:F2}:1 against the page, under 3:1");
        }

        await phone.EnrollAsync(invite.Code);
        var agent = await host.Server.AgentAsync(handle);
        await host.Server.AskAsync(agent, "Pay invoice 42", Payment, "openid payments:write");
        await page.Locator("#pending li", new() { HasText = "Pay invoice 42" }).WaitForAsync();
        findings.AddRange(await AxeAsync(page, theme + " pending"));
        foreach (var tab in new[] { "history", "devices", "consents" })
        {
            await page.ClickAsync($".tabs button[data-tab={tab}]");
            // Shown (its heading is for screen readers only, so an empty panel has no size to be "visible").
            await page.Locator($"#t-{tab}:not([hidden])").WaitForAsync(new() { State = WaitForSelectorState.Attached });
            await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
            findings.AddRange(await AxeAsync(page, theme + " " + tab));
        }
        // The in-page confirmation of a revocation, open.
        await page.ClickAsync(".tabs button[data-tab=devices]");
        await page.Locator("#devices li button", new() { HasText = "Revoke" }).First.ClickAsync();
        await page.Locator("#devices .confirm").WaitForAsync();
        findings.AddRange(await AxeAsync(page, theme + " devices, revoking"));
        await page.ClickAsync("#devices .confirm button[data-act=cancel]");

        await page.GotoAsync("/device?user_code=ABCD-EFGH");
        await page.Locator("#v-device").WaitForAsync();
        findings.AddRange(await AxeAsync(page, theme + " device sign-in"));
        var code = await BorderContrastAsync(page, "#user-code");
        Assert.True(code >= 3, $"{theme}: the border of #user-code is {code:F2}:1 against the page, under 3:1");

        Assert.True(findings.Count == 0, string.Join("\n", findings));
    }

    /// <summary>Runs axe on the page as it is; returns its serious and critical violations, one line per element.</summary>
    private async Task<IReadOnlyList<string>> AxeAsync(IPage page, string view)
    {
        if (!await page.EvaluateAsync<bool>("() => typeof window.axe === 'object'"))
        {
            await page.AddScriptTagAsync(new() { Path = AxeScript.Value });
        }
        var violations = await page.EvaluateAsync<JsonElement>("""
            async () => (await axe.run(document, { resultTypes: ['violations'] })).violations.map((v) => ({
              id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ') + ' — ' + n.failureSummary.replace(/\s+/g, ' ')) }))
            """);
        var found = new List<string>();
        foreach (var v in violations.EnumerateArray())
        {
            var impact = v.GetProperty("impact").GetString();
            var line = $"{view}: {impact} {v.GetProperty("id").GetString()}: {string.Join("; ", v.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()))}";
            output.WriteLine(line);
            if (impact is "serious" or "critical")
            {
                found.Add(line);
            }
        }
        output.WriteLine($"{view}: axe found {violations.GetArrayLength()} violation(s)");
        return found;
    }

    /// <summary>The contrast ratio (WCAG 2.2 relative luminance) of an element's border against the page behind it.</summary>
    private static async Task<double> BorderContrastAsync(IPage page, string selector)
    {
        var colours = await page.EvalOnSelectorAsync<string[]>(selector, """
            (e) => {
              let back = e.parentElement;
              while (back && getComputedStyle(back).backgroundColor.replace(/\s/g, '').match(/rgba\(\d+,\d+,\d+,0\)|transparent/)) back = back.parentElement;
              return [getComputedStyle(e).borderTopColor, getComputedStyle(back || document.documentElement).backgroundColor];
            }
            """);
        return Ratio(Luminance(colours[0]), Luminance(colours[1]));
    }

    private static double Luminance(string rgb)
    {
        var parts = rgb[(rgb.IndexOf('(') + 1)..rgb.IndexOf(')')].Split(',').Take(3)
            .Select(p => double.Parse(p.Trim(), CultureInfo.InvariantCulture) / 255)
            .Select(c => c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4)).ToArray();
        return 0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2];
    }

    private static double Ratio(double a, double b) => (Math.Max(a, b) + 0.05) / (Math.Min(a, b) + 0.05);

    /// <summary>axe.min.js from tests/interop, installed from its lockfile (test.sh runs <c>npm ci</c>; so does this, once, if it is missing).</summary>
    internal static readonly Lazy<string> AxeScript = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Assent.slnx")))
        {
            dir = dir.Parent;
        }
        var interop = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root not found"), "tests", "interop");
        var script = Path.Combine(interop, "node_modules", "axe-core", "axe.min.js");
        if (!File.Exists(script))
        {
            using var npm = Process.Start(new ProcessStartInfo("npm", ["ci", "--no-audit", "--no-fund"]) { WorkingDirectory = interop })
                ?? throw new InvalidOperationException("npm must be on PATH to install tests/interop packages");
            npm.WaitForExit(TimeSpan.FromMinutes(3));
            Assert.True(File.Exists(script), $"npm ci in {interop} did not install axe-core");
        }
        return script;
    });
}
