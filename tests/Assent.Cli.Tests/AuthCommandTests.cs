using System.Text.Json;

namespace Assent.Cli.Tests;

public sealed class AuthCommandTests
{
    [Fact]
    public async Task Login_pushed_to_the_user_and_setup_agent_both_approved_on_the_device_give_a_session_and_working_agent_credentials()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        var device = await Steps.EnrollAsync(box, code);

        var login = box.RunAsync("auth", "login", "--server", box.Url, "--user", "alice", "--json");
        await Steps.DecideWhenItArrivesAsync(box);
        var signedIn = Steps.SingleJsonObject(await login);
        var status = Steps.SingleJsonObject(await box.RunAsync("auth", "status", "--json"));

        Assert.Equal($"alice@localhost:{box.Port}", signedIn.GetProperty("profile").GetString());
        Assert.Equal("alice", status.GetProperty("handle").GetString());
        Assert.Equal(device.GetProperty("user_did").GetString(), status.GetProperty("sub").GetString());
        Assert.Equal("assent-cli", status.GetProperty("client_id").GetString());
        Assert.Equal(box.Url, status.GetProperty("server").GetString());

        // An access token past its expiry is refreshed (and the refresh token rotated) before use.
        var file = Path.Combine(box.Home, ".assent", "profiles.json");
        var before = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!;
        var human = before["humans"]![signedIn.GetProperty("profile").GetString()!]!;
        var oldRefresh = human["refresh_token"]!.GetValue<string>();
        human["access_token_expires_at"] = DateTimeOffset.UtcNow.AddMinutes(-1);
        File.WriteAllText(file, before.ToJsonString());
        var refreshed = Steps.SingleJsonObject(await box.RunAsync("auth", "status", "--json"));
        Assert.True(refreshed.GetProperty("refreshed").GetBoolean());
        Assert.DoesNotContain(oldRefresh, File.ReadAllText(file));

        var setup = box.RunAsync("auth", "setup-agent", "--name", "bot", "--scopes", "approve:action", "--json", "--save");
        var decided = await Steps.DecideWhenItArrivesAsync(box);
        var agent = Steps.SingleJsonObject(await setup);
        Assert.Equal("approved", decided.GetProperty("state").GetString());
        Assert.Equal("bot", agent.GetProperty("name").GetString());
        Assert.Equal("alice", agent.GetProperty("owner").GetString());
        var credentials = new Agent(agent.GetProperty("client_id").GetString()!, agent.GetProperty("client_secret").GetString()!);
        var authReqId = await Steps.BackchannelAuthorizeAsync(box, credentials, "alice", "Deploy v2");
        Assert.False(string.IsNullOrEmpty(authReqId));

        using (var profiles = JsonDocument.Parse(File.ReadAllText(file)))
        {
            Assert.Equal(1, profiles.RootElement.GetProperty("version").GetInt32());
            Assert.Equal(signedIn.GetProperty("profile").GetString(), profiles.RootElement.GetProperty("defaults").GetProperty("human").GetString());
            Assert.Equal(credentials.ClientId, profiles.RootElement.GetProperty("agents").GetProperty("bot").GetProperty("client_id").GetString());
        }
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        var logout = await box.RunAsync("auth", "logout");
        var after = await box.RunAsync("auth", "status");
        Assert.True(logout.ExitCode == 0, logout.ToString());
        Assert.Equal(1, after.ExitCode);
        Assert.Contains("assent auth login", after.Stderr);
    }

    [Fact]
    public async Task Login_denied_on_the_device_exits_1_and_login_against_a_stopped_server_exits_69()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);

        var login = box.RunAsync("auth", "login", "--server", box.Url, "--user", "alice");
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        var denied = await login;
        box.StopServer();
        var down = await box.RunAsync("auth", "login", "--server", box.Url, "--user", "alice");

        Assert.Equal(1, denied.ExitCode);
        Assert.Contains("denied", denied.Stderr);
        Assert.Equal(69, down.ExitCode);
    }

    [Fact]
    public async Task Concurrent_profile_writers_never_corrupt_profiles_json_nor_lose_each_others_changes()
    {
        await using var box = new CliSandbox();
        var dir = Path.Combine(box.Home, ".assent");
        Directory.CreateDirectory(dir);
        var agents = Enumerable.Range(0, 10).ToDictionary(i => $"a{i}", i => (object)new
        {
            server = "http://localhost:8400", client_id = $"agt_{i}", client_secret = $"sec_{i}", name = $"a{i}", scopes = "openid", owner = "alice",
            created_at = DateTimeOffset.UtcNow,
        });
        var humans = Enumerable.Range(0, 2).ToDictionary(i => $"h{i}", i => (object)new
        {
            server = "http://localhost:8400", handle = $"h{i}", sub = $"did:web:localhost%3A8400:users:usr_{i}", scope = "openid session",
            access_token = "x", access_token_expires_at = DateTimeOffset.UtcNow, refresh_token = "rt_x", signed_in_at = DateTimeOffset.UtcNow,
        });
        var file = Path.Combine(dir, "profiles.json");
        File.WriteAllText(file, JsonSerializer.Serialize(new { version = 1, defaults = new { human = "h0" }, humans, agents }));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        // 20 processes at once: each delete is a read-modify-write that would resurrect others' deletions without the lock.
        var runs = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => i % 2 == 0
            ? box.RunAsync("profiles", "delete", $"a{i / 2}")
            : box.RunAsync("profiles", "use", $"h{i / 2 % 2}")));

        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.ToString()));
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        Assert.Empty(doc.RootElement.GetProperty("agents").EnumerateObject());
        Assert.Equal(2, doc.RootElement.GetProperty("humans").EnumerateObject().Count());
        Assert.Contains(doc.RootElement.GetProperty("defaults").GetProperty("human").GetString(), new[] { "h0", "h1" });
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        var listed = Steps.SingleJsonObject(await box.RunAsync("profiles", "list", "--json"));
        Assert.Equal(2, listed.GetProperty("humans").GetArrayLength());
        Assert.DoesNotContain("rt_x", listed.GetRawText());
    }

    [Fact]
    public async Task Profiles_json_readable_by_others_is_repaired_to_0600_with_a_warning()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        await using var box = new CliSandbox();
        var dir = Path.Combine(box.Home, ".assent");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "profiles.json");
        File.WriteAllText(file, """{"version":1,"defaults":{},"humans":{},"agents":{}}""");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        var listed = await box.RunAsync("profiles", "list");

        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Contains("warning:", listed.Stderr);
        Assert.Contains("0600", listed.Stderr);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
    }

    [Fact]
    public async Task Profiles_use_of_an_unknown_name_and_auth_commands_without_a_sign_in_exit_1_saying_what_to_do()
    {
        await using var box = new CliSandbox();

        var use = await box.RunAsync("profiles", "use", "nobody");
        var status = await box.RunAsync("auth", "status");
        var setup = await box.RunAsync("auth", "setup-agent", "--name", "bot");
        var usage = await box.RunAsync("auth", "setup-agent");

        Assert.Equal(1, use.ExitCode);
        Assert.Contains("assent profiles list", use.Stderr);
        Assert.Equal(1, status.ExitCode);
        Assert.Contains("assent auth login", status.Stderr);
        Assert.Equal(1, setup.ExitCode);
        Assert.Equal(64, usage.ExitCode);
    }
}
