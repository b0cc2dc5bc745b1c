using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Hosting;

/// <summary>
/// With <c>Assent:ServerTiming</c> (docs/deployment.md §12): the <c>Server-Timing</c> response header, the time the server
/// spent on the request, measured from when Kestrel handed it to the first middleware to when its response started.
/// </summary>
internal static class ServerTiming
{
    /// <summary>The W3C Server Timing metric name; <c>dur</c> is in milliseconds (Server Timing §3).</summary>
    public const string Metric = "app";

    public static void UseServerTiming(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        var started = Stopwatch.GetTimestamp();
        context.Response.OnStarting(() =>
        {
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            context.Response.Headers["Server-Timing"] = string.Create(CultureInfo.InvariantCulture, $"{Metric};dur={ms:0.###}");
            return Task.CompletedTask;
        });
        return next(context);
    });
}
