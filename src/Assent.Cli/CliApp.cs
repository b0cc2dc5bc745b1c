using System.CommandLine;
using System.CommandLine.Parsing;
using Assent.Cli.Commands;
using Assent.Client;

namespace Assent.Cli;

/// <summary>The <c>assent</c> command tree, parsing and the one place exceptions become exit codes.</summary>
internal static class CliApp
{
    public static RootCommand Build()
    {
        var root = new RootCommand("Assent: human approval for agents. Example: assent server --urls http://localhost:8400");
        root.Subcommands.Add(ServerCommand.Build());
        root.Subcommands.Add(AdminCommands.Build());
        root.Subcommands.Add(DeviceCommands.Build());
        root.Subcommands.Add(ConsentCommands.Build());
        root.Subcommands.Add(ApproveCommand.Build());
        root.Subcommands.Add(VerifyCommand.Build());
        root.Subcommands.Add(AuditCommands.Build());
        root.Subcommands.Add(AuthCommands.Build());
        root.Subcommands.Add(ProfileCommands.Build());
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var parse = Build().Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await Console.Error.WriteLineAsync($"error: {error.Message}");
            }
            await Console.Error.WriteLineAsync($"Run '{CommandPath(parse.CommandResult)} --help' for usage.");
            return ExitCodes.Usage;
        }
        // Exceptions are turned into messages by Guard, so the default handler (which prints stack traces) stays off.
        return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// <summary>Wraps a command action: known failures become a message on stderr and an exit code, never a stack trace.</summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Guard(Func<ParseResult, CancellationToken, Task<int>> action) => async (parse, ct) =>
    {
        try
        {
            return await action(parse, ct);
        }
        catch (CliException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return e.ExitCode;
        }
        catch (AssentUnreachableException e)
        {
            await Console.Error.WriteLineAsync($"error: cannot reach the Assent server at {e.Server.AbsoluteUri.TrimEnd('/')}: {e.Reason}; is it running? (check --server)");
            return ExitCodes.Unavailable;
        }
        catch (AssentProblemException e)
        {
            await Console.Error.WriteLineAsync($"error: the server refused: {e.Detail} ({(int)e.Status})");
            return ExitCodes.DeniedOrInvalid;
        }
        catch (AssentProtocolException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return ExitCodes.DeniedOrInvalid;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("interrupted");
            return ExitCodes.Interrupted;
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return ExitCodes.DeniedOrInvalid;
        }
    };

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent)
        {
            names.Add(c.Command is RootCommand ? "assent" : c.Command.Name);
        }
        names.Reverse();
        return string.Join(' ', names);
    }
}
