namespace Assent.Server.Authorize;

/// <summary>Paths of the sign-in feature (docs/http-api.md §17).</summary>
internal static class AuthorizePaths
{
    /// <summary>OpenID Connect Core §3.1.2: the authorization endpoint.</summary>
    public const string Authorize = "/oauth/authorize";

    /// <summary>The consent form of the sign-in page posts here.</summary>
    public const string Consent = "/oauth/authorize/consent";

    /// <summary>OpenID Connect RP-Initiated Logout 1.0 §2.</summary>
    public const string EndSession = "/oauth/logout";
}

/// <summary>Request parameters of the authorization and end-session endpoints.</summary>
internal static class AuthorizeParameters
{
    public const string ResponseType = "response_type";
    public const string RedirectUri = "redirect_uri";
    public const string State = "state";
    public const string Nonce = "nonce";
    public const string Prompt = "prompt";
    public const string MaxAge = "max_age";
    public const string UiLocales = "ui_locales";
    public const string CodeChallenge = "code_challenge";
    public const string CodeChallengeMethod = "code_challenge_method";
    public const string CodeVerifier = "code_verifier";
    public const string Code = "code";
    public const string Issuer = "iss";
    public const string Error = "error";
    public const string ErrorDescription = "error_description";
    public const string PostLogoutRedirectUri = "post_logout_redirect_uri";
    public const string ResponseMode = "response_mode";

    /// <summary>Our own: the CSRF token of the consent form, and the user's answer.</summary>
    public const string Csrf = "csrf";
    public const string Decision = "decision";
}

/// <summary>OpenID Connect Core §3.1.2.6 error codes beside RFC 6749's.</summary>
internal static class AuthorizeErrors
{
    public const string LoginRequired = "login_required";
    public const string ConsentRequired = "consent_required";
    public const string UnsupportedResponseType = "unsupported_response_type";
    public const string RequestNotSupported = "request_not_supported";
}

/// <summary>OpenID Connect Core §3.1.2.1 <c>prompt</c> values.</summary>
internal static class Prompts
{
    public const string None = "none";
    public const string Login = "login";
    public const string Consent = "consent";
    public const string SelectAccount = "select_account";
}

/// <summary>Claim names only ID tokens of this flow carry.</summary>
internal static class IdTokenClaims
{
    public const string Nonce = "nonce";
    public const string AccessTokenHash = "at_hash";
    public const string Acr = "acr";

    /// <summary>
    /// OpenID Enterprise Authentication Profile ACR values: <c>phr</c>, phishing-resistant authentication. A passkey is
    /// bound to its origin; whether its key is hardware-bound (<c>phrh</c>) the server cannot tell of a synced passkey.
    /// </summary>
    public const string PhishingResistant = "phr";
}

/// <summary>OpenID Connect Core §5.4 scopes beside <c>openid</c> that a web client may ask for.</summary>
internal static class SignInScopes
{
    /// <summary>The user's handle, as <c>preferred_username</c> at <c>/userinfo</c>.</summary>
    public const string Profile = "profile";

    /// <summary>OpenID Connect Core §11: a refresh token beside the code's tokens, once the user consented to it.</summary>
    public const string OfflineAccess = "offline_access";
}

/// <summary>OAuth 2.0 Multiple Response Type Encoding Practices §2.1 and OAuth 2.0 Form Post Response Mode §2.</summary>
internal static class ResponseModes
{
    public const string Query = "query";
    public const string FormPost = "form_post";
}

/// <summary>RFC 7636 §4.3.</summary>
internal static class PkceMethods
{
    public const string S256 = "S256";
    public const string Plain = "plain";
}
