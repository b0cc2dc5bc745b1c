using System.ComponentModel.DataAnnotations;

namespace Assent.Server.Common;

/// <summary>Server settings, bound from the "Assent" configuration section and validated at start.</summary>
public sealed class AssentOptions
{
    public const string Section = "Assent";

    /// <summary>The public base URL; tokens carry it as <c>iss</c> and DIDs are derived from it.</summary>
    [Required]
    public string Issuer { get; set; } = "http://localhost:8400";

    /// <summary>Where the SQLite file and the key-encryption key file live.</summary>
    [Required]
    public string DataDirectory { get; set; } = "assent-data";

    /// <summary>
    /// The key-encryption key's file, best kept outside <see cref="DataDirectory"/> (docs/deployment.md §3); empty means
    /// <c>master.key</c> in the data directory. <c>ASSENT_MASTER_KEY</c>, the key itself, wins over both.
    /// </summary>
    public string? MasterKeyFile { get; set; }

    /// <summary>A database connection; empty means SQLite in <see cref="DataDirectory"/>.</summary>
    public string? Database { get; set; }

    /// <summary>fsync on every commit (survives power loss, not only process crashes).</summary>
    public bool SynchronousFull { get; set; }

    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a CLI session's refresh token lives; each use (rotation) starts the period again.</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>RFC 8628 §3.2 <c>expires_in</c> of a device code.</summary>
    public TimeSpan DeviceCodeLifetime { get; set; } = TimeSpan.FromSeconds(600);

    public TimeSpan DefaultRequestExpiry { get; set; } = TimeSpan.FromSeconds(300);

    public TimeSpan MaxRequestExpiry { get; set; } = TimeSpan.FromSeconds(3600);

    /// <summary>CIBA polling interval returned by bc-authorize (docs/http-api.md §5: at most 2 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Upper bound for <c>Prefer: wait=N</c> (docs/http-api.md §6.5).</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan InviteLifetime { get; set; } = TimeSpan.FromHours(72);

    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a server starting while its database is unreachable (or its disk full) keeps trying, with a backoff
    /// growing from a quarter second to ten, before it gives up; zero tries once (docs/deployment.md §13).
    /// </summary>
    public TimeSpan StartupRetryFor { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// RFC 9396 types agents may send in <c>authorization_details</c>; others get invalid_authorization_details. The types
    /// of requests the server raises itself (agent_registration, agent_consent) are refused even when listed here.
    /// </summary>
    public string[] AuthorizationDetailsTypes { get; set; } = ["payment", "action", "resource_access", "tool_call", "mcp_tool", "mandate", "vault_release"];

    /// <summary>
    /// RFC 9396 <c>authorization_details</c> is refused above this many bytes of normalized UTF-8 JSON: it is
    /// shown to the approver and carried twice in the access token (docs/tokens.md).
    /// </summary>
    public int MaxAuthorizationDetailsBytes { get; set; } = 2048;

    /// <summary>At most this many <c>authorization_details</c> entries in one request.</summary>
    public int MaxAuthorizationDetailsEntries { get; set; } = 8;

    /// <summary>How deep <c>authorization_details</c> may nest; the outer array is level 1, its entries level 2.</summary>
    public int MaxAuthorizationDetailsDepth { get; set; } = 4;

    /// <summary>
    /// A passkey's decision is refused when its authenticator data, client data JSON and signature together
    /// are longer than this, in bytes: they become the token's evidence. Enough for an ES256 or RS256-2048 passkey.
    /// </summary>
    public int MaxWebAuthnEvidenceBytes { get; set; } = 640;

    /// <summary>
    /// Each response carries <c>Server-Timing: app;dur=…</c> (W3C Server Timing): the milliseconds from when the request
    /// reached the application to when its response started. Off by default, as it tells any caller how long the server
    /// took; the benchmarks turn it on to report the server's own time beside the time their driver saw (docs/deployment.md §12).
    /// </summary>
    public bool ServerTiming { get; set; }

    /// <summary>Cap on request bodies; larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>WebAuthn relying-party ID; empty means the issuer's host (WebAuthn L3 §5.1.2).</summary>
    public string? WebAuthnRpId { get; set; }

    /// <summary>Origins whose WebAuthn ceremonies are accepted; empty means the issuer's origin only.</summary>
    public string[]? WebAuthnOrigins { get; set; }

    /// <summary>
    /// Which passkey attestations registration accepts (docs/deployment.md, "Passkey attestation"):
    /// <c>none</c>, any, trusting none of them; <c>trusted</c>, only those whose certificate chain
    /// reaches <see cref="WebAuthnTrustedRoots"/> or a root the <see cref="WebAuthnMetadataBlob"/> lists.
    /// </summary>
    public string WebAuthnAttestation { get; set; } = WebAuthnAttestationModes.None;

    /// <summary>Attestation root certificate files (PEM, possibly several certificates, or DER) trusted with <c>trusted</c>.</summary>
    public string[]? WebAuthnTrustedRoots { get; set; }

    /// <summary>A FIDO Metadata Service BLOB file (a JWS), read and verified offline at start, with <c>trusted</c>.</summary>
    public string? WebAuthnMetadataBlob { get; set; }

    /// <summary>The certificate file (PEM or DER) of the root that signs <see cref="WebAuthnMetadataBlob"/>.</summary>
    public string? WebAuthnMetadataBlobRoot { get; set; }

    /// <summary>How long a passkey registration or sign-in challenge stays usable.</summary>
    public TimeSpan WebAuthnChallengeLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Absolute lifetime of a web app session (the approver signed in with a passkey).</summary>
    public TimeSpan WebSessionLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>What one caller may do before it is refused (docs/deployment.md §10).</summary>
    public LimitOptions Limits { get; set; } = new();

    /// <summary>Webhook and CIBA ping/push deliveries (docs/webhooks.md §4).</summary>
    public WebhookOptions Webhooks { get; set; } = new();

    /// <summary>Web Push to approvers' browsers (docs/deployment.md, "Web Push").</summary>
    public PushOptions Push { get; set; } = new();

    internal Uri IssuerUri => new(Issuer.TrimEnd('/'));

    internal string RpId => string.IsNullOrWhiteSpace(WebAuthnRpId) ? IssuerUri.Host : WebAuthnRpId.Trim();

    internal IReadOnlyList<string> Origins => WebAuthnOrigins is { Length: > 0 } origins
        ? origins.Select(o => o.TrimEnd('/')).ToArray()
        : [IssuerUri.GetLeftPart(UriPartial.Authority)];

    /// <summary>The web session cookie: the __Host- prefix (RFC 6265bis §4.1.3.2) needs Secure, so only over https.</summary>
    internal string SessionCookieName => IssuerUri.Scheme == Uri.UriSchemeHttps ? "__Host-assent_session" : "assent_session";

    internal string IssuerString => Issuer.TrimEnd('/');

    /// <summary>Checks the settings at start: their data annotations, then what annotations cannot say. Returns the first problem or null.</summary>
    internal string? Validate()
    {
        // The data annotations first ([Required] and the like), then what they cannot say.
        var annotated = new List<ValidationResult>();
        if (!Validator.TryValidateObject(this, new ValidationContext(this), annotated, validateAllProperties: true))
        {
            return $"{Section}:{annotated[0].MemberNames.FirstOrDefault()} is invalid: {annotated[0].ErrorMessage}";
        }
        if (!Uri.TryCreate(Issuer, UriKind.Absolute, out var issuer) || issuer.Query.Length > 0 || issuer.Fragment.Length > 0)
        {
            return "Assent:Issuer must be an absolute URL without query or fragment";
        }
        if (issuer.Scheme != Uri.UriSchemeHttps && !(issuer.Scheme == Uri.UriSchemeHttp && issuer.IsLoopback))
        {
            return "Assent:Issuer must use https (plain http is allowed only for localhost)";
        }
        foreach (var origin in Origins)
        {
            // WebAuthn L3 §5.1.3: the RP ID must equal the origin's host or be a registrable suffix of it.
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var o) || o.AbsolutePath != "/" || o.Query.Length > 0)
            {
                return $"Assent:WebAuthnOrigins: '{origin}' is not an origin (scheme://host[:port])";
            }
            if (o.Scheme != Uri.UriSchemeHttps && !(o.Scheme == Uri.UriSchemeHttp && o.IsLoopback))
            {
                return $"Assent:WebAuthnOrigins: '{origin}' must use https (plain http is allowed only for localhost)";
            }
            if (!o.Host.Equals(RpId, StringComparison.OrdinalIgnoreCase) && !o.Host.EndsWith("." + RpId, StringComparison.OrdinalIgnoreCase))
            {
                return $"Assent:WebAuthnRpId '{RpId}' must be the host of every WebAuthn origin or a parent domain of it ('{origin}')";
            }
        }
        if (StartupRetryFor < TimeSpan.Zero || StartupRetryFor > TimeSpan.FromDays(1))
        {
            return "Assent:StartupRetryFor must be between 0 and 1 day";
        }
        if (WebAuthnChallengeLifetime <= TimeSpan.Zero || WebAuthnChallengeLifetime > TimeSpan.FromMinutes(30))
        {
            return "Assent:WebAuthnChallengeLifetime must be between 0 and 30 minutes";
        }
        if (ValidateAttestation() is { } attestation)
        {
            return attestation;
        }
        if (WebSessionLifetime <= TimeSpan.Zero || WebSessionLifetime > TimeSpan.FromDays(1))
        {
            return "Assent:WebSessionLifetime must be between 0 and 1 day";
        }
        if (PollInterval <= TimeSpan.Zero || PollInterval > TimeSpan.FromSeconds(2))
        {
            return "Assent:PollInterval must be between 0 and 2 seconds";
        }
        if (DefaultRequestExpiry <= TimeSpan.Zero || DefaultRequestExpiry > MaxRequestExpiry)
        {
            return "Assent:DefaultRequestExpiry must be positive and at most MaxRequestExpiry";
        }
        if (MaxWait <= TimeSpan.Zero || MaxWait > TimeSpan.FromSeconds(60))
        {
            return "Assent:MaxWait must be between 0 and 60 seconds";
        }
        if (AccessTokenLifetime <= TimeSpan.Zero || AccessTokenLifetime > TimeSpan.FromHours(1))
        {
            return "Assent:AccessTokenLifetime must be between 0 and 1 hour";
        }
        if (RefreshTokenLifetime <= TimeSpan.Zero || DeviceCodeLifetime <= TimeSpan.Zero || DeviceCodeLifetime > MaxRequestExpiry)
        {
            return "Assent:RefreshTokenLifetime must be positive and Assent:DeviceCodeLifetime between 0 and MaxRequestExpiry";
        }
        if (MaxAuthorizationDetailsEntries < 1 || MaxAuthorizationDetailsDepth is < 2 or > 16 || MaxAuthorizationDetailsBytes < 64)
        {
            return "Assent:MaxAuthorizationDetailsEntries must be at least 1, MaxAuthorizationDetailsDepth from 2 to 16, MaxAuthorizationDetailsBytes at least 64";
        }
        if (MaxWebAuthnEvidenceBytes < 256)
        {
            return "Assent:MaxWebAuthnEvidenceBytes must be at least 256, or no passkey could approve";
        }
        return Limits.Validate() ?? Webhooks.Validate() ?? Push.Validate();
    }

    /// <summary>The attestation settings; the MDS BLOB's signature is checked when the server builds its passkey ceremonies.</summary>
    private string? ValidateAttestation()
    {
        var roots = WebAuthnTrustedRoots ?? [];
        var blob = !string.IsNullOrWhiteSpace(WebAuthnMetadataBlob);
        switch (WebAuthnAttestation)
        {
            case WebAuthnAttestationModes.None:
                return roots.Length > 0 || blob || !string.IsNullOrWhiteSpace(WebAuthnMetadataBlobRoot)
                    ? "Assent:WebAuthnTrustedRoots and Assent:WebAuthnMetadataBlob are read only with Assent:WebAuthnAttestation=trusted"
                    : null;
            case WebAuthnAttestationModes.Trusted:
                if (roots.Length == 0 && !blob)
                {
                    return "Assent:WebAuthnAttestation=trusted needs Assent:WebAuthnTrustedRoots or Assent:WebAuthnMetadataBlob";
                }
                foreach (var root in roots)
                {
                    if (!CertificateFiles.TryRead(root, out _, out var error))
                    {
                        return $"Assent:WebAuthnTrustedRoots: {error}";
                    }
                }
                if (blob && !File.Exists(WebAuthnMetadataBlob))
                {
                    return $"Assent:WebAuthnMetadataBlob: '{WebAuthnMetadataBlob}' does not exist";
                }
                if (blob && !CertificateFiles.TryRead(WebAuthnMetadataBlobRoot ?? "", out _, out var rootError))
                {
                    return $"Assent:WebAuthnMetadataBlobRoot (the root that signs the MDS BLOB): {rootError}";
                }
                return null;
            default:
                return $"Assent:WebAuthnAttestation must be '{WebAuthnAttestationModes.None}' or '{WebAuthnAttestationModes.Trusted}'";
        }
    }
}

/// <summary>
/// Limits on what one caller may do (docs/deployment.md §10, answers in docs/http-api.md §2). Those that must hold
/// across nodes count in the database; the others are per process.
/// </summary>
public sealed class LimitOptions
{
    /// <summary>Pending requests one agent may have waiting for one user; more get 429 (counted in the database).</summary>
    public int MaxPendingPerAgentPerUser { get; set; } = 20;

    /// <summary>The fixed window in which failed client authentications are counted, per client_id and per address.</summary>
    public TimeSpan ClientAuthWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>After this many failures in a window, each further attempt waits 1 s, 2 s, 4 s, … (at most <see cref="ClientAuthLockout"/>).</summary>
    public int ClientAuthBackoffAfter { get; set; } = 10;

    /// <summary>After this many failures in a window, the client_id or address is locked out for <see cref="ClientAuthLockout"/>.</summary>
    public int ClientAuthLockoutAfter { get; set; } = 50;

    public TimeSpan ClientAuthLockout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>RFC 8628 §5.1: wrong user codes allowed per window, per address and per signed-in user.</summary>
    public int UserCodeGuesses { get; set; } = 10;

    public TimeSpan UserCodeWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Wrong enrolment (invite) codes allowed per window and address.</summary>
    public int EnrolmentCodeGuesses { get; set; } = 10;

    public TimeSpan EnrolmentCodeWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Unauthenticated requests that store a row (device codes, passkey ceremony options) per address and minute,
    /// for each such endpoint. Counted per process.
    /// </summary>
    public int CreationsPerMinute { get; set; } = 30;

    /// <summary>Event streams one device may hold open on one node; a new one closes the oldest.</summary>
    public int StreamsPerDevice { get; set; } = 4;

    /// <summary>
    /// Proxies (addresses, or networks as <c>10.0.0.0/8</c>) whose <c>X-Forwarded-For</c> names the caller. Empty:
    /// the header is ignored and the caller is the connection's address.
    /// </summary>
    public string[]? TrustedProxies { get; set; }

    internal string? Validate()
    {
        if (MaxPendingPerAgentPerUser < 1)
        {
            return "Assent:Limits:MaxPendingPerAgentPerUser must be at least 1";
        }
        if (ClientAuthBackoffAfter < 1 || ClientAuthLockoutAfter <= ClientAuthBackoffAfter)
        {
            return "Assent:Limits:ClientAuthBackoffAfter must be at least 1 and ClientAuthLockoutAfter greater than it";
        }
        if (!InRange(ClientAuthWindow) || !InRange(ClientAuthLockout) || !InRange(UserCodeWindow) || !InRange(EnrolmentCodeWindow))
        {
            return "Assent:Limits:ClientAuthWindow, ClientAuthLockout, UserCodeWindow and EnrolmentCodeWindow must be between 1 second and 1 day";
        }
        if (UserCodeGuesses < 1 || EnrolmentCodeGuesses < 1 || CreationsPerMinute < 1 || StreamsPerDevice < 1)
        {
            return "Assent:Limits:UserCodeGuesses, EnrolmentCodeGuesses, CreationsPerMinute and StreamsPerDevice must be at least 1";
        }
        foreach (var proxy in TrustedProxies ?? [])
        {
            if (!System.Net.IPAddress.TryParse(proxy, out _) && !System.Net.IPNetwork.TryParse(proxy, out _))
            {
                return $"Assent:Limits:TrustedProxies: '{proxy}' is neither an IP address nor a network like 10.0.0.0/8";
            }
        }
        return null;
    }

    private static bool InRange(TimeSpan span) => span >= TimeSpan.FromSeconds(1) && span <= TimeSpan.FromDays(1);
}

/// <summary>Web Push to approvers' browsers (RFC 8030, RFC 8291, RFC 8292; docs/deployment.md, "Web Push").</summary>
public sealed class PushOptions
{
    /// <summary>
    /// Accept push endpoints on loopback addresses, over plain http too, and let the sender connect to them. Off: an
    /// endpoint must be https and every address its host resolves to public. Only for tests and a local push-service
    /// stand-in; a real push service is never on loopback.
    /// </summary>
    public bool AllowLoopback { get; set; }

    /// <summary>Push subscriptions one user may hold (one per browser profile that turned notifications on); more get 409.</summary>
    public int MaxSubscriptionsPerUser { get; set; } = 10;

    /// <summary>New requests waiting to be pushed on this node; a request arriving when the queue is full is not pushed (logged).</summary>
    public int QueueCapacity { get; set; } = 1024;

    /// <summary>Pushes in flight at once on this node.</summary>
    public int Senders { get; set; } = 4;

    /// <summary>How long one push request to a push service may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    internal string? Validate()
    {
        if (MaxSubscriptionsPerUser is < 1 or > 1000 || QueueCapacity is < 1 or > 1_000_000 || Senders is < 1 or > 64)
        {
            return "Assent:Push:MaxSubscriptionsPerUser must be 1 to 1000, QueueCapacity 1 to 1000000, Senders 1 to 64";
        }
        return Timeout <= TimeSpan.Zero || Timeout > TimeSpan.FromMinutes(1) ? "Assent:Push:Timeout must be between 0 and 1 minute" : null;
    }
}

/// <summary>The values of <see cref="AssentOptions.WebAuthnAttestation"/>.</summary>
public static class WebAuthnAttestationModes
{
    /// <summary>Any attestation Fido2 verifies, none of them trusted (WebAuthn L3 §5.4.7 conveyance <c>none</c>).</summary>
    public const string None = "none";

    /// <summary>Only attestations whose certificate chain reaches a trusted root (conveyance <c>direct</c>).</summary>
    public const string Trusted = "trusted";
}

/// <summary>How webhooks and CIBA notifications are delivered (docs/webhooks.md §4, docs/deployment.md §10).</summary>
public sealed class WebhookOptions
{
    /// <summary>
    /// Whether targets may be loopback, private, link-local or otherwise non-public addresses. Off: a URL that names
    /// or resolves to one is refused when registered and again at every delivery (DNS may change), against SSRF.
    /// </summary>
    public bool AllowPrivateTargets { get; set; }

    /// <summary>One attempt's whole time: connect, send, and the receiver's answer.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts in flight at once on one node.</summary>
    public int MaxInFlight { get; set; } = 64;

    /// <summary>
    /// Deliveries per second one node claims from the outbox's backlog (retries, a receiver back after an outage, another
    /// node's leftovers). Those its own commits hand over are sent at once and never wait for this: pacing the backlog keeps
    /// CPU and database writes for new requests while a backlog drains (docs/webhooks.md §4).
    /// </summary>
    public int BacklogPerSecond { get; set; } = 2500;

    /// <summary>An endpoint whose every delivery failed for this long is disabled and its owner told.</summary>
    public TimeSpan DisableAfter { get; set; } = TimeSpan.FromDays(5);

    /// <summary>Endpoints one user may register.</summary>
    public int MaxEndpointsPerUser { get; set; } = 20;

    internal string? Validate()
    {
        if (Timeout < TimeSpan.FromMilliseconds(100) || Timeout > TimeSpan.FromMinutes(1))
        {
            return "Assent:Webhooks:Timeout must be between 100 ms and 1 minute";
        }
        if (MaxInFlight < 1 || MaxEndpointsPerUser < 1 || BacklogPerSecond < 1)
        {
            return "Assent:Webhooks:MaxInFlight, MaxEndpointsPerUser and BacklogPerSecond must be at least 1";
        }
        return DisableAfter < TimeSpan.FromMinutes(1) ? "Assent:Webhooks:DisableAfter must be at least a minute" : null;
    }
}
