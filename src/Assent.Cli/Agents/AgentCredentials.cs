using System.CommandLine;
using Assent.Cli.Devices;
using Assent.Cli.Profiles;
using Assent.Client;

namespace Assent.Cli.Agents;

/// <summary>
/// Where a command that acts as an agent (<c>assent approve</c>) gets its credentials (docs/cli.md §3, §4.2):
/// <list type="number">
/// <item><c>--agent [NAME]</c>: that saved agent profile (without a name: <c>$ASSENT_PROFILE</c> when it names an
/// agent, else the default agent), whatever the environment says; <c>--server</c> and <c>--user</c> still win.</item>
/// <item>Otherwise, when <c>--client-id</c>/<c>--client-secret</c> or <c>ASSENT_CLIENT_ID</c>/<c>ASSENT_CLIENT_SECRET</c>
/// are given: the options and the environment, as an SDK program would read them.</item>
/// <item>Otherwise the saved agent profile of <c>$ASSENT_PROFILE</c> or the default agent, if there is one.</item>
/// </list>
/// A client id and its secret always come from the same place, and a profile's agent asks its owner
/// unless <c>--user</c> or <c>ASSENT_USER_DID</c> names someone else.
/// </summary>
internal static class AgentCredentials
{
    public static Option<string?> AgentOption() => new("--agent")
    {
        Description = "Act as this saved agent profile (assent profiles list); without NAME, $ASSENT_PROFILE or the default agent",
        Arity = ArgumentArity.ZeroOrOne,
        HelpName = "NAME",
    };

    /// <summary>The agent's options for this command line.</summary>
    public static AssentClientOptions Resolve(ParseResult parse, Option<string?> agent, string? server, string? clientId, string? clientSecret, string? user) =>
        Resolve(parse.GetResult(agent) is null ? null : parse.GetValue(agent) ?? "", server, clientId, clientSecret, user, ProfileStore.ForCurrentUser);

    /// <param name="agent">null: no <c>--agent</c>; empty: <c>--agent</c> without a name; else the profile's name.</param>
    internal static AssentClientOptions Resolve(string? agent, string? server, string? clientId, string? clientSecret, string? user, Func<ProfileStore> profiles)
    {
        AssentClientOptions env;
        try
        {
            env = AssentClientOptions.FromEnvironment();
        }
        catch (ArgumentException e)
        {
            throw CliException.Usage(e.Message);
        }
        if (agent is not null && (clientId ?? clientSecret) is not null)
        {
            throw CliException.Usage("--agent and --client-id/--client-secret both name the agent: use one or the other");
        }
        var given = (clientId ?? clientSecret ?? env.ClientId ?? env.ClientSecret) is not null;
        var saved = agent is not null || !given ? ProfileStore.SelectAgent(profiles().Read(), agent is { Length: > 0 } ? agent : null, required: agent is not null) : null;
        var options = saved is { } p
            ? new AssentClientOptions
            {
                Server = server is not null ? ServerUrl.Parse(server, "--server") : ServerUrl.Parse(p.Profile.Server, $"the server of agent profile '{p.Name}'"),
                ClientId = p.Profile.ClientId,
                ClientSecret = p.Profile.ClientSecret,
                UserDid = user ?? env.UserDid ?? p.Profile.Owner,
            }
            : new AssentClientOptions
            {
                Server = server is not null ? ServerUrl.Parse(server, "--server") : env.Server,
                ClientId = clientId ?? env.ClientId,
                ClientSecret = clientSecret ?? env.ClientSecret,
                UserDid = user ?? env.UserDid,
            };
        if (options.Server is null)
        {
            throw CliException.Usage($"which server? pass --server URL or set {AssentClientOptions.ServerVariable} (or save an agent: assent auth setup-agent --name NAME --save)");
        }
        if (options.ClientId is null || options.ClientSecret is null)
        {
            throw CliException.Usage(
                $"agent credentials are missing: pass --agent NAME (a saved agent profile), or --client-id and --client-secret, or set {AssentClientOptions.ClientIdVariable} and {AssentClientOptions.ClientSecretVariable} " +
                "(create an agent with: assent auth setup-agent --name NAME --save, or offline: assent admin agent create)");
        }
        if (options.UserDid is null)
        {
            throw CliException.Usage($"whom to ask? pass --user DID (or handle), or set {AssentClientOptions.UserDidVariable}");
        }
        return options;
    }
}
