using System.CommandLine;
using System.Net;
using Assent.Cli.Backend;
using Assent.Cli.Output;
using Assent.Protocol.Messages;
using Spectre.Console;

namespace Assent.Cli.Commands;

/// <summary><c>assent webhook …</c>: endpoints that receive signed events, their delivery log and retries (docs/cli.md §16, docs/webhooks.md).</summary>
internal static class WebhookCommands
{
    public static Command Build() =>
        new("webhook", "Receive signed events (Standard Webhooks) at your URL (API key with webhooks:manage in ASSENT_API_KEY). Example: assent webhook add https://example.com/hooks --events challenge.*")
        {
            Add(), List(), Deliveries(), Retry(), Remove(), Enable(), Test(),
        };

    private static Option<string?> ServerOption() => new("--server") { Description = "The Assent server (default: $ASSENT_SERVER, else http://localhost:8400)" };

    private static Option<string?> KeyFileOption() =>
        new("--api-key-file") { Description = $"Read the API key from this file (default: ${V1Client.ApiKeyVariable})" };

    private static V1Client ClientFor(ParseResult parse, Option<string?> server, Option<string?> keyFile) =>
        new(V1Client.ServerFrom(parse.GetValue(server)), V1Client.ApiKey(parse.GetValue(keyFile)));

    private static Command Add()
    {
        var url = new Argument<string>("URL") { Description = "Where to POST events (https; loopback and private addresses only if the operator allows them)" };
        var events = new Option<string>("--events")
        {
            Description = "Events, comma-separated: challenge.approved|denied|expired|cancelled, approval.*, device.enrolled|revoked, a family.*, or *",
            Required = true,
        };
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("add", "Register an endpoint; its signing secret (whsec_…) is shown once. Example: assent webhook add https://example.com/hooks --events challenge.*")
        {
            url, events, server, keyFile, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var body = new WebhookCreateRequest(parse.GetValue(url), parse.GetValue(events)!.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries));
            var answer = await client.SendAsync(HttpMethod.Post, "/v1/webhooks", V1Json.Default.WebhookResponse, ct,
                System.Net.Http.Json.JsonContent.Create(body, V1Json.Default.WebhookCreateRequest));
            var hook = answer.Body ?? throw V1Client.Refused(answer);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(hook, V1Json.Default.WebhookResponse);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                Webhook {hook.Id} receives {string.Join(", ", hook.Events)} at {Terminal.Visible(hook.Url)}

                  signing secret: {hook.Secret}

                """);
            await Console.Error.WriteLineAsync("The secret is shown only this once: verify each delivery with it (webhook-signature, Standard Webhooks).");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("list", "Your webhook endpoints and whether they are failing or disabled. Example: assent webhook list") { server, keyFile, json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Get, "/v1/webhooks", V1Json.Default.WebhookList, ct);
            var list = answer.Body ?? throw V1Client.Refused(answer);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(list, V1Json.Default.WebhookList);
                return ExitCodes.Success;
            }
            if (list.Webhooks.Count == 0)
            {
                await Console.Out.WriteLineAsync("No webhook endpoints yet; add one: assent webhook add URL --events challenge.*");
                return ExitCodes.Success;
            }
            var table = new Table().AddColumns("id", "url", "events", "status");
            foreach (var h in list.Webhooks)
            {
                var status = h.Status switch
                {
                    "disabled" => $"[red]disabled[/] {Markup.Escape(h.DisabledReason ?? "")}",
                    "failing" => $"[yellow]failing since {h.FailingSince}[/]",
                    _ => "active",
                };
                table.AddRow(h.Id, Markup.Escape(Terminal.Visible(h.Url)), string.Join(", ", h.Events), status);
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Deliveries()
    {
        var id = new Argument<string>("ID") { Description = "The endpoint (whk_…)" };
        var limit = new Option<int>("--limit") { Description = "How many, newest first (1 to 200)", DefaultValueFactory = _ => 20 };
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("deliveries", "An endpoint's delivery log: each event, its attempts and the last answer. Example: assent webhook deliveries whk_…")
        {
            id, limit, server, keyFile, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Get, $"/v1/webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}/deliveries?limit={parse.GetValue(limit)}",
                V1Json.Default.DeliveryList, ct);
            var list = answer.Body ?? throw V1Client.Refused(answer);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(list, V1Json.Default.DeliveryList);
                return ExitCodes.Success;
            }
            var table = new Table().AddColumns("delivery", "event", "status", "attempts", "last answer", "next");
            foreach (var d in list.Deliveries)
            {
                table.AddRow(d.Id, d.Type, d.Status, d.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(d.LastError ?? (d.LastStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "")), d.NextAttemptAt ?? "");
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Retry()
    {
        var id = new Argument<string>("ID") { Description = "The endpoint (whk_…)" };
        var delivery = new Argument<string>("DELIVERY") { Description = "The delivery, as assent webhook deliveries shows it" };
        var (server, keyFile) = (ServerOption(), KeyFileOption());
        var command = new Command("retry", "Deliver one event again now. Example: assent webhook retry whk_… msg_….whk_…") { id, delivery, server, keyFile };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Post,
                $"/v1/webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}/deliveries/{Uri.EscapeDataString(parse.GetValue(delivery)!)}/retry", CliJson.Default.String, ct);
            if (answer.Status != HttpStatusCode.Accepted)
            {
                throw V1Client.Refused(answer);
            }
            await Console.Out.WriteLineAsync("Queued: it is delivered again now; see assent webhook deliveries.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Remove()
    {
        var id = new Argument<string>("ID") { Description = "The endpoint (whk_…)" };
        var (server, keyFile) = (ServerOption(), KeyFileOption());
        var command = new Command("rm", "Remove an endpoint; its undelivered events are dropped. Example: assent webhook rm whk_…") { id, server, keyFile };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Delete, $"/v1/webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}", CliJson.Default.String, ct);
            if (answer.Status != HttpStatusCode.NoContent)
            {
                throw V1Client.Refused(answer);
            }
            await Console.Out.WriteLineAsync($"Removed webhook {parse.GetValue(id)}.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Enable()
    {
        var id = new Argument<string>("ID") { Description = "The disabled endpoint (whk_…)" };
        var (server, keyFile) = (ServerOption(), KeyFileOption());
        var command = new Command("enable", "Turn a disabled endpoint back on. Example: assent webhook enable whk_…") { id, server, keyFile };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Post, $"/v1/webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}/enable", V1Json.Default.WebhookResponse, ct);
            _ = answer.Body ?? throw V1Client.Refused(answer);
            await Console.Out.WriteLineAsync($"Webhook {parse.GetValue(id)} is active again.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Test()
    {
        var id = new Argument<string>("ID") { Description = "The endpoint (whk_…)" };
        var (server, keyFile) = (ServerOption(), KeyFileOption());
        var command = new Command("test", "Send a webhook.ping event to the endpoint. Example: assent webhook test whk_…") { id, server, keyFile };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Post, $"/v1/webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}/test", V1Json.Default.DeliveryResponse, ct);
            var queued = answer.Body ?? throw V1Client.Refused(answer);
            await Console.Out.WriteLineAsync($"Queued {queued.EventId}; see: assent webhook deliveries {parse.GetValue(id)}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
