using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Assent.Server.Sessions;

/// <summary>RFC 8628 §3.4–§3.5: the CLI polls (or waits) with its device_code until a device decides; approval starts its session.</summary>
internal sealed class DeviceCodeGrant(ISessionStore sessions, IApprovalStore approvals, ApprovalHub hub, GrantSettler settler, SessionService sessionService)
{
    public async Task<Results<Ok<TokenResponse>, OAuthError>> RedeemAsync(HttpContext http, IFormCollection form, CancellationToken ct)
    {
        var code = form.Value(OAuthParameters.DeviceCode);
        if (code is null || code.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "device_code is required");
        }
        var hash = Ids.Hash(code);
        var version = hub.Version;
        var authorization = await sessions.FindDeviceAuthorizationAsync(hash, ct);
        if (authorization is null || authorization.ClientId != CliClient.Id)
        {
            return new OAuthError(OAuthErrors.InvalidGrant, "device_code is unknown");
        }
        var approval = authorization.ApprovalId is null ? null : await approvals.FindAsync(authorization.ApprovalId, ct);
        return await settler.SettleAsync(http, authorization.Id, approval, version, authorization.ExpiresAt, async c =>
                await sessions.FindDeviceAuthorizationAsync(hash, c) is { ApprovalId: { } id } ? await approvals.FindAsync(id, c) : null, false,
            async approved => await sessionService.StartAsync(approved, ct) is { } tokens
                ? TypedResults.Ok(tokens)
                : new OAuthError(OAuthErrors.InvalidGrant, "this device_code has already been used"),
            OAuthParameters.DeviceCode, ct);
    }
}
