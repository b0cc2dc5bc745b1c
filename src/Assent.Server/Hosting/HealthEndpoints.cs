using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Hosting;

/// <summary>
/// Probes for load balancers and orchestrators (docs/deployment.md §13): liveness says the process serves HTTP and
/// touches nothing else, so a database outage never gets a node restarted; readiness says this node can take writes
/// now, so traffic goes elsewhere while it cannot.
/// </summary>
internal static class HealthEndpoints
{
    /// <summary>
    /// An SQLite volume with less free space than this is reported not ready: small writes would still commit into the
    /// write-ahead log's existing pages, while new requests, which grow the files, fail.
    /// </summary>
    internal const long MinFreeBytes = 8 * 1024 * 1024;

    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz/live", (AssentStore s) => TypedResults.Json(new HealthReport("ok", s.Engine), ServerJson.Default.HealthReport))
            .WithSummary("Liveness: the process answers HTTP; storage is not consulted").WithTags("Operations");
        app.MapGet("/healthz/ready", ReadyAsync)
            .WithSummary("Readiness: a write commits now (and an SQLite volume has room); 503 with Retry-After otherwise").WithTags("Operations");
        app.MapGet("/healthz", async (AssentStore s, CancellationToken c) =>
            {
                await s.Users.AnyAsync(c);
                return TypedResults.Json(new HealthReport("ok", s.Engine), ServerJson.Default.HealthReport);
            })
            .WithSummary("Storage answers a read (kept for existing probes; /healthz/ready also checks writes)").WithTags("Operations");
        return app;
    }

    internal static async Task<IResult> ReadyAsync(HttpContext http, AssentStore store, StorageHealth health, CancellationToken ct)
    {
        var problem = await health.ProbeAsync(ct) ?? FreeSpaceProblem(store) ?? (health.Down ? "recovering: a request failed on storage less than a second ago" : null);
        if (problem is null)
        {
            return TypedResults.Json(new HealthReport("ok", store.Engine), ServerJson.Default.HealthReport);
        }
        Problem.SetRetryAfter(http.Response, StorageHealth.RetryAfter);
        return TypedResults.Json(new HealthReport("unavailable", store.Engine, problem), ServerJson.Default.HealthReport, statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    private static string? FreeSpaceProblem(AssentStore store)
    {
        if (store.Database is not Storage.Sqlite.SqliteDatabase sqlite)
        {
            return null;
        }
        try
        {
            var free = new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(sqlite.Path))!).AvailableFreeSpace;
            return free < MinFreeBytes ? $"{free} bytes free on the volume of {sqlite.Path}, less than {MinFreeBytes}" : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }
}
