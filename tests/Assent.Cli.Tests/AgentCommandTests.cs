using System.Text.Json;

namespace Assent.Cli.Tests;

/// <summary><c>assent approve</c> and <c>assent verify</c> as real processes against a real server, decided by <c>assent device approve</c>.</summary>
public sealed class AgentCommandTests
{
    private static async Task<(Agent Agent, string Did)> ReadyAsync(CliSandbox box)
    {
        await box.StartServerAsync();
        var enrolled = await Steps.EnrollAsync(box, await Steps.InviteAsync(box, "alice"));
        var agent = await Steps.CreateAgentAsync(box, "alice");
        return (agent, enrolled.GetProperty("user_did").GetString()!);
    }

    private static string[] Approve(CliSandbox box, Agent agent, string did, params string[] more) =>
        ["approve", .. more, "--server", box.Url, "--client-id", agent.ClientId, "--client-secret", agent.ClientSecret, "--user", did];

    [Fact]
    public async Task Approve_approved_prints_a_token_that_verify_accepts_and_a_tampered_one_it_refuses()
    {
        await using var box = new CliSandbox();
        var (agent, did) = await ReadyAsync(box);

        var approving = box.RunAsync(Approve(box, agent, did, "Deploy v2.3 to production", "--scope", "approve:action",
            "--detail", """{"type":"action","action":"deploy","target":"production"}"""));
        await Steps.DecideWhenItArrivesAsync(box, deny: false);
        var approved = await approving;

        Assert.True(approved.ExitCode == 0, approved.ToString());
        var token = approved.Stdout.Trim();
        Assert.Equal(3, token.Split('.').Length);
        var verified = await box.RunAsync("verify", token, "--issuer", box.Url, "--scope", "approve:action", "--evidence", "--json");
        var claims = Steps.SingleJsonObject(verified);
        Assert.True(claims.GetProperty("valid").GetBoolean());
        Assert.Equal(did, claims.GetProperty("sub").GetString());
        Assert.Equal("Deploy v2.3 to production", claims.GetProperty("binding_message").GetString());
        Assert.StartsWith(did + "#", claims.GetProperty("evidence_device").GetString());

        var tampered = token[..^2] + (token[^2] == 'A' ? 'B' : 'A') + token[^1];
        var refused = await box.RunAsync("verify", tampered, "--issuer", box.Url, "--scope", "approve:action");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("invalid_signature", refused.Stderr);

        var audit = await box.RunAsync("audit", "verify", "--data", box.Data);
        Assert.True(audit.ExitCode == 0, audit.ToString());
    }

    [Fact]
    public async Task Verify_checks_the_device_evidence_by_default_and_no_evidence_opts_out()
    {
        await using var box = new CliSandbox();
        var (agent, did) = await ReadyAsync(box);
        var approving = box.RunAsync(Approve(box, agent, did, "Rotate the signing key", "--scope", "approve:action"));
        await Steps.DecideWhenItArrivesAsync(box, deny: false);
        var approved = await approving;
        Assert.True(approved.ExitCode == 0, approved.ToString());
        var token = approved.Stdout.Trim();

        var byDefault = Steps.SingleJsonObject(await box.RunAsync("verify", token, "--issuer", box.Url, "--scope", "approve:action", "--json"));
        var optedOut = await box.RunAsync("verify", token, "--issuer", box.Url, "--scope", "approve:action", "--no-evidence");
        var both = await box.RunAsync("verify", token, "--issuer", box.Url, "--scope", "approve:action", "--evidence", "--no-evidence");

        Assert.StartsWith(did + "#", byDefault.GetProperty("evidence_device").GetString());
        Assert.True(optedOut.ExitCode == 0, optedOut.ToString());
        Assert.Contains("evidence: not checked", optedOut.Stdout);
        Assert.True(both.ExitCode == 64, both.ToString());
    }

    [Fact]
    public async Task Verify_refuses_a_client_credentials_token_no_human_approved()
    {
        await using var box = new CliSandbox();
        var (agent, _) = await ReadyAsync(box);
        using var issued = await box.Http.PostAsync(box.Url + "/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = agent.ClientId,
            ["client_secret"] = agent.ClientSecret,
        }));
        var body = await issued.Content.ReadAsStringAsync();
        Assert.True(issued.IsSuccessStatusCode, body);
        var token = JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;

        var asApproval = await box.RunAsync("verify", token, "--issuer", box.Url, "--scope", "approve:action");
        var forItsAudience = await box.RunAsync("verify", token, "--issuer", box.Url, "--audience", agent.ClientId, "--no-evidence");

        foreach (var refused in new[] { asApproval, forItsAudience })
        {
            Assert.True(refused.ExitCode == 1, refused.ToString());
            Assert.StartsWith("invalid: ", refused.Stderr);
        }
    }

    [Fact]
    public async Task Approve_denied_exits_1_with_json_saying_so()
    {
        await using var box = new CliSandbox();
        var (agent, did) = await ReadyAsync(box);

        var approving = box.RunAsync(Approve(box, agent, did, "Delete user alice@corp", "--scope", "approve:action", "--json"));
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        var denied = await approving;

        Assert.True(denied.ExitCode == 1, denied.ToString());
        using var doc = JsonDocument.Parse(denied.Stdout);
        Assert.False(doc.RootElement.GetProperty("approved").GetBoolean());
        Assert.Equal("denied", doc.RootElement.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Approve_nobody_decides_exits_2()
    {
        await using var box = new CliSandbox();
        var (agent, did) = await ReadyAsync(box);

        var expired = await box.RunAsync(Approve(box, agent, did, "Nobody will answer", "--timeout", "2"));

        Assert.True(expired.ExitCode == 2, expired.ToString());
        Assert.Equal("", expired.Stdout.Trim());
    }

    [Fact]
    public async Task Approve_with_the_server_down_exits_69()
    {
        await using var box = new CliSandbox();

        var down = await box.RunAsync("approve", "Anyone there?", "--server", box.Url, "--client-id", "agt_x", "--client-secret", "sec_x", "--user", "alice");

        Assert.True(down.ExitCode == 69, down.ToString());
        Assert.Contains("cannot reach", down.Stderr);
    }

    [Fact]
    public async Task Approve_and_verify_without_what_they_need_are_usage_errors()
    {
        await using var box = new CliSandbox();

        var noCredentials = await box.RunAsync("approve", "x", "--server", box.Url);
        var noScope = await box.RunAsync("verify", "a.b.c", "--issuer", box.Url);

        Assert.True(noCredentials.ExitCode == 64, noCredentials.ToString());
        Assert.Contains("--client-id", noCredentials.Stderr);
        Assert.True(noScope.ExitCode == 64, noScope.ToString());
    }
}
