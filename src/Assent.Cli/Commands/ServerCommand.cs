using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Assent.Server.Common;
using Assent.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Assent.Cli.Commands;

/// <summary><c>assent server</c>: runs the server in the foreground until Ctrl+C.</summary>
internal static partial class ServerCommand
{
    public const string DefaultUrls = "http://localhost:8400";
    public const string DatabaseVariable = "ASSENT_DATABASE";
    public const string MasterKeyFileVariable = "ASSENT_MASTER_KEY_FILE";

    [GeneratedRegex(@"^(?<scheme>https?)://(?<host>\[[^\]]+\]|[^/:\[\]]+)(?::(?<port>\d{1,5}))?/?$", RegexOptions.IgnoreCase)]
    private static partial Regex ListenUrl();

    public static Command Build()
    {
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on, separated by ';'", DefaultValueFactory = _ => DefaultUrls };
        var data = StoreOptions.Data();
        var database = StoreOptions.Database();
        var issuer = new Option<string?>("--issuer") { Description = "Public base URL put in tokens and DIDs (default: the first --urls address)" };
        var masterKeyFile = StoreOptions.MasterKeyFile();
        var command = new Command("server", "Run the Assent server. Example: assent server --urls http://0.0.0.0:8400 --issuer https://assent.example.com")
        {
            urls, data, database, issuer, masterKeyFile,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var listen = parse.GetValue(urls) ?? DefaultUrls;
            // Settings: defaults < environment (Assent__Issuer, Assent__AccessTokenLifetime, …) < flags.
            var settings = new ConfigurationBuilder().AddEnvironmentVariables().Build().GetSection(AssentOptions.Section);
            var options = new AssentOptions();
            settings.Bind(options);
            options.Issuer = parse.GetValue(issuer) ?? settings["Issuer"] ?? IssuerFromUrls(listen);
            options.DataDirectory = parse.GetValue(data) ?? settings["DataDirectory"] ?? StoreOptions.DefaultData;
            options.Database = StoreOptions.DatabaseOrEnvironment(parse.GetValue(database)) ?? settings["Database"];
            options.MasterKeyFile = StoreOptions.MasterKeyFileOrEnvironment(parse.GetValue(masterKeyFile)) ?? settings["MasterKeyFile"];
            if (options.Validate() is { } problem)
            {
                throw CliException.Usage($"{problem.Replace("Assent:Issuer", "--issuer", StringComparison.Ordinal)}");
            }
            EnsureFree(listen);
            WebApplication app;
            try
            {
                app = await AssentServer.BuildAsync(options, listen, Console.Out, ct: ct);
            }
            catch (NotSupportedException e)
            {
                throw CliException.Usage($"--database: {e.Message}");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw CliException.Invalid($"cannot start: {e.Message}");
            }
            await using (app)
            {
                try
                {
                    await app.StartAsync(ct);
                }
                catch (IOException e)
                {
                    throw CliException.Invalid($"cannot listen on {listen}: {e.Message}; stop the other process or choose another address with --urls");
                }
                await Console.Out.WriteLineAsync($"Assent listening on {string.Join(", ", app.Urls)} (issuer {options.IssuerString}); press Ctrl+C to stop.");
                await Console.Out.FlushAsync(ct);
                // Ctrl+C cancels ct (System.CommandLine) and also stops the host (its console lifetime); either ends the wait.
                await app.WaitForShutdownAsync(ct);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>
    /// Tries each address before the host starts, so a port already in use is one clear line rather
    /// than the host's logged stack trace (and no first-user invite is minted for a server that cannot start).
    /// </summary>
    private static void EnsureFree(string urls)
    {
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var match = ListenUrl().Match(url);
            if (!match.Success)
            {
                throw CliException.Usage($"--urls: '{url}' is not an address like http://localhost:8400");
            }
            var host = match.Groups["host"].Value.Trim('[', ']');
            var address = host switch
            {
                "localhost" => IPAddress.Loopback,
                "0.0.0.0" or "+" or "*" => IPAddress.Any,
                _ => IPAddress.TryParse(host, out var ip) ? ip : null,
            };
            if (address is null)
            {
                continue; // A name Kestrel will resolve; it reports its own errors.
            }
            var port = match.Groups["port"].Success ? int.Parse(match.Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture)
                : match.Groups["scheme"].Value.Equals("https", StringComparison.OrdinalIgnoreCase) ? 443 : 80;
            var probe = new TcpListener(address, port);
            try
            {
                probe.Start();
            }
            catch (SocketException e)
            {
                throw CliException.Invalid($"cannot listen on {url}: {e.Message}; stop the other process or choose another address with --urls");
            }
            finally
            {
                probe.Stop();
            }
        }
    }

    /// <summary>
    /// The issuer a client would use to reach the first address: wildcard hosts (0.0.0.0, +, *, [::])
    /// listen everywhere but are not names anyone can call, so they become localhost.
    /// </summary>
    internal static string IssuerFromUrls(string urls)
    {
        var first = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? DefaultUrls;
        var match = ListenUrl().Match(first);
        if (!match.Success)
        {
            throw CliException.Usage($"--urls: '{first}' is not an address like http://localhost:8400");
        }
        var host = match.Groups["host"].Value;
        if (host is "0.0.0.0" or "+" or "*" or "[::]")
        {
            host = "localhost";
        }
        var port = match.Groups["port"].Success ? ":" + match.Groups["port"].Value : "";
        return $"{match.Groups["scheme"].Value.ToLowerInvariant()}://{host}{port}";
    }
}
