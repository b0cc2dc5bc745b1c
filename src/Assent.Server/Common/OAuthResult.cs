using System.Reflection;
using System.Text.Json;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;

namespace Assent.Server.Common;

/// <summary>An RFC 6749 §5.2 error response: JSON <c>{error, error_description}</c>, never cached.</summary>
internal sealed class OAuthError(string error, string? description, int status = StatusCodes.Status400BadRequest) : IResult, IEndpointMetadataProvider
{
    public string Error => error;

    public int Status => status;

    public static OAuthError InvalidClient(string description) => new(OAuthErrors.InvalidClient, description, StatusCodes.Status401Unauthorized);

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
        context.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(context.Response.Body, new OAuthErrorBody(error, description), ProtocolJson.Default.OAuthErrorBody, context.RequestAborted);
    }

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

    public static IResult Make(int status, string title, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: title);
}
