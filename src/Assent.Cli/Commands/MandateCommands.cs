using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Assent.Cli.Agents;
using Assent.Cli.Backend;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Cli.Profiles;
using Assent.Client;
using Assent.Protocol.Approvals;
using Assent.Protocol.Messages;
using Spectre.Console;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent mandate …</c> (docs/cli.md §19, docs/policies.md §6): an agent asks for a spending mandate (<c>request</c>, its
/// owner approves on a device); a signed-in human lists, inspects and revokes theirs.
/// </summary>
internal static class MandateCommands
{
    public static Command Build() =>
        new("mandate", "Spending mandates: limits you sign once, within which an agent's payments are approved without asking. Example: assent mandate list")
        {
            Request(), List(), Show(), Revoke(),
        };

    private static Command Request()
    {
        var currency = new Option<string>("--currency") { Description = "ISO 4217 currency of every limit, e.g. USD", Required = true };
        var perPayment = new Option<string>("--per-payment") { Description = "Most one payment may be, an exact decimal, e.g. 1.00", Required = true };
        var total = new Option<string>("--total") { Description = "Most all payments of one period may add up to, e.g. 5.00", Required = true };
        var period = new Option<string>("--period") { Description = "day, week or month (UTC; the total renews each), or none (the total is for the mandate's life)", Required = true };
        var payees = new Option<string[]>("--payee") { Description = "A payee the mandate may pay (repeat for several; default: any)", AllowMultipleArgumentsPerToken = false };
        var expires = new Option<string>("--expires")
        {
            Description = "When the mandate ends: an RFC 3339 time (2026-12-31T00:00:00Z) or a duration from now (30d, 12h)", DefaultValueFactory = _ => "30d",
        };
        var user = new Option<string?>("--user") { Description = "Whom to ask: a user DID or handle (default: the saved agent's owner)" };
        var (server, clientId, clientSecret) = ApproveCommand.AgentOptions();
        var agent = AgentCredentials.AgentOption();
        var json = StoreOptions.Json();
        var command = new Command("request", """
            As an agent, ask a human to sign a spending mandate; waits for their device. Prints the mandate id.
            Example: assent mandate request --currency USD --per-payment 0.50 --total 5.00 --period day --payee api.example.com --agent search-bot
            """)
        {
            currency, perPayment, total, period, payees, expires, user, agent, server, clientId, clientSecret, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = AgentCredentials.Resolve(parse, agent, parse.GetValue(server), parse.GetValue(clientId), parse.GetValue(clientSecret), parse.GetValue(user));
            var until = ExpiresAt(parse.GetValue(expires)!);
            var (cur, each, sum, every) = (parse.GetValue(currency)!.Trim().ToUpperInvariant(), parse.GetValue(perPayment)!.Trim(), parse.GetValue(total)!.Trim(),
                parse.GetValue(period)!.Trim());
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
            using (var w = new Utf8JsonWriter(buffer))
            {
                // The server checks these and writes them canonically into the payload the device signs (docs/policies.md §6).
                w.WriteStartArray();
                w.WriteStartObject();
                w.WriteString("type", MandateDetails.MandateType);
                w.WriteString(MandateDetails.Currency, cur);
                w.WriteString(MandateDetails.PerPayment, each);
                w.WriteString(MandateDetails.Total, sum);
                w.WriteString(MandateDetails.Period, every);
                if (parse.GetValue(payees) is { Length: > 0 } listed)
                {
                    w.WriteStartArray(MandateDetails.Payees);
                    foreach (var payee in listed)
                    {
                        w.WriteStringValue(payee);
                    }
                    w.WriteEndArray();
                }
                w.WriteString(MandateDetails.ExpiresAt, until);
                w.WriteEndObject();
                w.WriteEndArray();
            }
            var details = JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
            using var client = new AssentClient(options);
            Approval approval;
            try
            {
                approval = await client.ApproveAsync(
                    $"Spending mandate: up to {sum} {cur} per {every}, at most {each} a payment, until {until}",
                    new ApproveOptions { Details = details }, ct);
            }
            catch (AssentOAuthException e)
            {
                throw CliException.Invalid($"the server refused the mandate: {e.Message}");
            }
            if (!approval.Approved)
            {
                throw approval.Status == ApprovalStatus.Denied
                    ? CliException.Invalid("denied: the user refused the mandate")
                    : new CliException(ExitCodes.ExpiredOrTimeout, "expired: nobody decided in time; ask again");
            }
            var txn = approval.Claims.TryGetValue("txn", out var t) ? t.GetString()! : "";
            var id = "mnd_" + txn[(txn.IndexOf('_') + 1)..];
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new MandateCreated(id, "active", approval.AuthReqId, 0, 0), MandateJson.Default.MandateCreated);
            }
            else
            {
                await Console.Out.WriteLineAsync(id);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static string ExpiresAt(string text)
    {
        text = text.Trim();
        if (text.Length > 1 && int.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 && text[^1] is 'd' or 'h')
        {
            var at = DateTimeOffset.UtcNow + (text[^1] == 'd' ? TimeSpan.FromDays(n) : TimeSpan.FromHours(n));
            return at.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when)
            ? when.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)
            : throw CliException.Usage("--expires takes an RFC 3339 time (2026-12-31T00:00:00Z) or a duration (30d, 12h)");
    }

    private static Command List()
    {
        var json = StoreOptions.Json();
        var command = new Command("list", "Your spending mandates: limits, what this period has spent and has left. Example: assent mandate list") { json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = (await V1Client.ForSignedInAsync(ct)).Client;
            var answer = await client.SendAsync(HttpMethod.Get, "/v1/mandates", MandateJson.Default.MandateList, ct);
            var list = answer.Body ?? throw V1Client.Refused(answer);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(list, MandateJson.Default.MandateList);
                return ExitCodes.Success;
            }
            if (list.Mandates.Count == 0)
            {
                await Console.Out.WriteLineAsync("No mandates; an agent asks for one with: assent mandate request");
                return ExitCodes.Success;
            }
            var table = new Table().AddColumns("id", "agent", "status", "per payment", "total / period", "spent", "remaining", "expires");
            foreach (var m in list.Mandates)
            {
                table.AddRow(m.Id, m.ClientId, m.Status, $"{m.PerPayment} {m.Currency}", $"{m.Total} {m.Currency} / {m.Period}", m.Spent, m.Remaining, m.ExpiresAt);
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Show()
    {
        var id = new Argument<string>("ID") { Description = "The mandate (mnd_…), as assent mandate list shows it" };
        var json = StoreOptions.Json();
        var command = new Command("show", "One mandate: its limits, spending and each payment it approved. Example: assent mandate show mnd_…") { id, json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = (await V1Client.ForSignedInAsync(ct)).Client;
            var answer = await client.SendAsync(HttpMethod.Get, $"/v1/mandates/{Uri.EscapeDataString(parse.GetValue(id)!)}", MandateJson.Default.MandateResponse, ct);
            var m = answer.Body ?? throw V1Client.Refused(answer);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(m, MandateJson.Default.MandateResponse);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                {m.Id} ({m.Status}) for agent {m.ClientId}
                  limits:    {m.PerPayment} {m.Currency} a payment, {m.Total} {m.Currency} per {m.Period}{(m.Payees is { Count: > 0 } listed ? ", to " + string.Join(", ", listed.Select(Terminal.Visible)) : "")}
                  this period: spent {m.Spent}, remaining {m.Remaining}; in all {m.SpentTotal} over {m.PaymentCount} payments
                  expires:   {m.ExpiresAt}{(m.RevokedAt is null ? "" : "; revoked " + m.RevokedAt)}
                """);
            var table = new Table().AddColumns("when", "amount", "payee", "remaining after", "request");
            foreach (var p in m.Payments ?? [])
            {
                table.AddRow(p.CreatedAt, $"{p.Amount} {m.Currency}", Markup.Escape(Terminal.Visible(p.Payee ?? "")), p.Remaining, p.ApprovalId);
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Revoke()
    {
        var id = new Argument<string>("ID") { Description = "The mandate (mnd_…), as assent mandate list shows it" };
        var command = new Command("revoke", "Revoke one of your mandates: it approves nothing more. Example: assent mandate revoke mnd_…") { id };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = (await V1Client.ForSignedInAsync(ct)).Client;
            var answer = await client.SendAsync(HttpMethod.Post, $"/v1/mandates/{Uri.EscapeDataString(parse.GetValue(id)!)}/revoke", CliJson.Default.String, ct);
            if (answer.Status != HttpStatusCode.NoContent)
            {
                throw V1Client.Refused(answer);
            }
            await Console.Out.WriteLineAsync($"Revoked mandate {parse.GetValue(id)}; payments it would have covered now ask you.");
            return ExitCodes.Success;
        }));
        return command;
    }
}
