using System.CommandLine;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Client;
using Assent.Client.Authenticator;
using Assent.Client.Vault;
using Assent.Protocol.Approvals;

namespace Assent.Cli.Commands;

/// <summary><c>assent device watch</c>: requests shown live as they arrive, each decided at the terminal (docs/cli.md).</summary>
internal static partial class DeviceCommands
{
    private static Command Watch()
    {
        var server = new Option<string?>("--server") { Description = "Use the device enrolled with this server" };
        var device = DeviceOption();
        var command = new Command("watch", "Watch for requests live; for each, show what it asks and approve (y), deny (n) or skip (s). Ctrl+C stops. Example: assent device watch")
        {
            server, device,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            if (Console.IsInputRedirected)
            {
                throw CliException.Usage("device watch asks on the terminal, and stdin is not one; from a script use: assent device approve ID --yes");
            }
            var url = parse.GetValue(server) is { } s ? ServerUrl.Parse(s, "--server") : null;
            var selected = LocalDevices.ForCurrentUser().Select(parse.GetValue(device), url);
            using var client = ClientFor(selected);
            selected = await TryEnsureVaultKeyAsync(selected, client, ct);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var decidedHere = new HashSet<string>(StringComparer.Ordinal);
            var progress = new Dictionary<string, string>(StringComparer.Ordinal);
            await Console.Out.WriteLineAsync($"Watching requests for {selected.Handle} at {selected.Server} with device {selected.DeviceId}. Ctrl+C stops.");
            try
            {
                while (true)
                {
                    try
                    {
                        await foreach (var e in client.StreamAsync(ct))
                        {
                            if (e.Type == AuthenticatorEvent.Settled)
                            {
                                // Settled elsewhere (another device, the web app) after it was shown here; what this device decided was already said.
                                if (seen.Contains(e.Id) && !decidedHere.Contains(e.Id))
                                {
                                    await Console.Out.WriteLineAsync($"Request {e.Id} is now {e.State}.");
                                }
                                continue;
                            }
                            if (e.Request is not { } request)
                            {
                                continue;
                            }
                            // The stream lists pending requests again after a reconnect, and a quorum's again after each
                            // vote: ask about each once, and say where a quorum stands when that changed (docs/policies.md §3).
                            if (!seen.Add(request.Id))
                            {
                                if (request.QuorumLine is { } quorum && progress.GetValueOrDefault(request.Id) != quorum)
                                {
                                    progress[request.Id] = quorum;
                                    await Console.Out.WriteLineAsync($"Request {request.Id}: {Terminal.Visible(quorum)}.");
                                }
                                continue;
                            }
                            if (request.QuorumLine is { } shown)
                            {
                                progress[request.Id] = shown;
                            }
                            if (await DecideLiveAsync(client, request, selected, ct))
                            {
                                decidedHere.Add(request.Id);
                            }
                        }
                        await Console.Error.WriteLineAsync("The server closed the stream; reconnecting in 2 s.");
                    }
                    catch (AssentUnreachableException e)
                    {
                        await Console.Error.WriteLineAsync($"Lost the server ({e.Reason}); reconnecting in 2 s.");
                    }
                    await Task.Delay(TimeSpan.FromSeconds(2), ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await Console.Out.WriteLineAsync("Stopped watching.");
                return ExitCodes.Success;
            }
        }));
        return command;
    }

    /// <summary>Shows one request and asks once: one key at a terminal, one line of outcome. True when this device decided it.</summary>
    private static async Task<bool> DecideLiveAsync(AuthenticatorClient client, PendingRequest request, DeviceFile device, CancellationToken ct)
    {
        await ShowAsync(Console.Out, request, device);
        if (Mismatch(request, device) is { } why)
        {
            await Console.Error.WriteLineAsync($"error: not signing {request.Id}: {why}");
            return false;
        }
        string? decision = null;
        while (decision is null)
        {
            await Console.Out.WriteAsync("Approve? [y]es / [n]o, deny / [s]kip: ");
            await Console.Out.FlushAsync(ct);
            switch (await ReadAnswerAsync(ct))
            {
                case "y":
                    decision = Decisions.Approve;
                    break;
                case "n":
                    decision = Decisions.Deny;
                    break;
                case "s":
                    await Console.Out.WriteLineAsync("skipped; it stays pending.");
                    return false;
                default:
                    await Console.Out.WriteLineAsync("press y, n or s.");
                    break;
            }
        }
        try
        {
            var result = await DecideAsync(client, request, decision, device, ct);
            var said = decision == Decisions.Approve ? "approved" : "denied";
            // A request that needs several approvers stays pending after this one (docs/concepts.md).
            await Console.Out.WriteLineAsync(result.State == said ? $"{said}." : $"{said}; the request is now {result.State}.");
            return true;
        }
        catch (AssentProblemException e)
        {
            await Console.Out.WriteLineAsync("not decided.");
            await Console.Error.WriteLineAsync($"error: {request.Id}: {e.Detail}");
            return false;
        }
        catch (AssentVaultException e)
        {
            await Console.Out.WriteLineAsync("not decided.");
            await Console.Error.WriteLineAsync($"error: not approving {request.Id}: {e.Message}");
            return false;
        }
    }

    /// <summary>
    /// The answer to the prompt: one key, no Enter, echoed on the prompt's line (watch runs only at a
    /// terminal, docs/cli.md §1). Ctrl+C ends the wait at once: ReadKey cannot be cancelled, so it is awaited this way.
    /// </summary>
    private static async Task<string> ReadAnswerAsync(CancellationToken ct)
    {
        var key = await Task.Run(() => Console.ReadKey(intercept: true), ct).WaitAsync(ct);
        var c = char.ToLowerInvariant(key.KeyChar);
        await Console.Out.WriteAsync(char.IsControl(c) ? "" : $"{c} ");
        return c.ToString();
    }

}
