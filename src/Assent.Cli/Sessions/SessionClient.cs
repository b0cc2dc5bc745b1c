using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Assent.Client;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;

namespace Assent.Cli.Sessions;

/// <summary>
/// An answer of a request a human settles on a device (/agents, /agents/{client_id}/consents): the HTTP status says
/// where it stands; <paramref name="Problem"/> is the RFC 9457 detail of a refusal.
/// </summary>
internal sealed record HeldAnswer<T>(HttpStatusCode Status, T? Body, string? Location, string? Problem) where T : class;

/// <summary>A token endpoint answer: tokens, or an RFC 6749 §5.2 error code with its description.</summary>
internal sealed record TokenAnswer(TokenResponse? Tokens, string? Error, string? Description);

/// <summary>
/// The CLI as the public OAuth client <c>assent-cli</c>: RFC 8628 sign-in, refresh, RFC 7009 revocation,
/// UserInfo, and asking for an agent with the session (docs/http-api.md §9, <c>POST /agents</c>).
/// </summary>
internal sealed class SessionClient : IDisposable
{
    public const string ClientId = "assent-cli";

    private readonly HttpClient _http;
    private readonly Uri _server;
    private readonly string _base;

    public SessionClient(Uri server)
    {
        _server = server;
        _base = server.AbsoluteUri.TrimEnd('/');
        // Longer than the longest Prefer: wait (60 s) so a held answer is never cut off.
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(75) };
        // The server names this host in the approval it shows ("Sign in … on laptop"), so the human can tell.
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("assent", "1.0"));
        if (SafeHostName() is { } host)
        {
            _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue($"({host})"));
        }
    }

    public Uri Server => _server;

    public async Task<DeviceAuthorizationResponse> StartAsync(string? loginHint, CancellationToken ct)
    {
        var form = new Dictionary<string, string> { [OAuthParameters.ClientId] = ClientId };
        if (loginHint is not null)
        {
            form[OAuthParameters.LoginHint] = loginHint;
        }
        var answer = await PostFormAsync("/oauth/device/code", form, wait: null, ct);
        if (answer.Error is not null)
        {
            throw answer.Error == OAuthErrors.UnknownUserId
                ? CliException.Invalid($"the server has no user '{loginHint}'; check --user (a handle like alice, or a DID)")
                : CliException.Invalid($"the server refused to start the sign-in: {answer.Description ?? answer.Error}");
        }
        return Parse(answer.Json!, ProtocolJson.Default.DeviceAuthorizationResponse);
    }

    public async Task<TokenAnswer> PollAsync(string deviceCode, int waitSeconds, CancellationToken ct) =>
        ToToken(await PostFormAsync("/oauth/token", new()
        {
            [OAuthParameters.GrantType] = GrantTypes.DeviceCode,
            [OAuthParameters.DeviceCode] = deviceCode,
            [OAuthParameters.ClientId] = ClientId,
        }, waitSeconds, ct));

    public async Task<TokenAnswer> RefreshAsync(string refreshToken, CancellationToken ct) =>
        ToToken(await PostFormAsync("/oauth/token", new()
        {
            [OAuthParameters.GrantType] = GrantTypes.RefreshToken,
            [OAuthParameters.RefreshToken] = refreshToken,
            [OAuthParameters.ClientId] = ClientId,
        }, wait: null, ct));

    public async Task RevokeAsync(string token, string hint, CancellationToken ct)
    {
        var answer = await PostFormAsync("/oauth/revoke", new()
        {
            [OAuthParameters.Token] = token,
            ["token_type_hint"] = hint,
            [OAuthParameters.ClientId] = ClientId,
        }, wait: null, ct);
        if (answer.Error is not null)
        {
            throw CliException.Invalid($"the server refused to revoke the token: {answer.Description ?? answer.Error}");
        }
    }

    /// <summary>Null when the server refuses the token (RFC 6750 §3.1 invalid_token).</summary>
    public async Task<UserInfoResponse?> UserInfoAsync(string accessToken, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, _base + "/userinfo");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        using var response = await SendAsync(request, ct);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            return null;
        }
        if (!response.IsSuccessStatusCode)
        {
            throw await Client.Authenticator.AuthenticatorClient.ProblemAsync(response, ct);
        }
        return Parse(await response.Content.ReadAsStringAsync(ct), ProtocolJson.Default.UserInfoResponse);
    }

    /// <summary>POST /agents with <c>Prefer: wait</c>, or (with <paramref name="location"/>) GET the pending registration.</summary>
    public Task<HeldAnswer<AgentRegistrationResponse>> AgentAsync(string accessToken, AgentRegistrationRequest? body, string? location, int waitSeconds,
        CancellationToken ct) =>
        HeldAsync(body is not null
                ? new HttpRequestMessage(HttpMethod.Post, _base + "/agents") { Content = JsonContent.Create(body, ProtocolJson.Default.AgentRegistrationRequest) }
                : new HttpRequestMessage(HttpMethod.Get, _base + location),
            accessToken, waitSeconds, ProtocolJson.Default.AgentRegistrationResponse, ct);

    /// <summary>
    /// POST /agents/{client_id}/consents with <c>Prefer: wait</c> (another user lets the caller's agent ask them), or,
    /// with <paramref name="location"/>, GET the pending request.
    /// </summary>
    public Task<HeldAnswer<ConsentRequestResponse>> ConsentAsync(string accessToken, string clientId, string? user, string? location, int waitSeconds,
        CancellationToken ct) =>
        HeldAsync(location is null
                ? new HttpRequestMessage(HttpMethod.Post, $"{_base}/agents/{Uri.EscapeDataString(clientId)}/consents")
                {
                    Content = JsonContent.Create(new ConsentRequestBody(user ?? ""), ProtocolJson.Default.ConsentRequestBody),
                }
                : new HttpRequestMessage(HttpMethod.Get, _base + location),
            accessToken, waitSeconds, ProtocolJson.Default.ConsentRequestResponse, ct);

    /// <summary>Sends a request held open until a human settles it (RFC 7240 <c>Prefer: wait</c>) with the session's bearer token.</summary>
    private async Task<HeldAnswer<T>> HeldAsync<T>(HttpRequestMessage message, string accessToken, int waitSeconds, JsonTypeInfo<T> type,
        CancellationToken ct) where T : class
    {
        using var request = message;
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        request.Headers.TryAddWithoutValidation(HeaderNames.Prefer, $"wait={waitSeconds}");
        using var response = await SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Created or HttpStatusCode.Accepted)
        {
            return new HeldAnswer<T>(response.StatusCode, Parse(text, type), response.Headers.Location?.OriginalString, null);
        }
        var problem = await Client.Authenticator.AuthenticatorClient.ProblemAsync(new HttpResponseMessage(response.StatusCode)
        {
            Content = new StringContent(text),
            ReasonPhrase = response.ReasonPhrase,
        }, ct);
        return new HeldAnswer<T>(response.StatusCode, null, null, problem.Detail);
    }

    public void Dispose() => _http.Dispose();

    private sealed record FormAnswer(string? Json, string? Error, string? Description, bool Held);

    private async Task<FormAnswer> PostFormAsync(string path, Dictionary<string, string> form, int? wait, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _base + path) { Content = new FormUrlEncodedContent(form) };
        if (wait is > 0)
        {
            request.Headers.TryAddWithoutValidation(HeaderNames.Prefer, $"wait={wait}");
        }
        using var response = await SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        var held = response.Headers.Contains(HeaderNames.PreferenceApplied);
        if (response.IsSuccessStatusCode)
        {
            return new FormAnswer(text, null, null, held);
        }
        OAuthErrorBody? error = null;
        try
        {
            error = text.TrimStart().StartsWith('{') ? JsonSerializer.Deserialize(text, ProtocolJson.Default.OAuthErrorBody) : null;
        }
        catch (JsonException)
        {
        }
        if (error?.Error is null)
        {
            throw new AssentProtocolException($"POST {path} answered {(int)response.StatusCode} without an OAuth error");
        }
        return new FormAnswer(null, error.Error, error.ErrorDescription, held);
    }

    private static TokenAnswer ToToken(FormAnswer answer) =>
        answer.Error is null ? new TokenAnswer(Parse(answer.Json!, ProtocolJson.Default.TokenResponse), null, null) : new TokenAnswer(null, answer.Error, answer.Description);

    private Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) => Transport.SendAsync(_http, _server, request, ct);

    private static T Parse<T>(string json, JsonTypeInfo<T> type)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new AssentProtocolException("the server answered with an empty body");
        }
        catch (JsonException e)
        {
            throw new AssentProtocolException($"the server answered with JSON of an unexpected shape: {e.Message}");
        }
    }

    private static string? SafeHostName()
    {
        var name = Environment.MachineName;
        return name.Length is > 0 and <= 63 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-') && char.IsAsciiLetterOrDigit(name[0])
            ? name
            : null;
    }
}
