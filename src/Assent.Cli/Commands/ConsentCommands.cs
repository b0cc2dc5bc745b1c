using System.CommandLine;
using System.Net;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Client;
using Spectre.Console;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent consent …</c>: as the holder of a device, see and end the consents this user gave: which agents of other
/// users may ask them for approvals (docs/concepts.md §3.1). Every call is signed with the device key, as
/// <c>assent device list</c> is. An agent's owner asks for a consent with <c>assent auth consent request</c>.
/// </summary>
internal static class ConsentCommands
{
    public static Command Build() =>
        new("consent", "Agents of other users that you allow to ask you for approvals. Example: assent consent list")
        {
            List(), Revoke(),
        };

    private static Command List()
    {
        var (server, device, json) = (ServerOption(), DeviceOption(), StoreOptions.Json());
        var command = new Command("list", "List the agents of other users you allow (or allowed) to ask you. Example: assent consent list --json")
        {
            server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var selected = Select(parse, server, device);
            using var client = DeviceCommands.ClientFor(selected);
            var list = await client.ListConsentsAsync(ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(list, CliJson.Default.ConsentList);
                return ExitCodes.Success;
            }
            if (!list.Consents.Any(c => c.Active))
            {
                await Console.Out.WriteLineAsync($"No other user's agent may ask {Terminal.Visible(selected.Handle)}; their own agents always may.");
            }
            if (list.Consents.Count == 0)
            {
                return ExitCodes.Success;
            }
            var table = new Table().Title($"Agents of others that {Markup.Escape(Terminal.Visible(selected.Handle))} allows").AddColumns("agent", "client id", "owner", "since", "status");
            table.Columns[1].NoWrap();
            foreach (var c in list.Consents)
            {
                table.AddRow(Markup.Escape(Terminal.Visible(c.AgentName)), Markup.Escape(Terminal.Visible(c.ClientId)), Markup.Escape(Terminal.Visible(c.Owner ?? "?")),
                    DateTimeOffset.FromUnixTimeSeconds(c.CreatedAt).ToString("u"), c.Active ? "allowed" : "[grey]revoked[/]");
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Revoke()
    {
        var clientId = new Argument<string>("CLIENT_ID") { Description = "The agent no longer allowed to ask you (agt_…), as assent consent list shows it" };
        var (server, device, json) = (ServerOption(), DeviceOption(), StoreOptions.Json());
        var command = new Command("revoke", "Stop allowing another user's agent to ask you; its next request is refused. Example: assent consent revoke agt_abc")
        {
            clientId, server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var id = parse.GetValue(clientId)!.Trim();
            var selected = Select(parse, server, device);
            using var client = DeviceCommands.ClientFor(selected);
            try
            {
                await client.RevokeConsentAsync(id, ct);
            }
            catch (AssentProblemException e) when (e.Status == HttpStatusCode.NotFound)
            {
                throw CliException.Invalid($"{selected.Handle} does not allow agent {Terminal.Visible(id)} to ask them; see: assent consent list");
            }
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new ConsentRevokeOutput(id, true), CliJson.Default.ConsentRevokeOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"Revoked: agent {Terminal.Visible(id)} can no longer ask {Terminal.Visible(selected.Handle)} for approvals.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Option<string?> ServerOption() => new("--server") { Description = "Use the device enrolled with this server" };

    private static Option<string?> DeviceOption() =>
        new("--device") { Description = "The local device to use when several are enrolled (default: the most recent)" };

    private static DeviceFile Select(ParseResult parse, Option<string?> server, Option<string?> device)
    {
        var url = parse.GetValue(server) is { } s ? ServerUrl.Parse(s, "--server") : null;
        return LocalDevices.ForCurrentUser().Select(parse.GetValue(device), url);
    }
}
