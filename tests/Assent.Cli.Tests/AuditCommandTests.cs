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

        // A log rewritten from its first entry on, every hash recomputed: its links all hold, but it no longer passes
        // through the head the kept (signed) checkpoint commits to.
        var rewrittenLog = longer.DeepClone().AsObject();
        var previous = new byte[32];
        foreach (var node in rewrittenLog["entries"]!.AsArray())
        {
            var e = node!.AsObject();
            var bytes = Protocol.Base64Url.Decode(e["entry"]!.GetValue<string>());
            if (e["seq"]!.GetValue<long>() == 1)
            {
                // One millisecond later: still a well-formed entry 1, but not the one the server wrote.
                var text = System.Text.Encoding.UTF8.GetString(bytes);
                var ts = System.Text.RegularExpressions.Regex.Match(text, "\"ts\":([0-9]+)");
                Assert.True(ts.Success, text);
                bytes = System.Text.Encoding.UTF8.GetBytes(string.Concat(text.AsSpan(0, ts.Groups[1].Index), (long.Parse(ts.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), text.AsSpan(ts.Groups[1].Index + ts.Groups[1].Length)));
            }
            previous = System.Security.Cryptography.SHA256.HashData([.. previous, .. bytes]);
            e["entry"] = Protocol.Base64Url.Encode(bytes);
            e["hash"] = Protocol.Base64Url.Encode(previous);
        }
        await File.WriteAllTextAsync(file, rewrittenLog.ToJsonString());
        var rewritten = await box.RunAsync("audit", "verify", file);
        Assert.True(rewritten.ExitCode == 1, rewritten.ToString());
        Assert.Contains($"broken at entry {olderCheckpoint["size"]}", rewritten.Stderr);
        Assert.Contains("rewritten", rewritten.Stderr);
    }

    [Fact]
    public async Task A_checkpoint_counts_only_when_the_server_signed_exactly_its_fields()
    {
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        var invite = Steps.SingleJsonObject(await box.RunAsync("admin", "invite", "root", "--admin", "--data", box.Data, "--issuer", box.Url, "--json"));
        await Steps.EnrollAsync(box, invite.GetProperty("code").GetString()!);
        var exported = await box.RunAsync("audit", "export", "--json");
        var export = JsonNode.Parse(exported.Stdout)!.AsObject();
        var file = Path.Combine(box.Home, "audit.json");
        await File.WriteAllTextAsync(file, export.ToJsonString());
        var intact = await box.RunAsync("audit", "verify", file);
        Assert.True(intact.ExitCode == 0, intact.ToString());
        Assert.Contains($"signed by {box.Url}", intact.Stdout);

        // Cutting the tail and lowering the checkpoint's size to match: the signed payload still says the old size.
        var size = export["checkpoint"]!["size"]!.GetValue<long>();
        var cut = export.DeepClone().AsObject();
        cut["entries"]!.AsArray().RemoveAt(cut["entries"]!.AsArray().Count - 1);
        cut["checkpoint"]!["size"] = size - 1;
        cut["checkpoint"]!["head"] = cut["entries"]!.AsArray()[^1]!["hash"]!.GetValue<string>();
        await File.WriteAllTextAsync(file, cut.ToJsonString());
        var lowered = await box.RunAsync("audit", "verify", file);
        Assert.True(lowered.ExitCode == 1, lowered.ToString());
        Assert.Contains("not one a server signed", lowered.Stderr);
        var offline = await box.RunAsync("audit", "verify", "--offline", file);
        Assert.True(offline.ExitCode == 1, offline.ToString());

        // A signature that is not the server's (one bit of it flipped).
        var forged = export.DeepClone().AsObject();
        var jws = forged["checkpoint"]!["signature"]!.GetValue<string>();
        var signature = Protocol.Base64Url.Decode(jws.AsSpan(jws.LastIndexOf('.') + 1));
        signature[5] ^= 0x01;
        forged["checkpoint"]!["signature"] = jws[..(jws.LastIndexOf('.') + 1)] + Protocol.Base64Url.Encode(signature);
        await File.WriteAllTextAsync(file, forged.ToJsonString());
        var badSignature = await box.RunAsync("audit", "verify", file);
        Assert.True(badSignature.ExitCode == 1, badSignature.ToString());
        Assert.Contains($"not signed by {box.Url}", badSignature.Stderr);

        // An export naming no usable server: nothing to check the signature with.
        var nowhere = export.DeepClone().AsObject();
        nowhere["server"] = "not a url";
        await File.WriteAllTextAsync(file, nowhere.ToJsonString());
        var noServer = await box.RunAsync("audit", "verify", file);
        Assert.True(noServer.ExitCode == 1, noServer.ToString());
        Assert.Contains("names no server", noServer.Stderr);

        // The server gone: its keys cannot be read (69) unless the check is explicitly offline.
        box.StopServer();
        await File.WriteAllTextAsync(file, export.ToJsonString());
        var unreachable = await box.RunAsync("audit", "verify", file);
        Assert.True(unreachable.ExitCode == 69, unreachable.ToString());
        Assert.Contains("--offline", unreachable.Stderr);
        var offlineIntact = await box.RunAsync("audit", "verify", "--offline", file);
        Assert.True(offlineIntact.ExitCode == 0, offlineIntact.ToString());
        Assert.Contains("signature not checked", offlineIntact.Stdout);
        var misplaced = await box.RunAsync("audit", "verify", "--offline", "--data", box.Data);
        Assert.Equal(64, misplaced.ExitCode);
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
