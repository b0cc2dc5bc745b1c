using System.Text.Json;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Protocol.OAuth;

namespace Assent.Client.Verification;

/// <summary>
/// Verifies Assent approval tokens as docs/tokens.md and RFC 8725 require: size cap, EdDSA only, <c>typ</c>
/// <c>at+jwt</c> (RFC 9068 §4), key by <c>kid</c> from the issuer's JWKS, exact <c>iss</c>, time claims
/// with at most 60 s skew, a human decision behind the token (<c>txn</c>, <c>act</c> naming the agent,
/// a did:web <c>sub</c>), required audience and/or scope, the device evidence against the approver's DID
/// document (unless <see cref="VerifyOptions.CheckEvidence"/> is turned off), optionally the expected
/// action, and a <c>jti</c> replay guard. One instance per issuer; thread-safe; reuse it.
/// </summary>
/// <remarks>
/// Only approvals pass: a client_credentials token (<c>client+jwt</c>) or a human's CLI session token
/// (no <c>act</c>) is refused, whatever scope it carries.
/// </remarks>
/// <example>
/// <code>
/// var verifier = new TokenVerifier("https://assent.example.com");
/// var token = await verifier.VerifyAsync(accessToken, new() { Scope = "approve:action" }, ct);
/// </code>
/// </example>
public sealed class TokenVerifier : IDisposable
{
    private static readonly TimeSpan MaxSkew = TimeSpan.FromSeconds(60);

    // The NumericDates a token may carry: DateTimeOffset's range, less the largest skew added to exp.
    private static readonly long MinTime = DateTimeOffset.MinValue.ToUnixTimeSeconds();
    private static readonly long MaxTime = DateTimeOffset.MaxValue.ToUnixTimeSeconds() - (long)MaxSkew.TotalSeconds;

    private readonly string _issuer;
    private readonly TimeProvider _time;
    private readonly long _skewSeconds;
    private readonly int _maxLength;
    private readonly IReplayCache _replay;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly IssuerKeys _keys;
    private readonly DidDocuments _dids;

    /// <summary>Creates a verifier for tokens of <paramref name="issuer"/> (its base URL, exactly as tokens carry it in <c>iss</c>).</summary>
    /// <exception cref="ArgumentException">The issuer is not an absolute http(s) URL, or an option is out of range.</exception>
    public TokenVerifier(string issuer, TokenVerifierOptions? options = null)
    {
        options ??= new TokenVerifierOptions();
        if (!Uri.TryCreate(issuer, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException($"the issuer must be an absolute http(s) URL (got '{issuer}')", nameof(issuer));
        }
        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > MaxSkew)
        {
            throw new ArgumentException("ClockSkew must be between 0 and 60 seconds", nameof(options));
        }
        if (options.MaxTokenLength is < 1 or > Jws.DefaultMaxLength)
        {
            throw new ArgumentException($"MaxTokenLength must be between 1 and {Jws.DefaultMaxLength}", nameof(options));
        }
        // Assent issuers have no trailing slash; one typed by a person is not part of the identifier.
        _issuer = issuer.TrimEnd('/');
        _time = options.TimeProvider;
        _skewSeconds = (long)options.ClockSkew.TotalSeconds;
        _maxLength = options.MaxTokenLength;
        _replay = options.ReplayCache ?? new MemoryReplayCache(time: _time);
        _ownsHttp = options.HttpClient is null;
        _http = options.HttpClient ?? new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        _keys = new IssuerKeys(_issuer, options.JwksUri, _http, _time, options.JwksRefreshInterval);
        _dids = new DidDocuments(_http, _time, options.DidDocumentCacheDuration);
    }

    /// <summary>The issuer this verifier accepts.</summary>
    public string Issuer => _issuer;

    internal int JwksFetches => _keys.Fetches;

    internal int DidDocumentFetches => _dids.Fetches;

    /// <summary>
    /// Fetches ahead what verifying a token is about to need, for a caller that knows a token is coming (it has just
    /// asked for an approval and waits for the human): the issuer's keys when none are held yet, and the approver's
    /// DID document unless a copy younger than half of <see cref="TokenVerifierOptions.DidDocumentCacheDuration"/> is
    /// held. <see cref="VerifyAsync"/> then finds them cached, or joins the fetch still under way, instead of fetching
    /// after the token arrives. Nothing is trusted any longer than before: a document is still used only while younger
    /// than the cache duration, and an unknown <c>kid</c> still refetches the keys at most once per
    /// <see cref="TokenVerifierOptions.JwksRefreshInterval"/>. Failures are not reported here: the verification that
    /// needs what could not be fetched fetches it again and says why it failed.
    /// </summary>
    /// <param name="approverDid">The did:web DID of the user asked to approve, when known; anything else prepares the keys only.</param>
    /// <param name="ct">Stops waiting (the fetches go on, bounded, for the verification to use).</param>
    public async Task PrepareAsync(string? approverDid, CancellationToken ct)
    {
        var keys = _keys.Prepare();
        var document = approverDid is not null ? _dids.Prepare(approverDid) : Task.CompletedTask;
        try
        {
            await Task.WhenAll(keys, document).WaitAsync(ct);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && e is TokenVerificationException or OperationCanceledException)
        {
            // Reported by the verification that needs it.
        }
    }

    /// <summary>Verifies <paramref name="token"/>; returns its claims or throws <see cref="TokenVerificationException"/>.</summary>
    /// <exception cref="ArgumentException">Neither <see cref="VerifyOptions.Audience"/> nor <see cref="VerifyOptions.Scope"/> is set.</exception>
    /// <exception cref="TokenVerificationException">The token is refused; <see cref="TokenVerificationException.Code"/> says why.</exception>
    public async Task<VerifiedToken> VerifyAsync(string token, VerifyOptions options, CancellationToken ct)
    {
        if (options.Audience is null && options.Scope is null)
        {
            // docs/tokens.md: a token valid for "anything" is a confused deputy waiting to happen.
            throw new ArgumentException("ask for an Audience or a Scope (or both): a token is only valid for something", nameof(options));
        }
        if (options.RequiredApprovers is { } m && (m < 1 || !options.CheckEvidence))
        {
            throw new ArgumentException("RequiredApprovers must be at least 1, and needs CheckEvidence: approvers are counted from their devices' evidence",
                nameof(options));
        }
        // RFC 8725 §3.5: cap the size before any parsing.
        if (token.Length > _maxLength)
        {
            throw Fail(TokenErrors.MalformedToken, $"the token is larger than {_maxLength} characters");
        }
        if (!Jws.TryParse(token, _maxLength, out var parts, out var parseError))
        {
            throw ParseFailure(token, parseError!);
        }
        var header = parts!.Header;
        // RFC 8725 §3.1: the algorithm is pinned, never taken from the token.
        if (header.Alg != Jws.EdDsa)
        {
            throw Fail(TokenErrors.InvalidSignature, $"alg '{header.Alg}' is not accepted; only EdDSA");
        }
        // RFC 9068 §4 / RFC 8725 §3.11: explicit typing keeps ID tokens and other JWTs out.
        if (header.Typ is not { } typ || !(typ == Jws.AccessTokenType || typ.Equals("application/at+jwt", StringComparison.OrdinalIgnoreCase)))
        {
            throw Fail(TokenErrors.MalformedToken, $"typ '{header.Typ}' is not at+jwt (RFC 9068 §4)");
        }
        if (header.Kid is not { Length: > 0 } kid)
        {
            throw Fail(TokenErrors.MalformedToken, "the header has no kid");
        }
        var claims = ReadClaims(parts.Payload);
        var c = new Claims(claims);
        // RFC 8725 §3.8: the issuer must be the one trusted. Compared before any key is fetched, so a token
        // of another issuer (or the same server under another name) is refused as such, naming both, rather
        // than as keys that cannot be found. Refusing on an unverified claim trusts nothing; no other claim
        // is used before the signature verifies.
        if (c.Iss != _issuer)
        {
            throw Fail(TokenErrors.InvalidIssuer, $"the token was issued by '{c.Iss}', not by the trusted issuer '{_issuer}'");
        }
        var key = await _keys.FindAsync(kid, ct)
            ?? throw Fail(TokenErrors.InvalidSignature, $"kid '{kid}' is not a current key of {_issuer}");
        if (!Jws.VerifySignature(token, parts, key))
        {
            throw Fail(TokenErrors.InvalidSignature, "the signature does not verify");
        }
        CheckTimes(c);
        CheckApproval(c);
        if (options.Audience is { } audience && !c.HasAudience(audience))
        {
            throw Fail(TokenErrors.InvalidAudience, $"aud does not name '{audience}'");
        }
        if (options.Scope is { } scope)
        {
            foreach (var wanted in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!ContainsScope(c.Scope, wanted))
                {
                    throw Fail(TokenErrors.InsufficientScope, $"scope lacks '{wanted}'");
                }
            }
        }
        if (options.ExpectedBindingMessage is { } message && c.BindingMessage != message)
        {
            throw Fail(TokenErrors.EvidenceMismatch, "binding_message is not the expected one");
        }
        if (options.ExpectedAuthorizationDetails is { } details && !JsonEqual(c.AuthorizationDetails, ExpectedDetails(details)))
        {
            throw Fail(TokenErrors.EvidenceMismatch, "authorization_details are not the expected ones");
        }
        if (!options.AllowMandates && (claims.TryGetProperty(ClaimNames.Mandate, out _) ||
                                       (claims.TryGetProperty(ClaimNames.AuthenticationMethods, out var amr) && amr.ValueKind == JsonValueKind.Array &&
                                        amr.EnumerateArray().Any(m => m.ValueKind == JsonValueKind.String && m.GetString() == AuthenticationMethods.Mandate))))
        {
            throw Fail(TokenErrors.EvidenceMismatch, "a spending mandate approved this token, not a human at this moment, and mandates are not accepted here");
        }
        IReadOnlyList<string> devices = [];
        if (options.CheckEvidence)
        {
            devices = await Evidence.CheckAllAsync(claims, c, _dids, ct);
        }
        // docs/tokens.md §9.1: M distinct users, each proven by their own device's signature checked above.
        var approvers = devices.Select(Evidence.DidOf).Distinct(StringComparer.Ordinal).ToList();
        if (options.RequiredApprovers is { } required && approvers.Count < required)
        {
            throw Fail(TokenErrors.EvidenceMismatch, $"{required} distinct approvers are required; the evidence proves {approvers.Count}");
        }
        // Last: a token refused for another reason must not use up its jti.
        if (options.CheckReplay && !await _replay.TryAddAsync(c.Jti, DateTimeOffset.FromUnixTimeSeconds(c.Exp + _skewSeconds), ct))
        {
            throw Fail(TokenErrors.ReplayedToken, $"jti '{c.Jti}' was already used");
        }
        return new VerifiedToken(c.Iss, c.Sub, c.Audiences, c.ClientId, c.Scope, c.Jti, DateTimeOffset.FromUnixTimeSeconds(c.Iat),
            DateTimeOffset.FromUnixTimeSeconds(c.Exp), c.BindingMessage, c.AuthorizationDetails, c.Txn, kid, claims)
        {
            EvidenceDevice = devices.Count > 0 ? devices[0] : null,
            EvidenceDevices = devices,
            Approvers = approvers,
        };
    }

    /// <summary>Disposes the HttpClient when the verifier created it.</summary>
    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    internal static bool ContainsScope(string scopes, string wanted)
    {
        // Space-delimited (RFC 6749 §3.3), matched whole: "read" is not in "reader".
        var span = scopes.AsSpan();
        foreach (var range in span.Split(' '))
        {
            if (span[range].SequenceEqual(wanted))
            {
                return true;
            }
        }
        return false;
    }

    internal static bool JsonEqual(JsonElement? a, JsonElement? b) =>
        a is null || b is null ? a is null && b is null : JsonElement.DeepEquals(a.Value, b.Value);

    private static JsonElement ExpectedDetails(object details)
    {
        using var doc = JsonDocument.Parse(AssentClient.DetailsJson(details));
        return doc.RootElement.Clone();
    }

    /// <summary>
    /// docs/tokens.md: an approval is a human's decision on one request (<c>txn</c>), for the agent that asked
    /// (RFC 8693 §4.1 <c>act</c>, equal to <c>client_id</c>), by a user with a DID. A token without these was
    /// issued without a human deciding, whatever scope it carries.
    /// </summary>
    private static void CheckApproval(Claims c)
    {
        var missing = c.Txn is not { Length: > 0 } ? "no txn names the approval request"
            : c.Actor is null ? "no act object names the agent acting for the approver"
            : c.ClientId is null || c.Actor != c.ClientId ? "act.sub is not the token's client_id"
            : !DidWeb.TryGetDocumentUrl(c.Sub, out _) ? $"sub '{c.Sub}' is not the did:web DID of an approver"
            : null;
        if (missing is not null)
        {
            throw Fail(TokenErrors.EvidenceMismatch, "not an approval: " + missing);
        }
    }

    private void CheckTimes(Claims c)
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        if (now > c.Exp + _skewSeconds)
        {
            throw Fail(TokenErrors.ExpiredToken, $"the token expired at {DateTimeOffset.FromUnixTimeSeconds(c.Exp):u}");
        }
        if (c.Nbf is { } nbf && now + _skewSeconds < nbf)
        {
            throw Fail(TokenErrors.ExpiredToken, $"the token is not valid before {DateTimeOffset.FromUnixTimeSeconds(nbf):u}");
        }
        if (now + _skewSeconds < c.Iat)
        {
            throw Fail(TokenErrors.ExpiredToken, $"the token claims to be issued in the future ({DateTimeOffset.FromUnixTimeSeconds(c.Iat):u})");
        }
    }

    private static JsonElement ReadClaims(byte[] payload)
    {
        try
        {
            // RFC 7519 §4 / RFC 8725 §3.9: duplicate claim names make a token ambiguous; refuse it.
            using var doc = JsonDocument.Parse(payload, new JsonDocumentOptions { MaxDepth = 32, AllowDuplicateProperties = false });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Fail(TokenErrors.MalformedToken, "the claims are not a JSON object");
            }
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new TokenVerificationException(TokenErrors.MalformedToken, "the claims are not valid JSON", e);
        }
    }

    /// <summary>A token that does not even parse as a JWS; if its header names another algorithm, say so.</summary>
    private static TokenVerificationException ParseFailure(string token, string error)
    {
        var dot = token.IndexOf('.');
        if (dot > 0 && Protocol.Base64Url.TryDecode(token.AsSpan(0, dot), out var headerBytes))
        {
            try
            {
                using var doc = JsonDocument.Parse(headerBytes);
                if (doc.RootElement.ValueKind == JsonValueKind.Object &&
                    doc.RootElement.TryGetProperty("alg", out var alg) && (alg.ValueKind != JsonValueKind.String || alg.GetString() != Jws.EdDsa))
                {
                    return Fail(TokenErrors.InvalidSignature, $"alg {alg.GetRawText()} is not accepted; only EdDSA");
                }
            }
            catch (JsonException)
            {
                // Falls through to malformed.
            }
        }
        return Fail(TokenErrors.MalformedToken, error);
    }

    internal static TokenVerificationException Fail(string code, string message) => new(code, message);

    /// <summary>The registered and Assent claims, read once with their types checked.</summary>
    internal sealed class Claims
    {
        public Claims(JsonElement root)
        {
            Iss = Str(root, ClaimNames.Issuer) ?? throw Fail(TokenErrors.InvalidIssuer, "the token has no iss");
            Sub = Str(root, ClaimNames.Subject) ?? throw Fail(TokenErrors.MalformedToken, "the token has no sub");
            Exp = Time(root, ClaimNames.Expiration) ?? throw Fail(TokenErrors.MalformedToken, "the token has no exp");
            Iat = Time(root, ClaimNames.IssuedAt) ?? throw Fail(TokenErrors.MalformedToken, "the token has no iat");
            Nbf = Time(root, ClaimNames.NotBefore);
            Jti = Str(root, ClaimNames.JwtId) ?? throw Fail(TokenErrors.MalformedToken, "the token has no jti");
            Scope = Str(root, ClaimNames.Scope) ?? "";
            ClientId = Str(root, ClaimNames.ClientId);
            BindingMessage = Str(root, ClaimNames.BindingMessage);
            Txn = Str(root, ClaimNames.Transaction);
            // Anything but an object with a string sub is no actor; CheckApproval says so.
            Actor = root.TryGetProperty(ClaimNames.Actor, out var act) && act.ValueKind == JsonValueKind.Object
                ? RemoteJson.String(act, ClaimNames.Subject)
                : null;
            AuthorizationDetails = root.TryGetProperty(ClaimNames.AuthorizationDetails, out var d) && d.ValueKind != JsonValueKind.Null ? d : null;
            if (root.TryGetProperty(ClaimNames.Audience, out var aud))
            {
                Audiences = aud.ValueKind switch
                {
                    JsonValueKind.String => [aud.GetString()!],
                    JsonValueKind.Array => aud.EnumerateArray().Select(a => a.ValueKind == JsonValueKind.String
                        ? a.GetString()!
                        : throw Fail(TokenErrors.MalformedToken, "aud holds a non-string")).ToArray(),
                    _ => throw Fail(TokenErrors.MalformedToken, "aud is neither a string nor an array"),
                };
            }
        }

        public string Iss { get; }
        public string Sub { get; }
        public long Exp { get; }
        public long Iat { get; }
        public long? Nbf { get; }
        public string Jti { get; }
        public string Scope { get; }
        public string? ClientId { get; }
        public string? BindingMessage { get; }
        public string? Txn { get; }
        public string? Actor { get; }
        public JsonElement? AuthorizationDetails { get; }
        public IReadOnlyList<string> Audiences { get; } = [];

        public bool HasAudience(string audience)
        {
            foreach (var a in Audiences)
            {
                if (a == audience)
                {
                    return true;
                }
            }
            return false;
        }

        private static string? Str(JsonElement root, string name)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return null;
            }
            return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Fail(TokenErrors.MalformedToken, $"{name} is not a string");
        }

        /// <summary>
        /// RFC 7519 §2 NumericDate: seconds, possibly fractional, within what <see cref="DateTimeOffset"/> holds once the
        /// largest skew is added; a time outside it is malformed, not an exception the caller did not expect.
        /// </summary>
        private static long? Time(JsonElement root, string name)
        {
            if (!root.TryGetProperty(name, out var v))
            {
                return null;
            }
            if (v.ValueKind == JsonValueKind.Number)
            {
                if (v.TryGetInt64(out var whole))
                {
                    if (whole >= MinTime && whole <= MaxTime)
                    {
                        return whole;
                    }
                }
                else if (v.TryGetDouble(out var fractional) && fractional >= MinTime && fractional <= MaxTime)
                {
                    return (long)Math.Floor(fractional);
                }
            }
            throw Fail(TokenErrors.MalformedToken, $"{name} is not a NumericDate");
        }
    }
}
