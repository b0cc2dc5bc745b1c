namespace Assent.Protocol.OAuth;

/// <summary>Error codes of RFC 6749 §5.2, CIBA Core §13 and §11, RFC 8628 §3.5 and RFC 9396 §5.</summary>
public static class OAuthErrors
{
    public const string InvalidRequest = "invalid_request";
    public const string InvalidClient = "invalid_client";
    public const string InvalidGrant = "invalid_grant";
    public const string UnauthorizedClient = "unauthorized_client";
    public const string UnsupportedGrantType = "unsupported_grant_type";
    public const string InvalidScope = "invalid_scope";
    public const string AccessDenied = "access_denied";
    public const string AuthorizationPending = "authorization_pending";
    public const string SlowDown = "slow_down";
    public const string ExpiredToken = "expired_token";
    public const string ExpiredLoginHintToken = "expired_login_hint_token";
    public const string UnknownUserId = "unknown_user_id";
    public const string InvalidBindingMessage = "invalid_binding_message";
    public const string InvalidAuthorizationDetails = "invalid_authorization_details";
    public const string InvalidToken = "invalid_token";
    public const string UnsupportedTokenType = "unsupported_token_type";
    public const string ServerError = "server_error";

    /// <summary>RFC 6749 §4.1.2.1: the server cannot handle the request now (Assent: its database is unavailable), with 503 and <c>Retry-After</c>.</summary>
    public const string TemporarilyUnavailable = "temporarily_unavailable";

    /// <summary>RFC 8707 §2: the resource is not one this server issues tokens for.</summary>
    public const string InvalidTarget = "invalid_target";

    /// <summary>
    /// Sent with HTTP 429 and <c>Retry-After</c> when a limit refuses a request. No OAuth specification defines a code
    /// for this (RFC 6749 §4.1.2.1 <c>temporarily_unavailable</c> stands in for a 503 that a redirect cannot carry),
    /// so the status says it and the code names it, as Auth0 does (docs/http-api.md §2.1).
    /// </summary>
    public const string TooManyRequests = "too_many_requests";
}

/// <summary>Grant type identifiers (RFC 6749 §4.4, §6; RFC 8628 §3.4; CIBA Core §10.1).</summary>
public static class GrantTypes
{
    public const string Ciba = "urn:openid:params:grant-type:ciba";
    public const string DeviceCode = "urn:ietf:params:oauth:grant-type:device_code";
    public const string RefreshToken = "refresh_token";
    public const string ClientCredentials = "client_credentials";
}

/// <summary>Request and response parameter names.</summary>
public static class OAuthParameters
{
    public const string ClientId = "client_id";
    public const string ClientSecret = "client_secret";
    public const string GrantType = "grant_type";
    public const string Scope = "scope";
    public const string LoginHint = "login_hint";
    public const string LoginHintToken = "login_hint_token";
    public const string IdTokenHint = "id_token_hint";
    public const string TokenTypeHint = "token_type_hint";
    public const string BindingMessage = "binding_message";
    public const string AuthorizationDetails = "authorization_details";
    public const string RequestedExpiry = "requested_expiry";
    public const string ClientNotificationToken = "client_notification_token";
    public const string AuthReqId = "auth_req_id";
    public const string Resource = "resource";
    public const string DeviceCode = "device_code";
    public const string RefreshToken = "refresh_token";
    public const string AccessToken = "access_token";
    public const string Token = "token";
}

/// <summary>RFC 6750 §4: the token type Assent issues.</summary>
public static class TokenTypes
{
    public const string Bearer = "Bearer";
}

/// <summary>Client authentication methods (RFC 8414 §2, RFC 6749 §2.3.1).</summary>
public static class ClientAuthMethods
{
    public const string ClientSecretBasic = "client_secret_basic";
    public const string ClientSecretPost = "client_secret_post";

    /// <summary>A public client, which has no secret (RFC 6749 §2.1).</summary>
    public const string None = "none";
}

/// <summary>RFC 9396 §2: the member every <c>authorization_details</c> entry carries.</summary>
public static class AuthorizationDetailFields
{
    public const string Type = "type";
}

/// <summary>Scope values with protocol meaning.</summary>
public static class Scopes
{
    public const string OpenId = "openid";
}

/// <summary>CIBA token delivery modes (CIBA Core §5).</summary>
public static class DeliveryModes
{
    public const string Poll = "poll";
    public const string Ping = "ping";
    public const string Push = "push";
}

/// <summary>JWT claim names used in Assent tokens (RFC 7519, RFC 9068, RFC 8693, RFC 8176, RFC 9396).</summary>
public static class ClaimNames
{
    public const string Issuer = "iss";
    public const string Subject = "sub";
    public const string Audience = "aud";
    public const string ClientId = "client_id";
    public const string Actor = "act";
    public const string Scope = "scope";
    public const string JwtId = "jti";
    public const string IssuedAt = "iat";
    public const string NotBefore = "nbf";
    public const string Expiration = "exp";
    public const string AuthTime = "auth_time";
    public const string AuthenticationMethods = "amr";
    public const string BindingMessage = "binding_message";
    public const string AuthorizationDetails = "authorization_details";
    public const string Transaction = "txn";
    public const string Evidence = "evidence";

    /// <summary>Every approver of a quorum request, as DIDs (docs/tokens.md §3).</summary>
    public const string Approvers = "approvers";

    /// <summary>The policy that decided what the request needed, <c>name@version</c> (docs/tokens.md §3, docs/policies.md).</summary>
    public const string Policy = "policy";

    /// <summary>docs/tokens.md §3: <c>{id, remaining}</c> of the spending mandate that approved a payment with no human at that moment.</summary>
    public const string Mandate = "mandate";
    public const string AuthReqId = "urn:openid:params:jwt:claim:auth_req_id";

    /// <summary>OIDC Core §3.1.3.6 / CIBA Core §10.3.1: a pushed ID token binds the access token it came with.</summary>
    public const string AccessTokenHash = "at_hash";
}

/// <summary>Authentication method references (RFC 8176 §2).</summary>
public static class AuthenticationMethods
{
    public const string HardwareKey = "hwk";
    public const string SoftwareKey = "swk";
    public const string User = "user";
    public const string MultiFactor = "mfa";

    /// <summary>Approved by a spending mandate the user signed earlier (docs/policies.md §6), not by a device at that moment.</summary>
    public const string Mandate = "mandate";
}

/// <summary>Header names Assent reads or writes.</summary>
public static class HeaderNames
{
    /// <summary>RFC 7240 §4.3 <c>Prefer: wait=N</c>.</summary>
    public const string Prefer = "Prefer";
    public const string PreferenceApplied = "Preference-Applied";
}
