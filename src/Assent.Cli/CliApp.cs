using System.CommandLine;
using System.CommandLine.Parsing;
using Assent.Cli.Commands;
using Assent.Client;

namespace Assent.Cli;

/// <summary>The <c>assent</c> command tree, parsing and the one place exceptions become exit codes.</summary>
internal static class CliApp
{
    /// <summary>Every top-level command by its name, built only when wanted.</summary>
    private static readonly (string Name, Func<Command> Build)[] Commands =
    [
        ("server", ServerCommand.Build), ("admin", AdminCommands.Build), ("policy", PolicyCommands.Build), ("device", DeviceCommands.Build),
        ("consent", ConsentCommands.Build), ("approve", ApproveCommand.Build), ("verify", VerifyCommand.Build), ("audit", AuditCommands.Build),
        ("auth", AuthCommands.Build), ("profiles", ProfileCommands.Build), ("health", HealthCommand.Build), ("challenge", ChallengeCommands.Build),
        ("webhook", WebhookCommands.Build), ("apikey", ApiKeyCommands.Build), ("mandate", MandateCommands.Build), ("mcp", McpCommands.Build),
        ("wallet", PaymentCommands.Wallet), ("pay", PaymentCommands.Pay), ("payments", PaymentCommands.Payments),
        ("vault", VaultCommands.Build),
    ];

    /// <summary>
    /// The command tree. When <paramref name="first"/> names a command, only that command is built: every other one
    /// would be constructed (and its builders compiled) for nothing, and <c>assent mcp gate</c> stays resident beside
    /// an MCP host for hours (docs/mcp.md §4). Anything else (help, a misspelling) gets the whole tree.
    /// </summary>
    public static RootCommand Build(string? first = null)
    {
        var root = new RootCommand("Assent: human approval for agents. Example: assent server --urls http://localhost:8400");
        var only = Array.FindIndex(Commands, c => c.Name == first);
        foreach (var (_, build) in only >= 0 ? [Commands[only]] : Commands)
        {
            root.Subcommands.Add(build());
        }
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var parse = Build(args.FirstOrDefault()).Parse(args);
        if (parse.Errors.Count > 0)
        {
            if (Misspelled(parse) is { } typo)
            {
                await Console.Error.WriteLineAsync(typo);
                await Console.Error.WriteLineAsync($"Run '{CommandPath(parse.CommandResult)} --help' for usage.");
                return ExitCodes.Usage;
            }
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

    /// <summary>
    /// A word where a subcommand belongs that is not one (<c>assent aprove x</c>): named, with the
    /// nearest subcommand when one is close (at most two edits, or a unique prefix), instead of
    /// the parser's "Required command was not provided".
    /// </summary>
    internal static string? Misspelled(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var word = parse.UnmatchedTokens.FirstOrDefault();
        if (command.Subcommands.Count == 0 || command.Action is not null || parse.CommandResult.Children.Any() || word?.StartsWith('-') == true)
        {
            return null;
        }
        var path = CommandPath(parse.CommandResult);
        var names = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        if (word is null)
        {
            return $"error: '{path}' needs a command: {string.Join(", ", names)}";
        }
        var nearest = names.Select(n => (Name: n, Distance: EditDistance(word.ToLowerInvariant(), n))).Where(n => n.Distance <= 2)
            .OrderBy(n => n.Distance).ThenBy(n => n.Name, StringComparer.Ordinal).Select(n => n.Name).FirstOrDefault();
        if (nearest is null && names.Where(n => n.StartsWith(word, StringComparison.OrdinalIgnoreCase)).ToList() is [var only])
        {
            nearest = only;
        }
        return nearest is null
            ? $"error: '{word}' is not a command of '{path}'; the commands are: {string.Join(", ", names)}"
            : $"error: '{word}' is not a command of '{path}'. Did you mean '{path} {nearest}'?";
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours each cost one.</summary>
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }
        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }
        return d[a.Length, b.Length];
    }

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
