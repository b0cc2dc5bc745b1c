using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Assent.Server.Sessions;

/// <summary>
/// A human's CLI session: started by an approved RFC 8628 device login, kept alive by refresh tokens
/// that rotate on every use. Only hashes of refresh tokens are stored; a consumed token presented
/// again ends the whole family (RFC 9700 §4.14.2), since either its holder or a thief is replaying it.
/// </summary>
internal sealed class SessionService(ISessionStore sessions, IApprovalStore approvals, TokenIssuer issuer, AssentOptions options, TimeProvider time)
{
    /// <summary>Redeems an approved device login once; null when it was already redeemed.</summary>
    public async Task<TokenResponse?> StartAsync(ApprovalRecord approval, CancellationToken ct)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var refresh = NewRefreshToken();
        var first = new RefreshTokenRecord(Ids.Hash(refresh), Ids.New("fam"), approval.UserId, CliClient.Id, approval.Scope, approval.Id, now,
            now + (long)options.RefreshTokenLifetime.TotalMilliseconds);
        if (await sessions.TryStartSessionAsync(approval.Id, now, first, new AuditEvent(AuditTypes.SessionStarted, approval.UserId, CliClient.Id, first.FamilyId,
                new Dictionary<string, string> { ["approval"] = approval.Id }), ct) is not { } decisions)
        {
            return null;
        }
        var tokens = issuer.ForSession(new DecidedApproval(approval, decisions), approval.Scope);
        return new TokenResponse(tokens.AccessToken, TokenTypes.Bearer, tokens.ExpiresIn, approval.Scope, RefreshToken: refresh);
    }

    /// <summary>RFC 6749 §6 with rotation: the presented token is consumed and a new one returned beside the access token.</summary>
    public async Task<Results<Ok<TokenResponse>, OAuthError>> RefreshAsync(string? presented, string? scope, CancellationToken ct)
    {
        if (presented is null || presented.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "refresh_token is required");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var next = NewRefreshToken();
        var (outcome, consumed) = await sessions.TryRotateRefreshTokenAsync(Ids.Hash(presented), CliClient.Id, now,
            old => old with { TokenHash = Ids.Hash(next), CreatedAt = now, ExpiresAt = now + (long)options.RefreshTokenLifetime.TotalMilliseconds },
            ct);
        switch (outcome)
        {
            case RefreshOutcome.Rotated:
                break;
            case RefreshOutcome.Reused:
                return new OAuthError(OAuthErrors.InvalidGrant, "this refresh token was already used; the session has been ended for safety: sign in again");
            case RefreshOutcome.Expired:
                return new OAuthError(OAuthErrors.InvalidGrant, "the session has expired: sign in again");
            case RefreshOutcome.Revoked:
                return new OAuthError(OAuthErrors.InvalidGrant, "the session was ended (signed out or revoked): sign in again");
            default:
                return new OAuthError(OAuthErrors.InvalidGrant, "refresh_token is unknown");
        }
        var granted = consumed!.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var requested = scope?.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct().ToArray() ?? granted;
        if (requested.Any(s => !granted.Contains(s)))
        {
            // RFC 6749 §6: a refresh may narrow the scope, never widen it. The new refresh token keeps the original scope.
            return new OAuthError(OAuthErrors.InvalidScope, $"the session was granted only: {consumed.Scope}");
        }
        var approval = consumed.ApprovalId is null ? null : await approvals.FindAsync(consumed.ApprovalId, ct);
        if (approval is null)
        {
            return new OAuthError(OAuthErrors.InvalidGrant, "the approval that started this session no longer exists: sign in again");
        }
        var decisions = (await approvals.ListDecisionsAsync(approval.Id, ct)).Where(d => d.Decision == ApprovalState.Approved).ToList();
        var tokens = issuer.ForSession(new DecidedApproval(approval, decisions), string.Join(' ', requested));
        return TypedResults.Ok(new TokenResponse(tokens.AccessToken, TokenTypes.Bearer, tokens.ExpiresIn, string.Join(' ', requested), RefreshToken: next));
    }

    /// <summary>RFC 7009 §2.1 for a refresh token: its whole family ends. Unknown tokens are not an error.</summary>
    public Task<bool> RevokeRefreshTokenAsync(string token, string clientId, CancellationToken ct) =>
        sessions.RevokeRefreshTokenFamilyAsync(Ids.Hash(token), clientId, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.SessionRevoked, null, clientId, null), ct);

    /// <summary>An opaque 256-bit secret; the prefix only helps a human tell it from other tokens.</summary>
    private static string NewRefreshToken() => Ids.Secret("rt");
}
