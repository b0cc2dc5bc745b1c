namespace Assent.Cli.Tests;

/// <summary><c>assent policy add|list|rm|test</c> offline on the data directory (docs/cli.md §17, docs/policies.md).</summary>
public sealed class PolicyCommandTests
{
    [Fact]
    public async Task Policy_add_list_test_and_rm_work_offline_and_the_first_match_wins_exactly_at_the_threshold()
    {
        await using var box = new CliSandbox();
        foreach (var handle in new[] { "alice", "bob", "carol" })
        {
            await Steps.InviteAsync(box, handle);
        }
        var large = Steps.SingleJsonObject(await box.RunAsync("policy", "add", "treasury-large", "--position", "20", "--agent", "agt_pay", "--type", "payment",
            "--currency", "usd", "--amount-over", "10000", "--approvers", "alice,bob,carol", "--quorum", "2", "--data", box.Data, "--json"));
        Assert.Equal("quorum", large.GetProperty("requires").GetString());
        Assert.Equal("10000.00", large.GetProperty("amount_over").GetString());
        Assert.Equal(["alice", "bob", "carol"], large.GetProperty("approvers").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(1, large.GetProperty("version").GetInt32());
        var freeze = await box.RunAsync("policy", "add", "payroll-freeze", "--position", "10", "--agent", "agt_pay", "--scope", "payroll:write", "--requires", "deny",
            "--data", box.Data);
        Assert.True(freeze.ExitCode == 0, freeze.ToString());
        Assert.Contains("payroll-freeze@1", freeze.Stdout);

        var list = Steps.SingleJsonObject(await box.RunAsync("policy", "list", "--data", box.Data, "--json")).GetProperty("policies");
        Assert.Equal(["payroll-freeze", "treasury-large"], list.EnumerateArray().Select(p => p.GetProperty("name").GetString()));

        var over = Steps.SingleJsonObject(await box.RunAsync("policy", "test", "--agent", "agt_pay", "--detail",
            """{"type":"payment","amount":"10000.01","currency":"USD"}""", "--data", box.Data, "--json"));
        Assert.Equal("treasury-large", over.GetProperty("policy").GetProperty("name").GetString());
        var at = Steps.SingleJsonObject(await box.RunAsync("policy", "test", "--agent", "agt_pay", "--detail",
            """{"type":"payment","amount":10000.00,"currency":"USD"}""", "--data", box.Data, "--json"));
        Assert.Equal("one", at.GetProperty("requires").GetString());
        Assert.False(at.TryGetProperty("policy", out _));
        // Both match a large payroll payment; the lower position is tried first.
        var both = await box.RunAsync("policy", "test", "--agent", "agt_pay", "--scope", "openid payroll:write", "--detail",
            """[{"type":"payment","amount":"50000","currency":"USD"}]""", "--data", box.Data);
        Assert.True(both.ExitCode == 0, both.ToString());
        Assert.Contains("payroll-freeze@1", both.Stdout);
        Assert.Contains("denied", both.Stdout);

        var removed = await box.RunAsync("policy", "rm", "payroll-freeze", "--data", box.Data);
        Assert.True(removed.ExitCode == 0, removed.ToString());
        var again = await box.RunAsync("policy", "rm", "payroll-freeze", "--data", box.Data);
        Assert.Equal(64, again.ExitCode);
    }

    [Fact]
    public async Task Policy_add_refuses_an_unknown_user_an_impossible_quorum_or_an_inexact_amount_with_exit_64_and_stores_nothing()
    {
        await using var box = new CliSandbox();
        await Steps.InviteAsync(box, "alice");
        await Steps.InviteAsync(box, "bob");

        var unknown = await box.RunAsync("policy", "add", "two-man", "--approvers", "alice,mallory", "--quorum", "2", "--data", box.Data, "--json");
        Assert.Equal(64, unknown.ExitCode);
        Assert.Equal("", unknown.Stdout);
        Assert.Contains("mallory", unknown.Stderr);

        var impossible = await box.RunAsync("policy", "add", "two-man", "--approvers", "alice,bob,alice", "--quorum", "3", "--data", box.Data, "--json");
        Assert.Equal(64, impossible.ExitCode);
        Assert.Contains("3 of 2", impossible.Stderr);

        var inexact = await box.RunAsync("policy", "add", "big", "--currency", "USD", "--amount-over", "100.001", "--requires", "deny", "--data", box.Data);
        Assert.Equal(64, inexact.ExitCode);
        Assert.Contains("2 decimal places", inexact.Stderr);

        var badDetail = await box.RunAsync("policy", "test", "--detail", "{not json", "--data", box.Data);
        Assert.Equal(64, badDetail.ExitCode);

        var list = Steps.SingleJsonObject(await box.RunAsync("policy", "list", "--data", box.Data, "--json"));
        Assert.Equal(0, list.GetProperty("policies").GetArrayLength());
    }
}
