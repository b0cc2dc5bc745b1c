using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Assent.Server.Common;

/// <summary>Reads request bodies with explicit, clear failures instead of framework defaults.</summary>
internal static class RequestBodies
{
    public sealed record JsonRead<T>(T? Value, IResult? Error);

    public static async Task<JsonRead<T>> ReadJsonAsync<T>(HttpRequest request, JsonTypeInfo<T> type, CancellationToken ct) where T : class
    {
        if (!request.HasJsonContentType())
        {
            return new(null, Problem.UnsupportedMediaType("send the body as application/json"));
        }
        try
        {
            var value = await JsonSerializer.DeserializeAsync(request.Body, type, ct);
            return value is null ? new(null, Problem.BadRequest("the body must be a JSON object")) : new(value, null);
        }
        catch (JsonException e)
        {
            return new(null, Problem.BadRequest($"the body is not valid JSON for this endpoint: {e.Message}"));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return new(null, Problem.Make(StatusCodes.Status413PayloadTooLarge, "Payload too large", "the request body is larger than allowed"));
        }
        catch (BadHttpRequestException e)
        {
            // Broken chunked encoding, a body shorter than announced: the client's fault, answered without an exception.
            return new(null, Problem.Make(e.StatusCode, "Bad request", $"the request body could not be read: {e.Message}"));
        }
    }

    public sealed record FormRead(IFormCollection? Form, OAuthError? Error);

    /// <summary>OAuth endpoints take application/x-www-form-urlencoded bodies (RFC 6749 §4.1.3, CIBA Core §7.1).</summary>
    public static async Task<FormRead> ReadFormAsync(HttpRequest request, CancellationToken ct)
    {
        if (!request.HasFormContentType || request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) != true)
        {
            return new(null, new OAuthError(Protocol.OAuth.OAuthErrors.InvalidRequest, "the body must be application/x-www-form-urlencoded"));
        }
        try
        {
            var form = await request.ReadFormAsync(ct);
            foreach (var (key, values) in form)
            {
                // RFC 6749 §3.2 / §3.1: parameters must not be included more than once.
                if (values.Count > 1)
                {
                    return new(null, new OAuthError(Protocol.OAuth.OAuthErrors.InvalidRequest, $"parameter '{key}' is repeated"));
                }
            }
            return new(form, null);
        }
        catch (InvalidDataException e)
        {
            return new(null, new OAuthError(Protocol.OAuth.OAuthErrors.InvalidRequest, $"the form body is malformed or too large: {e.Message}"));
        }
        catch (BadHttpRequestException e)
        {
            return new(null, new OAuthError(Protocol.OAuth.OAuthErrors.InvalidRequest,
                e.StatusCode == StatusCodes.Status413PayloadTooLarge ? "the request body is larger than allowed" : $"the request body could not be read: {e.Message}", e.StatusCode));
        }
    }

    public static string? Value(this IFormCollection form, string name) =>
        form.TryGetValue(name, out var v) && v.Count == 1 && !string.IsNullOrEmpty(v[0]) ? v[0] : null;

    public static FormOptions Limits(long maxBody) => new()
    {
        ValueLengthLimit = (int)Math.Min(maxBody, int.MaxValue),
        KeyLengthLimit = 256,
        ValueCountLimit = 64,
        MultipartBodyLengthLimit = maxBody,
        BufferBodyLengthLimit = maxBody,
    };
}
