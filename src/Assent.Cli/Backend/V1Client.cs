using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Assent.Cli.Devices;
using Assent.Client;

namespace Assent.Cli.Backend;

/// <summary>An answer of the /v1 API: the body on success, else the status and the problem's detail.</summary>
internal sealed record V1Answer<T>(HttpStatusCode Status, T? Body, string? Problem, HttpResponseMessage? Raw = null) where T : class
{
    public bool Ok => Body is not null;
}

/// <summary>
/// The CLI as a backend on the /v1 API (docs/challenges.md, docs/webhooks.md), with an API key from
/// <c>ASSENT_API_KEY</c> or <c>--api-key-file</c> — never from the command line, where other users' process
/// listings would show it.
/// </summary>
internal sealed class V1Client : IDisposable
{
    public const string ApiKeyVariable = "ASSENT_API_KEY";

    private readonly HttpClient _http;
    private readonly string _base;

    public V1Client(Uri server, string apiKey)
    {
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(90) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        _base = ServerUrl.Format(server);
        Server = server;
    }

    public Uri Server { get; }

    /// <summary>A client for the signed-in human (<c>assent auth login</c>): their profile and its fresh session token as the bearer.</summary>
    public static async Task<(Profiles.HumanProfile Profile, V1Client Client)> ForSignedInAsync(CancellationToken ct)
    {
        var (_, profile, _) = await Commands.AuthCommands.FreshSessionAsync(Profiles.ProfileStore.ForCurrentUser(), ct);
        return (profile, new V1Client(ServerUrl.Parse(profile.Server, "the profile's server"), profile.AccessToken));
    }

    /// <summary>The key from <paramref name="file"/> (first line) or <c>ASSENT_API_KEY</c>; a usage error names both when neither is there.</summary>
    public static string ApiKey(string? file)
    {
        if (file is not null)
        {
            try
            {
                return File.ReadLines(file).FirstOrDefault()?.Trim() is { Length: > 0 } key
                    ? key
                    : throw CliException.Usage($"--api-key-file: {file} is empty");
            }
            catch (IOException e)
            {
                throw CliException.Usage($"--api-key-file: {e.Message}");
            }
            catch (UnauthorizedAccessException e)
            {
                throw CliException.Usage($"--api-key-file: {e.Message}");
            }
        }
        return Environment.GetEnvironmentVariable(ApiKeyVariable) is { Length: > 0 } fromEnvironment
            ? fromEnvironment.Trim()
            : throw CliException.Usage($"no API key: set {ApiKeyVariable}=sk_… or pass --api-key-file FILE (create one with: assent apikey create, or assent admin apikey create)");
    }

    public static Uri ServerFrom(string? option) =>
        ServerUrl.Parse(option ?? Environment.GetEnvironmentVariable(AssentClientOptions.ServerVariable) ?? Commands.ServerCommand.DefaultUrls, "--server");

    public Task<V1Answer<T>> SendAsync<T>(HttpMethod method, string path, JsonTypeInfo<T> type, CancellationToken ct, HttpContent? body = null,
        int? wait = null, string? idempotencyKey = null) where T : class
    {
        var request = new HttpRequestMessage(method, _base + path) { Content = body };
        if (wait is { } seconds)
        {
            request.Headers.TryAddWithoutValidation("Prefer", $"wait={seconds}");
        }
        if (idempotencyKey is not null)
        {
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        }
        return SendAsync(request, type, ct);
    }

    private async Task<V1Answer<T>> SendAsync<T>(HttpRequestMessage message, JsonTypeInfo<T> type, CancellationToken ct) where T : class
    {
        using var request = message;
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            throw new CliException(ExitCodes.Unavailable, $"cannot reach {_base}: {e.Message}");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unavailable, $"{_base} did not answer in time");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            if (response.IsSuccessStatusCode)
            {
                try
                {
                    return new(response.StatusCode, text.Length == 0 ? null : JsonSerializer.Deserialize(text, type), null);
                }
                catch (JsonException e)
                {
                    throw CliException.Invalid($"the server's answer is not what this CLI understands: {e.Message}");
                }
            }
            string? detail = null;
            try
            {
                using var doc = JsonDocument.Parse(text);
                detail = doc.RootElement.TryGetProperty("detail", out var d) ? d.GetString() : null;
            }
            catch (JsonException)
            {
            }
            return new(response.StatusCode, null, detail ?? $"{(int)response.StatusCode} {response.ReasonPhrase}");
        }
    }

    /// <summary>The usual refusals as CLI errors: 401/403 invalid (exit 1), 400/422 usage (64).</summary>
    public static CliException Refused<T>(V1Answer<T> answer) where T : class => answer.Status switch
    {
        HttpStatusCode.Unauthorized => CliException.Invalid($"the API key was refused: {answer.Problem}"),
        HttpStatusCode.Forbidden => CliException.Invalid(answer.Problem ?? "forbidden"),
        HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity or HttpStatusCode.UnsupportedMediaType => CliException.Usage(answer.Problem ?? "bad request"),
        HttpStatusCode.NotFound => CliException.Invalid(answer.Problem ?? "not found"),
        HttpStatusCode.Conflict => CliException.Invalid(answer.Problem ?? "conflict"),
        HttpStatusCode.TooManyRequests => new CliException(ExitCodes.Unavailable, answer.Problem ?? "too many requests; try again later"),
        _ => new CliException(ExitCodes.Unavailable, $"the server answered {(int)answer.Status}: {answer.Problem}"),
    };

    public void Dispose() => _http.Dispose();
}
