// A small MCP server (stdio) with two tools gated by Assent and one that is not (docs/mcp.md §2). Run it with the
// agent's ASSENT_SERVER, ASSENT_CLIENT_ID, ASSENT_CLIENT_SECRET and ASSENT_USER_DID in the environment.
using System.ComponentModel;
using Assent.Mcp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ModelContextProtocol.Server;

var builder = Host.CreateEmptyApplicationBuilder(settings: null);
builder.Services.AddMcpServer(o => o.ServerInfo = new() { Name = "sample-ops", Version = "1.0.0" })
    .WithStdioServerTransport()
    .WithTools<OpsTools>()
    .WithAssentApproval(o =>
    {
        // Gated by name besides the [RequiresApproval] methods.
        o.Tools.Add("delete_*");
        if (Environment.GetEnvironmentVariable("SAMPLE_TIMEOUT_SECONDS") is { } seconds)
        {
            o.Timeout = TimeSpan.FromSeconds(int.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture));
        }
        o.ProgressInterval = TimeSpan.FromMilliseconds(500);
    });
await builder.Build().RunAsync();

[McpServerToolType]
internal sealed class OpsTools
{
    [McpServerTool(Name = "deploy"), Description("Deploy a service to an environment")]
    [RequiresApproval("Deploy {service} to {env}")]
    public static string Deploy(string service, string env, AssentApprovalAccessor approval)
    {
        var token = approval.Current ?? throw new InvalidOperationException("ran without an approval");
        // stdout carries the protocol; stderr is the server's log.
        Console.Error.WriteLine($"RAN deploy {service} {env}");
        return $"deployed {service} to {env}; approved by {token.Token.Subject} (txn {token.Token.Transaction}, details {token.Token.AuthorizationDetails?.GetRawText()})";
    }

    [McpServerTool(Name = "delete_user"), Description("Delete a user account")]
    public static string DeleteUser(string user, AssentApprovalAccessor approval) =>
        $"deleted {user}; approved by {approval.Current?.Token.Subject ?? "nobody"}";

    [McpServerTool(Name = "status"), Description("Report status (not gated)")]
    public static string Status(AssentApprovalAccessor approval) => approval.Current is null ? "all green" : "unexpected approval";
}
