using Assent.Protocol;
using Assent.Protocol.Did;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.WebUtilities;

namespace Assent.Server.Authorize;

/// <summary>
/// Authorization codes for a signed-in user (docs/http-api.md §17.3): issued by the authorization endpoint, and by the
/// passkey sign-in itself when the sign-in page posts the authorization request it continues (§17.2), which saves the
/// browser the round trip back through the authorization endpoint. Both take the same decisions here: who must sign in
/// again, who must consent first.
/// </summary>
internal sealed class AuthorizationCodes(IWebClientStore clients, AssentOptions options, TimeProvider time)
{
    /// <summary>RFC 6749 §4.1.2 recommends at most 10 minutes; a code is redeemed within a second, so one minute is plenty.</summary>
    public static readonly TimeSpan CodeLifetime = TimeSpan.FromSeconds(60);

    /// <summary>RFC 8176 for a passkey sign-in, user verification required: hardware key, user (biometric or PIN), multi-factor (docs/tokens.md §11).</summary>
    public const string PasskeyAmr = $"{AuthenticationMethods.HardwareKey} {AuthenticationMethods.User} {AuthenticationMethods.MultiFactor}";

    /// <summary>
    /// A bound before parsing: the requests the sign-in page carries are far shorter (state and nonce at most 512 characters
    /// each). A longer one gets no code here; the page goes on to the authorization endpoint, which answers it.
    /// </summary>
    private const int MaxContinuationLength = 8192;

    /// <summary>OpenID Connect Core §3.1.2.1: a sign-in is needed for prompt=login, when max_age has passed, or when login_hint names someone else.</summary>
    public bool NeedsSignIn(AuthorizationRequest request, WebSessionRecord session, UserRecord user, long now)
    {
        if (request.Prompt.Contains(Prompts.Login) || request.Prompt.Contains(Prompts.SelectAccount))
        {
            return true;
        }
        if (request.MaxAge is { } maxAge && now - session.CreatedAt > maxAge * 1000)
        {
            return true;
        }
        return request.LoginHint is { } hint && hint != user.Handle && hint != DidWeb.ForUser(options.IssuerUri, user.Id);
    }

    /// <summary>Asked once per user and client (OpenID Connect Core §3.1.2.4); again when the client asks for more, or says prompt=consent.</summary>
    public async Task<bool> NeedsConsentAsync(AuthorizationRequest request, UserRecord user, CancellationToken ct)
    {
        if (request.Prompt.Contains(Prompts.Consent))
        {
            return true;
        }
        var granted = (await clients.ConsentedScopesAsync(user.Id, request.Client.Id, ct))?.Split(' ') ?? [];
        return request.Scope.Split(' ').Any(s => !granted.Contains(s));
    }

    /// <summary>
    /// A new code for <paramref name="request"/>, stored as its hash and bound to the client, redirect URI, PKCE challenge,
    /// nonce and the sign-in; the response parameters to send the client: code, state, iss (RFC 9207 §2).
    /// </summary>
    public async Task<KeyValuePair<string, string?>[]> IssueAsync(AuthorizationRequest request, WebSessionRecord session, UserRecord user, CancellationToken ct)
    {
        // Its creation time first (docs/concepts.md §9): new codes go to the end of their table's key index.
        var issued = time.GetUtcNow();
        var code = Ids.OrderedHandle(issued);
        var now = issued.ToUnixTimeMilliseconds();
        var expires = now + (long)CodeLifetime.TotalMilliseconds;
        await clients.CreateCodeAsync(new AuthorizationCodeRecord(Ids.HandleKey(code), request.Client.Id, user.Id, session.DeviceId, request.RedirectUri, request.Scope,
                request.CodeChallenge, request.Nonce, session.CreatedAt, PasskeyAmr, now, expires),
            // Kept past its expiry while a token it issued may live, so a replay still revokes that token.
            expires + (long)options.AccessTokenLifetime.TotalMilliseconds, ct);
        return [
            new(AuthorizeParameters.Code, code),
            new(AuthorizeParameters.State, request.State),
            new(AuthorizeParameters.Issuer, options.IssuerString),
        ];
    }

    /// <summary>
    /// For a passkey sign-in that has just opened <paramref name="session"/> from the sign-in page (docs/http-api.md §12.3,
    /// §17.2): when <paramref name="continuation"/> is that page's authorization request (<c>/oauth/authorize?…</c>, as
    /// the page was given it) and it needs nothing more of the user, a code is issued now and the client's redirect URI
    /// with it is returned. Null in every other case (an invalid request, consent to ask, prompt=none, another user's
    /// login_hint, the form_post response mode): the page then goes on to the authorization endpoint, which answers it
    /// as for any request. Only a registered redirect URI of a valid request is ever returned, never the continuation itself.
    /// </summary>
    public async Task<string?> AfterSignInAsync(string? continuation, WebSessionRecord session, UserRecord user, CancellationToken ct)
    {
        const string prefix = AuthorizePaths.Authorize + "?";
        if (continuation is null || continuation.Length > MaxContinuationLength || !continuation.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }
        var (parameters, _) = AuthorizationRequests.FromPairs(QueryHelpers.ParseQuery(continuation[prefix.Length..]));
        if (parameters is null)
        {
            return null;
        }
        var (request, _) = await AuthorizationRequests.ValidateAsync(parameters, clients, ct);
        if (request is null || request.FormPost || request.Prompt.Contains(Prompts.None) ||
            NeedsSignIn(request, session, user, time.GetUtcNow().ToUnixTimeMilliseconds()) || await NeedsConsentAsync(request, user, ct))
        {
            return null;
        }
        return AuthorizationRequests.Respond(request.RedirectUri, await IssueAsync(request, session, user, ct));
    }
}
