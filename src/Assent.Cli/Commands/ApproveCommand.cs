using System.CommandLine;
using System.Text.Json;
using Assent.Cli.Agents;
using Assent.Cli.Output;
using Assent.Client;

namespace Assent.Cli.Commands;

/// <summary><c>assent approve MESSAGE</c>: the agent side from a script (docs/cli.md §9); blocks until the human decides.</summary>
internal static class ApproveCommand
{
    private static readonly TimeSpan WaitForServerExpiry = TimeSpan.FromMinutes(61);

    public static Command Build()
    {
        var message = new Argument<string>("MESSAGE") { Description = "What the human is asked to approve, shown verbatim (at most 256 characters)" };
        var scope = new Option<string?>("--scope") { Description = "Scopes to ask for besides openid, space-separated (e.g. approve:action)" };
        var detail = new Option<string?>("--detail") { Description = """RFC 9396 authorization_details as JSON, e.g. '{"type":"payment","amount":"125.00","currency":"EUR"}'""" };
        var user = new Option<string?>("--user") { Description = "Whom to ask: a user DID or handle (default: $ASSENT_USER_DID, else the saved agent's owner)" };
        var timeout = new Option<int?>("--timeout") { Description = "Seconds to wait for the decision, 1 to 3600; the request is created to expire then too (default: the server's request expiry, 300 s unless configured)" };
        var (server, clientId, clientSecret) = AgentOptions();
        var agent = AgentCredentials.AgentOption();
        var json = StoreOptions.Json();
        var command = new Command("approve", """
            Ask a human to approve an action and wait for the decision; prints the access token. Exit 0 approved, 1 denied, 2 expired or timed out, 69 server unreachable.
            Example: TOKEN=$(assent approve "Deploy v2.3 to production" --scope approve:action --timeout 120 --agent deploy-bot)
            """)
        {
            message, scope, detail, user, timeout, agent, server, clientId, clientSecret, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = AgentCredentials.Resolve(parse, agent, parse.GetValue(server), parse.GetValue(clientId), parse.GetValue(clientSecret), parse.GetValue(user));
            var approve = new ApproveOptions { Scope = parse.GetValue(scope) };
            if (parse.GetValue(detail) is { } raw)
            {
                try
                {
                    using var doc = JsonDocument.Parse(raw);
                    approve.Details = doc.RootElement.Clone();
                }
                catch (JsonException e)
                {
                    throw CliException.Usage($"--detail is not valid JSON: {e.Message}");
                }
            }
            if (parse.GetValue(timeout) is { } seconds)
            {
                if (seconds is < 1 or > 3600)
                {
                    throw CliException.Usage("--timeout must be from 1 to 3600 seconds");
                }
                // The request is created to expire when the wait ends (requested_expiry, CIBA Core §7.1), and is
                // withdrawn when the wait ends first: nothing is left pending behind us.
                approve.Timeout = TimeSpan.FromSeconds(seconds);
            }
            else
            {
                // Without --timeout the request lives as long as the server's default expiry, and we wait
                // for it to end (the server allows at most an hour).
                options.DefaultTimeout = WaitForServerExpiry;
            }
            var asJson = parse.GetValue(json);
            using var client = new AssentClient(options);
            Approval approval;
            try
            {
                approval = await client.ApproveAsync(parse.GetValue(message)!, approve, ct);
            }
            catch (AssentTimeoutException e)
            {
                // The request was created to expire with the wait, but the server counts from when it received it, a
                // moment after the wait began (longer for a process still starting up). Withdraw it, so that nothing is
                // left pending behind us even for that moment: a device approving it then would approve what nobody
                // waits for. Best effort and bounded; an already expired request is left as it is (RFC 7009 §2.2).
                if (e.AuthReqId is { } id)
                {
                    await client.WithdrawAsync(id);
                }
                if (asJson)
                {
                    await Terminal.WriteJsonAsync(new ApproveOutput(false, "expired"), CliJson.Default.ApproveOutput);
                }
                throw new CliException(ExitCodes.ExpiredOrTimeout, $"expired: nobody decided within {e.Timeout.TotalSeconds:0} s, and the request expired with the wait (raise --timeout to wait longer)");
            }
            catch (AssentOAuthException e)
            {
                throw CliException.Invalid($"the server refused the request: {e.Message}{Hint(e.Error)}");
            }
            catch (ArgumentException e)
            {
                throw CliException.Usage(e.Message);
            }
            var status = approval.Status.ToString().ToLowerInvariant();
            if (asJson)
            {
                await Terminal.WriteJsonAsync(new ApproveOutput(approval.Approved, status, approval.AccessToken, approval.Scope, approval.ExpiresIn),
                    CliJson.Default.ApproveOutput);
            }
            else if (approval.Approved)
            {
                await Console.Out.WriteLineAsync(approval.AccessToken);
            }
            switch (approval.Status)
            {
                case ApprovalStatus.Approved:
                    return ExitCodes.Success;
                case ApprovalStatus.Denied:
                    await Console.Error.WriteLineAsync("denied: the user refused the request");
                    return ExitCodes.DeniedOrInvalid;
                default:
                    await Console.Error.WriteLineAsync("expired: nobody decided in time; ask again (or raise --timeout)");
                    return ExitCodes.ExpiredOrTimeout;
            }
        }));
        return command;
    }

    public static (Option<string?> Server, Option<string?> ClientId, Option<string?> ClientSecret) AgentOptions() => (
        new Option<string?>("--server") { Description = "The Assent server's URL (default: $ASSENT_SERVER)" },
        new Option<string?>("--client-id") { Description = "The agent's client_id (default: $ASSENT_CLIENT_ID)" },
        new Option<string?>("--client-secret") { Description = "The agent's client_secret (default: $ASSENT_CLIENT_SECRET; prefer the variable: options show in ps)" });

    private static string Hint(string error) => error switch
    {
        "invalid_client" => " (check --client-id and --client-secret)",
        "invalid_scope" => " (the agent is not registered for that scope)",
        "unknown_user_id" => " (check --user: a DID or handle of an enrolled user)",
        _ => "",
    };
}
