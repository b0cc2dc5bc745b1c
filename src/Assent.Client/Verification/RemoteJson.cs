using System.Net;
using System.Text.Json;

namespace Assent.Client.Verification;

/// <summary>Small, size-capped JSON GETs for discovery, JWKS and DID documents; failures become <see cref="TokenErrors.JwksUnavailable"/>.</summary>
internal static class RemoteJson
{
    private const int MaxBytes = 256 * 1024;

    /// <summary>Fetches and parses a JSON object; null when the server answered 404 or 410 (the thing does not exist).</summary>
    public static async Task<JsonDocument?> GetAsync(HttpClient http, Uri url, CancellationToken ct)
    {
        try
        {
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
            if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone)
            {
                return null;
            }
            if (!response.IsSuccessStatusCode)
            {
                throw Unavailable(url, $"answered {(int)response.StatusCode}");
            }
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > MaxBytes)
                {
                    throw Unavailable(url, $"answered more than {MaxBytes / 1024} KB");
                }
                buffer.Write(chunk, 0, read);
            }
            var doc = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw Unavailable(url, "did not answer a JSON object");
            }
            return doc;
        }
        catch (HttpRequestException e)
        {
            throw Unavailable(url, e.InnerException?.Message ?? e.Message, e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw Unavailable(url, "timed out", e);
        }
        catch (JsonException e)
        {
            throw Unavailable(url, "did not answer valid JSON", e);
        }
    }

    public static TokenVerificationException Unavailable(Uri url, string why, Exception? inner = null) =>
        new(TokenErrors.JwksUnavailable, $"{url} {why}", inner);

    public static string? String(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
