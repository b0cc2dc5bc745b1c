using Assent.Protocol.Jose;

namespace Assent.Client.Verification;

/// <summary>Settings of a <see cref="TokenVerifier"/>, fixed for its lifetime.</summary>
public sealed class TokenVerifierOptions
{
    /// <summary>An HttpClient for discovery, JWKS and DID documents; when null the verifier owns one.</summary>
    public HttpClient? HttpClient { get; set; }

    /// <summary>The clock for <c>exp</c>/<c>nbf</c>/<c>iat</c>, caches and rate limits.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The <c>jti</c> store; when null each verifier keeps its own <see cref="MemoryReplayCache"/>.</summary>
    public IReplayCache? ReplayCache { get; set; }

    /// <summary>Allowed clock difference for time claims; at most 60 s (docs/tokens.md).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>An unknown <c>kid</c> refetches the JWKS at most this often.</summary>
    public TimeSpan JwksRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a fetched DID document is trusted; short, so a revoked device stops verifying quickly.</summary>
    public TimeSpan DidDocumentCacheDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The largest token accepted, in characters; at most 16 KB (RFC 8725 §3.5, docs/tokens.md).</summary>
    public int MaxTokenLength { get; set; } = Jws.DefaultMaxLength;

    /// <summary>The JWKS URL, when it should not be read from the issuer's discovery document.</summary>
    public Uri? JwksUri { get; set; }
}

/// <summary>What one token must satisfy. At least one of <see cref="Audience"/> or <see cref="Scope"/> is required.</summary>
public sealed class VerifyOptions
{
    /// <summary>The audience the token must name in <c>aud</c> (the resource, or the agent's client_id).</summary>
    public string? Audience { get; set; }

    /// <summary>Space-separated scopes the token's <c>scope</c> must all contain.</summary>
    public string? Scope { get; set; }

    /// <summary>When set, the token's <c>binding_message</c> must equal it exactly.</summary>
    public string? ExpectedBindingMessage { get; set; }

    /// <summary>
    /// When set, the token's <c>authorization_details</c> must be JSON-equal to it (member order and
    /// number spelling aside). Same forms as <see cref="ApproveOptions.Details"/>.
    /// </summary>
    public object? ExpectedAuthorizationDetails { get; set; }

    /// <summary>
    /// Check the device evidence (on by default): resolve the approver's DID document (cached for
    /// <see cref="TokenVerifierOptions.DidDocumentCacheDuration"/>), verify the device's signature over
    /// the approval payload, and that the payload matches the token's claims. A device revoked since
    /// the approval no longer verifies. Set to false only where the DID document cannot be reached and
    /// the issuer's signature alone is trusted; the token must still be an approval either way.
    /// </summary>
    public bool CheckEvidence { get; set; } = true;

    /// <summary>
    /// Accept a payment a spending mandate approved (on by default; docs/policies.md §6): <c>amr</c> <c>["mandate"]</c>, the
    /// evidence the device's earlier signature over the mandate, checked with the payment against the signed limits. Set to
    /// false where a human must have approved this very action; such tokens then fail with <c>evidence_mismatch</c>.
    /// </summary>
    public bool AllowMandates { get; set; } = true;

    /// <summary>
    /// When set, the token must prove this many distinct approvers (a quorum, docs/policies.md §3): each entry of its
    /// <c>evidence</c> is checked against its approver's DID document, and the distinct users whose devices signed are
    /// counted. Needs <see cref="CheckEvidence"/>. Fewer fail with <c>evidence_mismatch</c>.
    /// </summary>
    public int? RequiredApprovers { get; set; }

    /// <summary>Refuse a <c>jti</c> seen before (on by default; docs/tokens.md).</summary>
    public bool CheckReplay { get; set; } = true;
}
