using System.CommandLine;
using System.Net;
using System.Text.Json;
using Assent.Cli.Backend;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Cli.Profiles;
using Assent.Protocol.Messages;
using Spectre.Console;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent apikey …</c>: a signed-in human's API keys for the /v1 API (docs/cli.md §16). Creating one is approved on
/// their own device, like registering an agent; the key is shown once. Operators create keys offline with
/// <c>assent admin apikey create</c>.
/// </summary>
internal static class ApiKeyCommands
{
    public static Command Build() =>
        new("apikey", "Your API keys for backends (sign in first: assent auth login). Example: assent apikey create --name billing --scopes challenges:write,challenges:read")
        {
            Create(), List(), Revoke(),
        };

    private static Command Create()
    {
        var name = new Option<string>("--name") { Description = "A name for the key, e.g. billing-backend", Required = true };
        var scopes = new Option<string>("--scopes")
        {
            Description = "Scopes, comma- or space-separated: challenges:write, challenges:read, webhooks:manage, policies:manage",
            DefaultValueFactory = _ => "challenges:write,challenges:read",
        };
        var json = StoreOptions.Json();
        var command = new Command("create", "Ask for an API key; approve on your device; the key (sk_…) is shown once. Example: assent apikey create --name billing")
        {
            name, scopes, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            var text = asJson ? Console.Error : Console.Out;
            var (profile, client) = await V1Client.ForSignedInAsync(ct);
            using (client)
            {
                var list = parse.GetValue(scopes)!.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
                var body = new ApiKeyCreateRequest(parse.GetValue(name)!.Trim(), JsonSerializer.SerializeToElement(list, CliJson.Default.IReadOnlyListString));
                await text.WriteLineAsync($"Asked {Terminal.Visible(profile.Handle)}'s devices to approve creating API key '{Terminal.Visible(body.Name)}'.");
                var answer = await AuthCommands.WithSpinnerAsync(text, "Approve on your device…", async () =>
                {
                    var a = await client.SendAsync(HttpMethod.Post, "/v1/api-keys", V1Json.Default.ApiKeyResponse, ct,
                        System.Net.Http.Json.JsonContent.Create(body, V1Json.Default.ApiKeyCreateRequest), wait: 60);
                    while (a.Status == HttpStatusCode.Accepted)
                    {
                        a = await client.SendAsync(HttpMethod.Get, $"/v1/api-keys/requests/{a.Body!.RequestId}", V1Json.Default.ApiKeyResponse, ct, wait: 60);
                    }
                    return a;
                });
                var key = answer.Status switch
                {
                    HttpStatusCode.Created => answer.Body!,
                    HttpStatusCode.Gone => throw new CliException(ExitCodes.ExpiredOrTimeout, "nobody approved in time; run the command again"),
                    HttpStatusCode.OK => throw CliException.Invalid($"key {answer.Body!.Id} was created, but shown once already; create another"),
                    _ => throw V1Client.Refused(answer),
                };
                if (asJson)
                {
                    await Terminal.WriteJsonAsync(key, V1Json.Default.ApiKeyResponse);
                    return ExitCodes.Success;
                }
                await Console.Out.WriteLineAsync($"""
                    API key '{Terminal.Visible(key.Name)}' ({key.Id}), scopes: {string.Join(", ", key.Scopes ?? [])}
                    The key is shown only this once. For the backend's environment:

                      export ASSENT_SERVER={profile.Server}
                      export {V1Client.ApiKeyVariable}={key.Key}
                    """);
                return ExitCodes.Success;
            }
        }));
        return command;
    }

    private static Command List()
    {
        var json = StoreOptions.Json();
        var command = new Command("list", "Your API keys and when each was last used. Example: assent apikey list") { json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var (_, client) = await V1Client.ForSignedInAsync(ct);
            using (client)
            {
                var answer = await client.SendAsync(HttpMethod.Get, "/v1/api-keys", V1Json.Default.ApiKeyList, ct);
                var list = answer.Body ?? throw V1Client.Refused(answer);
                if (parse.GetValue(json))
                {
                    await Terminal.WriteJsonAsync(list, V1Json.Default.ApiKeyList);
                    return ExitCodes.Success;
                }
                if (list.Keys.Count == 0)
                {
                    await Console.Out.WriteLineAsync("No API keys yet; create one: assent apikey create --name NAME");
                    return ExitCodes.Success;
                }
                var table = new Table().AddColumns("id", "name", "scopes", "created", "last used", "status");
                foreach (var k in list.Keys)
                {
                    table.AddRow(k.Id, Markup.Escape(Terminal.Visible(k.Name)), string.Join(", ", k.Scopes ?? []), k.CreatedAt ?? "", k.LastUsedAt ?? "never",
                        k.Status == "active" ? "active" : "[grey]revoked[/]");
                }
                Terminal.Rich().Write(table);
                return ExitCodes.Success;
            }
        }));
        return command;
    }

    private static Command Revoke()
    {
        var id = new Argument<string>("ID") { Description = "The key (key_…), as assent apikey list shows it" };
        var command = new Command("revoke", "Revoke one of your API keys; calls with it are refused at once. Example: assent apikey revoke key_…") { id };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var (_, client) = await V1Client.ForSignedInAsync(ct);
            using (client)
            {
                var answer = await client.SendAsync(HttpMethod.Delete, $"/v1/api-keys/{Uri.EscapeDataString(parse.GetValue(id)!)}", CliJson.Default.String, ct);
                if (answer.Status != HttpStatusCode.NoContent)
                {
                    throw V1Client.Refused(answer);
                }
                await Console.Out.WriteLineAsync($"Revoked API key {parse.GetValue(id)}.");
                return ExitCodes.Success;
            }
        }));
        return command;
    }
}
