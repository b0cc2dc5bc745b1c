using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Assent.Cli.Tests;

/// <summary>
/// An agent asks its owner only; <c>assent auth consent request</c> (the owner) and <c>assent consent list|revoke</c>
/// (the other user, as a device holder) let another user be asked, and stop it.
/// </summary>
public sealed class ConsentCommandTests
{
    /// <summary>Runs <c>assent device approve --all --yes</c> with one device until it has decided something.</summary>
    private static async Task<CliResult> DecideWhenItArrivesAsync(CliSandbox box, string deviceId)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var result = await box.RunAsync("device", "approve", "--all", "--yes", "--device", deviceId);
            Assert.True(result.ExitCode == 0, result.ToString());
            if (!result.Stdout.Contains("No pending requests.", StringComparison.Ordinal))
            {
                return result;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("no request arrived at the device");
    }

    private static async Task<(int Status, JsonElement Body)> AskAsync(CliSandbox box, Agent agent, string loginHint)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, box.Url + "/oauth/bc-authorize")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["scope"] = "openid approve:action", ["login_hint"] = loginHint, ["binding_message"] = "Restart the billing service",
            }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(agent.ClientId)}:{Uri.EscapeDataString(agent.ClientSecret)}")));
        using var response = await box.Http.SendAsync(request);
        return ((int)response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task An_owner_asks_another_user_who_consents_with_her_device_sees_whose_agent_asks_and_revokes_it()
    {
        await using var box = new CliSandbox();
        var aliceCode = await Steps.InviteAsync(box, "alice");
        var bobCode = await Steps.InviteAsync(box, "bob");
        await box.StartServerAsync();
        var alice = (await Steps.EnrollAsync(box, aliceCode)).GetProperty("device_id").GetString()!;
        var bob = (await Steps.EnrollAsync(box, bobCode)).GetProperty("device_id").GetString()!;
        var agent = await Steps.CreateAgentAsync(box, "bob");
        var login = box.RunAsync("auth", "login", "--server", box.Url, "--user", "bob", "--json");
        await DecideWhenItArrivesAsync(box, bob);
        Steps.SingleJsonObject(await login);

        // Bob's agent may ask bob, shown as his own; alice it may not ask.
        Assert.Equal(200, (await AskAsync(box, agent, "bob")).Status);
        var own = await DecideWhenItArrivesAsync(box, bob);
        Assert.Contains($"  from:     deploy-bot ({agent.ClientId}) by bob\n", own.Stdout);
        Assert.DoesNotContain("another user's agent", own.Stdout);
        var (refusedStatus, refused) = await AskAsync(box, agent, "alice");
        Assert.Equal(400, refusedStatus);
        Assert.Equal("unauthorized_client", refused.GetProperty("error").GetString());
        // Names are unique per owner, so bob cannot register a second deploy-bot either.
        var duplicate = await box.RunAsync("auth", "setup-agent", "--name", "DEPLOY-BOT", "--scopes", "approve:action");
        Assert.True(duplicate.ExitCode == 64, duplicate.ToString());
        Assert.Contains("bob already has an active agent named 'DEPLOY-BOT'", duplicate.Stderr);

        var asking = box.RunAsync("auth", "consent", "request", "--agent", agent.ClientId, "--user", "alice", "--json");
        var decided = await DecideWhenItArrivesAsync(box, alice);
        var granted = Steps.SingleJsonObject(await asking);
        Assert.Contains($"  message:  Allow bob's agent 'deploy-bot' ({agent.ClientId}) to ask you for approvals\n", decided.Stdout);
        Assert.Equal("granted", granted.GetProperty("status").GetString());
        Assert.Equal("alice", granted.GetProperty("user").GetString());
        Assert.Equal(agent.ClientId, granted.GetProperty("client_id").GetString());

        Assert.Equal(200, (await AskAsync(box, agent, "alice")).Status);
        var foreign = await DecideWhenItArrivesAsync(box, alice);
        Assert.Contains($"  from:     deploy-bot ({agent.ClientId}) by bob\n", foreign.Stdout);
        Assert.Contains("  warning:  another user's agent: it belongs to bob, not to you (alice)", foreign.Stdout);

        var listed = Steps.SingleJsonObject(await box.RunAsync("consent", "list", "--device", alice, "--json"));
        var consent = Assert.Single(listed.GetProperty("consents").EnumerateArray());
        Assert.Equal(agent.ClientId, consent.GetProperty("client_id").GetString());
        Assert.Equal("bob", consent.GetProperty("owner").GetString());
        Assert.True(consent.GetProperty("active").GetBoolean());
        var table = await box.RunAsync("consent", "list", "--device", alice);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("deploy-bot", table.Stdout);

        var revoked = await box.RunAsync("consent", "revoke", agent.ClientId, "--device", alice);
        var again = await box.RunAsync("consent", "revoke", agent.ClientId, "--device", alice);
        var (afterStatus, after) = await AskAsync(box, agent, "alice");

        Assert.True(revoked.ExitCode == 0, revoked.ToString());
        Assert.Contains($"agent {agent.ClientId} can no longer ask alice", revoked.Stdout);
        Assert.True(again.ExitCode == 1, again.ToString());
        Assert.Contains("does not allow", again.Stderr);
        Assert.Equal(400, afterStatus);
        Assert.Equal("unauthorized_client", after.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Consent_request_for_an_agent_that_is_neither_a_client_id_nor_a_saved_profile_is_a_usage_error()
    {
        await using var box = new CliSandbox();

        var result = await box.RunAsync("auth", "consent", "request", "--agent", "no-such-profile", "--user", "alice");

        Assert.True(result.ExitCode == 64, result.ToString());
        Assert.Contains("neither a client id", result.Stderr);
    }
}
