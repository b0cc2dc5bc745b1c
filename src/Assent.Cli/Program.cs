using Assent.Cli;
using Assent.Cli.Mcp;

if (args is ["mcp", "gate", ..])
{
    // `assent mcp gate` runs with runtime settings of its own (docs/mcp.md §4): relaunched in place before any work is done.
    GateRuntime.RelaunchIfNeeded(Console.Error);
}
return await CliApp.RunAsync(args);
