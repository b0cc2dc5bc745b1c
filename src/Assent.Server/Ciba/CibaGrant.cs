using System.Text.Json;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Assent.Server.Vault;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Assent.Server.Ciba;

/// <summary>CIBA Core §10.1–§11: the token request for a backchannel authentication, in poll mode or held with <c>Prefer: wait</c>.</summary>
internal sealed class CibaGrant(IApprovalStore approvals, ApprovalHub hub, GrantSettler settler, TokenIssuer issuer, MandateBook mandates, IVaultStore vault,
    TimeProvider time)
{
    public async Task<Results<Ok<TokenResponse>, OAuthError>> RedeemAsync(HttpContext http, IFormCollection form, ClientRecord client, CancellationToken ct)
    {
        var handle = form.Value(OAuthParameters.AuthReqId);
        if (handle is null || handle.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "auth_req_id is required");
        }
        var version = hub.Version;
        var handleHash = Ids.HandleKey(handle);
        // A request created here and not settled as far as this node has heard needs no read (see AnnouncedByHandle).
        var approval = hub.AnnouncedByHandle(handleHash) ?? await approvals.FindByHandleAsync(handleHash, ct);
        // §11: an auth_req_id that is unknown or was issued to another client is invalid_grant.
        if (approval is null || approval.ClientId != client.Id || approval.Kind != ApprovalKinds.Ciba)
        {
            return new OAuthError(OAuthErrors.InvalidGrant, "auth_req_id is unknown or was not issued to this client");
        }
        // A wake that says "approved" goes straight to the redemption, which returns the decided row.
        return await settler.SettleAsync(http, approval.Id, approval, version, approval.ExpiresAt, c => approvals.FindAsync(approval.Id, c), true, async decided =>
        {
            // The redemption returns the row as decided, so the token is built from what was committed.
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var redeemed = new AuditEvent(AuditTypes.ApprovalRedeemed, decided.UserId, client.Id, decided.Id);
            DecidedApproval? approved;
            VaultReleaseResult? release = null;
            // docs/vault.md §4: an approved release hands the sealed item and the key re-wrapped to the agent over once, taken in the
            // redemption's own transaction (a request's authorization_details never change once it is created).
            if (VaultReleases.DetailOf(decided.AuthorizationDetails) is { } releasing)
            {
                (approved, release) = await VaultReleases.RedeemAsync(decided, releasing, now, redeemed, client.Id, vault, ct);
            }
            else
            {
                approved = await approvals.TryRedeemAsync(decided.Id, now, redeemed, ct);
            }
            if (approved is null)
            {
                return new OAuthError(OAuthErrors.InvalidGrant, "this auth_req_id has already been redeemed");
            }
            var a = approved.Approval;
            var tokens = issuer.ForApproval(approved, handle, includeIdToken: a.Scope.Split(' ').Contains(Scopes.OpenId),
                mandate: await mandates.GrantOfAsync(approved, ct));
            return TypedResults.Ok(new TokenResponse(tokens.AccessToken, TokenTypes.Bearer, tokens.ExpiresIn, a.Scope, tokens.IdToken,
                AuthorizationDetails: a.AuthorizationDetails is null ? null : JsonDocument.Parse(a.AuthorizationDetails).RootElement,
                VaultRelease: release));
        }, OAuthParameters.AuthReqId, ct);
    }
}
