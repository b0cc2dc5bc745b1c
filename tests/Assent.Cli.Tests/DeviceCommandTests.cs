using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Cli.Tests;

public sealed class DeviceCommandTests
{
    [Fact]
    public async Task Device_enroll_saves_a_private_key_file_and_the_same_code_cannot_be_used_twice()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();

        var device = await Steps.EnrollAsync(box, code);
        var again = await box.RunAsync("device", "enroll", "--server", box.Url, "--code", code);

        var deviceId = device.GetProperty("device_id").GetString()!;
        Assert.StartsWith("dev_", deviceId);
        Assert.StartsWith("did:web:localhost%3A", device.GetProperty("user_did").GetString());
        var dir = Path.Combine(box.Home, ".assent", "devices");
        var file = Path.Combine(dir, deviceId + ".json");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        using var stored = JsonDocument.Parse(File.ReadAllText(file));
        Assert.Equal(box.Url, stored.RootElement.GetProperty("server").GetString());
        Assert.Equal(43, stored.RootElement.GetProperty("seed").GetString()!.Length);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("already used", again.Stderr);
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public async Task Approving_with_the_cli_lets_the_agent_redeem_an_access_token()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        var agent = await Steps.CreateAgentAsync(box, "alice");
        var authReqId = await Steps.BackchannelAuthorizeAsync(box, agent, "alice", "Pay Zoë 125.00 EUR");

        var approved = Steps.SingleJsonObject(await box.RunAsync("device", "approve", "--all", "--yes", "--json"));
        var (status, token) = await Steps.RedeemAsync(box, agent, authReqId);

        var decided = Assert.Single(approved.GetProperty("decided").EnumerateArray());
        Assert.Equal("approve", decided.GetProperty("decision").GetString());
        Assert.Equal("approved", decided.GetProperty("state").GetString());
        Assert.Equal(200, status);
        Assert.False(string.IsNullOrEmpty(token.GetProperty("access_token").GetString()));
        var again = await box.RunAsync("device", "approve", decided.GetProperty("id").GetString()!, "--yes");
        Assert.Equal(1, again.ExitCode);
    }

    [Fact]
    public async Task Denying_with_the_cli_makes_the_token_endpoint_answer_access_denied()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        var agent = await Steps.CreateAgentAsync(box, "alice");
        var authReqId = await Steps.BackchannelAuthorizeAsync(box, agent, "alice", "Delete the production database");

        var shown = await box.RunAsync("device", "approve", "--all", "--deny", "--yes");
        var (status, error) = await Steps.RedeemAsync(box, agent, authReqId);

        Assert.True(shown.ExitCode == 0, shown.ToString());
        Assert.Contains("message:  Delete the production database", shown.Stdout);
        Assert.Contains("\"recipient\": \"Zoë\"", shown.Stdout);
        Assert.Contains("Denied", shown.Stdout);
        Assert.Equal(400, status);
        Assert.Equal("access_denied", error.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Device_approve_shows_each_hidden_or_reordering_character_of_a_stored_request_as_its_code_point()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        var device = await Steps.EnrollAsync(box, code);
        var agent = await Steps.CreateAgentAsync(box, "alice");
        // A request stored before the server refused such text (or by another server): written straight into its database.
        const string message = "Pay ACME \u202E00.521 EUR\U000E0041";
        const string details = """[{"type":"payment","amount":"\u202e00.521","\u202eyek":"x","memo":"\u001b[31mred\u200b"}]""";
        var now = DateTimeOffset.UtcNow;
        var id = Ids.Ordered("apr", now);
        var payload = ApprovalPayload.Build(box.Url, id, device.GetProperty("user_did").GetString()!, agent.ClientId, "deploy\u2066bot", "openid approve:action",
            message, Encoding.UTF8.GetBytes(details), now.ToUnixTimeSeconds(), now.AddMinutes(5).ToUnixTimeSeconds(), "n");
        await using (var store = await StoreFactory.OpenAsync(new AssentOptions { DataDirectory = box.Data }, TimeProvider.System, default))
        {
            await store.Approvals.CreateAsync(new ApprovalRecord(id, SHA256.HashData(Encoding.UTF8.GetBytes(id)), ApprovalKinds.Ciba, agent.ClientId,
                device.GetProperty("user_id").GetString()!, "openid approve:action", message, details, null, payload, ApprovalState.Pending,
                now.ToUnixTimeMilliseconds(), now.AddMinutes(5).ToUnixTimeMilliseconds()), new AuditEvent(AuditTypes.ApprovalCreated, null, agent.ClientId, id), default);
        }

        var shown = await box.RunAsync("device", "approve", id, "--deny", "--yes");

        Assert.True(shown.ExitCode == 0, shown.ToString());
        Assert.Contains("  from:     deploy⟨U+2066⟩bot (", shown.Stdout);
        Assert.Contains("  message:  Pay ACME ⟨U+202E⟩00.521 EUR⟨U+E0041⟩\n", shown.Stdout);
        Assert.Contains("\"amount\": \"⟨U+202E⟩00.521\"", shown.Stdout);
        Assert.Contains("\"⟨U+202E⟩yek\": \"x\"", shown.Stdout);
        Assert.Contains("\"memo\": \"⟨U+001B⟩[31mred⟨U+200B⟩\"", shown.Stdout);
        Assert.Contains($"Denied {id}", shown.Stdout);
        foreach (var hidden in new[] { "\u202E", "\u2066", "\u001B", "\u200B", "\U000E0041" })
        {
            Assert.DoesNotContain(hidden, shown.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Device_commands_against_a_stopped_server_exit_69()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        box.StopServer();

        var list = await box.RunAsync("device", "list");
        var approve = await box.RunAsync("device", "approve", "--all", "--yes", "--json");
        var enroll = await box.RunAsync("device", "enroll", "--server", box.Url, "--code", "AAAA-BBBB-CCCC-DDDD");

        foreach (var result in new[] { list, approve, enroll })
        {
            Assert.True(result.ExitCode == 69, result.ToString());
            Assert.Contains($"cannot reach the Assent server at {box.Url}", result.Stderr);
            Assert.Contains("is it running?", result.Stderr);
            Assert.Equal("", result.Stdout);
        }
    }

    [Fact]
    public async Task Device_list_shows_the_local_device_and_the_users_devices_on_the_server()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        await box.StartServerAsync();
        var deviceId = (await Steps.EnrollAsync(box, code)).GetProperty("device_id").GetString();

        var list = Steps.SingleJsonObject(await box.RunAsync("device", "list", "--json"));

        var local = Assert.Single(list.GetProperty("local").EnumerateArray());
        Assert.Equal(deviceId, local.GetProperty("device_id").GetString());
        var remote = Assert.Single(list.GetProperty("server").GetProperty("devices").EnumerateArray());
        Assert.Equal(deviceId, remote.GetProperty("id").GetString());
        Assert.Equal("alice", list.GetProperty("server").GetProperty("handle").GetString());
    }

    [Fact]
    public async Task Approve_without_yes_when_stdin_is_not_a_terminal_exits_64_and_says_to_pass_yes()
    {
        await using var box = new CliSandbox();

        var result = await box.RunAsync("device", "approve", "--all");

        Assert.Equal(64, result.ExitCode);
        Assert.Contains("pass --yes", result.Stderr);
    }
}
