using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;

namespace Assent.Client;

/// <summary>
/// The agent side of Assent (docs/sdk.md §3): ask a human to approve one exact action over CIBA
/// (poll mode) and get back an access token carrying the device's evidence.
/// </summary>
/// <example>
/// <code>
/// using var assent = new AssentClient(AssentClientOptions.FromEnvironment());
/// var approval = await assent.ApproveAsync("Delete user alice@corp", new() { Scope = "approve:action" }, ct);
/// if (approval.Approved) { /* send approval.AccessToken to the service that acts */ }
/// </code>
/// </example>
public sealed partial class AssentClient : IDisposable
{
    private const string DiscoveryPath = "/.well-known/openid-configuration";

    // A held request that comes back pending sooner than this was not really held.
    private static readonly TimeSpan MinimumHold = TimeSpan.FromMilliseconds(500);

    private readonly AssentClientOptions _options;
    private readonly Uri _server;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly TimeProvider _time;
    private readonly AuthenticationHeaderValue _basic;
    private Task<DiscoveryDocument>? _discovery;

    /// <summary>Creates a client from explicit options.</summary>
    /// <exception cref="ArgumentException">Server, ClientId or ClientSecret is missing.</exception>
    public AssentClient(AssentClientOptions options)
    {
        _options = options;
        _server = options.Server ?? throw new ArgumentException($"the Assent server URL is required (set Server or {AssentClientOptions.ServerVariable})", nameof(options));
        if (string.IsNullOrEmpty(options.ClientId) || string.IsNullOrEmpty(options.ClientSecret))
        {
            throw new ArgumentException(
                $"agent credentials are required (set ClientId and ClientSecret, or {AssentClientOptions.ClientIdVariable} and {AssentClientOptions.ClientSecretVariable})",
                nameof(options));
        }
        if (options.DefaultTimeout <= TimeSpan.Zero || options.MaxWait < TimeSpan.FromSeconds(1) || options.MaxWait > TimeSpan.FromSeconds(60))
        {
            throw new ArgumentException("DefaultTimeout must be positive and MaxWait between 1 and 60 seconds", nameof(options));
        }
        _ownsHttp = options.HttpClient is null;
        // Held token requests last up to 60 s; the overall deadline is enforced per call instead.
        _http = options.HttpClient ?? new HttpClient { Timeout = TimeSpan.FromSeconds(90) };
        _time = options.TimeProvider;
        // RFC 6749 §2.3.1: client_secret_basic, each part form-urlencoded first.
        _basic = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(options.ClientId)}:{Uri.EscapeDataString(options.ClientSecret)}")));
    }

    /// <summary>Creates a client from the <c>ASSENT_*</c> environment variables (<see cref="AssentClientOptions.FromEnvironment"/>).</summary>
    public AssentClient() : this(AssentClientOptions.FromEnvironment())
    {
    }

    /// <summary>The server this client talks to.</summary>
    public Uri Server => _server;

    /// <summary>
    /// Asks the user to approve <paramref name="message"/> and waits for the decision: a CIBA
    /// request, then token requests held open with <c>Prefer: wait</c> (RFC 7240), falling back to
    /// polling at the server's <c>interval</c> (plus 5 s per <c>slow_down</c>) when the server does not hold them.
    /// </summary>
    /// <param name="message">The binding message shown verbatim to the human (at most 256 characters).</param>
    /// <param name="options">Scope, details, user, timeout; null for the defaults.</param>
    /// <param name="ct">Cancels the wait (and the HTTP request in flight).</param>
    /// <returns>Approved with tokens, or Denied or Expired.</returns>
    /// <exception cref="AssentOAuthException">The server refused the request (e.g. <c>invalid_client</c>, <c>invalid_scope</c>, <c>unknown_user_id</c>).</exception>
    /// <exception cref="AssentUnreachableException">The server could not be reached.</exception>
    /// <exception cref="AssentTimeoutException">No decision within the timeout.</exception>
    public async Task<Approval> ApproveAsync(string message, ApproveOptions? options, CancellationToken ct)
    {
        options ??= new ApproveOptions();
        var user = options.User ?? _options.UserDid ?? _options.LoginHint
            ?? throw new ArgumentException($"whom to ask is unknown: set ApproveOptions.User, or UserDid/LoginHint (or {AssentClientOptions.UserDidVariable})", nameof(options));
        var timeout = options.Timeout ?? _options.DefaultTimeout;
        if (timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Timeout must be positive", nameof(options));
        }
        var started = _time.GetTimestamp();
        using var deadline = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        string? authReqId = null;
        try
        {
            var endpoints = await DiscoverAsync(linked.Token);
            linked.Token.ThrowIfCancellationRequested();
            // Once sent, the request may be created even if the answer is cut off, and then nobody could withdraw it (the
            // approver's device already showed it in a CI run). So a cancellation lets the answer arrive, within
            // WithdrawTimeout, and the request is withdrawn below like any other.
            BcAuthorizeResponse ack;
            using (var creating = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token))
            using (ct.Register(() => creating.CancelAfter(WithdrawTimeout)))
            {
                ack = await AuthorizeAsync(endpoints, message, user, options, creating.Token);
            }
            authReqId = ack.AuthReqId!;
            ct.ThrowIfCancellationRequested();
            // CIBA Core §7.3: the default interval is 5 s when the server names none.
            var interval = TimeSpan.FromSeconds(Math.Clamp(ack.Interval ?? 5, 1, 60));
            var polling = false;
            while (true)
            {
                var remaining = timeout - _time.GetElapsedTime(started);
                if (remaining <= TimeSpan.Zero)
                {
                    throw new AssentTimeoutException(timeout, authReqId);
                }
                int? wait = polling ? null : (int)Math.Clamp(Math.Ceiling(remaining.TotalSeconds), 1, _options.MaxWait.TotalSeconds);
                var sent = _time.GetTimestamp();
                var (tokens, error, held, retryAfter) = await RequestTokenAsync(endpoints, authReqId, wait, linked.Token);
                if (tokens is not null)
                {
                    return Approved(authReqId, tokens);
                }
                switch (error!.Error)
                {
                    case OAuthErrors.AuthorizationPending:
                        if (wait is not null && held && _time.GetElapsedTime(sent) >= MinimumHold)
                        {
                            continue;
                        }
                        // The server did not hold the request: plain CIBA polling from here on.
                        polling = true;
                        break;
                    case OAuthErrors.SlowDown:
                        // CIBA Core §11: slow_down adds 5 s to the interval for the rest of the request.
                        interval += TimeSpan.FromSeconds(5);
                        polling = true;
                        break;
                    case OAuthErrors.TemporarilyUnavailable:
                        // Asked again after the server's Retry-After, within the timeout; the interval is unchanged.
                        await Task.Delay(Min(retryAfter, Max(timeout - _time.GetElapsedTime(started), TimeSpan.Zero)), _time, linked.Token);
                        continue;
                    case OAuthErrors.AccessDenied:
                        return new Approval(ApprovalStatus.Denied, authReqId);
                    case OAuthErrors.ExpiredToken:
                        return new Approval(ApprovalStatus.Expired, authReqId);
                    default:
                        throw new AssentOAuthException(error.Error!, error.ErrorDescription, HttpStatusCode.BadRequest);
                }
                await Task.Delay(interval, _time, linked.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new AssentTimeoutException(timeout, authReqId);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && authReqId is not null)
        {
            // Nobody waits for the answer any more: withdraw the request, so the approver's devices stop showing it
            // (docs/sdk.md §3). Best effort and bounded; the cancellation is what the caller hears either way.
            await WithdrawAsync(authReqId);
            throw;
        }
    }

    /// <summary>
    /// Withdraws a pending approval request (<see cref="Approval.AuthReqId"/>, or <see cref="AssentTimeoutException.AuthReqId"/>):
    /// the server cancels it and the approver's devices stop showing it. The <c>auth_req_id</c> is revoked at the
    /// server's RFC 7009 revocation endpoint with <c>token_type_hint=auth_req_id</c> (docs/http-api.md §8.1), as this
    /// client. A request already decided, expired or withdrawn is left as it is, and that is no error (RFC 7009 §2.2).
    /// <see cref="ApproveAsync"/> calls this itself when its cancellation token fires while it waits.
    /// </summary>
    /// <exception cref="AssentOAuthException">The server refused the call (e.g. <c>invalid_client</c>).</exception>
    /// <exception cref="AssentUnreachableException">The server could not be reached.</exception>
    public async Task CancelAsync(string authReqId, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(authReqId);
        var endpoints = await DiscoverAsync(ct);
        if (!IsAbsolute(endpoints.RevocationEndpoint))
        {
            throw new AssentProtocolException("the discovery document lacks revocation_endpoint");
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoints.RevocationEndpoint)
        {
            Content = new FormUrlEncodedContent([
                new(OAuthParameters.Token, authReqId),
                new(OAuthParameters.TokenTypeHint, OAuthParameters.AuthReqId),
            ]),
        };
        request.Headers.Authorization = _basic;
        using var response = await SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            var error = await ReadErrorAsync(response, ct);
            throw new AssentOAuthException(error.Error!, error.ErrorDescription, response.StatusCode);
        }
    }

    // Long enough for a server under load, short enough that a cancelled caller is not held up by one that is gone.
    private static readonly TimeSpan WithdrawTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Withdraws the request, best effort and bounded (<see cref="WithdrawTimeout"/>); also the CLI's when its own wait ends first.</summary>
    internal async Task WithdrawAsync(string authReqId)
    {
        using var limit = new CancellationTokenSource(WithdrawTimeout, _time);
        try
        {
            await CancelAsync(authReqId, limit.Token);
        }
        catch (Exception e) when (e is AssentOAuthException or AssentUnreachableException or AssentProtocolException or OperationCanceledException)
        {
            // Not withdrawn: the request expires at the server at its requested_expiry instead.
        }
    }

    /// <summary>Disposes the HttpClient when this client created it.</summary>
    public void Dispose()
    {
        _verifier?.Dispose();
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    private static Approval Approved(string authReqId, TokenResponse tokens)
    {
        IReadOnlyDictionary<string, JsonElement>? claims = null;
        var token = tokens.AccessToken!;
        var first = token.IndexOf('.');
        var second = first < 0 ? -1 : token.IndexOf('.', first + 1);
        if (second > first && Base64Url.TryDecode(token.AsSpan(first + 1, second - first - 1), out var payload))
        {
            try
            {
                claims = JsonSerializer.Deserialize(payload, SdkJson.Default.DictionaryStringJsonElement);
            }
            catch (JsonException)
            {
                claims = null;
            }
        }
        return new Approval(ApprovalStatus.Approved, authReqId, token, tokens.IdToken, tokens.Scope, tokens.ExpiresIn, claims) { VaultRelease = tokens.VaultRelease };
    }

    /// <summary>OpenID Connect Discovery, fetched once; a failed fetch is retried by the next call.</summary>
    private async Task<DiscoveryDocument> DiscoverAsync(CancellationToken ct)
    {
        var task = _discovery;
        if (task is null || task.IsFaulted || task.IsCanceled)
        {
            task = FetchDiscoveryAsync();
            _discovery = task;
        }
        return await task.WaitAsync(ct);
    }

    private async Task<DiscoveryDocument> FetchDiscoveryAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_server.AbsoluteUri.TrimEnd('/') + DiscoveryPath));
        using var response = await SendAsync(request, CancellationToken.None);
        if (!response.IsSuccessStatusCode)
        {
            throw new AssentProtocolException($"{request.RequestUri} answered {(int)response.StatusCode}; is {_server} an Assent server?");
        }
        var doc = await ReadJsonAsync(response, ProtocolJson.Default.DiscoveryDocument, CancellationToken.None);
        if (!IsAbsolute(doc.TokenEndpoint) || !IsAbsolute(doc.BackchannelAuthenticationEndpoint))
        {
            throw new AssentProtocolException("the discovery document lacks token_endpoint or backchannel_authentication_endpoint");
        }
        return doc;
    }

    private async Task<BcAuthorizeResponse> AuthorizeAsync(DiscoveryDocument endpoints, string message, string user, ApproveOptions options, CancellationToken ct)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new(OAuthParameters.Scope, ScopeWithOpenId(options.Scope)),
            new(OAuthParameters.LoginHint, user),
            new(OAuthParameters.BindingMessage, message),
        };
        if (options.Details is not null)
        {
            form.Add(new(OAuthParameters.AuthorizationDetails, DetailsJson(options.Details)));
        }
        if ((options.Expiry ?? options.Timeout) is { } expiry)
        {
            var seconds = (int)Math.Clamp(Math.Ceiling(expiry.TotalSeconds), 1, 3600);
            form.Add(new(OAuthParameters.RequestedExpiry, seconds.ToString(CultureInfo.InvariantCulture)));
        }
        if (options.Resource is not null)
        {
            form.Add(new(OAuthParameters.Resource, options.Resource));
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoints.BackchannelAuthenticationEndpoint) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = _basic;
        using var response = await SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            var error = await ReadErrorAsync(response, ct);
            throw new AssentOAuthException(error.Error!, error.ErrorDescription, response.StatusCode);
        }
        var ack = await ReadJsonAsync(response, ProtocolJson.Default.BcAuthorizeResponse, ct);
        if (string.IsNullOrEmpty(ack.AuthReqId))
        {
            throw new AssentProtocolException("the backchannel authentication answer lacks auth_req_id");
        }
        return ack;
    }

    private async Task<(TokenResponse? Tokens, OAuthErrorBody? Error, bool Held, TimeSpan RetryAfter)> RequestTokenAsync(DiscoveryDocument endpoints, string authReqId, int? wait,
        CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoints.TokenEndpoint)
        {
            Content = new FormUrlEncodedContent([
                new(OAuthParameters.GrantType, GrantTypes.Ciba),
                new(OAuthParameters.AuthReqId, authReqId),
            ]),
        };
        request.Headers.Authorization = _basic;
        if (wait is { } seconds)
        {
            request.Headers.TryAddWithoutValidation(HeaderNames.Prefer, "wait=" + seconds.ToString(CultureInfo.InvariantCulture));
        }
        using var response = await SendAsync(request, ct);
        var held = response.Headers.Contains(HeaderNames.PreferenceApplied);
        if (response.IsSuccessStatusCode)
        {
            var tokens = await ReadJsonAsync(response, ProtocolJson.Default.TokenResponse, ct);
            if (string.IsNullOrEmpty(tokens.AccessToken))
            {
                throw new AssentProtocolException("the token response lacks access_token");
            }
            return (tokens, null, held, TimeSpan.Zero);
        }
        var error = await ReadErrorAsync(response, ct);
        if (response.StatusCode == HttpStatusCode.ServiceUnavailable && error.Error == OAuthErrors.TemporarilyUnavailable)
        {
            // RFC 6749 §4.1.2.1 / docs/http-api.md §2.3: the server could not reach its database and changed
            // nothing; the request is still there to ask about after Retry-After (RFC 9110 §10.2.3).
            var after = response.Headers.RetryAfter?.Delta is { } delta && delta > TimeSpan.Zero ? Min(delta, MaxRetryAfter) : DefaultRetryAfter;
            return (null, error, false, after);
        }
        if (response.StatusCode != HttpStatusCode.BadRequest)
        {
            // 401 invalid_client and anything else that is not a CIBA state (CIBA Core §11).
            throw new AssentOAuthException(error.Error!, error.ErrorDescription, response.StatusCode);
        }
        return (null, error, held, TimeSpan.Zero);
    }

    private static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(30);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) => Transport.SendAsync(_http, _server, request, ct);

    private static async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken ct)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync(type, ct) ?? throw new AssentProtocolException($"{response.RequestMessage?.RequestUri} answered with an empty body");
        }
        catch (JsonException e)
        {
            throw new AssentProtocolException($"{response.RequestMessage?.RequestUri} answered with JSON of an unexpected shape: {e.Message}");
        }
    }

    /// <summary>RFC 6749 §5.2 error body; a 5xx without one means the server (or its proxy) is not really there.</summary>
    private async Task<OAuthErrorBody> ReadErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        OAuthErrorBody? body = null;
        try
        {
            body = await response.Content.ReadFromJsonAsync(ProtocolJson.Default.OAuthErrorBody, ct);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            body = null;
        }
        if (body?.Error is { Length: > 0 })
        {
            return body;
        }
        if ((int)response.StatusCode >= 500)
        {
            throw new AssentUnreachableException(_server, $"{response.RequestMessage?.RequestUri} answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }
        throw new AssentProtocolException($"{response.RequestMessage?.RequestUri} answered {(int)response.StatusCode} without an OAuth error body");
    }

    private static string ScopeWithOpenId(string? scope)
    {
        var parts = (scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // CIBA Core §7.1: scope must contain openid.
        return parts.Contains(Scopes.OpenId) ? string.Join(' ', parts.Distinct()) : string.Join(' ', parts.Prepend(Scopes.OpenId).Distinct());
    }

    /// <summary>RFC 9396 §2: authorization_details is a JSON array; one object becomes a one-element array.</summary>
    internal static string DetailsJson(object details)
    {
        var element = details switch
        {
            JsonElement e => e,
            JsonDocument d => d.RootElement,
            string s => ParseDetails(s),
            _ => JsonSerializer.SerializeToElement(details, details.GetType()),
        };
        return element.ValueKind switch
        {
            JsonValueKind.Array => element.GetRawText(),
            JsonValueKind.Object => "[" + element.GetRawText() + "]",
            _ => throw new ArgumentException("Details must be a JSON object or an array of objects (RFC 9396 §2)"),
        };
    }

    private static JsonElement ParseDetails(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"Details is not valid JSON: {e.Message}", e);
        }
    }

    private static bool IsAbsolute(string? url) => url is not null && Uri.TryCreate(url, UriKind.Absolute, out _);
}
