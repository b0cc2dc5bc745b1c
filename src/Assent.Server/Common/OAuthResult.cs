using System.Reflection;
using System.Text.Json;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;

namespace Assent.Server.Common;

/// <summary>
/// An RFC 6749 §5.2 error response: JSON <c>{error, error_description}</c>, never cached; with <c>Retry-After</c>
/// (RFC 9110 §10.2.3) when a limit says when to come back (docs/http-api.md §2.1).
/// </summary>
internal sealed class OAuthError(string error, string? description, int status = StatusCodes.Status400BadRequest, TimeSpan? retryAfter = null)
    : IResult, IEndpointMetadataProvider
{
    public string Error => error;

    public int Status => status;

    public TimeSpan? RetryAfter => retryAfter;

    public static OAuthError InvalidClient(string description, TimeSpan? retryAfter = null) =>
        new(OAuthErrors.InvalidClient, description, StatusCodes.Status401Unauthorized, retryAfter);

    public static OAuthError TooManyRequests(string description, TimeSpan retryAfter) =>
        new(OAuthErrors.TooManyRequests, description, StatusCodes.Status429TooManyRequests, retryAfter);

    public Task ExecuteAsync(HttpContext context)
    {
        if (status == StatusCodes.Status401Unauthorized)
        {
            // RFC 6749 §5.2: a 401 for invalid_client carries WWW-Authenticate for the scheme used.
            context.Response.Headers.WWWAuthenticate = "Basic realm=\"assent\"";
        }
        return ExecuteBodyAsync(context);
    }

    /// <summary>Writes status and body, leaving any WWW-Authenticate challenge to the caller.</summary>
    public Task ExecuteBodyAsync(HttpContext context)
    {
        context.Response.StatusCode = status;
        NoStore(context.Response);
        if (retryAfter is { } wait)
        {
            Problem.SetRetryAfter(context.Response, wait);
        }
        context.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(context.Response.Body, new OAuthErrorBody(error, description), Body, context.RequestAborted);
    }

    /// <summary>
    /// The descriptions are for people: a quote stays a quote (<c>'openid'</c>, not <c>\u0027openid\u0027</c>).
    /// The default encoder escapes HTML-significant characters for JSON embedded in a page; these bodies are
    /// only ever served as <c>application/json</c>, and JSON escaping proper (quotes, control characters)
    /// still applies.
    /// </summary>
    private static readonly System.Text.Json.Serialization.Metadata.JsonTypeInfo<OAuthErrorBody> Body =
        new ProtocolJson(new JsonSerializerOptions(ProtocolJson.Default.Options) { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })
            .OAuthErrorBody;

    /// <summary>RFC 6749 §5.1: responses carrying tokens or errors must not be cached.</summary>
    public static void NoStore(HttpResponse response)
    {
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status400BadRequest, typeof(OAuthErrorBody), ["application/json"]));
}

/// <summary>
/// RFC 6750 §3: a refused Bearer token. The challenge carries the error; the body is an RFC 6749 error
/// (UserInfo) or an RFC 9457 problem (everything else), as docs/http-api.md §2 says for each kind of endpoint.
/// </summary>
internal sealed class BearerError(int status, string? error, string description, bool problem) : IResult
{
    public static BearerError Missing(bool problem) => new(StatusCodes.Status401Unauthorized, null, "send the session's access token: Authorization: Bearer …", problem);

    public static BearerError InvalidToken(string description, bool problem) => new(StatusCodes.Status401Unauthorized, OAuthErrors.InvalidToken, description, problem);

    public static BearerError InsufficientScope(string scope, bool problem) =>
        new(StatusCodes.Status403Forbidden, "insufficient_scope", $"the token lacks the scope '{scope}'; sign in again with assent auth login", problem);

    public Task ExecuteAsync(HttpContext context)
    {
        // §3.1: without any token there is no error code, only the scheme.
        context.Response.Headers.WWWAuthenticate = error is null
            ? "Bearer realm=\"assent\""
            : $"Bearer realm=\"assent\", error=\"{error}\", error_description=\"{description.Replace("\"", "'", StringComparison.Ordinal)}\"";
        if (problem)
        {
            return Problem.Make(status, status == StatusCodes.Status401Unauthorized ? "Unauthorized" : "Forbidden", description).ExecuteAsync(context);
        }
        return new OAuthError(error ?? OAuthErrors.InvalidToken, description, status).ExecuteBodyAsync(context);
    }
}

/// <summary>RFC 9457 problem details for the non-OAuth endpoints.</summary>
internal static class Problem
{
    public static IResult BadRequest(string detail) => Make(StatusCodes.Status400BadRequest, "Bad request", detail);

    public static IResult Unauthorized(string detail) => Make(StatusCodes.Status401Unauthorized, "Unauthorized", detail);

    public static IResult Forbidden(string detail) => Make(StatusCodes.Status403Forbidden, "Forbidden", detail);

    public static IResult NotFound(string detail) => Make(StatusCodes.Status404NotFound, "Not found", detail);

    public static IResult Conflict(string detail) => Make(StatusCodes.Status409Conflict, "Conflict", detail);

    public static IResult Gone(string detail) => Make(StatusCodes.Status410Gone, "Gone", detail);

    public static IResult UnsupportedMediaType(string detail) => Make(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", detail);

    /// <summary>429 with <c>Retry-After</c>: a limit refused the request, which changed nothing (docs/http-api.md §2.2).</summary>
    public static IResult TooManyRequests(string detail, TimeSpan retryAfter) => new RetryLater(Make(StatusCodes.Status429TooManyRequests, "Too many requests", detail), retryAfter);

    /// <summary>503 with <c>Retry-After</c>: the server cannot answer now (its database is unavailable), docs/http-api.md §2.3.</summary>
    public static IResult Unavailable(string detail, TimeSpan retryAfter) =>
        new RetryLater(Make(StatusCodes.Status503ServiceUnavailable, "Service unavailable", detail), retryAfter);

    /// <summary>RFC 9110 §10.2.3: whole seconds, rounded up, at least 1.</summary>
    public static void SetRetryAfter(HttpResponse response, TimeSpan wait) =>
        response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static IResult Make(int status, string title, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: title);

    private sealed class RetryLater(IResult problem, TimeSpan retryAfter) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            SetRetryAfter(context.Response, retryAfter);
            return problem.ExecuteAsync(context);
        }
    }
}
