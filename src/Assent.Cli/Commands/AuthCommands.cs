using System.CommandLine;
using System.Text.Json;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Cli.Profiles;
using Assent.Cli.Sessions;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Spectre.Console;

namespace Assent.Cli.Commands;

internal sealed record LoginOutput(string Profile, string Server, string Handle, string Sub, string Scope, DateTimeOffset AccessTokenExpiresAt);

internal sealed record StatusOutput(string Profile, string Server, string Handle, string Sub, string Scope, string ClientId,
    DateTimeOffset AccessTokenExpiresAt, bool Refreshed);

internal sealed record ConsentRequestOutput(string RequestId, string Status, string ClientId, string AgentName, string User);

internal sealed record SetupAgentOutput(string ClientId, string ClientSecret, string Name, string Scopes, string Owner, string Server, string? Profile);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
[System.Text.Json.Serialization.JsonSerializable(typeof(LoginOutput))]
[System.Text.Json.Serialization.JsonSerializable(typeof(StatusOutput))]
[System.Text.Json.Serialization.JsonSerializable(typeof(SetupAgentOutput))]
[System.Text.Json.Serialization.JsonSerializable(typeof(ConsentRequestOutput))]
internal sealed partial class AuthJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>
/// <c>assent auth …</c>: a human signs the CLI in (RFC 8628, approved on their own device), and with
/// that session asks their device to approve registering an agent.
/// </summary>
internal static class AuthCommands
{
    public const string ServerVariable = "ASSENT_SERVER";
    private const string DefaultServer = "http://localhost:8400";

    public static Command Build() =>
        new("auth", "Sign in as a human and set up agents. Example: assent auth login --server http://localhost:8400")
        {
            Login(), Status(), Logout(), SetupAgent(), Consent(),
        };

    private static Command Login()
    {
        var server = new Option<string?>("--server") { Description = $"The Assent server (default: ${ServerVariable}, the signed-in profile's, or {DefaultServer})" };
        var user = new Option<string?>("--user") { Description = "Push the sign-in to this user's devices (handle or DID) instead of showing a code to enter" };
        var json = StoreOptions.Json();
        var command = new Command("login", "Sign in with your device (RFC 8628): shows a link, a code and a QR code, then waits. Example: assent auth login --user alice")
        {
            server, user, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            var text = asJson ? Console.Error : Console.Out;
            var store = ProfileStore.ForCurrentUser();
            var url = ResolveServer(parse.GetValue(server), store);
            var handle = parse.GetValue(user);
            using var client = new SessionClient(url);
            var started = await client.StartAsync(handle, ct);

            if (handle is not null)
            {
                await text.WriteLineAsync($"Sign-in request sent to {Terminal.Visible(handle)}'s devices. Approve it there; it shows the code {started.UserCode}.");
            }
            else
            {
                await text.WriteLineAsync($"""
                    To sign in, approve this code from one of your devices:

                      code: {started.UserCode}
                      link: {started.VerificationUriComplete}

                    {QrCode.Render(started.VerificationUriComplete)}
                    or, on a computer enrolled as your device:  assent device approve --code {started.UserCode} --server {ServerUrl.Format(url)}
                    """);
            }

            var tokens = await WaitForApprovalAsync(client, started, text, ct);
            var info = await client.UserInfoAsync(tokens.AccessToken, ct)
                ?? throw CliException.Invalid("the server did not accept the token it just issued; check the server's clock and issuer");
            var who = info.PreferredUsername ?? handle ?? info.Sub;
            var name = ProfileStore.HumanName(who, url);
            var profile = new HumanProfile(ServerUrl.Format(url), who, info.Sub, tokens.Scope ?? info.Scope, tokens.AccessToken,
                DateTimeOffset.UtcNow.AddSeconds(tokens.ExpiresIn), tokens.RefreshToken
                    ?? throw CliException.Invalid("the server issued no refresh token; it does not support CLI sessions"), DateTimeOffset.UtcNow);
            var replaced = store.Update(file =>
            {
                var previous = file.Humans.GetValueOrDefault(name);
                file.Humans[name] = profile;
                file.Defaults.Human = name;
                return previous;
            });
            if (replaced is not null)
            {
                // Signing in again replaces the saved session: end the old one at the server rather than leave it valid and unused.
                try
                {
                    await client.RevokeAsync(replaced.RefreshToken, OAuthParameters.RefreshToken, ct);
                }
                catch (Exception e) when (e is CliException or Client.AssentUnreachableException)
                {
                    await Console.Error.WriteLineAsync($"warning: could not end the previous session of '{name}': {e.Message}");
                }
            }
            if (asJson)
            {
                await Terminal.WriteJsonAsync(new LoginOutput(name, profile.Server, who, info.Sub, profile.Scope, profile.AccessTokenExpiresAt), AuthJson.Default.LoginOutput);
            }
            else
            {
                await Console.Out.WriteLineAsync($"Signed in to {profile.Server} as {Terminal.Visible(who)} ({info.Sub}); saved as profile '{Terminal.Visible(name)}'.");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>RFC 8628 §3.4–§3.5, with <c>Prefer: wait</c> so the answer comes the moment the device decides.</summary>
    private static async Task<TokenResponse> WaitForApprovalAsync(SessionClient client, DeviceAuthorizationResponse started, TextWriter text, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow.AddSeconds(started.ExpiresIn);
        var interval = TimeSpan.FromSeconds(Math.Max(1, started.Interval));
        return await WithSpinnerAsync(text, "Waiting for approval on your device…", async () =>
        {
            while (true)
            {
                var left = (int)Math.Ceiling((deadline - DateTimeOffset.UtcNow).TotalSeconds);
                var asked = DateTimeOffset.UtcNow;
                var answer = await client.PollAsync(started.DeviceCode, Math.Clamp(left, 1, 60), ct);
                switch (answer.Error)
                {
                    case null:
                        return answer.Tokens!;
                    case OAuthErrors.AuthorizationPending:
                        // A server that does not hold requests answers at once: then poll at the interval.
                        if (DateTimeOffset.UtcNow - asked < interval)
                        {
                            await Task.Delay(interval, ct);
                        }
                        break;
                    case OAuthErrors.SlowDown:
                        interval += TimeSpan.FromSeconds(5);
                        await Task.Delay(interval, ct);
                        break;
                    case OAuthErrors.AccessDenied:
                        throw CliException.Invalid("the sign-in was denied on the device");
                    case OAuthErrors.ExpiredToken:
                        throw new CliException(ExitCodes.ExpiredOrTimeout, "the code expired before it was approved; run assent auth login again");
                    default:
                        throw CliException.Invalid($"the sign-in failed: {answer.Description ?? answer.Error}");
                }
            }
        });
    }

    private static Command Status()
    {
        var json = StoreOptions.Json();
        var command = new Command("status", $"Show who is signed in, where, and until when (refreshes an expired session). Select a profile with ${ProfileStore.ProfileVariable}. Example: assent auth status --json")
        {
            json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var store = ProfileStore.ForCurrentUser();
            var (name, profile, refreshed) = await FreshSessionAsync(store, ct);
            using var client = new SessionClient(ServerUrl.Parse(profile.Server, "the profile's server"));
            var info = await client.UserInfoAsync(profile.AccessToken, ct)
                ?? throw CliException.Invalid($"the server no longer accepts this session (revoked?); run: assent auth login --server {profile.Server}");
            var output = new StatusOutput(name, profile.Server, profile.Handle, info.Sub, info.Scope, info.ClientId, profile.AccessTokenExpiresAt, refreshed);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(output, AuthJson.Default.StatusOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                Signed in to {output.Server} as {Terminal.Visible(output.Handle)} ({output.Sub})
                  profile: {Terminal.Visible(name)}
                  scope:   {output.Scope}
                  access token valid until {output.AccessTokenExpiresAt:u}{(refreshed ? " (just refreshed)" : "")}; it refreshes itself when needed
                """);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Logout()
    {
        var command = new Command("logout", $"End the session at the server (revoke its refresh token) and forget the profile. Example: assent auth logout");
        command.SetAction(CliApp.Guard(async (_, ct) =>
        {
            var store = ProfileStore.ForCurrentUser();
            var (name, profile) = ProfileStore.SelectHuman(store.Read()) ?? throw NotSignedIn();
            string? failure = null;
            try
            {
                using var client = new SessionClient(ServerUrl.Parse(profile.Server, "the profile's server"));
                await client.RevokeAsync(profile.RefreshToken, OAuthParameters.RefreshToken, ct);
                await client.RevokeAsync(profile.AccessToken, OAuthParameters.AccessToken, ct);
            }
            catch (Client.AssentUnreachableException e)
            {
                failure = e.Reason;
            }
            store.Update(file =>
            {
                file.Humans.Remove(name);
                if (file.Defaults.Human == name)
                {
                    file.Defaults.Human = file.Humans.Keys.Order(StringComparer.Ordinal).FirstOrDefault();
                }
                return true;
            });
            if (failure is not null)
            {
                await Console.Error.WriteLineAsync($"error: forgot profile '{name}', but could not reach {profile.Server} to end the session there ({failure}); " +
                                                   "it stays valid at the server until it expires");
                return ExitCodes.Unavailable;
            }
            await Console.Out.WriteLineAsync($"Signed out: the session of '{Terminal.Visible(name)}' is ended at {profile.Server} and forgotten here.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command SetupAgent()
    {
        var name = new Option<string>("--name") { Description = "The agent's name, shown to you when it asks for approval, e.g. deploy-bot", Required = true };
        var scopes = new Option<string>("--scopes") { Description = "Scopes the agent may ask for, space- or comma-separated (openid is added)", DefaultValueFactory = _ => "approve:action" };
        var save = new Option<bool>("--save") { Description = "Save the client id and secret as an agent profile in ~/.assent/profiles.json" };
        var json = StoreOptions.Json();
        var command = new Command("setup-agent", "Register an agent; your device approves it, then its client id and secret are shown once. Example: assent auth setup-agent --name deploy-bot --scopes approve:action --save")
        {
            name, scopes, save, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var (asJson, saveIt) = (parse.GetValue(json), parse.GetValue(save));
            var text = asJson ? Console.Error : Console.Out;
            var agentName = parse.GetValue(name)!.Trim();
            var scopeList = parse.GetValue(scopes)!.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries);
            var store = ProfileStore.ForCurrentUser();
            var (_, profile, _) = await FreshSessionAsync(store, ct);
            var url = ServerUrl.Parse(profile.Server, "the profile's server");
            using var client = new SessionClient(url);

            await text.WriteLineAsync($"Asked {Terminal.Visible(profile.Handle)}'s devices to approve registering agent '{Terminal.Visible(agentName)}'.");
            var created = await WithSpinnerAsync(text, "Approve on your device…", async () =>
            {
                var answer = await client.AgentAsync(profile.AccessToken, new AgentRegistrationRequest(agentName, JsonSerializer.SerializeToElement(scopeList, CliJson.Default.IReadOnlyListString)), null, 60, ct);
                while (answer.Status == System.Net.HttpStatusCode.Accepted)
                {
                    answer = await client.AgentAsync(profile.AccessToken, null, answer.Location ?? $"/agents/requests/{answer.Body!.RequestId}", 60, ct);
                }
                return answer;
            });
            var agent = created.Status switch
            {
                System.Net.HttpStatusCode.Created => created.Body!,
                System.Net.HttpStatusCode.OK => throw CliException.Invalid($"agent {created.Body!.ClientId} was created, but its secret was already shown once; register another"),
                System.Net.HttpStatusCode.Forbidden => throw CliException.Invalid("registering the agent was denied on the device"),
                System.Net.HttpStatusCode.Gone => throw new CliException(ExitCodes.ExpiredOrTimeout, "nobody approved in time; run the command again"),
                System.Net.HttpStatusCode.BadRequest or System.Net.HttpStatusCode.Conflict => throw CliException.Usage(created.Problem ?? "the server refused the name or scopes"),
                System.Net.HttpStatusCode.Unauthorized => throw CliException.Invalid($"the session is no longer valid ({created.Problem}); run: assent auth login"),
                _ => throw CliException.Invalid($"the server refused: {created.Problem} ({(int)created.Status})"),
            };
            string? saved = null;
            if (saveIt)
            {
                saved = store.Update(file =>
                {
                    // The profile id is the name made safe to type; another agent saved under it is never overwritten (its secret is not shown again).
                    var id = ProfileStore.Slug(agent.Name!);
                    for (var n = 2; file.Agents.TryGetValue(id, out var other) && other.ClientId != agent.ClientId; n++)
                    {
                        id = $"{ProfileStore.Slug(agent.Name!)}-{n}";
                    }
                    file.Agents[id] = new AgentProfile(profile.Server, agent.ClientId!, agent.ClientSecret!, agent.Name!, agent.Scopes!, agent.Owner!, DateTimeOffset.UtcNow);
                    file.Defaults.Agent ??= id;
                    return id;
                });
            }
            if (asJson)
            {
                await Terminal.WriteJsonAsync(new SetupAgentOutput(agent.ClientId!, agent.ClientSecret!, agent.Name!, agent.Scopes!, agent.Owner!, profile.Server, saved),
                    AuthJson.Default.SetupAgentOutput);
                return ExitCodes.Success;
            }
            if (saved is not null)
            {
                await Console.Out.WriteLineAsync($"""
                    Registered agent '{Terminal.Visible(agent.Name)}' ({agent.ClientId}) and saved it as agent profile '{Terminal.Visible(saved)}'.
                    Ask as this agent: assent approve "MESSAGE" --scope {ScopeExample(agent.Scopes)} --agent {saved}
                    """);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                Registered agent '{Terminal.Visible(agent.Name)}' owned by {Terminal.Visible(agent.Owner)}, scopes: {agent.Scopes}
                The secret is shown only this once. For the agent's environment:

                  export ASSENT_SERVER={profile.Server}
                  export ASSENT_CLIENT_ID={agent.ClientId}
                  export ASSENT_CLIENT_SECRET={agent.ClientSecret}
                """);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Consent()
    {
        var agent = new Option<string>("--agent")
        {
            Description = "Your agent: its client id (agt_…) or the name of its saved agent profile", Required = true,
        };
        var user = new Option<string>("--user") { Description = "The user to ask (handle or DID); they decide on their own device", Required = true };
        var json = StoreOptions.Json();
        var request = new Command("request", "Ask another user to let your agent ask them for approvals; waits for their device. Example: assent auth consent request --agent deploy-bot --user alice")
        {
            agent, user, json,
        };
        request.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            var text = asJson ? Console.Error : Console.Out;
            var handle = parse.GetValue(user)!.Trim();
            var store = ProfileStore.ForCurrentUser();
            var clientId = AgentClientId(parse.GetValue(agent)!.Trim(), store);
            var (_, profile, _) = await FreshSessionAsync(store, ct);
            using var client = new SessionClient(ServerUrl.Parse(profile.Server, "the profile's server"));

            await text.WriteLineAsync($"Asked {Terminal.Visible(handle)}'s devices to let your agent {Terminal.Visible(clientId)} ask them for approvals.");
            var answer = await WithSpinnerAsync(text, $"Waiting for {handle} to decide on their device…", async () =>
            {
                var next = await client.ConsentAsync(profile.AccessToken, clientId, handle, null, 60, ct);
                while (next.Status == System.Net.HttpStatusCode.Accepted)
                {
                    next = await client.ConsentAsync(profile.AccessToken, clientId, null, next.Location ?? $"/agents/{clientId}/consents/{next.Body!.RequestId}", 60, ct);
                }
                return next;
            });
            var consent = answer.Status switch
            {
                System.Net.HttpStatusCode.OK or System.Net.HttpStatusCode.Created when answer.Body!.Status == "granted" => answer.Body,
                System.Net.HttpStatusCode.OK => throw CliException.Invalid($"{handle} allowed this agent once but has revoked it since; ask again later"),
                System.Net.HttpStatusCode.Forbidden => throw CliException.Invalid($"{handle} declined on their device: {answer.Problem}"),
                System.Net.HttpStatusCode.Gone => throw new CliException(ExitCodes.ExpiredOrTimeout, $"{handle} did not decide in time; run the command again"),
                System.Net.HttpStatusCode.BadRequest => throw CliException.Usage(answer.Problem ?? "the server refused the request"),
                System.Net.HttpStatusCode.NotFound => throw CliException.Invalid(answer.Problem ?? "no such agent or user"),
                System.Net.HttpStatusCode.Unauthorized => throw CliException.Invalid($"the session is no longer valid ({answer.Problem}); run: assent auth login"),
                _ => throw CliException.Invalid($"the server refused: {answer.Problem} ({(int)answer.Status})"),
            };
            if (asJson)
            {
                await Terminal.WriteJsonAsync(new ConsentRequestOutput(consent.RequestId, consent.Status, consent.ClientId, consent.AgentName, consent.User),
                    AuthJson.Default.ConsentRequestOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync(
                $"{Terminal.Visible(consent.User)} allows your agent '{Terminal.Visible(consent.AgentName)}' ({consent.ClientId}) to ask them for approvals, until they revoke it.");
            return ExitCodes.Success;
        }));
        return new Command("consent", "Let other users be asked by your agents (each decides on their own device). Example: assent auth consent request --agent agt_abc --user alice")
        {
            request,
        };
    }

    /// <summary>A client id as given, or the client id of the saved agent profile of that name.</summary>
    private static string AgentClientId(string agent, ProfileStore store)
    {
        if (agent.StartsWith("agt_", StringComparison.Ordinal))
        {
            return agent;
        }
        var file = store.Read();
        return file.Agents.TryGetValue(agent, out var saved) || file.Agents.TryGetValue(ProfileStore.Slug(agent), out saved)
            ? saved.ClientId
            : throw CliException.Usage($"--agent: '{agent}' is neither a client id (agt_…) nor a saved agent profile; see: assent profiles list");
    }

    /// <summary>A scope the agent may ask for, to show in the example command.</summary>
    private static string ScopeExample(string? scopes) =>
        scopes?.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(s => s != "openid") ?? "approve:action";

    /// <summary>
    /// The selected human session with an access token good for a while, refreshed if needed. The refresh
    /// happens under the profiles lock and re-reads the profile first: two commands refreshing the same
    /// token at once would look like token theft to the server (RFC 9700 §4.14.2) and end the session.
    /// </summary>
    internal static async Task<(string Name, HumanProfile Profile, bool Refreshed)> FreshSessionAsync(ProfileStore store, CancellationToken ct)
    {
        var (name, profile) = ProfileStore.SelectHuman(store.Read()) ?? throw NotSignedIn();
        if (profile.AccessTokenExpiresAt > DateTimeOffset.UtcNow.AddSeconds(30))
        {
            return (name, profile, false);
        }
        using var client = new SessionClient(ServerUrl.Parse(profile.Server, "the profile's server"));
        Exception? failure = null;
        var fresh = store.Update(file =>
        {
            if (!file.Humans.TryGetValue(name, out var current))
            {
                failure = NotSignedIn();
                return profile;
            }
            if (current.AccessTokenExpiresAt > DateTimeOffset.UtcNow.AddSeconds(30))
            {
                return current;
            }
            var answer = client.RefreshAsync(current.RefreshToken, ct).GetAwaiter().GetResult();
            if (answer.Tokens is not { } tokens)
            {
                failure = CliException.Invalid($"the session has ended ({answer.Description ?? answer.Error}); run: assent auth login --server {current.Server}");
                return current;
            }
            var next = current with
            {
                AccessToken = tokens.AccessToken,
                AccessTokenExpiresAt = DateTimeOffset.UtcNow.AddSeconds(tokens.ExpiresIn),
                RefreshToken = tokens.RefreshToken ?? current.RefreshToken,
            };
            file.Humans[name] = next;
            return next;
        });
        if (failure is not null)
        {
            throw failure;
        }
        return (name, fresh, true);
    }

    private static CliException NotSignedIn() => CliException.Invalid("not signed in; run: assent auth login --server URL");

    private static Uri ResolveServer(string? option, ProfileStore store)
    {
        if (option is not null)
        {
            return ServerUrl.Parse(option, "--server");
        }
        if (Environment.GetEnvironmentVariable(ServerVariable) is { Length: > 0 } fromEnvironment)
        {
            return ServerUrl.Parse(fromEnvironment, ServerVariable);
        }
        var file = store.Read();
        return file.Defaults.Human is { } human && file.Humans.TryGetValue(human, out var profile)
            ? ServerUrl.Parse(profile.Server, "the signed-in profile's server")
            : new Uri(DefaultServer);
    }

    /// <summary>A Spectre spinner on a terminal; a single line of text when output goes to a file or pipe.</summary>
    internal static async Task<T> WithSpinnerAsync<T>(TextWriter text, string status, Func<Task<T>> work)
    {
        if (Console.IsErrorRedirected || Console.IsOutputRedirected)
        {
            await text.WriteLineAsync(status);
            return await work();
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return await console.Status().Spinner(Spinner.Known.Dots).StartAsync(Markup.Escape(status), _ => work());
    }
}
