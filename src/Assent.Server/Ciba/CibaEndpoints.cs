using System.Globalization;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Ciba;

/// <summary>CIBA Core §7: the backchannel authentication endpoint, read top to bottom as one flow. Its grant is <see cref="CibaGrant"/>.</summary>
internal static class CibaEndpoints
{
    public static IEndpointRouteBuilder MapCiba(this IEndpointRouteBuilder app)
    {
        app.MapPost(EndpointPaths.BackchannelAuthentication, BackchannelAuthorizeAsync)
            .DisableAntiforgery()
            .WithSummary("CIBA backchannel authentication request (CIBA Core 1.0 §7)")
            .WithTags("OAuth");
        return app;
    }

    internal static async Task<Results<Ok<BcAuthorizeResponse>, OAuthError>> BackchannelAuthorizeAsync(
        HttpContext http, ClientAuthenticator clients, IdentityDirectory directory, AgentConsents consents, ApprovalService approvals, CibaClients ciba,
        MasterKey master, IVaultStore vault, AssentOptions options, CancellationToken ct)
    {
        var (read, client, error) = await clients.ReadFormAsync(http.Request, _ => false, ct);
        if (error is not null)
        {
            return error;
        }
        var form = read!;

        // §7.1: scope is required and, this being OpenID, must contain openid.
        var scope = form.Value(OAuthParameters.Scope);
        var requested = scope?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (!requested.Contains(Scopes.OpenId))
        {
            return new OAuthError(OAuthErrors.InvalidScope, "scope must contain 'openid'");
        }
        var allowed = client!.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var notAllowed = requested.Where(s => s != Scopes.OpenId && !allowed.Contains(s)).ToList();
        if (notAllowed.Count > 0)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"this client may not ask for: {string.Join(' ', notAllowed)}");
        }
        var grantedScope = string.Join(' ', requested.Distinct());
        if (grantedScope.Length > AccessTokenBudget.MaxScopeLength)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"scope may be at most {AccessTokenBudget.MaxScopeLength} characters");
        }

        // §7.1: exactly one hint. Assent takes login_hint (a handle or a user DID).
        if (form.Value(OAuthParameters.LoginHintToken) is not null || form.Value(OAuthParameters.IdTokenHint) is not null)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "only login_hint is supported (a user handle or DID)");
        }
        var hint = form.Value(OAuthParameters.LoginHint);
        if (hint is null)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "login_hint is required: the approver's handle or DID");
        }
        var user = await directory.FindByHintAsync(hint, ct);
        if (user is null)
        {
            // §13: the hint names no user this server knows.
            return new OAuthError(OAuthErrors.UnknownUserId, "login_hint names no user of this server");
        }
        // docs/concepts.md §3.1: an agent asks its owner, or a user who consented to it on their own device. CIBA Core
        // §13 has no code for this, so RFC 6749's: the client is not authorized to use this (ask this user).
        if (!await consents.MayAskAsync(client, user, ct))
        {
            return new OAuthError(OAuthErrors.UnauthorizedClient,
                $"this agent may ask only its owner; {hint} has not consented to it (its owner can ask them: assent auth consent request --agent {client.Id} --user {hint})");
        }

        var bindingMessage = form.Value(OAuthParameters.BindingMessage);
        if (bindingMessage is not null && ApprovalText.BindingMessageProblem(bindingMessage) is { } refused)
        {
            return new OAuthError(OAuthErrors.InvalidBindingMessage, refused);
        }

        string? details = null;
        if (form.Value(OAuthParameters.AuthorizationDetails) is { } rawDetails)
        {
            if (!ApprovalText.TryNormalizeDetails(rawDetails, options, out details, out var why))
            {
                return new OAuthError(OAuthErrors.InvalidAuthorizationDetails, why);
            }
            // docs/vault.md §4: a vault_release names an item of this user; the payload the device signs holds its id and version.
            (details, var unreleasable) = await Vault.VaultReleases.ResolveAsync(details!, user.Id, vault, ct);
            if (unreleasable is not null)
            {
                return new OAuthError(OAuthErrors.InvalidAuthorizationDetails, unreleasable);
            }
        }

        var expiry = options.DefaultRequestExpiry;
        if (form.Value(OAuthParameters.RequestedExpiry) is { } rawExpiry)
        {
            if (!int.TryParse(rawExpiry, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds < 1 ||
                seconds > options.MaxRequestExpiry.TotalSeconds)
            {
                return new OAuthError(OAuthErrors.InvalidRequest, $"requested_expiry must be a whole number of seconds from 1 to {(int)options.MaxRequestExpiry.TotalSeconds}");
            }
            expiry = TimeSpan.FromSeconds(seconds);
        }

        // §7.1: client_notification_token is REQUIRED for a ping or push client, and meaningless for a poll client.
        var notificationToken = form.Value(OAuthParameters.ClientNotificationToken);
        var mode = await ciba.ModeAsync(client.Id, ct);
        if (mode == DeliveryModes.Poll && notificationToken is not null)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "client_notification_token is only for ping or push clients; this client uses poll");
        }
        if (mode != DeliveryModes.Poll && notificationToken is null)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, $"client_notification_token is required: this client is registered for {mode} delivery");
        }
        // §7.1: at most 1024 characters, a bearer token (RFC 6750 §2.1 b64token characters).
        if (notificationToken is not null && (notificationToken.Length > 1024 || notificationToken.Any(c => c is < '!' or > '~')))
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "client_notification_token must be at most 1024 printable ASCII characters");
        }

        var resource = form.Value(OAuthParameters.Resource);
        if (resource is not null &&
            (resource.Length > AccessTokenBudget.MaxResourceLength || !Uri.TryCreate(resource, UriKind.Absolute, out var r) || r.Fragment.Length > 0))
        {
            // RFC 8707 §2: an absolute URI without a fragment. It becomes the token's aud.
            return new OAuthError(OAuthErrors.InvalidTarget,
                $"resource must be an absolute URI without a fragment, at most {AccessTokenBudget.MaxResourceLength} characters");
        }

        ApprovalService.CappedCreation capped;
        try
        {
            capped = await approvals.CreateUnderCapAsync(ApprovalKinds.Ciba, client.Id, client.Name, user, grantedScope, bindingMessage, details,
                resource, expiry, options.Limits.MaxPendingPerAgentPerUser,
                notificationToken is null ? null : (a, handle) => new CibaNotification(handle, notificationToken).Seal(master, a.Id), ct);
        }
        catch (MandateProblemException bad)
        {
            // docs/policies.md §6: a mandate's limits are refused as asked, nothing created.
            return new OAuthError(OAuthErrors.InvalidAuthorizationDetails, bad.Message);
        }
        catch (PolicyDeniedException denied)
        {
            // CIBA Core §13: access_denied, the authorization server refused the request; docs/policies.md §1 names the policy.
            return new OAuthError(OAuthErrors.AccessDenied, $"policy {denied.Policy.Label} denies this request", StatusCodes.Status403Forbidden);
        }
        var (created, retryAfter) = capped;
        if (created is null)
        {
            // docs/http-api.md §5: one agent cannot bury a user in requests; nothing was created.
            return OAuthError.TooManyRequests(
                $"this agent already has {options.Limits.MaxPendingPerAgentPerUser} requests waiting for this user; ask again once one is decided or expires",
                retryAfter);
        }
        return TypedResults.Ok(new BcAuthorizeResponse(created.Handle, (int)expiry.TotalSeconds, (int)Math.Ceiling(options.PollInterval.TotalSeconds)));
    }
}
