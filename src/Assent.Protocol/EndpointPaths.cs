namespace Assent.Protocol;

/// <summary>Where each part of the HTTP surface lives, relative to the issuer (docs/http-api.md).</summary>
public static class EndpointPaths
{
    /// <summary>OpenID Connect Discovery 1.0 §4.</summary>
    public const string Discovery = "/.well-known/openid-configuration";
    public const string Jwks = "/oauth/jwks";
    public const string Token = "/oauth/token";

    /// <summary>CIBA Core §7: the backchannel authentication endpoint.</summary>
    public const string BackchannelAuthentication = "/oauth/bc-authorize";

    /// <summary>RFC 8628 §3.1.</summary>
    public const string DeviceAuthorization = "/oauth/device/code";

    /// <summary>RFC 8628 §3.3: where a human types the user code (the web app's page).</summary>
    public const string Verification = "/device";

    /// <summary>RFC 7009.</summary>
    public const string Revocation = "/oauth/revoke";
    public const string UserInfo = "/userinfo";

    /// <summary>The device API: requests signed with the device key.</summary>
    public const string Authenticator = "/authenticator";

    /// <summary>The web app's API: passkey ceremonies, then a session cookie.</summary>
    public const string WebAuthn = "/webauthn";

    public const string Agents = "/agents";
    public const string AgentRequests = "/agents/requests";
    public const string Audit = "/audit";
    public const string AuditCheckpoint = "/audit/checkpoint";
    public const string App = "/app";
    public const string Enroll = "/app/enroll";
}
