using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.Json.Serialization;
using Assent.Cli.Agents;
using Assent.Cli.Backend;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Cli.Profiles;
using Assent.Client;
using Assent.Protocol.Messages;
using Spectre.Console;

namespace Assent.Cli.Commands;

/// <summary>What <c>assent pay --json</c> prints: the paid answer and the payment that bought it.</summary>
internal sealed record PayOutput(bool Paid, int Status, string Body, string? PaymentId = null, string? Amount = null, string? Currency = null,
    string? PayTo = null, string? Network = null, string? Outcome = null, string? Error = null);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PayOutput))]
internal sealed partial class PayJson : JsonSerializerContext;

/// <summary>
/// <c>assent wallet …</c>, <c>assent pay URL</c> and <c>assent payments list</c> (docs/cli.md §18, docs/payments.md): a
/// human's payment wallet, an agent paying an HTTP 402 with its owner's approval, and the payments made.
/// </summary>
internal static class PaymentCommands
{

    internal static Command Wallet()
    {
        var createJson = StoreOptions.Json();
        var create = new Command("create", "Make your payment wallet (an EVM key the server keeps sealed, never exported); shows it if you have one. Example: assent wallet create")
        {
            createJson,
        };
        create.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = (await V1Client.ForSignedInAsync(ct)).Client;
            var answer = await client.SendAsync(HttpMethod.Post, "/v1/wallet", PaymentJson.Default.WalletResponse, ct);
            var wallet = answer.Body ?? throw V1Client.Refused(answer);
            await ShowAsync(wallet, parse.GetValue(createJson), answer.Status == HttpStatusCode.Created ? "Made your payment wallet." : "You have a payment wallet already.");
            return ExitCodes.Success;
        }));
        var showJson = StoreOptions.Json();
        var show = new Command("show", "Your payment wallet's address and the networks it pays on; fund the address with USDC there. Example: assent wallet show --json")
        {
            showJson,
        };
        show.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = (await V1Client.ForSignedInAsync(ct)).Client;
            var answer = await client.SendAsync(HttpMethod.Get, "/v1/wallet", PaymentJson.Default.WalletResponse, ct);
            if (answer.Status == HttpStatusCode.NotFound)
            {
                throw CliException.Invalid("you have no payment wallet yet; make one with: assent wallet create");
            }
            await ShowAsync(answer.Body ?? throw V1Client.Refused(answer), parse.GetValue(showJson), null);
            return ExitCodes.Success;
        }));
        return new Command("wallet", "Your payment wallet, which pays what you approve for your agents (docs/payments.md). Example: assent wallet create") { create, show };
    }

    private static async Task ShowAsync(WalletResponse wallet, bool json, string? note)
    {
        if (json)
        {
            await Terminal.WriteJsonAsync(wallet, PaymentJson.Default.WalletResponse);
            return;
        }
        if (note is not null)
        {
            await Console.Out.WriteLineAsync(note);
        }
        await Console.Out.WriteLineAsync($"Address: {wallet.Address}");
        foreach (var n in wallet.Networks)
        {
            await Console.Out.WriteLineAsync($"  {n.Name} ({n.Network}): {string.Join(", ", n.Assets)}");
        }
        await Console.Out.WriteLineAsync("Fund the address with small amounts only: it is a hot wallet that signs each payment you approve.");
    }

    internal static Command Pay()
    {
        var url = new Argument<string>("URL") { Description = "The paid resource, e.g. https://api.example/report" };
        var method = new Option<string?>("--request", "-X") { Description = "HTTP method (default GET, or POST with --data)" };
        var data = new Option<string?>("--data", "-d") { Description = "Request body, sent as is (with --data, the method defaults to POST)" };
        var headers = new Option<string[]>("--header", "-H") { Description = "A request header 'Name: value' (repeatable)", AllowMultipleArgumentsPerToken = false };
        var max = new Option<string?>("--max") { Description = "The most to pay, in the asset's units (e.g. 0.50 USDC): a higher price is refused before anyone is asked" };
        var timeout = new Option<int?>("--timeout") { Description = "Seconds to wait for the approval (default 300)" };
        var (server, clientId, clientSecret) = ApproveCommand.AgentOptions();
        var agent = AgentCredentials.AgentOption();
        var json = StoreOptions.Json();
        var command = new Command("pay", """
            Fetch URL; if it answers 402 Payment Required (x402 or MPP), ask the agent's owner to approve paying it, pay (from their wallet, or by card through the operator's Stripe account), and print the paid body.
            Exit 0 paid (or nothing to pay), 1 denied, over --max or not payable, 2 expired, 69 unreachable.
            Example: assent pay https://api.example/report --max 0.10 --agent research-bot
            """)
        {
            url, method, data, headers, max, timeout, agent, server, clientId, clientSecret, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            // The payer is always the agent's owner, so no --user: a placeholder satisfies the shared resolution.
            var options = AgentCredentials.Resolve(parse, agent, parse.GetValue(server), parse.GetValue(clientId), parse.GetValue(clientSecret), "owner");
            if (!Uri.TryCreate(parse.GetValue(url), UriKind.Absolute, out var target) || target.Scheme is not ("http" or "https"))
            {
                throw CliException.Usage("URL must be an absolute http(s) URL");
            }
            if (parse.GetValue(timeout) is { } seconds && seconds is < 1 or > 3600)
            {
                throw CliException.Usage("--timeout must be from 1 to 3600 seconds");
            }
            var body = parse.GetValue(data);
            var request = new HttpRequestMessage(new HttpMethod(parse.GetValue(method) ?? (body is null ? "GET" : "POST")), target);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8);
                request.Content.Headers.ContentType = null;
            }
            foreach (var h in parse.GetValue(headers) ?? [])
            {
                var colon = h.IndexOf(':');
                if (colon <= 0)
                {
                    throw CliException.Usage($"--header '{h}' is not 'Name: value'");
                }
                var (name, value) = (h[..colon].Trim(), h[(colon + 1)..].Trim());
                if (!request.Headers.TryAddWithoutValidation(name, value) && request.Content is not null)
                {
                    request.Content.Headers.Remove(name);
                    request.Content.Headers.TryAddWithoutValidation(name, value);
                }
            }
            PaymentResponse? payment = null;
            using var handler = new AssentPaymentHandler(options)
            {
                MaxAmount = parse.GetValue(max),
                DecisionTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout) ?? 300),
                OnPaid = p => payment = p,
            };
            using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
            var asJson = parse.GetValue(json);
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, ct);
            }
            catch (AssentPaymentException e)
            {
                var code = e.Outcome == PaymentOutcome.Expired ? ExitCodes.ExpiredOrTimeout : ExitCodes.DeniedOrInvalid;
                if (asJson)
                {
                    await Terminal.WriteJsonAsync(new PayOutput(false, 402, "", e.PaymentId, Outcome: e.Outcome.ToString().ToLowerInvariant(), Error: e.Message),
                        PayJson.Default.PayOutput);
                }
                throw new CliException(code, $"{e.Outcome.ToString().ToLowerInvariant()}: {e.Message}");
            }
            catch (HttpRequestException e)
            {
                throw new CliException(ExitCodes.Unavailable, $"cannot reach {target.GetLeftPart(UriPartial.Authority)}: {e.Message}");
            }
            using (response)
            {
                var text = await response.Content.ReadAsStringAsync(ct);
                if (asJson)
                {
                    await Terminal.WriteJsonAsync(new PayOutput(payment is not null && response.IsSuccessStatusCode, (int)response.StatusCode, text, payment?.PaymentId,
                        payment?.Amount, payment?.Currency, payment?.PayTo, payment?.Network), PayJson.Default.PayOutput);
                }
                else
                {
                    await Console.Out.WriteAsync(text);
                }
                if (payment is not null)
                {
                    await Console.Error.WriteLineAsync($"Paid {payment.Amount} {payment.Currency} to {payment.PayTo} ({payment.PaymentId}).");
                }
                if (response.StatusCode == HttpStatusCode.PaymentRequired)
                {
                    throw CliException.Invalid("the paid server refused the payment and still asks for one; nothing more was signed");
                }
                return response.IsSuccessStatusCode ? ExitCodes.Success : throw CliException.Invalid($"{target} answered {(int)response.StatusCode} {response.ReasonPhrase}");
            }
        }));
        return command;
    }

    internal static Command Payments()
    {
        var json = StoreOptions.Json();
        var list = new Command("list", "The payments your agents made or asked for, newest first, with their approval and receipt. Example: assent payments list") { json };
        list.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = (await V1Client.ForSignedInAsync(ct)).Client;
            var answer = await client.SendAsync(HttpMethod.Get, "/v1/payments", PaymentJson.Default.PaymentList, ct);
            var payments = answer.Body ?? throw V1Client.Refused(answer);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(payments, PaymentJson.Default.PaymentList);
                return ExitCodes.Success;
            }
            if (payments.Payments.Count == 0)
            {
                await Console.Out.WriteLineAsync("No payments yet.");
                return ExitCodes.Success;
            }
            var table = new Table().AddColumns("id", "status", "amount", "pay to", "resource", "agent", "asked", "receipt");
            foreach (var p in payments.Payments)
            {
                table.AddRow(p.PaymentId, p.Status, $"{p.Amount} {Markup.Escape(p.Currency)}", p.PayTo, Markup.Escape(Terminal.Visible(p.Resource)), p.Agent ?? "",
                    p.CreatedAt, p.Receipt is null ? "" : "yes");
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return new Command("payments", "Payments your agents asked for (docs/payments.md). Example: assent payments list") { list };
    }
}
