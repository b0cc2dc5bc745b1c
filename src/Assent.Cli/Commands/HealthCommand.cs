using System.CommandLine;
using Assent.Cli.Devices;
using Assent.Client;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent health</c>: asks a server's health endpoint, for a container's health check or a script
/// (docs/cli.md §14; the container image runs it, docs/deployment.md §14). Exit 0 healthy, 1 unhealthy, 69 unreachable.
/// </summary>
internal static class HealthCommand
{
    public static Command Build()
    {
        var server = new Option<string?>("--server") { Description = $"The server's URL (default: ${AssentClientOptions.ServerVariable}, else {ServerCommand.DefaultUrls})" };
        var path = new Option<string>("--path") { Description = "The health endpoint to ask", DefaultValueFactory = _ => "/healthz" };
        var command = new Command("health", "Check that a server answers its health endpoint (exit 0 healthy, 1 unhealthy, 69 unreachable). Example: assent health --server http://localhost:8400")
        {
            server, path,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var url = ServerUrl.Parse(parse.GetValue(server) ?? Environment.GetEnvironmentVariable(AssentClientOptions.ServerVariable) ?? ServerCommand.DefaultUrls, "--server");
            var endpoint = parse.GetValue(path)!;
            if (!endpoint.StartsWith('/') || endpoint.StartsWith("//", StringComparison.Ordinal))
            {
                throw CliException.Usage($"--path must be a path on the server, like /healthz (got '{endpoint}')");
            }
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            HttpResponseMessage response;
            try
            {
                response = await http.GetAsync(new Uri(url, endpoint), ct);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync($"unreachable: {ServerUrl.Format(url)}{endpoint}: {e.Message}");
                return ExitCodes.Unavailable;
            }
            using (response)
            {
                var body = await response.Content.ReadAsStringAsync(ct);
                var line = $"{(int)response.StatusCode} {body.Trim().ReplaceLineEndings(" ")}";
                if (response.IsSuccessStatusCode)
                {
                    await Console.Out.WriteLineAsync(line);
                    return ExitCodes.Success;
                }
                await Console.Error.WriteLineAsync($"unhealthy: {line}");
                return ExitCodes.DeniedOrInvalid;
            }
        }));
        return command;
    }
}
