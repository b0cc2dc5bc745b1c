using System.CommandLine;
using System.Diagnostics;
using Assent.Cli.Agents;
using Assent.Cli.Mcp;
using Assent.Client;
using Assent.Client.Verification;
using Assent.Mcp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;

namespace Assent.Cli.Commands;

/// <summary><c>assent mcp serve|gate</c> (docs/cli.md, docs/mcp.md): human approval for any MCP host, and a gate around any stdio MCP server.</summary>
internal static class McpCommands
{
    public static Command Build()
    {
        var mcp = new Command("mcp", "Human approval for MCP (Model Context Protocol) hosts and servers");
        mcp.Subcommands.Add(Serve());
        mcp.Subcommands.Add(Gate());
        return mcp;
    }

    private static Command Serve()
    {
        var http = new Option<string?>("--http") { Description = "Serve streamable HTTP at this URL (e.g. http://localhost:8765; the endpoint is /mcp) instead of stdio", HelpName = "URL" };
        var user = new Option<string?>("--user") { Description = "Whom to ask: a user DID or handle (default: $ASSENT_USER_DID, else the saved agent's owner)" };
        var (server, clientId, clientSecret) = ApproveCommand.AgentOptions();
        var agent = AgentCredentials.AgentOption();
        var command = new Command("serve", """
            Run an MCP server with the tools request_approval(message, details?, scope?, timeout?) and verify_approval(token, expected_message?), acting as the agent assent approve would (same --agent, environment and profiles). Over stdio by default; --http for streamable HTTP.
            Example (an MCP host's config): {"command": "assent", "args": ["mcp", "serve", "--agent", "deploy-bot"]}
            """)
        {
            http, user, agent, server, clientId, clientSecret,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = AgentCredentials.Resolve(parse, agent, parse.GetValue(server), parse.GetValue(clientId), parse.GetValue(clientSecret), parse.GetValue(user));
            using var tools = new ApprovalTools(options);
            var info = new Implementation { Name = "assent", Version = typeof(McpCommands).Assembly.GetName().Version?.ToString(3) ?? "1.0.0" };
            if (parse.GetValue(http) is { } url)
            {
                if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                {
                    throw CliException.Usage($"--http must be an absolute http(s) URL (got '{url}')");
                }
                var builder = WebApplication.CreateSlimBuilder();
                builder.Logging.ClearProviders();
                builder.WebHost.UseUrls(uri.GetLeftPart(UriPartial.Authority));
                builder.Services.AddMcpServer(o => o.ServerInfo = info).WithHttpTransport().WithTools(tools.Tools());
                await using var app = builder.Build();
                app.MapMcp("/mcp");
                await app.StartAsync(ct);
                await Console.Error.WriteLineAsync($"Assent MCP server listening on {uri.GetLeftPart(UriPartial.Authority)}/mcp");
                await app.WaitForShutdownAsync(ct);
                return ExitCodes.Success;
            }
            // stdio: stdout carries only JSON-RPC (MCP 2025-11-25 basic/transports), so nothing else may log to it.
            var host = Host.CreateEmptyApplicationBuilder(settings: null);
            host.Services.AddMcpServer(o => o.ServerInfo = info).WithStdioServerTransport().WithTools(tools.Tools());
            using var built = host.Build();
            await built.RunAsync(ct);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Gate()
    {
        var toolPatterns = new Option<string>("--tools") { Description = "Tools to gate: comma-separated names or globs (deploy_*,delete_?)", Required = true, HelpName = "PATTERNS" };
        var message = new Option<string?>("--message") { Description = "The approval message, filled from the call's arguments: 'Deploy {service} to {env}' (default: Run TOOL on SERVER)", HelpName = "TEMPLATE" };
        var scope = new Option<string?>("--scope") { Description = "Scopes to ask for besides openid (default: approve:action)" };
        var timeout = new Option<int?>("--timeout") { Description = "Seconds a gated call waits for the human, 1 to 3600 (default 300)" };
        var serverName = new Option<string?>("--server-name") { Description = "The server named in the approval's details (default: the server's own serverInfo.name)" };
        var user = new Option<string?>("--user") { Description = "Whom to ask: a user DID or handle (default: $ASSENT_USER_DID, else the saved agent's owner)" };
        var (server, clientId, clientSecret) = ApproveCommand.AgentOptions();
        var agent = AgentCredentials.AgentOption();
        var commandLine = new Argument<string[]>("COMMAND") { Description = "The stdio MCP server to run, after --", Arity = ArgumentArity.OneOrMore };
        var command = new Command("gate", """
            Run a stdio MCP server unchanged and relay every message; calls to the matching tools wait for a human's approval first, and a refusal answers the host with a tool error without the server seeing the call.
            Example: assent mcp gate --tools 'deploy_*' --message 'Deploy {service} to {env}' --agent deploy-bot -- npx my-mcp-server
            """)
        {
            toolPatterns, message, scope, timeout, serverName, user, agent, server, clientId, clientSecret, commandLine,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            ToolPatterns patterns;
            try
            {
                patterns = new ToolPatterns([parse.GetValue(toolPatterns)!]);
            }
            catch (ArgumentException e)
            {
                throw CliException.Usage($"--tools: {e.Message}");
            }
            if (parse.GetValue(timeout) is < 1 or > 3600)
            {
                throw CliException.Usage("--timeout must be from 1 to 3600 seconds");
            }
            if (parse.GetValue(message) is { } template)
            {
                try
                {
                    // Checks the template's braces now, not at the first call; the arguments come later.
                    _ = ApprovalTemplate.Placeholders(template);
                }
                catch (ArgumentException e)
                {
                    throw CliException.Usage($"--message: {e.Message}");
                }
            }
            var options = AgentCredentials.Resolve(parse, agent, parse.GetValue(server), parse.GetValue(clientId), parse.GetValue(clientSecret), parse.GetValue(user));
            var argv = parse.GetValue(commandLine)!;
            var start = new ProcessStartInfo(argv[0]);
            foreach (var arg in argv.Skip(1))
            {
                start.ArgumentList.Add(arg);
            }
            foreach (var name in GateRuntime.Added())
            {
                // The MCP server runs as it would without the gate, not with the gate's own runtime settings (Program.cs).
                start.Environment.Remove(name);
            }
            using var client = new AssentClient(options);
            using var verifier = new TokenVerifier(client.Server.AbsoluteUri.TrimEnd('/'));
            var approver = new ToolApprover(client, verifier, options.ClientId!, options.UserDid, TimeSpan.FromSeconds(parse.GetValue(timeout) ?? 300), AssentApprovalOptions.DefaultMaxArgumentsLength);
            var gate = new McpGate(approver, patterns, parse.GetValue(message), parse.GetValue(scope) ?? "approve:action", parse.GetValue(serverName), start, Console.Error);
            using var stdin = new StreamReader(Console.OpenStandardInput(), new System.Text.UTF8Encoding(false));
            await using var stdout = new StreamWriter(Console.OpenStandardOutput(), new System.Text.UTF8Encoding(false));
            return await gate.RunAsync(stdin, stdout, ct);
        }));
        return command;
    }
}
