using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Hosting;

/// <summary>
/// A request that failed because the database is down, restarting, full or failing its I/O (<see cref="StorageFaults"/>)
/// is answered 503 with <c>Retry-After</c>: OAuth endpoints as RFC 6749 <c>temporarily_unavailable</c> (§4.1.2.1 names
/// it for exactly this), everything else as an RFC 9457 problem (docs/http-api.md §2.3). Nothing is logged per request:
/// <see cref="StorageHealth"/> writes one line when the outage starts and one when it ends.
/// </summary>
internal sealed class StorageOutages(StorageHealth health) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (!StorageFaults.IsUnavailable(exception))
        {
            return false;
        }
        health.Failed(exception);
        if (http.RequestAborted.IsCancellationRequested)
        {
            return true;
        }
        const string detail = "the database is unavailable for the moment; try again shortly";
        if (IsOAuth(http.Request.Path))
        {
            await new OAuthError(OAuthErrors.TemporarilyUnavailable, detail, StatusCodes.Status503ServiceUnavailable, StorageHealth.RetryAfter).ExecuteAsync(http);
        }
        else
        {
            await Problem.Unavailable(detail, StorageHealth.RetryAfter).ExecuteAsync(http);
        }
        return true;
    }

    /// <summary>The endpoints that answer RFC 6749 errors (docs/http-api.md §2.1).</summary>
    internal static bool IsOAuth(PathString path) => path.StartsWithSegments("/oauth") || path.StartsWithSegments("/userinfo");
}
