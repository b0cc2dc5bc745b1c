using System.Threading.RateLimiting;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Authentication;

/// <summary>
/// Unauthenticated requests that store a row (RFC 8628 device codes, passkey ceremony options): at most
/// <see cref="LimitOptions.CreationsPerMinute"/> per address, endpoint and minute, by the framework's fixed-window
/// limiter (docs/deployment.md §10). Per node: each such row is small and short-lived, so what matters is bounding
/// what one address makes a node write; a counter shared in the database would itself be a write per request.
/// </summary>
internal sealed class CreationLimit(AssentOptions options, RefusalAudit audit) : IRateLimiterPolicy<string>
{
    public const string Policy = "unauthenticated-creation";

    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    public RateLimitPartition<string> GetPartition(HttpContext http) =>
        RateLimitPartition.GetFixedWindowLimiter(Key(http), _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = options.Limits.CreationsPerMinute,
            Window = Window,
            QueueLimit = 0,
        });

    public Func<OnRejectedContext, CancellationToken, ValueTask>? OnRejected => RefuseAsync;

    /// <summary>The route, not the path as sent: differently cased or slashed spellings of one endpoint share its budget.</summary>
    private static string Key(HttpContext http) =>
        $"{LimitNames.Creations}:{(http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? http.Request.Path.Value}:{ClientAddress.Of(http)}";

    private async ValueTask RefuseAsync(OnRejectedContext context, CancellationToken ct)
    {
        var http = context.HttpContext;
        var wait = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : Window;
        await audit.RefusedAsync(LimitNames.Creations, Key(http), null, Window,
            new Dictionary<string, string> { ["max"] = options.Limits.CreationsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture) }, ct);
        const string detail = "too many requests of this kind from this address; try again later";
        // The OAuth endpoint answers in its own shape (docs/http-api.md §2.1), the others as problems (§2.2).
        var answer = http.Request.Path.StartsWithSegments("/oauth", StringComparison.OrdinalIgnoreCase)
            ? (IResult)OAuthError.TooManyRequests(detail, wait)
            : Problem.TooManyRequests(detail, wait);
        await answer.ExecuteAsync(http);
    }
}
