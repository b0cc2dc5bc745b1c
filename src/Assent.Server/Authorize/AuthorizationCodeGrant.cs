using System.Security.Cryptography;
using System.Text;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Assent.Server.Authorize;

/// <summary>
/// The <c>authorization_code</c> grant (RFC 6749 §4.1.3, OpenID Connect Core §3.1.3) for web clients: a confidential
/// client authenticates with its secret (basic or post), a public one by PKCE alone; the code must come back with its
/// client, redirect URI and verifier, once.
/// </summary>
internal sealed class AuthorizationCodeGrant(IWebClientStore clients, ISessionStore sessions, IdentityDirectory directory, TokenIssuer issuer,
    AttemptLimiter limiter, AssentOptions options, TimeProvider time)
{
    public const string GrantType = "authorization_code";

    private static readonly byte[] DummyHash = SHA256.HashData("assent-no-such-web-client"u8);
    private readonly AttemptPolicy _policy = AttemptPolicy.ForClients(options.Limits);

    public async Task<Results<Ok<TokenResponse>, OAuthError>> RedeemAsync(HttpRequest request, IFormCollection form, CancellationToken ct)
    {
        OAuthError.NoStore(request.HttpContext.Response);
        var (client, error) = await AuthenticateAsync(request, form, ct);
        if (client is null)
        {
            return error!;
        }
        var presented = form.Value(AuthorizeParameters.Code);
        var redirectUri = form.Value(AuthorizeParameters.RedirectUri);
        var verifier = form.Value(AuthorizeParameters.CodeVerifier);
        if (presented is null || presented.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "code is required");
        }
        if (redirectUri is null)
        {
            // RFC 6749 §4.1.3: required when the authorization request had it, which ours always do.
            return new OAuthError(OAuthErrors.InvalidRequest, "redirect_uri is required");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var hash = Ids.HandleKey(presented);
        var jti = Base64Url.Encode(RandomNumberGenerator.GetBytes(16));
        var jtiExpires = now + (long)options.AccessTokenLifetime.TotalMilliseconds + 1000;
        var refresh = Ids.Secret("rt");
        var (outcome, code) = await clients.TryRedeemCodeAsync(hash, now, jti, jtiExpires, c => Check(c, client, redirectUri, verifier),
            c => c.Scope.Split(' ').Contains(SignInScopes.OfflineAccess)
                ? new RefreshTokenRecord(Ids.Hash(refresh), FamilyOf(c), c.UserId, c.ClientId, c.Scope, null, now,
                    now + (long)options.RefreshTokenLifetime.TotalMilliseconds, DeviceId: c.DeviceId, AuthTime: c.AuthTime, Amr: c.Amr)
                : null,
            ct);
        switch (outcome)
        {
            case CodeRedemption.Replayed:
                await RevokeIssuedAsync(code!, client, now, ct);
                return new OAuthError(OAuthErrors.InvalidGrant, "the authorization code was used before; the tokens it issued are revoked");
            case CodeRedemption.Unknown:
                return new OAuthError(OAuthErrors.InvalidGrant, "the authorization code is unknown");
            case CodeRedemption.Expired:
                return new OAuthError(OAuthErrors.InvalidGrant, "the authorization code has expired");
            case CodeRedemption.Mismatch:
                return new OAuthError(OAuthErrors.InvalidGrant, Check(code!, client, redirectUri, verifier)!);
        }
        var device = await directory.FindDeviceAsync(code!.DeviceId, ct);
        if (device is null || !device.Active)
        {
            // The passkey the user signed in with was revoked since: nothing is issued for it (the refresh token stored with the redemption ends).
            await clients.RevokeRefreshFamilyAsync(FamilyOf(code), now, ct);
            return new OAuthError(OAuthErrors.InvalidGrant, "the passkey this sign-in used has been revoked");
        }
        var tokens = await issuer.ForAuthorizationCodeAsync(code, jti, client.IdTokenAlg, ct);
        // OpenID Connect Core §11: a refresh token only when offline_access was asked for and consented to.
        var offline = code.Scope.Split(' ').Contains(SignInScopes.OfflineAccess) ? refresh : null;
        return TypedResults.Ok(new TokenResponse(tokens.AccessToken, TokenTypes.Bearer, tokens.ExpiresIn, code.Scope, tokens.IdToken, RefreshToken: offline));
    }

    /// <summary>Whether a token request comes from a web client (its id in HTTP Basic or the body), which this grant authenticates.</summary>
    public static bool IsWebClientRequest(HttpRequest request, IFormCollection form)
    {
        var header = request.Headers.Authorization.ToString();
        var id = header.Length > 0 && ClientAuthenticator.TryParseBasic(header, out var basicId, out _) ? basicId : form.Value(OAuthParameters.ClientId);
        return id is not null && WebClientRegistration.IsWebClient(id);
    }

    /// <summary>
    /// The <c>refresh_token</c> grant for a web client (RFC 6749 §6, OpenID Connect Core §12): rotated exactly as a CLI
    /// session's (the same store call: a consumed token presented again ends the family, RFC 9700 §4.14.2), bound to the
    /// client, and dead with the passkey it came from. The new ID token keeps the original sign-in's auth_time and amr
    /// and carries no nonce (§12.2).
    /// </summary>
    public async Task<Results<Ok<TokenResponse>, OAuthError>> RefreshAsync(HttpRequest request, IFormCollection form, CancellationToken ct)
    {
        OAuthError.NoStore(request.HttpContext.Response);
        var (client, error) = await AuthenticateAsync(request, form, ct);
        if (client is null)
        {
            return error!;
        }
        var presented = form.Value(OAuthParameters.RefreshToken);
        if (presented is null || presented.Length > 128)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "refresh_token is required");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var next = Ids.Secret("rt");
        var (outcome, consumed) = await sessions.TryRotateRefreshTokenAsync(Ids.Hash(presented), client.Id, now,
            old => old with { TokenHash = Ids.Hash(next), CreatedAt = now, ExpiresAt = now + (long)options.RefreshTokenLifetime.TotalMilliseconds }, ct);
        switch (outcome)
        {
            case RefreshOutcome.Rotated when consumed!.DeviceId is not null:
                break;
            case RefreshOutcome.Reused:
                return new OAuthError(OAuthErrors.InvalidGrant, "this refresh token was already used; all refresh tokens of this sign-in are revoked: sign in again");
            case RefreshOutcome.Expired:
                return new OAuthError(OAuthErrors.InvalidGrant, "the refresh token has expired: sign in again");
            case RefreshOutcome.Revoked:
                return new OAuthError(OAuthErrors.InvalidGrant, "the refresh token was revoked (consent withdrawn, signed out or replayed): sign in again");
            default:
                return new OAuthError(OAuthErrors.InvalidGrant, "refresh_token is unknown");
        }
        var granted = consumed.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var requested = form.Value(OAuthParameters.Scope)?.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct().ToArray() ?? granted;
        if (requested.Any(s => !granted.Contains(s)))
        {
            // RFC 6749 §6: a refresh may narrow the scope, never widen it. The new refresh token keeps the original scope.
            return new OAuthError(OAuthErrors.InvalidScope, $"this refresh token was granted only: {consumed.Scope}");
        }
        var device = await directory.FindDeviceAsync(consumed.DeviceId, ct);
        if (device is null || !device.Active)
        {
            await clients.RevokeRefreshFamilyAsync(consumed.FamilyId, now, ct);
            return new OAuthError(OAuthErrors.InvalidGrant, "the passkey this sign-in used has been revoked");
        }
        var scope = string.Join(' ', requested);
        var signIn = new AuthorizationCodeRecord([], client.Id, consumed.UserId, consumed.DeviceId, "", scope, null, null,
            consumed.AuthTime ?? consumed.CreatedAt, consumed.Amr ?? AuthorizationCodes.PasskeyAmr, now, now);
        var tokens = await issuer.ForAuthorizationCodeAsync(signIn, Base64Url.Encode(RandomNumberGenerator.GetBytes(16)), client.IdTokenAlg, ct);
        return TypedResults.Ok(new TokenResponse(tokens.AccessToken, TokenTypes.Bearer, tokens.ExpiresIn, scope, tokens.IdToken, RefreshToken: next));
    }

    /// <summary>The refresh-token family a code starts: named after the code, so a replay of the code finds it (RFC 6749 §4.1.2).</summary>
    private static string FamilyOf(AuthorizationCodeRecord code) => "famc_" + Base64Url.Encode(code.CodeHash);

    /// <summary>Whether the code may be redeemed by this request; null when it may, else why not (nothing is spent then).</summary>
    private static string? Check(AuthorizationCodeRecord code, WebClientRecord client, string redirectUri, string? verifier)
    {
        // RFC 6749 §4.1.3: issued to this client, for this redirect URI.
        if (code.ClientId != client.Id)
        {
            return "the authorization code was issued to another client";
        }
        if (code.RedirectUri != redirectUri)
        {
            return "redirect_uri differs from the authorization request's";
        }
        if (code.CodeChallenge is null)
        {
            // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a PKCE downgrade attempt.
            return verifier is null ? null : "code_verifier was sent but the authorization request had no code_challenge";
        }
        if (verifier is null)
        {
            return "code_verifier is required (the authorization request used PKCE)";
        }
        if (!AuthorizationRequests.Verifier().IsMatch(verifier))
        {
            return "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)";
        }
        // RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge.
        var computed = Encoding.ASCII.GetBytes(Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
        return CryptographicOperations.FixedTimeEquals(computed, Encoding.ASCII.GetBytes(code.CodeChallenge)) ? null : "code_verifier does not match the code_challenge";
    }

    /// <summary>RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it, refresh tokens included.</summary>
    private async Task RevokeIssuedAsync(AuthorizationCodeRecord code, WebClientRecord presenter, long now, CancellationToken ct)
    {
        await clients.RevokeRefreshFamilyAsync(FamilyOf(code), now, ct);
        if (code.IssuedJti is { } jti)
        {
            await sessions.RevokeAccessTokenAsync(jti, code.IssuedExpiresAt ?? now, now,
                new AuditEvent(AuditTypes.AuthorizationCodeReplayed, code.UserId, presenter.Id, jti, new Dictionary<string, string> { ["client_id"] = code.ClientId }), ct);
        }
    }

    /// <summary>
    /// RFC 6749 §2.3.1 for web clients: client_secret_basic or client_secret_post, compared as SHA-256 hashes in fixed
    /// time, failures counted like agents' (docs/deployment.md §10); a public client sends client_id alone (§3.2.1).
    /// </summary>
    private async Task<(WebClientRecord? Client, OAuthError? Error)> AuthenticateAsync(HttpRequest request, IFormCollection form, CancellationToken ct)
    {
        var header = request.Headers.Authorization.ToString();
        var postedId = form.Value(OAuthParameters.ClientId);
        var postedSecret = form.Value(OAuthParameters.ClientSecret);
        string? id, secret;
        if (header.Length > 0)
        {
            if (postedSecret is not null)
            {
                return (null, new OAuthError(OAuthErrors.InvalidRequest, "use either HTTP Basic or client_secret in the body, not both"));
            }
            if (!ClientAuthenticator.TryParseBasic(header, out id, out secret))
            {
                return (null, OAuthError.InvalidClient("the Authorization header is not valid HTTP Basic client authentication"));
            }
            if (postedId is not null && postedId != id)
            {
                return (null, new OAuthError(OAuthErrors.InvalidRequest, "client_id in the body differs from the authenticated client"));
            }
        }
        else
        {
            (id, secret) = (postedId, postedSecret);
        }
        if (id is null)
        {
            return (null, OAuthError.InvalidClient("client_id is required"));
        }
        var client = id.Length <= 128 ? await clients.FindAsync(id, ct) : null;
        if (secret is null)
        {
            return client is { IsPublic: true, RevokedAt: null }
                ? (client, null)
                : (null, OAuthError.InvalidClient("unknown client, or a confidential client without its secret"));
        }
        AttemptKey[] keys =
        [
            new(_policy.Key("client", id.Length <= 128 ? id : Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(id)))), null),
            new(_policy.Key("address", ClientAddress.Of(request.HttpContext)), null),
        ];
        if (!limiter.RefusesNone && limiter.Refused(keys) is { } refused)
        {
            var wait = refused.Counts ? await limiter.FailedAsync(_policy, keys, ct) ?? refused.RetryAfter : refused.RetryAfter;
            return (null, OAuthError.InvalidClient("too many failed client authentications from this client or address; try again later", wait));
        }
        var matches = CryptographicOperations.FixedTimeEquals(Ids.Hash(secret), client?.SecretHash ?? DummyHash);
        if (client is null || client.IsPublic || !matches || client.RevokedAt is not null)
        {
            return (null, OAuthError.InvalidClient("unknown client or wrong secret", await limiter.FailedAsync(_policy, keys, ct)));
        }
        return (client, null);
    }
}
