using System.Text.RegularExpressions;
using Assent.Protocol.OAuth;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Assent.Server.Authorize;

/// <summary>An authorization request that passed every check (OpenID Connect Core §3.1.2.1–§3.1.2.2).</summary>
internal sealed record AuthorizationRequest(
    WebClientRecord Client,
    string RedirectUri,
    string Scope,
    string? State,
    string? Nonce,
    IReadOnlySet<string> Prompt,
    long? MaxAge,
    string? LoginHint,
    string? CodeChallenge,
    IReadOnlyList<KeyValuePair<string, string>> Parameters,
    bool FormPost = false)
{
    /// <summary>
    /// The request's own parameters, to carry through the sign-in page: less what the sign-in itself answers, so that the
    /// request it continues does not ask for it again (and again): <c>prompt=login</c> and <c>select_account</c>, and
    /// <c>max_age</c> (a sign-in of a moment ago is younger than any; <c>max_age=0</c> would otherwise never be met).
    /// </summary>
    public IEnumerable<KeyValuePair<string, string>> AfterSignIn() => Parameters
        .Where(p => p.Key != AuthorizeParameters.MaxAge)
        .Select(p => p.Key == AuthorizeParameters.Prompt
            ? new KeyValuePair<string, string>(p.Key, string.Join(' ', Prompt.Where(v => v is not (Prompts.Login or Prompts.SelectAccount))))
            : p)
        .Where(p => p.Value.Length > 0);
}

/// <summary>
/// Why a request was refused. <see cref="RedirectUri"/> is null while the client and redirect URI are not both
/// validated: then the error is shown on a page, never sent to an unvalidated URI (RFC 6749 §4.1.2.1, RFC 9700 §4.11).
/// </summary>
internal sealed record AuthorizationRefusal(string Error, string Description, string? RedirectUri = null, string? State = null, bool FormPost = false);

/// <summary>Reads and checks authorization requests; the rules are the standards' (comments name them).</summary>
internal static partial class AuthorizationRequests
{
    /// <summary>
    /// The scopes a web client may ask for: <c>openid</c> (required), <c>profile</c> (the user's handle) and
    /// <c>offline_access</c> (a refresh token).
    /// </summary>
    public static readonly IReadOnlyList<string> Scopes = [Protocol.OAuth.Scopes.OpenId, SignInScopes.Profile, SignInScopes.OfflineAccess];

    private const int MaxValueLength = 512;

    /// <summary>The parameters of a GET query or a POST form (OpenID Connect Core §3.1.2.1 allows both); null with an error when one repeats.</summary>
    public static async Task<(IReadOnlyList<KeyValuePair<string, string>>? Parameters, string? Error)> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        IEnumerable<KeyValuePair<string, StringValues>> source;
        if (HttpMethods.IsPost(request.Method))
        {
            var read = await Common.RequestBodies.ReadFormAsync(request, ct);
            if (read.Error is not null)
            {
                return (null, "the request body must be an application/x-www-form-urlencoded form of the authorization parameters");
            }
            source = read.Form!;
        }
        else
        {
            source = request.Query;
        }
        return FromPairs(source);
    }

    /// <summary>
    /// The parameters of a query or form already split (<see cref="ReadAsync"/>, or the authorization request a passkey
    /// sign-in continues, docs/http-api.md §12.3); null with an error when one repeats or is too long.
    /// </summary>
    public static (IReadOnlyList<KeyValuePair<string, string>>? Parameters, string? Error) FromPairs(IEnumerable<KeyValuePair<string, StringValues>> source)
    {
        var list = new List<KeyValuePair<string, string>>();
        foreach (var (key, values) in source)
        {
            // RFC 6749 §3.1: request parameters must not be included more than once.
            if (values.Count > 1)
            {
                return (null, $"parameter '{key}' is repeated");
            }
            if (key.Length > 64 || (values.ToString()?.Length ?? 0) > 2048)
            {
                return (null, $"parameter '{(key.Length > 64 ? key[..64] : key)}' is too long");
            }
            list.Add(new(key, values.ToString() ?? ""));
        }
        return (list, null);
    }

    /// <summary>Checks a request in the order RFC 6749 §4.1.2.1 sets: the client and redirect URI first, the rest then reported to it.</summary>
    public static async Task<(AuthorizationRequest? Request, AuthorizationRefusal? Refusal)> ValidateAsync(IReadOnlyList<KeyValuePair<string, string>> parameters,
        IWebClientStore clients, CancellationToken ct)
    {
        // A loop, not FirstOrDefault with a lambda: that allocated a closure and a delegate per parameter read, per request.
        string? Get(string name)
        {
            foreach (var p in parameters)
            {
                if (p.Key == name)
                {
                    return p.Value is { Length: > 0 } v ? v : null;
                }
            }
            return null;
        }

        var clientId = Get(OAuthParameters.ClientId);
        if (clientId is null)
        {
            return Refuse(OAuthErrors.InvalidRequest, "client_id is required");
        }
        var client = clientId.Length <= 128 ? await clients.FindAsync(clientId, ct) : null;
        if (client is null || client.RevokedAt is not null)
        {
            return Refuse(OAuthErrors.InvalidClient, "no such client is registered here");
        }
        var redirectUri = Get(AuthorizeParameters.RedirectUri);
        // OpenID Connect Core §3.1.2.1: redirect_uri is required, and must exactly match a registered one (RFC 9700 §2.1).
        if (redirectUri is null)
        {
            return Refuse(OAuthErrors.InvalidRequest, "redirect_uri is required");
        }
        if (!client.RedirectUris.Contains(redirectUri, StringComparer.Ordinal))
        {
            return Refuse(OAuthErrors.InvalidRequest, "redirect_uri is not registered for this client (it must match exactly)");
        }

        // From here on, errors go back to the client's redirect URI, in the response mode asked for when it is one of ours
        // (OAuth 2.0 Form Post Response Mode §2: the error response is posted too).
        var state = Get(AuthorizeParameters.State);
        var responseMode = Get(AuthorizeParameters.ResponseMode);
        var formPost = responseMode == ResponseModes.FormPost;
        (AuthorizationRequest?, AuthorizationRefusal?) Back(string error, string description) =>
            (null, new AuthorizationRefusal(error, description, redirectUri, state, formPost));

        if (state?.Length > MaxValueLength)
        {
            return (null, new AuthorizationRefusal(OAuthErrors.InvalidRequest, $"state is longer than {MaxValueLength} characters", redirectUri, FormPost: formPost));
        }
        if (Get("request") is not null || Get("request_uri") is not null)
        {
            // OpenID Connect Core §6: request objects are optional; we say so as §3.1.2.6 asks.
            return Back(AuthorizeErrors.RequestNotSupported, "request objects are not supported");
        }
        var responseType = Get(AuthorizeParameters.ResponseType);
        if (responseType is null)
        {
            return Back(OAuthErrors.InvalidRequest, "response_type is required");
        }
        if (responseType != "code")
        {
            return Back(AuthorizeErrors.UnsupportedResponseType, "only response_type=code is supported");
        }
        if (responseMode is not null && responseMode is not (ResponseModes.Query or ResponseModes.FormPost))
        {
            return Back(OAuthErrors.InvalidRequest, "response_mode must be query or form_post");
        }
        var requested = (Get(OAuthParameters.Scope) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct().ToList();
        if (!requested.Contains(Protocol.OAuth.Scopes.OpenId))
        {
            // OpenID Connect Core §3.1.2.1: an OpenID request contains the openid scope.
            return Back(OAuthErrors.InvalidScope, "scope must contain openid");
        }
        if (requested.FirstOrDefault(s => !Scopes.Contains(s)) is { } unknown)
        {
            return Back(OAuthErrors.InvalidScope, $"'{(unknown.Length > 64 ? unknown[..64] : unknown)}' is not a scope of this server; ask for some of: {string.Join(' ', Scopes)}");
        }
        var nonce = Get(AuthorizeParameters.Nonce);
        if (nonce?.Length > MaxValueLength)
        {
            return Back(OAuthErrors.InvalidRequest, $"nonce is longer than {MaxValueLength} characters");
        }
        var prompt = (Get(AuthorizeParameters.Prompt) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        if (prompt.FirstOrDefault(p => p is not (Prompts.None or Prompts.Login or Prompts.Consent or Prompts.SelectAccount)) is { } badPrompt)
        {
            return Back(OAuthErrors.InvalidRequest, $"prompt '{(badPrompt.Length > 32 ? badPrompt[..32] : badPrompt)}' is unknown");
        }
        if (prompt.Contains(Prompts.None) && prompt.Count > 1)
        {
            // OpenID Connect Core §3.1.2.1: none with any other value is an error.
            return Back(OAuthErrors.InvalidRequest, "prompt=none cannot be combined with other values");
        }
        long? maxAge = null;
        if (Get(AuthorizeParameters.MaxAge) is { } maxAgeText)
        {
            if (!long.TryParse(maxAgeText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed))
            {
                return Back(OAuthErrors.InvalidRequest, "max_age must be a non-negative number of seconds");
            }
            maxAge = parsed;
        }
        var method = Get(AuthorizeParameters.CodeChallengeMethod);
        var challenge = Get(AuthorizeParameters.CodeChallenge);
        if (challenge is null)
        {
            if (client.IsPublic)
            {
                // RFC 9700 §2.1.1 / RFC 7636 §4.4.1: a public client must use PKCE.
                return Back(OAuthErrors.InvalidRequest, "code_challenge is required for a public client (PKCE, S256)");
            }
            if (method is not null)
            {
                return Back(OAuthErrors.InvalidRequest, "code_challenge_method without code_challenge");
            }
        }
        else
        {
            // RFC 9700 §2.1.1: plain is not to be used; without a method RFC 7636 §4.3 means plain, so S256 must be named.
            if (method != PkceMethods.S256)
            {
                return Back(OAuthErrors.InvalidRequest, "code_challenge_method must be S256 (plain is not accepted)");
            }
            if (!S256Challenge().IsMatch(challenge))
            {
                return Back(OAuthErrors.InvalidRequest, "code_challenge must be the 43-character base64url SHA-256 of the verifier (RFC 7636 §4.2)");
            }
        }
        var hint = Get(OAuthParameters.LoginHint);
        if (hint?.Length > 256)
        {
            return Back(OAuthErrors.InvalidRequest, "login_hint is too long");
        }
        return (new AuthorizationRequest(client, redirectUri, string.Join(' ', requested), state, nonce, prompt, maxAge, hint, challenge, parameters, formPost), null);

        static (AuthorizationRequest?, AuthorizationRefusal?) Refuse(string error, string description) => (null, new AuthorizationRefusal(error, description));
    }

    /// <summary>RFC 7636 §4.1 / §4.2: a verifier is 43–128 unreserved characters; an S256 challenge is 43 base64url characters.</summary>
    [GeneratedRegex("^[A-Za-z0-9_-]{43}$")]
    private static partial Regex S256Challenge();

    [GeneratedRegex(@"^[A-Za-z0-9\-._~]{43,128}$")]
    public static partial Regex Verifier();

    /// <summary>
    /// <paramref name="uri"/> with the response parameters added to its query (RFC 6749 §4.1.2: keeping a query the
    /// registered URI has), and <c>iss</c> (RFC 9207 §2).
    /// </summary>
    public static string Respond(string uri, IEnumerable<KeyValuePair<string, string?>> parameters)
    {
        var query = string.Join('&', parameters.Where(p => p.Value is not null).Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value!)));
        return uri + (uri.Contains('?', StringComparison.Ordinal) ? "&" : "?") + query;
    }
}
