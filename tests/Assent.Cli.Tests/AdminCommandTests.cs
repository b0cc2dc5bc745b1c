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
    public async Task Admin_client_create_json_prints_a_web_client_with_its_secret_once_or_none_for_a_public_one()
    {
        await using var box = new CliSandbox();
        await Steps.InviteAsync(box, "alice");

        var confidential = Steps.SingleJsonObject(await box.RunAsync("admin", "client", "create", "--name", "wiki", "--redirect-uri", "https://wiki.example.com/cb",
            "--redirect-uri", "http://localhost:3000/cb", "--post-logout-redirect-uri", "https://wiki.example.com/", "--id-token-alg", "RS256", "--data", box.Data, "--json"));
        var spa = Steps.SingleJsonObject(await box.RunAsync("admin", "client", "create", "--name", "spa", "--redirect-uri", "https://spa.example.com/cb", "--public",
            "--data", box.Data, "--json"));

        Assert.StartsWith("web_", confidential.GetProperty("client_id").GetString());
        Assert.StartsWith("sec_", confidential.GetProperty("client_secret").GetString());
        Assert.Equal(["https://wiki.example.com/cb", "http://localhost:3000/cb"], confidential.GetProperty("redirect_uris").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("RS256", confidential.GetProperty("id_token_signed_response_alg").GetString());
        Assert.Equal("client_secret_basic", confidential.GetProperty("token_endpoint_auth_method").GetString());
        Assert.False(spa.TryGetProperty("client_secret", out _));
        Assert.True(spa.GetProperty("public").GetBoolean());
        Assert.Equal("EdDSA", spa.GetProperty("id_token_signed_response_alg").GetString());
        Assert.Equal("none", spa.GetProperty("token_endpoint_auth_method").GetString());
    }

    [Fact]
    public async Task Admin_client_create_refuses_a_redirect_uri_that_is_not_https_or_has_a_fragment()
    {
        await using var box = new CliSandbox();
        await Steps.InviteAsync(box, "alice");

        var plain = await box.RunAsync("admin", "client", "create", "--name", "wiki", "--redirect-uri", "http://wiki.example.com/cb", "--data", box.Data);
        var fragment = await box.RunAsync("admin", "client", "create", "--name", "wiki", "--redirect-uri", "https://wiki.example.com/cb#x", "--data", box.Data);

        Assert.True(plain.ExitCode == 64, plain.ToString());
        Assert.Contains("must use https", plain.Stderr);
        Assert.True(fragment.ExitCode == 64, fragment.ToString());
        Assert.Contains("fragment", fragment.Stderr);
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
