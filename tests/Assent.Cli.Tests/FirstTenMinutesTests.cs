using System.Net;
using System.Text.Json;

namespace Assent.Cli.Tests;

/// <summary>What a newcomer meets first, as real processes: saved agents, offline commands, wrong turns and their messages.</summary>
public sealed class FirstTenMinutesTests
{
    [Fact]
    public async Task A_saved_agent_profile_is_used_by_approve_by_default_by_name_and_through_ASSENT_PROFILE()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        var enrolled = await Steps.EnrollAsync(box, code);
        var login = box.RunAsync("auth", "login", "--server", box.Url, "--user", "alice", "--json");
        await Steps.DecideWhenItArrivesAsync(box);
        Steps.SingleJsonObject(await login);
        var setup = box.RunAsync("auth", "setup-agent", "--name", "Bot Two", "--save");
        await Steps.DecideWhenItArrivesAsync(box);
        var saved = await setup;
        Assert.True(saved.ExitCode == 0, saved.ToString());
        // The profile id is the name made safe to type.
        Assert.Contains("saved it as agent profile 'bot-two'", saved.Stdout);
        Assert.Contains("--agent bot-two", saved.Stdout);

        // No server, no credentials, no user anywhere but the saved profile: it asks its owner.
        var byDefault = box.RunAsync("approve", "Deploy v2.3", "--scope", "approve:action", "--timeout", "60");
        await Steps.DecideWhenItArrivesAsync(box);
        var approved = await byDefault;
        Assert.True(approved.ExitCode == 0, approved.ToString());
        var token = approved.Stdout.Trim();
        var claims = Steps.SingleJsonObject(await box.RunAsync("verify", token, "--issuer", box.Url, "--scope", "approve:action", "--json"));
        Assert.Equal(enrolled.GetProperty("user_did").GetString(), claims.GetProperty("sub").GetString());

        // --agent NAME (as typed for setup-agent) wins over credentials in the environment.
        box.Variables["ASSENT_CLIENT_ID"] = "agt_someoneelse";
        box.Variables["ASSENT_CLIENT_SECRET"] = "sec_wrong";
        var named = box.RunAsync("approve", "Deploy v2.4", "--scope", "approve:action", "--agent", "Bot Two", "--timeout", "60");
        await Steps.DecideWhenItArrivesAsync(box);
        var namedResult = await named;
        Assert.True(namedResult.ExitCode == 0, namedResult.ToString());
        var unknown = await box.RunAsync("approve", "x", "--agent", "nobody");
        Assert.Equal(64, unknown.ExitCode);
        Assert.Contains("no saved agent profile 'nobody'", unknown.Stderr);
        var both = await box.RunAsync("approve", "x", "--agent", "bot-two", "--client-id", "agt_x", "--client-secret", "sec_x");
        Assert.Equal(64, both.ExitCode);

        // ASSENT_PROFILE naming the agent selects it for approve and leaves the human commands on their default.
        box.Variables.Remove("ASSENT_CLIENT_ID");
        box.Variables.Remove("ASSENT_CLIENT_SECRET");
        box.Variables["ASSENT_PROFILE"] = "bot-two";
        var status = await box.RunAsync("auth", "status");
        Assert.True(status.ExitCode == 0, status.ToString());
        var viaProfile = box.RunAsync("approve", "Deploy v2.5", "--scope", "approve:action", "--timeout", "60", "--json");
        await Steps.DecideWhenItArrivesAsync(box);
        Assert.True(Steps.SingleJsonObject(await viaProfile).GetProperty("approved").GetBoolean());

        // The same server under another name is another issuer: said as such, with both values, exit 1.
        var otherName = await box.RunAsync("verify", token, "--issuer", $"http://127.0.0.1:{box.Port}", "--scope", "approve:action");
        Assert.True(otherName.ExitCode == 1, otherName.ToString());
        Assert.Contains("invalid_issuer", otherName.Stderr);
        Assert.Contains(box.Url, otherName.Stderr);
        Assert.Contains($"http://127.0.0.1:{box.Port}", otherName.Stderr);
    }

    [Fact]
    public async Task Approve_that_times_out_says_the_request_expired_and_leaves_nothing_pending()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        var did = (await Steps.EnrollAsync(box, code)).GetProperty("user_did").GetString()!;
        var agent = await Steps.CreateAgentAsync(box, "alice");

        var timedOut = await box.RunAsync("approve", "Nobody answers", "--scope", "approve:action", "--timeout", "2", "--json",
            "--server", box.Url, "--client-id", agent.ClientId, "--client-secret", agent.ClientSecret, "--user", did);

        Assert.Equal(2, timedOut.ExitCode);
        Assert.Equal("expired", Steps.SingleJsonObject(timedOut with { ExitCode = 0 }).GetProperty("status").GetString());
        Assert.Contains("expired", timedOut.Stderr);
        Assert.DoesNotContain("pending", timedOut.Stderr);
        var pending = Steps.SingleJsonObject(await box.RunAsync("device", "approve", "--all", "--yes", "--json"));
        Assert.Equal(0, pending.GetProperty("decided").GetArrayLength());
    }

    [Fact]
    public async Task Offline_commands_never_create_a_data_directory_and_take_links_from_the_data_the_server_used()
    {
        await using var box = new CliSandbox();
        var nowhere = Path.Combine(box.Home, "not-here");

        var agent = await box.RunAsync("admin", "agent", "create", "--owner", "admin", "--name", "bot", "--scopes", "approve:action", "--data", nowhere);
        var rotate = await box.RunAsync("admin", "keys", "rotate", "--data", nowhere);
        var audit = await box.RunAsync("audit", "verify", "--data", nowhere);

        foreach (var refused in new[] { agent, rotate, audit })
        {
            Assert.True(refused.ExitCode == 64, refused.ToString());
            Assert.Contains(nowhere, refused.Stderr);
        }
        Assert.Contains($"no Assent data in {nowhere}", agent.Stderr);
        Assert.False(Directory.Exists(nowhere));

        // The server starts on its own port; an invite made offline afterwards links to that server, not to the default port.
        await box.StartServerAsync();
        var invite = Steps.SingleJsonObject(await box.RunAsync("admin", "invite", "bob", "--data", box.Data, "--json"));
        Assert.StartsWith(box.Url + "/app/enroll?code=", invite.GetProperty("link").GetString());
        Assert.Contains($"--server {box.Url} ", invite.GetProperty("enroll_command").GetString());
    }

    [Fact]
    public async Task A_misspelled_command_gets_the_nearest_one_and_a_missing_one_the_list()
    {
        await using var box = new CliSandbox();

        var typo = await box.RunAsync("aprove", "Deploy");
        var nested = await box.RunAsync("device", "lst");
        var missing = await box.RunAsync("device");

        Assert.Equal(64, typo.ExitCode);
        Assert.Contains("Did you mean 'assent approve'?", typo.Stderr);
        Assert.DoesNotContain("Required command", typo.Stderr);
        Assert.Contains("Did you mean 'assent device list'?", nested.Stderr);
        Assert.Equal(64, missing.ExitCode);
        Assert.Contains("'assent device' needs a command: enroll, list", missing.Stderr);
    }

    [Fact]
    public async Task Device_watch_takes_one_key_without_Enter_and_says_one_line_per_decision()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        var agent = await Steps.CreateAgentAsync(box, "alice");
        using var watch = box.Start(terminal: true, "device", "watch");
        await watch.WaitForAsync("Ctrl+C stops");

        var first = await Steps.BackchannelAuthorizeAsync(box, agent, "alice", "Deploy v1");
        await watch.WaitForAsync("Approve? [y]es");
        await watch.TypeAsync("y");
        await watch.WaitForAsync("approved.");
        // The second request's prompt comes after the first one's settled event on the stream: by then
        // anything the watch had to say about the first has been said.
        var second = await Steps.BackchannelAuthorizeAsync(box, agent, "alice", "Deploy v2");
        await watch.WaitForAsync("Approve? [y]es", times: 2);
        await watch.TypeAsync("n");
        await watch.WaitForAsync("denied.");

        Assert.Equal(1, watch.Count("approved"));
        Assert.DoesNotContain("is now", watch.Output);
        Assert.Equal(200, (await Steps.RedeemAsync(box, agent, first)).Status);
        var refused = await Steps.RedeemAsync(box, agent, second);
        Assert.Equal("access_denied", refused.Body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_root_is_a_landing_page_and_OAuth_errors_keep_their_quotes()
    {
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        var code = await Steps.InviteAsync(box, "alice");
        await Steps.EnrollAsync(box, code);
        var agent = await Steps.CreateAgentAsync(box, "alice");

        using var root = await box.Http.GetAsync(box.Url + "/");
        var page = await root.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("text/html", root.Content.Headers.ContentType?.MediaType);
        Assert.Contains("href=\"/app\"", page);
        Assert.Contains("href=\"/.well-known/openid-configuration\"", page);

        using var request = new HttpRequestMessage(HttpMethod.Post, box.Url + "/oauth/bc-authorize")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["scope"] = "approve:action", ["login_hint"] = "alice", ["binding_message"] = "x" }),
        };
        request.Headers.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{agent.ClientId}:{agent.ClientSecret}")));
        using var refused = await box.Http.SendAsync(request);
        var raw = await refused.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("'openid'", raw);
        Assert.DoesNotContain("\\u0027", raw);
        Assert.Equal("invalid_scope", JsonDocument.Parse(raw).RootElement.GetProperty("error").GetString());

        // The container's health check.
        var healthy = await box.RunAsync("health", "--server", box.Url);
        var missing = await box.RunAsync("health", "--server", box.Url, "--path", "/no-such-endpoint");
        box.StopServer();
        var down = await box.RunAsync("health", "--server", box.Url);
        Assert.True(healthy.ExitCode == 0, healthy.ToString());
        Assert.StartsWith("200 ", healthy.Stdout);
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal(69, down.ExitCode);
    }

    [Fact]
    public async Task Help_and_usage_name_the_program_assent()
    {
        await using var box = new CliSandbox();

        var help = await box.RunAsync("--help");

        Assert.Contains("Usage:\n  assent [command] [options]", help.Stdout.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("Assent.Cli", help.Stdout);
    }
}
