namespace Assent.Client.Verification;

/// <summary>The verification error codes (docs/tokens.md).</summary>
public static class TokenErrors
{
    /// <summary>Not a compact JWS of the expected shape: too large, bad base64url or JSON, wrong <c>typ</c>, a required claim missing.</summary>
    public const string MalformedToken = "malformed_token";

    /// <summary>Not signed with EdDSA by a current key of the issuer: other <c>alg</c>, unknown <c>kid</c>, or a bad signature.</summary>
    public const string InvalidSignature = "invalid_signature";

    /// <summary>Outside its validity window (<c>exp</c>, <c>nbf</c>, <c>iat</c>) even with the allowed clock skew.</summary>
    public const string ExpiredToken = "expired_token";

    /// <summary><c>iss</c> is not exactly the configured issuer.</summary>
    public const string InvalidIssuer = "invalid_issuer";

    /// <summary><c>aud</c> does not contain the required audience.</summary>
    public const string InvalidAudience = "invalid_audience";

    /// <summary><c>scope</c> lacks a required scope.</summary>
    public const string InsufficientScope = "insufficient_scope";

    /// <summary>This <c>jti</c> was already accepted once.</summary>
    public const string ReplayedToken = "replayed_token";

    /// <summary>The issuer's discovery document, JWKS or the approver's DID document could not be fetched.</summary>
    public const string JwksUnavailable = "jwks_unavailable";

    /// <summary>
    /// Not an approval (no <c>txn</c>, no <c>act</c> naming the agent, or a <c>sub</c> that is not an approver's DID),
    /// or the device evidence, binding message or authorization details do not match what was expected.
    /// </summary>
    public const string EvidenceMismatch = "evidence_mismatch";
}

/// <summary>A token was refused; <see cref="Code"/> is one of <see cref="TokenErrors"/>.</summary>
public sealed class TokenVerificationException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>One of the <see cref="TokenErrors"/> codes.</summary>
    public string Code => code;
}
