using System.Globalization;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Approvals;

/// <summary>
/// RFC 7240 <c>Prefer: wait=N</c>: hold a pending request open until it is decided or N seconds pass.
/// Shared by the CIBA and device-code grants and by agent registration.
/// </summary>
internal static class PreferWait
{
    /// <summary>RFC 7240 §4.3: the wait asked for, capped at the server's maximum; zero when none.</summary>
    public static TimeSpan Requested(HttpRequest request, TimeSpan max)
    {
        foreach (var header in request.Headers[HeaderNames.Prefer])
        {
            foreach (var preference in (header ?? "").Split(','))
            {
                var token = preference.Split(';')[0].Trim();
                if (token.StartsWith("wait=", StringComparison.OrdinalIgnoreCase) &&
                    int.TryParse(token.AsSpan(5).Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
                {
                    var wanted = TimeSpan.FromSeconds(seconds);
                    return wanted < max ? wanted : max;
                }
            }
        }
        return TimeSpan.Zero;
    }

    /// <summary>
    /// A request's answer held for <c>Prefer: wait</c> when it asks for one and the request is pending: the request as read
    /// after the wait (the same record when nothing happened to it), with <c>Preference-Applied</c> set.
    /// </summary>
    public static async Task<ApprovalRecord> HoldIfAskedAsync(HttpContext http, ApprovalRecord approval, long readAtVersion, ApprovalHub hub,
        IApprovalStore store, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var wait = Requested(http.Request, options.MaxWait);
        if (approval.State != ApprovalState.Pending || wait <= TimeSpan.Zero)
        {
            return approval;
        }
        Applied(http.Response, wait);
        return await HoldAsync(hub, approval.Id, approval, readAtVersion, approval.ExpiresAt, c => store.FindAsync(approval.Id, c), wait, time, ct) ?? approval;
    }

    public static void Applied(HttpResponse response, TimeSpan wait) =>
        response.Headers[HeaderNames.PreferenceApplied] = "wait=" + ((int)wait.TotalSeconds).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Holds until the request settles, <paramref name="wait"/> runs out, or <paramref name="expiresAt"/> (ms) passes.
    /// <paramref name="current"/> may be null while nothing is raised yet (an RFC 8628 code no device has bound):
    /// then <paramref name="pendingKey"/> is watched, and once <paramref name="read"/> finds a request, that request is.
    /// <paramref name="readAtVersion"/> is <see cref="ApprovalHub.Version"/> taken before <paramref name="current"/> was read:
    /// the hub then tells whether anything happened to it since, and an unchanged request is not read again.
    /// With <paramref name="approvedWithoutReading"/>, a wake that says "approved" returns <paramref name="current"/>
    /// marked approved without a read: for a caller whose redemption returns the decided row itself.
    /// </summary>
    public static async Task<ApprovalRecord?> HoldAsync(ApprovalHub hub, string pendingKey, ApprovalRecord? current, long readAtVersion, long expiresAt,
        Func<CancellationToken, Task<ApprovalRecord?>> read, TimeSpan wait, TimeProvider time, CancellationToken ct, bool approvedWithoutReading = false)
    {
        var deadline = Math.Min(time.GetUtcNow().ToUnixTimeMilliseconds() + (long)wait.TotalMilliseconds, expiresAt + 50);
        while (true)
        {
            using var watch = hub.Watch(current?.Id ?? pendingKey, readAtVersion);
            if (current is null || watch.Signaled.IsCompleted)
            {
                // Woken since the last read (or nothing read yet): read again, noting the version first.
                readAtVersion = hub.Version;
                var fresh = await read(ct) ?? current;
                if (fresh is not null && fresh.State != ApprovalState.Pending)
                {
                    return fresh;
                }
                if (fresh is not null && current is null)
                {
                    // The request was just raised: watch it instead of the key.
                    current = fresh;
                    continue;
                }
                current = fresh;
                if (watch.Signaled.IsCompleted)
                {
                    // A wake that changed nothing visible (e.g. every waiter woken after a lost notification channel).
                    continue;
                }
            }
            var left = deadline - time.GetUtcNow().ToUnixTimeMilliseconds();
            if (left <= 0)
            {
                return current;
            }
            try
            {
                var state = await watch.Signaled.WaitAsync(TimeSpan.FromMilliseconds(left), time, ct);
                if (approvedWithoutReading && state == "approved" && current is not null)
                {
                    return current with { State = ApprovalState.Approved };
                }
            }
            catch (TimeoutException)
            {
                return current;
            }
        }
    }
}
