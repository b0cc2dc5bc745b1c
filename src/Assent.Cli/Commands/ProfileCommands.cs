using System.CommandLine;
using Assent.Cli.Output;
using Assent.Cli.Profiles;
using Spectre.Console;

namespace Assent.Cli.Commands;

internal sealed record HumanView(string Name, string Server, string Handle, string Sub, DateTimeOffset SignedInAt, bool Default);

internal sealed record AgentView(string Name, string Server, string ClientId, string Owner, string Scopes, bool Default);

internal sealed record ProfileListOutput(string? DefaultHuman, string? DefaultAgent, IReadOnlyList<HumanView> Humans, IReadOnlyList<AgentView> Agents);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
[System.Text.Json.Serialization.JsonSerializable(typeof(ProfileListOutput))]
internal sealed partial class ProfileJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary><c>assent profiles …</c>: the signed-in humans and saved agents of <c>~/.assent/profiles.json</c>. Never prints tokens or secrets.</summary>
internal static class ProfileCommands
{
    public static Command Build() =>
        new("profiles", "List, choose and delete saved sign-ins and agents. Example: assent profiles use alice@localhost:8400")
        {
            List(), Use(), Delete(),
        };

    private static Command List()
    {
        var json = StoreOptions.Json();
        var command = new Command("list", "List the saved profiles; * marks the defaults. Example: assent profiles list --json") { json };
        command.SetAction(CliApp.Guard(async (parse, _) =>
        {
            var file = ProfileStore.ForCurrentUser().Read();
            var output = new ProfileListOutput(file.Defaults.Human, file.Defaults.Agent,
                file.Humans.OrderBy(h => h.Key, StringComparer.Ordinal)
                    .Select(h => new HumanView(h.Key, h.Value.Server, h.Value.Handle, h.Value.Sub, h.Value.SignedInAt, h.Key == file.Defaults.Human)).ToList(),
                file.Agents.OrderBy(a => a.Key, StringComparer.Ordinal)
                    .Select(a => new AgentView(a.Key, a.Value.Server, a.Value.ClientId, a.Value.Owner, a.Value.Scopes, a.Key == file.Defaults.Agent)).ToList());
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(output, ProfileJson.Default.ProfileListOutput);
                return ExitCodes.Success;
            }
            if (output.Humans.Count + output.Agents.Count == 0)
            {
                await Console.Out.WriteLineAsync("No profiles yet. Sign in with: assent auth login --server URL");
                return ExitCodes.Success;
            }
            var table = new Table().AddColumns("", "profile", "kind", "server", "who");
            table.Columns[1].NoWrap();
            foreach (var h in output.Humans)
            {
                table.AddRow(h.Default ? "*" : "", Markup.Escape(Terminal.Visible(h.Name)), "human", Markup.Escape(h.Server), Markup.Escape(Terminal.Visible(h.Handle)));
            }
            foreach (var a in output.Agents)
            {
                table.AddRow(a.Default ? "*" : "", Markup.Escape(Terminal.Visible(a.Name)), "agent", Markup.Escape(a.Server), Markup.Escape($"{a.ClientId} ({a.Scopes})"));
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Use()
    {
        var name = new Argument<string>("NAME") { Description = "A profile name from assent profiles list" };
        var command = new Command("use", "Make a profile the default (a human sign-in or an agent). Example: assent profiles use alice@localhost:8400") { name };
        command.SetAction(CliApp.Guard(async (parse, _) =>
        {
            var chosen = parse.GetValue(name)!;
            var kind = ProfileStore.ForCurrentUser().Update(file =>
            {
                if (file.Humans.ContainsKey(chosen))
                {
                    file.Defaults.Human = chosen;
                    return "human";
                }
                if (file.Agents.ContainsKey(chosen))
                {
                    file.Defaults.Agent = chosen;
                    return "agent";
                }
                throw CliException.Invalid($"no profile '{chosen}'; see: assent profiles list");
            });
            await Console.Out.WriteLineAsync($"'{Terminal.Visible(chosen)}' is now the default {kind} profile.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Delete()
    {
        var name = new Argument<string>("NAME") { Description = "A profile name from assent profiles list" };
        var command = new Command("delete", "Forget a profile here (to also end a sign-in at the server, use assent auth logout). Example: assent profiles delete deploy-bot")
        {
            name,
        };
        command.SetAction(CliApp.Guard(async (parse, _) =>
        {
            var chosen = parse.GetValue(name)!;
            ProfileStore.ForCurrentUser().Update(file =>
            {
                if (!file.Humans.Remove(chosen) && !file.Agents.Remove(chosen))
                {
                    throw CliException.Invalid($"no profile '{chosen}'; see: assent profiles list");
                }
                if (file.Defaults.Human == chosen)
                {
                    file.Defaults.Human = null;
                }
                if (file.Defaults.Agent == chosen)
                {
                    file.Defaults.Agent = null;
                }
                return true;
            });
            await Console.Out.WriteLineAsync($"Deleted profile '{Terminal.Visible(chosen)}'.");
            return ExitCodes.Success;
        }));
        return command;
    }
}
