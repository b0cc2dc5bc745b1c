using Assent.Server.Common;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Hosting;

/// <summary>
/// Exceptions a client causes rather than the server: a body Kestrel refuses to go on reading (too large, broken chunked
/// encoding, shorter than announced) or a connection the client dropped. Each is answered with its 4xx and writes one
/// line at Information, without a stack trace: anyone can send them, so the log must not grow faster than the requests
/// (docs/deployment.md §12). The middleware writes nothing more of an exception handled here (ASP.NET Core 10 suppresses
/// its diagnostics when an <see cref="IExceptionHandler"/> handled it); anything else it logs once, with the stack trace.
/// </summary>
internal sealed class ClientFaults(ILogger<ClientFaults> log) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        var status = exception switch
        {
            BadHttpRequestException bad => bad.StatusCode,
            IOException when http.RequestAborted.IsCancellationRequested => StatusCodes.Status400BadRequest,
            _ => 0,
        };
        if (status is < 400 or >= 500)
        {
            return false;
        }
        // The endpoint's name comes from its route template, never from the request.
        var endpoint = http.Features.Get<IExceptionHandlerFeature>()?.Endpoint?.DisplayName;
        log.LogInformation("refused a request to {Endpoint} with {Status}: {Reason}", endpoint ?? "no endpoint", status, exception.Message);
        if (!http.RequestAborted.IsCancellationRequested)
        {
            var title = status == StatusCodes.Status413PayloadTooLarge ? "Payload too large" : "Bad request";
            await Problem.Make(status, title, $"the request could not be read: {exception.Message}").ExecuteAsync(http);
        }
        return true;
    }
}
