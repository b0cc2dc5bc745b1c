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
    public async Task An_export_cut_shorter_than_its_checkpoint_fails_and_a_longer_one_must_pass_through_an_older_checkpoints_head()
    {
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        var invite = Steps.SingleJsonObject(await box.RunAsync("admin", "invite", "root", "--admin", "--data", box.Data, "--issuer", box.Url, "--json"));
        await Steps.EnrollAsync(box, invite.GetProperty("code").GetString()!);
        var earlier = JsonNode.Parse((await box.RunAsync("audit", "export", "--json")).Stdout)!.AsObject();
        var olderCheckpoint = earlier["checkpoint"]!.DeepClone().AsObject();
        await Steps.CreateAgentAsync(box, "root");
        var exported = await box.RunAsync("audit", "export", "--json");
        var export = JsonNode.Parse(exported.Stdout)!.AsObject();
        var entries = export["entries"]!.AsArray();
        var size = export["checkpoint"]!["size"]!.GetValue<long>();
        Assert.True(entries.Count == size && olderCheckpoint["size"]!.GetValue<long>() < size, exported.ToString());
        var file = Path.Combine(box.Home, "audit.json");

        // The tail cut off: every remaining link still holds, only the checkpoint shows the loss.
        var cut = export.DeepClone().AsObject();
        cut["entries"]!.AsArray().RemoveAt(entries.Count - 1);
        await File.WriteAllTextAsync(file, cut.ToJsonString());
        var truncated = await box.RunAsync("audit", "verify", file);
        Assert.True(truncated.ExitCode == 1, truncated.ToString());
        Assert.Contains($"broken at entry {size}", truncated.Stderr);
        Assert.Contains("cut from the end", truncated.Stderr);

        // Against the checkpoint a verifier kept from before, the longer chain must pass through its head.
        var longer = export.DeepClone().AsObject();
        longer["checkpoint"] = olderCheckpoint.DeepClone();
        await File.WriteAllTextAsync(file, longer.ToJsonString());
        var extended = await box.RunAsync("audit", "verify", file);
        Assert.True(extended.ExitCode == 0, extended.ToString());

        var head = Protocol.Base64Url.Decode(olderCheckpoint["head"]!.GetValue<string>());
        head[0] ^= 0x01;
        longer["checkpoint"]!["head"] = Protocol.Base64Url.Encode(head);
        await File.WriteAllTextAsync(file, longer.ToJsonString());
        var rewritten = await box.RunAsync("audit", "verify", file);
        Assert.True(rewritten.ExitCode == 1, rewritten.ToString());
        Assert.Contains($"broken at entry {olderCheckpoint["size"]}", rewritten.Stderr);
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
