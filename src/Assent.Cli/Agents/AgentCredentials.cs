using Assent.Cli.Devices;
using Assent.Client;

namespace Assent.Cli.Agents;

/// <summary>
/// Where <c>assent approve</c> gets its agent credentials: the command's options first, then the
/// <c>ASSENT_*</c> environment variables. This is the one place a saved profile plugs in.
/// </summary>
internal static class AgentCredentials
{
    public static AssentClientOptions Resolve(string? server, string? clientId, string? clientSecret, string? user)
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
        var options = new AssentClientOptions
        {
            Server = server is not null ? ServerUrl.Parse(server, "--server") : env.Server,
            ClientId = clientId ?? env.ClientId,
            ClientSecret = clientSecret ?? env.ClientSecret,
            UserDid = user ?? env.UserDid,
        };
        // A saved profile (~/.assent/profiles.json, docs/cli.md §4) fills what is still missing here.
        if (options.Server is null)
        {
            throw CliException.Usage($"which server? pass --server URL or set {AssentClientOptions.ServerVariable}");
        }
        if (options.ClientId is null || options.ClientSecret is null)
        {
            throw CliException.Usage(
                $"agent credentials are missing: pass --client-id and --client-secret, or set {AssentClientOptions.ClientIdVariable} and {AssentClientOptions.ClientSecretVariable} (create an agent with: assent admin agent create)");
        }
        if (options.UserDid is null)
        {
            throw CliException.Usage($"whom to ask? pass --user DID (or handle), or set {AssentClientOptions.UserDidVariable}");
        }
        return options;
    }
}
