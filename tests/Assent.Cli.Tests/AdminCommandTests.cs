namespace Assent.Cli.Tests;

public sealed class AdminCommandTests
{
    [Fact]
    public async Task Admin_invite_json_prints_one_json_object_with_code_link_and_handle()
    {
        await using var box = new CliSandbox();

        var invite = Steps.SingleJsonObject(await box.RunAsync("admin", "invite", "alice", "--admin", "--data", box.Data, "--issuer", box.Url, "--json"));

        var code = invite.GetProperty("code").GetString()!;
        Assert.Equal("alice", invite.GetProperty("handle").GetString());
        Assert.Equal($"{box.Url}/app/enroll?code={code}", invite.GetProperty("link").GetString());
        Assert.True(invite.GetProperty("admin").GetBoolean());
    }

    [Fact]
    public async Task Admin_invite_with_a_bad_handle_exits_64_with_a_clear_message()
    {
        await using var box = new CliSandbox();

        var result = await box.RunAsync("admin", "invite", "Alice Smith!", "--data", box.Data, "--json");

        Assert.Equal(64, result.ExitCode);
        Assert.Equal("", result.Stdout);
        Assert.Contains("not a valid handle", result.Stderr);
        Assert.Contains("a-z, 0-9", result.Stderr);
    }

    [Fact]
    public async Task Admin_agent_create_json_prints_an_agt_client_id_and_a_sec_secret()
    {
        await using var box = new CliSandbox();
        await Steps.InviteAsync(box, "alice");

        var agent = await Steps.CreateAgentAsync(box, "alice");

        Assert.StartsWith("agt_", agent.ClientId);
        Assert.StartsWith("sec_", agent.ClientSecret);
    }

    [Fact]
    public async Task Admin_agent_create_refuses_a_name_the_owner_already_uses_and_allows_it_for_another_owner()
    {
        await using var box = new CliSandbox();
        await Steps.InviteAsync(box, "alice");
        await Steps.InviteAsync(box, "bob");
        var first = await Steps.CreateAgentAsync(box, "alice");

        var again = await box.RunAsync("admin", "agent", "create", "--owner", "alice", "--name", " Deploy-Bot ", "--scopes", "approve:action", "--data", box.Data);
        var elsewhere = await Steps.CreateAgentAsync(box, "bob");

        Assert.True(again.ExitCode == 64, again.ToString());
        Assert.Equal("", again.Stdout);
        Assert.Contains($"alice already has an active agent named 'Deploy-Bot' ({first.ClientId})", again.Stderr);
        Assert.NotEqual(first.ClientId, elsewhere.ClientId);
    }

    [Fact]
    public async Task Admin_agent_create_for_an_unknown_owner_says_to_invite_them_first()
    {
        await using var box = new CliSandbox();
        await Steps.InviteAsync(box, "alice");

        var result = await box.RunAsync("admin", "agent", "create", "--owner", "nobody", "--name", "bot", "--scopes", "x", "--data", box.Data);

        Assert.Equal(64, result.ExitCode);
        Assert.Contains("assent admin invite nobody", result.Stderr);
    }

    [Fact]
    public async Task A_missing_required_option_is_a_usage_error_that_points_to_help()
    {
        await using var box = new CliSandbox();

        var result = await box.RunAsync("admin", "agent", "create", "--owner", "alice");

        Assert.Equal(64, result.ExitCode);
        Assert.Contains("assent admin agent create --help", result.Stderr);
    }
}
