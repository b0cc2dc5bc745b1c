namespace Assent.Cli.Tests;

/// <summary><c>assent mandate …</c> (docs/cli.md §19): an agent asks for a mandate, a covered payment needs no device, the human lists and revokes.</summary>
public sealed class MandateCommandTests
{
    [Fact]
    public async Task An_agent_asks_for_a_mandate_a_covered_payment_needs_no_device_and_the_human_lists_and_revokes_it()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        var agent = await Steps.CreateAgentAsync(box, "alice");
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        box.Variables["ASSENT_SERVER"] = box.Url;
        box.Variables["ASSENT_CLIENT_ID"] = agent.ClientId;
        box.Variables["ASSENT_CLIENT_SECRET"] = agent.ClientSecret;

        var refused = await box.RunAsync("mandate", "request", "--user", "alice", "--currency", "USD", "--per-payment", "-1", "--total", "5", "--period", "day");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("per_payment", refused.Stderr);

        var asking = box.RunAsync("mandate", "request", "--user", "alice", "--currency", "USD", "--per-payment", "1", "--total", "5", "--period", "day",
            "--payee", "api.example.com");
        await Steps.DecideWhenItArrivesAsync(box);
        var asked = await asking;
        Assert.True(asked.ExitCode == 0, asked.ToString());
        var id = asked.Stdout.Trim();
        Assert.StartsWith("mnd_", id);

        // Within the limits: approved at once, no device involved.
        var paid = await box.RunAsync("approve", "Pay 0.40 USD", "--user", "alice", "--scope", "approve:action", "--timeout", "5", "--json",
            "--detail", """{"type":"payment","amount":"0.40","currency":"USD","payee":"api.example.com"}""");
        Assert.True(paid.ExitCode == 0, paid.ToString());

        var login = box.RunAsync("auth", "login", "--server", box.Url, "--user", "alice", "--json");
        await Steps.DecideWhenItArrivesAsync(box);
        Steps.SingleJsonObject(await login);
        var listed = Steps.SingleJsonObject(await box.RunAsync("mandate", "list", "--json")).GetProperty("mandates");
        var mine = Assert.Single(listed.EnumerateArray());
        Assert.Equal(id, mine.GetProperty("id").GetString());
        Assert.Equal("active", mine.GetProperty("status").GetString());
        Assert.Equal("0.40", mine.GetProperty("spent").GetString());
        Assert.Equal("4.60", mine.GetProperty("remaining").GetString());
        var shown = Steps.SingleJsonObject(await box.RunAsync("mandate", "show", id, "--json"));
        Assert.Equal("0.40", Assert.Single(shown.GetProperty("payments").EnumerateArray()).GetProperty("amount").GetString());

        var revoked = await box.RunAsync("mandate", "revoke", id);
        Assert.True(revoked.ExitCode == 0, revoked.ToString());
        var again = await box.RunAsync("mandate", "revoke", id);
        Assert.True(again.ExitCode == 1, again.ToString());
        Assert.Equal("revoked", Steps.SingleJsonObject(await box.RunAsync("mandate", "show", id, "--json")).GetProperty("status").GetString());
    }
}
