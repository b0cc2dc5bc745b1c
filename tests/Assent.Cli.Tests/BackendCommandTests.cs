using System.Text.Json;

namespace Assent.Cli.Tests;

/// <summary>
/// <c>assent admin apikey create</c>, <c>assent apikey …</c>, <c>assent challenge …</c> and <c>assent webhook …</c>: the /v1
/// API driven from a terminal, against a real server process.
/// </summary>
public sealed class BackendCommandTests
{
    [Fact]
    public async Task A_backend_key_creates_a_challenge_waits_for_the_device_and_consumes_it_once()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        var key = Steps.SingleJsonObject(await box.RunAsync("admin", "apikey", "create", "--owner", "alice", "--name", "billing",
            "--scopes", "challenges:write,challenges:read,webhooks:manage", "--data", box.Data, "--json"));
        Assert.StartsWith("sk_", key.GetProperty("key").GetString());
        Assert.Equal("challenges:write challenges:read webhooks:manage", key.GetProperty("scopes").GetString());
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        box.Variables["ASSENT_SERVER"] = box.Url;

        // Without a key: a usage error naming where the key comes from.
        var keyless = await box.RunAsync("challenge", "get", "chl_x");
        Assert.True(keyless.ExitCode == 64, keyless.ToString());
        Assert.Contains("ASSENT_API_KEY", keyless.Stderr);

        box.Variables["ASSENT_API_KEY"] = key.GetProperty("key").GetString()!;
        var waiting = box.RunAsync("challenge", "create", "--action", "payment.send", "--user", "alice", "--amount", "125.00", "--currency", "USD",
            "--message", "Pay invoice 42", "--software-ok", "--wait", "--json");
        var decided = await Steps.DecideWhenItArrivesAsync(box);
        Assert.Equal("approve", decided.GetProperty("decision").GetString());
        var approved = Steps.SingleJsonObject(await waiting);
        Assert.Equal("approved", approved.GetProperty("status").GetString());
        Assert.Equal("125.00", approved.GetProperty("amount").GetString());
        var id = approved.GetProperty("challengeId").GetString()!;
        Assert.False(string.IsNullOrEmpty(approved.GetProperty("attestation").GetProperty("token").GetString()));

        var consumed = await box.RunAsync("challenge", "consume", id, "--json");
        Assert.True(consumed.ExitCode == 0, consumed.ToString());
        Assert.Equal("consumed", Steps.SingleJsonObject(consumed).GetProperty("status").GetString());
        var again = await box.RunAsync("challenge", "consume", id);
        Assert.True(again.ExitCode == 1, again.ToString());
        Assert.Contains("already consumed", again.Stderr);

        var bad = await box.RunAsync("challenge", "create", "--action", "pay", "--user", "alice", "--amount", "1.005", "--currency", "USD");
        Assert.True(bad.ExitCode == 64, bad.ToString());
        Assert.Contains("2 decimal places", bad.Stderr);
    }

    [Fact]
    public async Task A_denied_challenge_exits_1_and_an_unanswered_wait_exits_2()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        var key = Steps.SingleJsonObject(await box.RunAsync("admin", "apikey", "create", "--owner", "alice", "--name", "ops",
            "--scopes", "challenges:write challenges:read", "--data", box.Data, "--json"));
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        box.Variables["ASSENT_SERVER"] = box.Url;
        box.Variables["ASSENT_API_KEY"] = key.GetProperty("key").GetString()!;

        var waiting = box.RunAsync("challenge", "create", "--action", "deploy", "--user", "alice", "--software-ok", "--wait");
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        var denied = await waiting;
        Assert.True(denied.ExitCode == 1, denied.ToString());
        Assert.Contains(": denied", denied.Stdout);

        var created = Steps.SingleJsonObject(await box.RunAsync("challenge", "create", "--action", "deploy", "--user", "alice", "--json"));
        var timedOut = await box.RunAsync("challenge", "wait", created.GetProperty("challengeId").GetString()!, "--timeout", "1");
        Assert.True(timedOut.ExitCode == 2, timedOut.ToString());
        Assert.Contains("still pending", timedOut.Stderr);
    }

    [Fact]
    public async Task Webhooks_are_added_listed_and_removed_and_a_signed_in_human_creates_a_key_on_their_device()
    {
        await using var box = new CliSandbox();
        var code = await Steps.InviteAsync(box, "alice");
        var adminKey = Steps.SingleJsonObject(await box.RunAsync("admin", "apikey", "create", "--owner", "alice", "--name", "hooks",
            "--scopes", "webhooks:manage", "--data", box.Data, "--json"));
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, code);
        box.Variables["ASSENT_SERVER"] = box.Url;
        box.Variables["ASSENT_API_KEY"] = adminKey.GetProperty("key").GetString()!;

        // Loopback is refused unless the operator allows it (SSRF).
        var inward = await box.RunAsync("webhook", "add", "http://127.0.0.1:9/hook", "--events", "challenge.*");
        Assert.True(inward.ExitCode == 64, inward.ToString());
        Assert.Contains("AllowPrivateTargets", inward.Stderr);
        var unknown = await box.RunAsync("webhook", "add", "https://example.com/hook", "--events", "challenge.exploded");
        Assert.True(unknown.ExitCode == 64, unknown.ToString());

        var list = Steps.SingleJsonObject(await box.RunAsync("webhook", "list", "--json"));
        Assert.Equal(0, list.GetProperty("webhooks").GetArrayLength());
        var missing = await box.RunAsync("webhook", "rm", "whk_nope");
        Assert.True(missing.ExitCode == 1, missing.ToString());

        // A human's own key: asked with the session, approved on the device, shown once.
        var login = box.RunAsync("auth", "login", "--server", box.Url, "--user", "alice", "--json");
        await Steps.DecideWhenItArrivesAsync(box);
        Steps.SingleJsonObject(await login);
        var creating = box.RunAsync("apikey", "create", "--name", "laptop-script", "--json");
        await Steps.DecideWhenItArrivesAsync(box);
        var created = Steps.SingleJsonObject(await creating);
        Assert.StartsWith("sk_", created.GetProperty("key").GetString());
        var keys = Steps.SingleJsonObject(await box.RunAsync("apikey", "list", "--json")).GetProperty("keys");
        Assert.Contains(keys.EnumerateArray(), k => k.GetProperty("name").GetString() == "laptop-script" && !k.TryGetProperty("key", out _));
        var revoked = await box.RunAsync("apikey", "revoke", created.GetProperty("id").GetString()!);
        Assert.True(revoked.ExitCode == 0, revoked.ToString());
        box.Variables["ASSENT_API_KEY"] = created.GetProperty("key").GetString()!;
        var refused = await box.RunAsync("challenge", "get", "chl_x");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("revoked", refused.Stderr);
    }
}
