using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Assent.Server.Approvals;

/// <summary>
/// The shared tail of every grant that waits for a human (CIBA Core §11, RFC 8628 §3.5): hold a pending request
/// open for <c>Prefer: wait</c> or pace plain polls, then answer by the request's state.
/// </summary>
internal sealed class GrantSettler(ApprovalHub hub, PollPacer pacer, AssentOptions options, TimeProvider time)
{
    /// <param name="key">What to watch and pace: the request id, or the device authorization while no request is bound to it.</param>
    /// <param name="approval">The request as read; null while a device code is not yet bound to one.</param>
    /// <param name="readAtVersion"><see cref="ApprovalHub.Version"/> taken before <paramref name="approval"/> was read.</param>
    /// <param name="read">Reads the request again after a wake.</param>
    /// <param name="approvedWithoutReading">Whether a wake that says "approved" may go straight to <paramref name="redeem"/>, which returns the decided row.</param>
    /// <param name="redeem">Turns an approved request into tokens, once.</param>
    /// <param name="codeName">The grant's parameter, for messages ("auth_req_id", "device_code").</param>
    public async Task<Results<Ok<TokenResponse>, OAuthError>> SettleAsync(HttpContext http, string key, ApprovalRecord? approval, long readAtVersion,
        long expiresAt, Func<CancellationToken, Task<ApprovalRecord?>> read, bool approvedWithoutReading,
        Func<ApprovalRecord, Task<Results<Ok<TokenResponse>, OAuthError>>> redeem, string codeName, CancellationToken ct)
    {
        var wait = PreferWait.Requested(http.Request, options.MaxWait);
        var pending = approval is null || approval.State == ApprovalState.Pending;
        if (pending && wait > TimeSpan.Zero)
        {
            PreferWait.Applied(http.Response, wait);
            approval = await PreferWait.HoldAsync(hub, key, approval, readAtVersion, approval?.ExpiresAt ?? expiresAt, read, wait, time, ct, approvedWithoutReading);
            // After a held (long-poll) answer the client may come straight back.
            pacer.Forget(key);
            if (approval is null || approval.State == ApprovalState.Pending)
            {
                return Pending(approval?.ExpiresAt ?? expiresAt);
            }
        }

        switch (approval?.State)
        {
            case null:
            case ApprovalState.Pending:
                var expires = approval?.ExpiresAt ?? expiresAt;
                if (expires > time.GetUtcNow().ToUnixTimeMilliseconds() && !pacer.TryPoll(key, options.PollInterval, expires))
                {
                    return new OAuthError(OAuthErrors.SlowDown, "polling faster than the interval; wait 5 seconds longer between polls");
                }
                return Pending(expires);
            case ApprovalState.Approved:
                pacer.Forget(key);
                return await redeem(approval);
            case ApprovalState.Denied:
                pacer.Forget(key);
                return new OAuthError(OAuthErrors.AccessDenied, "the user denied the request");
            case ApprovalState.Cancelled:
                // CIBA Core §11 has no code for a withdrawn request; access_denied is the closest, with its own description.
                pacer.Forget(key);
                return new OAuthError(OAuthErrors.AccessDenied, "the request was withdrawn (cancelled) before anyone decided it");
            case ApprovalState.Expired:
                pacer.Forget(key);
                return new OAuthError(OAuthErrors.ExpiredToken, "the request expired before the user decided; start a new one");
            default:
                return new OAuthError(OAuthErrors.InvalidGrant, $"this {codeName} has already been redeemed");
        }
    }

    private OAuthError Pending(long expiresAt) =>
        expiresAt <= time.GetUtcNow().ToUnixTimeMilliseconds()
            ? new OAuthError(OAuthErrors.ExpiredToken, "the request expired before the user decided; start a new one")
            : new OAuthError(OAuthErrors.AuthorizationPending, "the user has not decided yet");
}
