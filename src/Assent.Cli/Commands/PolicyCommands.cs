using System.CommandLine;
using System.Text.Json;
using Assent.Cli.Output;
using Assent.Protocol.Messages;
using Assent.Server.Approvals;
using Assent.Server.Policies;
using Assent.Server.Storage;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent policy add|list|rm|test</c> (docs/cli.md §17, docs/policies.md): operator commands straight on the
/// database, like <c>assent admin</c>; a running server applies a change to the next request it creates.
/// </summary>
internal static class PolicyCommands
{
    /// <summary>Who the audit log names for an offline change.</summary>
    private const string Operator = "operator";

    public static Command Build() =>
        new("policy", "Policies: what an agent's request needs (one approver, a quorum, or a refusal). Example: assent policy add treasury-large --type payment --currency USD --amount-over 10000 --requires quorum --quorum 2 --approvers alice,bob,carol")
        {
            Add(), List(), Remove(), Test(),
        };

    private static Command Add()
    {
        var name = new Argument<string>("NAME") { Description = "The policy's name; adding an existing name stores its next version" };
        var position = new Option<int?>("--position") { Description = "Order in which policies are tried, lowest first (default 100); the first match wins" };
        var agent = new Option<string?>("--agent") { Description = "Match only this agent (client id agt_…) or API key id" };
        var scope = new Option<string?>("--scope") { Description = "Match only requests whose scope contains this scope" };
        var type = new Option<string?>("--type") { Description = "Match only requests with an authorization_details entry of this type, e.g. payment" };
        var currency = new Option<string?>("--currency") { Description = "ISO 4217 currency the amount bounds are in, e.g. USD" };
        var over = new Option<string?>("--amount-over") { Description = "Match amounts strictly greater than this exact decimal" };
        var atMost = new Option<string?>("--amount-at-most") { Description = "Match amounts less than or equal to this exact decimal" };
        var requires = new Option<string>("--requires") { Description = "one, quorum or deny (default: quorum with --approvers, else one)" };
        requires.AcceptOnlyFromAmong(PolicyRequirements.One, PolicyRequirements.Quorum, PolicyRequirements.Deny);
        var quorum = new Option<int?>("--quorum") { Description = "M: how many distinct approvers must approve (default: all of them)" };
        var approvers = new Option<string?>("--approvers") { Description = "The users of the quorum, handles or ids, comma- or space-separated" };
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("add", "Add a policy, or the next version of one. Example: assent policy add small-payments --type payment --currency USD --amount-at-most 100 --requires one")
        {
            name, position, agent, scope, type, currency, over, atMost, requires, quorum, approvers, data, database, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            var named = parse.GetValue(approvers)?.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var draft = new PolicyDraft(parse.GetValue(name), parse.GetValue(position), parse.GetValue(agent), parse.GetValue(scope), parse.GetValue(type),
                parse.GetValue(currency)?.ToUpperInvariant(), AsJson(parse.GetValue(over)), AsJson(parse.GetValue(atMost)), parse.GetValue(requires),
                parse.GetValue(quorum), named);
            var view = await AdminCommands.WithStoreAsync(options, async (store, time) =>
                await PolicyEndpoints.ViewAsync(await new PolicyBook(store.Policies, store.Users, time).AddAsync(draft, Operator, ct), store.Users, ct), ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(view, CliJson.Default.PolicyResponse);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"Policy {view.Name}@{view.Version} added at position {view.Position}: {Describe(view)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("list", "Active policies in the order they are tried. Example: assent policy list") { data, database, json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            var views = await AdminCommands.WithStoreAsync(options, async (store, time) =>
            {
                var list = new List<PolicyResponse>();
                foreach (var p in await new PolicyBook(store.Policies, store.Users, time).ListAsync(ct))
                {
                    list.Add(await PolicyEndpoints.ViewAsync(p, store.Users, ct));
                }
                return list;
            }, ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new PolicyList(views), CliJson.Default.PolicyList);
                return ExitCodes.Success;
            }
            if (views.Count == 0)
            {
                await Console.Out.WriteLineAsync("No policies: every request needs one approver, its user.");
            }
            foreach (var v in views)
            {
                await Console.Out.WriteLineAsync($"{v.Position,6}  {v.Name}@{v.Version}  {Describe(v)}");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Remove()
    {
        var name = new Argument<string>("NAME") { Description = "The policy to retire" };
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("rm", "Retire a policy (its versions stay on record). Example: assent policy rm treasury-large") { name, data, database, json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            var removed = await AdminCommands.WithStoreAsync(options, async (store, time) =>
                await new PolicyBook(store.Policies, store.Users, time).RemoveAsync(parse.GetValue(name)!, Operator, ct) is { } p
                    ? await PolicyEndpoints.ViewAsync(p, store.Users, ct)
                    : null, ct) ?? throw CliException.Usage($"no active policy '{parse.GetValue(name)}': see assent policy list");
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(removed, CliJson.Default.PolicyResponse);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"Policy {removed.Name}@{removed.Version} removed.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Test()
    {
        var agent = new Option<string?>("--agent") { Description = "The asking agent's client id (or API key id)" };
        var scope = new Option<string?>("--scope") { Description = "The request's scope, space-separated" };
        var detail = new Option<string?>("--detail") { Description = "authorization_details: a JSON object or array, e.g. '{\"type\":\"payment\",\"amount\":\"12000.00\",\"currency\":\"USD\"}'" };
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("test", "Which policy would a sample request meet? Example: assent policy test --agent agt_abc --detail '{\"type\":\"payment\",\"amount\":\"12000\",\"currency\":\"USD\"}'")
        {
            agent, scope, detail, data, database, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            string? details = null;
            if (parse.GetValue(detail) is { } raw)
            {
                try
                {
                    using var doc = JsonDocument.Parse(raw);
                    details = doc.RootElement.ValueKind switch
                    {
                        JsonValueKind.Array => doc.RootElement.GetRawText(),
                        JsonValueKind.Object => "[" + doc.RootElement.GetRawText() + "]",
                        _ => throw CliException.Usage("--detail must be a JSON object or an array of objects, each with a type"),
                    };
                }
                catch (JsonException e)
                {
                    throw CliException.Usage($"--detail is not valid JSON: {e.Message}");
                }
            }
            var result = await AdminCommands.WithStoreAsync(options, async (store, time) =>
                await new PolicyBook(store.Policies, store.Users, time).MatchAsync(parse.GetValue(agent) ?? "", parse.GetValue(scope) ?? "", details, ct) is { } p
                    ? new PolicyTestResponse(p.Requires, await PolicyEndpoints.ViewAsync(p, store.Users, ct))
                    : new PolicyTestResponse(PolicyRequirements.One), ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(result, CliJson.Default.PolicyTestResponse);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync(result.Policy is { } v
                ? $"Meets policy {v.Name}@{v.Version}: {Describe(v)}"
                : "Meets no policy: one approver, the requested user.");
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>An exact decimal as the JSON string the policy book parses (never a float).</summary>
    private static JsonElement? AsJson(string? amount)
    {
        if (amount is null)
        {
            return null;
        }
        using var doc = JsonDocument.Parse("\"" + JsonEncodedText.Encode(amount).ToString() + "\"");
        return doc.RootElement.Clone();
    }

    /// <summary>"payment over 10000.00 USD → 2 of alice, bob, carol".</summary>
    internal static string Describe(PolicyResponse p)
    {
        var when = new List<string>();
        if (p.Agent is not null)
        {
            when.Add($"agent {p.Agent}");
        }
        if (p.Scope is not null)
        {
            when.Add($"scope {p.Scope}");
        }
        if (p.Type is not null)
        {
            when.Add($"type {p.Type}");
        }
        if (p.AmountOver is not null)
        {
            when.Add($"over {p.AmountOver} {p.Currency}");
        }
        if (p.AmountAtMost is not null)
        {
            when.Add($"at most {p.AmountAtMost} {p.Currency}");
        }
        if (p.AmountOver is null && p.AmountAtMost is null && p.Currency is not null)
        {
            when.Add($"in {p.Currency}");
        }
        var needs = p.Requires switch
        {
            PolicyRequirements.Quorum => $"{p.Quorum} of {string.Join(", ", p.Approvers ?? [])} must approve",
            PolicyRequirements.Deny => "denied",
            _ => "one approver",
        };
        return $"{(when.Count == 0 ? "every request" : string.Join(", ", when))} → {needs}";
    }
}
