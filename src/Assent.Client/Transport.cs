namespace Assent.Client;

/// <summary>One place that turns transport failures into <see cref="AssentUnreachableException"/>.</summary>
internal static class Transport
{
    /// <summary>Sends the request; a refused connection, a reset or the HttpClient timeout means the server is unreachable.</summary>
    public static async Task<HttpResponseMessage> SendAsync(HttpClient http, Uri server, HttpRequestMessage request, CancellationToken ct,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        try
        {
            return await http.SendAsync(request, completion, ct);
        }
        catch (HttpRequestException e)
        {
            throw new AssentUnreachableException(server, e.InnerException?.Message ?? e.Message, e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new AssentUnreachableException(server, $"no answer within {http.Timeout.TotalSeconds:0} s", e);
        }
    }
}
