using System.Text.Json.Nodes;

namespace Assent.Cli.Tests;

public sealed class AuditCommandTests
{
    [Fact]
    public async Task Audit_export_verifies_and_an_edited_entry_is_named()
    {
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        var invite = Steps.SingleJsonObject(await box.RunAsync("admin", "invite", "root", "--admin", "--data", box.Data, "--issuer", box.Url, "--json"));
        await Steps.EnrollAsync(box, invite.GetProperty("code").GetString()!);
        await Steps.CreateAgentAsync(box, "root");

        var exported = await box.RunAsync("audit", "export", "--json");
        var export = JsonNode.Parse(exported.Stdout)!.AsObject();
        var entries = export["entries"]!.AsArray();
        Assert.True(entries.Count >= 3, exported.ToString());
        var file = Path.Combine(box.Home, "audit.json");
        await File.WriteAllTextAsync(file, export.ToJsonString());
        var intact = await box.RunAsync("audit", "verify", file);
        Assert.True(intact.ExitCode == 0, intact.ToString());

        var second = entries[1]!.AsObject();
        var edited = Protocol.Base64Url.Decode(second["entry"]!.GetValue<string>());
        edited[^3] ^= 0x01;
        second["entry"] = Protocol.Base64Url.Encode(edited);
        await File.WriteAllTextAsync(file, export.ToJsonString());
        var broken = await box.RunAsync("audit", "verify", file);
        Assert.True(broken.ExitCode == 1, broken.ToString());
        Assert.Contains($"broken at entry {second["seq"]}", broken.Stderr);
    }

    [Fact]
    public async Task Device_watch_without_a_terminal_is_a_usage_error()
    {
        await using var box = new CliSandbox();

        var watch = await box.RunAsync("device", "watch");

        Assert.True(watch.ExitCode == 64, watch.ToString());
        Assert.Contains("assent device approve", watch.Stderr);
    }
}
