using System.CommandLine;
using Assent.Cli.Output;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent admin …</c>: operator actions straight on the database (docs/cli.md §6: offline bootstrap),
/// so they work before the first device exists and whether or not a server is running.
/// </summary>
internal static class AdminCommands
{
    public static Command Build()
    {
        var agent = new Command("agent", "Manage agents (OAuth clients). Example: assent admin agent create --owner alice --name deploy-bot --scopes approve:action");
        agent.Subcommands.Add(AgentCreate());
        agent.Subcommands.Add(AgentSet());
        var apikey = new Command("apikey", "Manage API keys for the /v1 API. Example: assent admin apikey create --owner alice --name billing --scopes challenges:write,challenges:read");
        apikey.Subcommands.Add(ApiKeyCreate());
        var client = new Command("client", "Manage web applications that sign users in with Assent (OpenID Connect). Example: assent admin client create --name wiki --redirect-uri https://wiki.example.com/signin-oidc");
        client.Subcommands.Add(ClientCreate());
        var keys = new Command("keys", "Manage the token signing keys. Example: assent admin keys rotate");
        keys.Subcommands.Add(KeysRotate());
        return new Command("admin", "Operator commands that work offline on the data directory (./assent-data unless --data). Example: assent admin invite alice --admin --data ./assent-data")
        {
            Invite(), agent, apikey, client, keys,
        };
    }

    /// <summary>The SQLite file the options name, or null for PostgreSQL.</summary>
    private static string? SqliteFile(AssentOptions options) => options.Database switch
    {
        null => Path.Combine(options.DataDirectory, StoreFactory.SqliteFileName),
        { } d when d.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase) => d["sqlite:".Length..],
        _ => null,
    };

    private static Command Invite()
    {
        var handle = new Argument<string>("HANDLE") { Description = "The user's handle: 1 to 48 of a-z 0-9 . _ -" };
        var admin = new Option<bool>("--admin") { Description = "Make the user an administrator" };
        var (data, database, issuer, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Issuer(), StoreOptions.Json());
        var command = new Command("invite", "Create a one-time enrolment code and link for a user. Example: assent admin invite alice --admin")
        {
            handle, admin, data, database, issuer, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var name = parse.GetValue(handle)!;
            if (!Naming.IsValidHandle(name))
            {
                throw CliException.Usage($"'{name}' is not a valid handle: use 1 to 48 characters of a-z, 0-9, '.', '_' and '-' (e.g. alice)");
            }
            var options = StoreOptions.Read(parse, data, database, issuer);
            var invite = await WithStoreAsync(options, (store, time) => new AdminOperations(store, options, time).InviteAsync(name, parse.GetValue(admin), ct), ct,
                mayCreate: true, issuerGiven: parse.GetValue(issuer) is not null);
            var enroll = $"assent device enroll --server {options.IssuerString} --code {invite.Code}";
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new InviteOutput(invite.Code, invite.Link, invite.Handle, invite.UserId, invite.Admin, invite.ExpiresAt, enroll),
                    CliJson.Default.InviteOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                Invited {invite.Handle}{(invite.Admin ? " (admin)" : "")}. One-time enrolment code, valid until {invite.ExpiresAt:u}:

                  code: {invite.Code}
                  link: {invite.Link}

                On the computer that will approve requests, run:

                  {enroll}
                """);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command AgentCreate()
    {
        var owner = new Option<string>("--owner") { Description = "Handle of the user who owns the agent and approves its requests", Required = true };
        var name = new Option<string>("--name") { Description = "A name shown to the approver, e.g. deploy-bot", Required = true };
        var scopes = new Option<string>("--scopes") { Description = "Scopes the agent may ask for, space- or comma-separated (openid is added)", Required = true };
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("create", "Register an agent and print its client id and secret. Example: assent admin agent create --owner alice --name deploy-bot --scopes approve:action")
        {
            owner, name, scopes, data, database, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            var agent = await WithStoreAsync(options, (store, time) =>
                new AdminOperations(store, options, time).CreateAgentAsync(parse.GetValue(owner)!, parse.GetValue(name)!, parse.GetValue(scopes)!, ct), ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new AgentOutput(agent.ClientId, agent.ClientSecret, agent.Name, agent.Scopes, agent.Owner), CliJson.Default.AgentOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                Agent '{agent.Name}' created for {agent.Owner}, scopes: {agent.Scopes}

                  client_id:     {agent.ClientId}
                  client_secret: {agent.ClientSecret}

                """);
            await Console.Error.WriteLineAsync("The secret is shown only this once (the server keeps only its hash): store it now, e.g. as ASSENT_CLIENT_SECRET.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command AgentSet()
    {
        var clientId = new Argument<string>("CLIENT_ID") { Description = "The agent (agt_…)" };
        var mode = new Option<string>("--delivery-mode") { Description = "CIBA delivery: poll (default), ping or push", Required = true };
        mode.AcceptOnlyFromAmong("poll", "ping", "push");
        var endpoint = new Option<string?>("--notification-endpoint") { Description = "For ping and push: the agent's https URL that receives notifications" };
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("set", "Set an agent's CIBA delivery mode. Example: assent admin agent set agt_abc --delivery-mode ping --notification-endpoint https://agent.example/cb")
        {
            clientId, mode, endpoint, data, database, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            var id = parse.GetValue(clientId)!;
            var chosen = parse.GetValue(mode)!;
            var url = parse.GetValue(endpoint);
            await WithStoreAsync(options, async (store, time) =>
            {
                await new AdminOperations(store, options, time).SetAgentDeliveryAsync(id, chosen, url, ct);
                return true;
            }, ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new AgentDeliveryOutput(id, chosen, chosen == "poll" ? null : url), CliJson.Default.AgentDeliveryOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync(chosen == "poll"
                ? $"Agent {id} polls for its decisions (running servers pick this up within 30 s)."
                : $"Agent {id} gets {chosen} notifications at {url}; its requests must carry client_notification_token (running servers pick this up within 30 s).");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command ApiKeyCreate()
    {
        var owner = new Option<string>("--owner") { Description = "Handle of the user who owns the key; its challenges ask them (an admin's key may ask anyone)", Required = true };
        var name = new Option<string>("--name") { Description = "A name for the key, e.g. billing-backend", Required = true };
        var scopes = new Option<string>("--scopes")
        {
            Description = "Scopes, space- or comma-separated: challenges:write, challenges:read, webhooks:manage, policies:manage", Required = true,
        };
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("create", "Create an API key (sk_…) and print it once. Example: assent admin apikey create --owner alice --name billing --scopes challenges:write,challenges:read")
        {
            owner, name, scopes, data, database, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            var key = await WithStoreAsync(options, (store, time) =>
                new AdminOperations(store, options, time).CreateApiKeyAsync(parse.GetValue(owner)!, parse.GetValue(name)!, parse.GetValue(scopes)!, ct), ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new ApiKeyOutput(key.Id, key.Key, key.Name, key.Scopes, key.Owner), CliJson.Default.ApiKeyOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                API key '{key.Name}' created for {key.Owner}, scopes: {key.Scopes}

                  id:  {key.Id}
                  key: {key.Key}

                """);
            await Console.Error.WriteLineAsync("The key is shown only this once (the server keeps only its hash): store it now, e.g. as ASSENT_API_KEY.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command ClientCreate()
    {
        var name = new Option<string>("--name") { Description = "The application's name, shown on the sign-in and consent pages", Required = true };
        var redirect = new Option<string[]>("--redirect-uri")
        {
            Description = "Where the code is sent back; matched exactly. https, or http for localhost. Repeat for several", Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var postLogout = new Option<string[]>("--post-logout-redirect-uri") { Description = "Where RP-initiated logout may return to. Repeat for several" };
        var isPublic = new Option<bool>("--public") { Description = "A public client (single-page or native app): no secret, PKCE S256 required" };
        var alg = new Option<string?>("--id-token-alg") { Description = "ID token signature: EdDSA (default), ES256 or RS256 for libraries without EdDSA" };
        alg.AcceptOnlyFromAmong("EdDSA", "ES256", "RS256");
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var command = new Command("create",
            "Register a web application and print its client id (and, unless --public, its secret, once). Example: assent admin client create --name wiki --redirect-uri https://wiki.example.com/signin-oidc")
        {
            name, redirect, postLogout, isPublic, alg, data, database, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null);
            var created = await WithStoreAsync(options, (store, time) => new AdminOperations(store, options, time).CreateWebClientAsync(parse.GetValue(name)!,
                parse.GetValue(redirect) ?? [], parse.GetValue(postLogout) ?? [], parse.GetValue(isPublic), parse.GetValue(alg), ct), ct);
            var authMethod = created.Public ? "none" : "client_secret_basic";
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new WebClientOutput(created.ClientId, created.ClientSecret, created.Name, created.RedirectUris, created.PostLogoutRedirectUris,
                    created.Public, created.IdTokenAlg, authMethod), CliJson.Default.WebClientOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                Web client '{created.Name}' created ({(created.Public ? "public, PKCE S256 required" : "confidential")}, ID tokens {created.IdTokenAlg})

                  issuer:        {options.IssuerString}
                  client_id:     {created.ClientId}
                """ + (created.ClientSecret is null ? "" : $"\n  client_secret: {created.ClientSecret}\n"));
            if (created.ClientSecret is not null)
            {
                await Console.Error.WriteLineAsync("The secret is shown only this once (the server keeps only its hash): store it in the application's configuration now.");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command KeysRotate()
    {
        var (data, database, masterKeyFile, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.MasterKeyFile(), StoreOptions.Json());
        var command = new Command("rotate", "Make a new signing key current; old keys stay in JWKS until their tokens expire. Example: assent admin keys rotate --data ./assent-data")
        {
            data, database, masterKeyFile, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var options = StoreOptions.Read(parse, data, database, null, masterKeyFile);
            var kid = await WithStoreAsync(options, (store, time) => new AdminOperations(store, options, time).RotateKeysAsync(ct), ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new KeyOutput(kid), CliJson.Default.KeyOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"New signing key {kid} is current. Running servers pick it up within seconds; tokens signed with older keys stay valid until they expire.");
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>
    /// Opens the server's data for an offline command. Only <paramref name="mayCreate"/> (the first
    /// <c>admin invite</c>) may start a new SQLite database; any other command run where there is none says
    /// where it looked rather than create an empty one. Without <c>--issuer</c>, links are for the issuer the
    /// server last started with on this data.
    /// </summary>
    internal static async Task<T> WithStoreAsync<T>(AssentOptions options, Func<AssentStore, TimeProvider, Task<T>> action, CancellationToken ct,
        bool mayCreate = false, bool issuerGiven = true)
    {
        if (mayCreate && SqliteFile(options) is { } created && !File.Exists(created))
        {
            await Console.Error.WriteLineAsync($"note: no Assent data in {Path.GetFullPath(Path.GetDirectoryName(created)!)} yet; starting a new database there (start the server with the same --data)");
        }
        else if (!mayCreate && SqliteFile(options) is { } file && !File.Exists(file))
        {
            var where = Path.GetFullPath(Path.GetDirectoryName(file)!);
            throw CliException.Usage(options.Database is null
                ? $"no Assent data in {where} (no {StoreFactory.SqliteFileName} there); run this in the directory that holds the server's data directory, or pass --data DIR (the server's --data)"
                : $"--database: no SQLite database at {Path.GetFullPath(file)}");
        }
        AssentStore store;
        try
        {
            store = await StoreFactory.OpenAsync(options, TimeProvider.System, ct);
        }
        catch (NotSupportedException e)
        {
            throw CliException.Usage($"--database: {e.Message}");
        }
        await using (store)
        {
            if (!issuerGiven && await store.Meta.GetAsync(MetaKeys.Issuer, ct) is { } issuer)
            {
                options.Issuer = System.Text.Encoding.UTF8.GetString(issuer);
            }
            try
            {
                return await action(store, TimeProvider.System);
            }
            catch (ArgumentException e)
            {
                throw CliException.Usage(e.Message);
            }
        }
    }
}
