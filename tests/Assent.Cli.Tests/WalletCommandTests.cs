namespace Assent.Cli.Tests;

/// <summary><c>assent wallet create|show [--json]</c> (docs/cli.md §18, docs/payments.md §8): a signed-in human makes and reads their payment wallet.</summary>
public sealed class WalletCommandTests
{
    [Fact]
    public async Task A_signed_in_human_makes_one_wallet_and_reads_it_back_as_text_and_as_json()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        var login = box.RunAsync("auth", "login", "--server", box.Url, "--user", "alice", "--json");
        await Steps.DecideWhenItArrivesAsync(box);
        Steps.SingleJsonObject(await login);

        // None yet: a clear refusal naming the way out.
        var none = await box.RunAsync("wallet", "show");
        Assert.True(none.ExitCode == 1, none.ToString());
        Assert.Contains("assent wallet create", none.Stderr);

        var created = Steps.SingleJsonObject(await box.RunAsync("wallet", "create", "--json"));
        var address = created.GetProperty("address").GetString()!;
        Assert.Matches("^0x[0-9a-fA-F]{40}$", address);
        var networks = created.GetProperty("networks").EnumerateArray().Select(n => n.GetProperty("network").GetString()).ToList();
        Assert.Equal(["eip155:8453", "eip155:84532"], networks);
        Assert.All(created.GetProperty("networks").EnumerateArray(), n => Assert.Contains("USDC", n.GetProperty("assets").EnumerateArray().Select(a => a.GetString())));

        // Asking again makes nothing new: the same wallet, said so.
        var again = await box.RunAsync("wallet", "create");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("already", again.Stdout);
        Assert.Contains("Address: " + address, again.Stdout);

        var shown = Steps.SingleJsonObject(await box.RunAsync("wallet", "show", "--json"));
        Assert.Equal(address, shown.GetProperty("address").GetString());
        var text = await box.RunAsync("wallet", "show");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("Address: " + address, text.Stdout);
        Assert.Contains("Base Sepolia (eip155:84532): USDC", text.Stdout);
        // The key itself is never shown, in either form.
        Assert.DoesNotContain("key", shown.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Without_a_signed_in_session_wallet_commands_say_how_to_sign_in()
    {
        await using var box = new CliSandbox();
        await Steps.InviteAsync(box, "bob");
        await box.StartServerAsync();
        box.Variables["ASSENT_SERVER"] = box.Url;

        var refused = await box.RunAsync("wallet", "create", "--json");

        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("assent auth login", refused.Stderr);
    }
}
