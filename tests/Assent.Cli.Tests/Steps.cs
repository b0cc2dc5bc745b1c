using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Assent.Cli.Tests;

public sealed record Agent(string ClientId, string ClientSecret);

/// <summary>The steps several tests share, each done the way a user or an agent would do it.</summary>
public static class Steps
{
    public static JsonElement SingleJsonObject(CliResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        var text = result.Stdout.Trim();
        Assert.DoesNotContain('\n', text);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        return doc.RootElement.Clone();
    }

    /// <summary>
    /// The human at the device: runs <c>assent device approve --all --yes</c> (or <c>--deny</c>) until it has
    /// decided something, and returns what it decided.
    /// </summary>
    public static async Task<JsonElement> DecideWhenItArrivesAsync(CliSandbox box, bool deny = false)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < until)
        {
            string[] args = deny ? ["device", "approve", "--all", "--yes", "--json", "--deny"] : ["device", "approve", "--all", "--yes", "--json"];
            var decided = SingleJsonObject(await box.RunAsync(args)).GetProperty("decided");
            if (decided.GetArrayLength() > 0)
            {
                return Assert.Single(decided.EnumerateArray());
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("no request arrived at the device");
    }

    public static async Task<string> InviteAsync(CliSandbox box, string handle)
    {
        var invite = SingleJsonObject(await box.RunAsync("admin", "invite", handle, "--data", box.Data, "--issuer", box.Url, "--json"));
        return invite.GetProperty("code").GetString()!;
    }

    public static async Task<JsonElement> EnrollAsync(CliSandbox box, string code) =>
        SingleJsonObject(await box.RunAsync("device", "enroll", "--server", box.Url, "--code", code, "--name", "test laptop", "--json"));

    public static async Task<Agent> CreateAgentAsync(CliSandbox box, string owner)
    {
        var agent = SingleJsonObject(await box.RunAsync("admin", "agent", "create", "--owner", owner, "--name", "deploy-bot",
            "--scopes", "approve:action", "--data", box.Data, "--json"));
        return new Agent(agent.GetProperty("client_id").GetString()!, agent.GetProperty("client_secret").GetString()!);
    }

    /// <summary>The agent's CIBA request (CIBA Core §7.1), authenticated with client_secret_basic.</summary>
    public static async Task<string> BackchannelAuthorizeAsync(CliSandbox box, Agent agent, string loginHint, string message)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, box.Url + "/oauth/bc-authorize")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["scope"] = "openid approve:action",
                ["login_hint"] = loginHint,
                ["binding_message"] = message,
                ["authorization_details"] = """[{"type":"payment","amount":"125.00","currency":"EUR","recipient":"Zoë"}]""",
            }),
        };
        request.Headers.Authorization = Basic(agent);
        using var response = await box.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("auth_req_id").GetString()!;
    }

    public static async Task<(int Status, JsonElement Body)> RedeemAsync(CliSandbox box, Agent agent, string authReqId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, box.Url + "/oauth/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "urn:openid:params:grant-type:ciba",
                ["auth_req_id"] = authReqId,
            }),
        };
        request.Headers.Authorization = Basic(agent);
        using var response = await box.Http.SendAsync(request);
        return ((int)response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static AuthenticationHeaderValue Basic(Agent agent) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(agent.ClientId)}:{Uri.EscapeDataString(agent.ClientSecret)}")));
}
