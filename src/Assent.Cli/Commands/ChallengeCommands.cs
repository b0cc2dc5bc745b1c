using System.CommandLine;
using System.Net;
using System.Text.Json;
using Assent.Cli.Backend;
using Assent.Cli.Output;
using Assent.Protocol.Messages;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent challenge …</c>: the /v1 challenges API from a terminal or a script, as a backend with an API key
/// (docs/cli.md §16, docs/challenges.md). Exit 0 approved (or done), 1 denied, cancelled or refused, 2 expired or timed out.
/// </summary>
internal static class ChallengeCommands
{
    public static Command Build() =>
        new("challenge", "Ask a user to approve an action from any backend (API key in ASSENT_API_KEY). Example: assent challenge create --action payment.send --user alice --amount 125.00 --currency USD --wait")
        {
            Create(), Get(), Wait(), Consume(), Cancel(),
        };

    private static Option<string?> ServerOption() => new("--server") { Description = "The Assent server (default: $ASSENT_SERVER, else http://localhost:8400)" };

    private static Option<string?> KeyFileOption() =>
        new("--api-key-file") { Description = $"Read the API key from this file (default: ${V1Client.ApiKeyVariable})" };

    private static V1Client ClientFor(ParseResult parse, Option<string?> server, Option<string?> keyFile) =>
        new(V1Client.ServerFrom(parse.GetValue(server)), V1Client.ApiKey(parse.GetValue(keyFile)));

    private static Command Create()
    {
        var action = new Option<string>("--action") { Description = "What is approved: 1 to 64 of a-z 0-9 . _ : - (e.g. payment.send)", Required = true };
        var user = new Option<string>("--user") { Description = "Who approves: a handle, user id (usr_…) or DID", Required = true };
        var amount = new Option<string?>("--amount") { Description = "An exact decimal amount, e.g. 125.00 (with --currency)" };
        var currency = new Option<string?>("--currency") { Description = "ISO 4217 currency code of --amount, e.g. USD" };
        var message = new Option<string?>("--message") { Description = "Shown to the approver verbatim (at most 256 characters)" };
        var metadata = new Option<string?>("--metadata") { Description = "A JSON object echoed back to you, never shown or signed (at most 4 KiB)" };
        var expiresIn = new Option<int?>("--expires-in") { Description = "Seconds until the challenge expires (10 to 3600; default 300)" };
        var softwareOk = new Option<bool>("--software-ok") { Description = "Accept a software device's decision too (requiresHuman: false); by default only a passkey with user verification" };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "Send the same key to get the same challenge back when retrying" };
        var wait = new Option<bool>("--wait") { Description = "Wait for the decision; exit 0 approved, 1 denied, 2 expired" };
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("create", "Create a challenge and print its id (or, with --wait, its outcome). Example: assent challenge create --action deploy --user alice --wait")
        {
            action, user, amount, currency, message, metadata, expiresIn, softwareOk, idempotencyKey, wait, server, keyFile, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            JsonElement? meta = null;
            if (parse.GetValue(metadata) is { } text)
            {
                try
                {
                    meta = JsonDocument.Parse(text).RootElement.Clone();
                }
                catch (JsonException e)
                {
                    throw CliException.Usage($"--metadata is not JSON: {e.Message}");
                }
            }
            var body = new ChallengeCreateRequest(parse.GetValue(action), parse.GetValue(user), parse.GetValue(softwareOk) ? false : null,
                parse.GetValue(amount) is { } a ? JsonSerializer.SerializeToElement(a, CliJson.Default.String) : null, parse.GetValue(currency),
                parse.GetValue(message), meta, parse.GetValue(expiresIn));
            using var client = ClientFor(parse, server, keyFile);
            var created = await client.SendAsync(HttpMethod.Post, "/v1/challenges", V1Json.Default.ChallengeResponse, ct,
                System.Net.Http.Json.JsonContent.Create(body, V1Json.Default.ChallengeCreateRequest), idempotencyKey: parse.GetValue(idempotencyKey));
            var challenge = created.Body ?? throw V1Client.Refused(created);
            if (!parse.GetValue(wait))
            {
                return await ShowAsync(challenge, parse.GetValue(json));
            }
            if (!parse.GetValue(json))
            {
                await Console.Error.WriteLineAsync($"Challenge {challenge.ChallengeId} is waiting for {Terminal.Visible(challenge.UserId)} to decide (expires {challenge.ExpiresAt}).");
            }
            return await WaitAsync(client, challenge.ChallengeId, null, parse.GetValue(json), ct);
        }));
        return command;
    }

    private static Command Get()
    {
        var id = new Argument<string>("ID") { Description = "The challenge (chl_…)" };
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("get", "Show a challenge and, once approved, its attestation. Example: assent challenge get chl_… --json") { id, server, keyFile, json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Get, $"/v1/challenges/{Uri.EscapeDataString(parse.GetValue(id)!)}", V1Json.Default.ChallengeResponse, ct);
            var challenge = answer.Body ?? throw V1Client.Refused(answer);
            await ShowAsync(challenge, parse.GetValue(json));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Wait()
    {
        var id = new Argument<string>("ID") { Description = "The challenge (chl_…)" };
        var timeout = new Option<int?>("--timeout") { Description = "Give up after this many seconds (exit 2); default: until the challenge expires" };
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("wait", "Wait until a challenge is decided; exit 0 approved, 1 denied or cancelled, 2 expired or timed out. Example: assent challenge wait chl_…")
        {
            id, timeout, server, keyFile, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            return await WaitAsync(client, parse.GetValue(id)!, parse.GetValue(timeout), parse.GetValue(json), ct);
        }));
        return command;
    }

    private static Command Consume()
    {
        var id = new Argument<string>("ID") { Description = "The approved challenge (chl_…)" };
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("consume", "Use an approved challenge, exactly once (exit 1 if it was used or is not approved). Example: assent challenge consume chl_…")
        {
            id, server, keyFile, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Post, $"/v1/challenges/{Uri.EscapeDataString(parse.GetValue(id)!)}/consume", V1Json.Default.ChallengeResponse, ct);
            return await ShowAsync(answer.Body ?? throw V1Client.Refused(answer), parse.GetValue(json));
        }));
        return command;
    }

    private static Command Cancel()
    {
        var id = new Argument<string>("ID") { Description = "The pending challenge (chl_…)" };
        var (server, keyFile, json) = (ServerOption(), KeyFileOption(), StoreOptions.Json());
        var command = new Command("cancel", "Withdraw a pending challenge; the approver's screen drops it. Example: assent challenge cancel chl_…") { id, server, keyFile, json };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            using var client = ClientFor(parse, server, keyFile);
            var answer = await client.SendAsync(HttpMethod.Post, $"/v1/challenges/{Uri.EscapeDataString(parse.GetValue(id)!)}/cancel", V1Json.Default.ChallengeResponse, ct);
            await ShowAsync(answer.Body ?? throw V1Client.Refused(answer), parse.GetValue(json));
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Holds <c>GET</c> with <c>Prefer: wait</c> until the challenge is decided, it expires, or <paramref name="timeout"/> passes.</summary>
    private static async Task<int> WaitAsync(V1Client client, string id, int? timeout, bool json, CancellationToken ct)
    {
        var deadline = timeout is { } t ? DateTimeOffset.UtcNow.AddSeconds(t) : DateTimeOffset.MaxValue;
        while (true)
        {
            var left = deadline - DateTimeOffset.UtcNow;
            var wait = (int)Math.Clamp(Math.Ceiling(left.TotalSeconds), 1, 60);
            var answer = await client.SendAsync(HttpMethod.Get, $"/v1/challenges/{Uri.EscapeDataString(id)}", V1Json.Default.ChallengeResponse, ct, wait: wait);
            var challenge = answer.Body ?? throw V1Client.Refused(answer);
            if (challenge.Status != "pending")
            {
                return await ShowAsync(challenge, json);
            }
            if (DateTimeOffset.UtcNow >= deadline)
            {
                if (json)
                {
                    await Terminal.WriteJsonAsync(challenge, V1Json.Default.ChallengeResponse);
                }
                throw new CliException(ExitCodes.ExpiredOrTimeout, $"challenge {id} is still pending after {timeout} s");
            }
        }
    }

    /// <summary>Prints a challenge; the exit code says what it came to.</summary>
    private static async Task<int> ShowAsync(ChallengeResponse c, bool json)
    {
        if (json)
        {
            await Terminal.WriteJsonAsync(c, V1Json.Default.ChallengeResponse);
        }
        else
        {
            var amount = c.Amount is null ? "" : $"  amount:   {c.Amount} {c.Currency}\n";
            var decided = c.DecidedAt is null ? "" : $"  decided:  {c.DecidedAt}\n";
            var attestation = c.Attestation is null ? "" : $"  device:   {c.Attestation.Device} ({c.Attestation.Kind})\n  token:    {c.Attestation.Token}\n";
            await Console.Out.WriteAsync($"""
                {c.ChallengeId}: {c.Status}
                  action:   {Terminal.Visible(c.Action)}
                  user:     {c.UserId}
                {amount}  expires:  {c.ExpiresAt}
                {decided}{attestation}
                """);
        }
        return c.Status switch
        {
            "approved" or "consumed" or "pending" => ExitCodes.Success,
            "expired" => ExitCodes.ExpiredOrTimeout,
            _ => ExitCodes.DeniedOrInvalid,
        };
    }
}
