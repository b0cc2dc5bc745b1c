using System.Text;
using System.Text.Json;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Jose;

namespace Assent.Client.Tests;

/// <summary>
/// The verifier's own checks at their edges (docs/tokens.md, RFC 8725), against a forged issuer whose key the test holds:
/// its settings' ranges, the clock skew to the second, claim types, headers, and the message each refusal carries.
/// </summary>
public sealed class TokenVerifierEdgeTests : IDisposable
{
    private static readonly VerifyOptions Forged = new() { Scope = "approve:action", CheckEvidence = false, CheckReplay = false };

    private readonly ForgedIssuer _forge = new();

    public void Dispose() => _forge.Dispose();

    private sealed class FixedClock(long unixSeconds) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeSeconds(unixSeconds);
    }

    private TokenVerifier Verifier(TimeProvider? time = null, TimeSpan? skew = null) => new(ForgedIssuer.Issuer, new()
    {
        HttpClient = _forge.Http(),
        TimeProvider = time ?? TimeProvider.System,
        ClockSkew = skew ?? TimeSpan.FromSeconds(60),
    });

    private static async Task<TokenVerificationException> RefusedAsync(TokenVerifier verifier, string token, VerifyOptions? options = null) =>
        await Assert.ThrowsAsync<TokenVerificationException>(() => verifier.VerifyAsync(token, options ?? Forged, CancellationToken.None));

    private static async Task AssertRefusedAsync(TokenVerifier verifier, string token, string code, string message, VerifyOptions? options = null)
    {
        var e = await RefusedAsync(verifier, token, options);
        Assert.Equal((code, message), (e.Code, e.Message));
    }

    private string SignRaw(string header, string payload) =>
        Jws.Sign(Base64Url.Encode(Encoding.UTF8.GetBytes(header)), Encoding.UTF8.GetBytes(payload), _forge.Seed);

    private string SignClaims(Dictionary<string, object?> claims, Action<Dictionary<string, object?>> change)
    {
        change(claims);
        return _forge.Sign(claims);
    }

    [Theory]
    [InlineData("forge.test")]
    [InlineData("ftp://forge.test")]
    [InlineData("/relative")]
    public void An_issuer_that_is_not_an_absolute_http_url_is_refused(string issuer)
    {
        var e = Assert.Throws<ArgumentException>(() => new TokenVerifier(issuer));
        Assert.Equal("issuer", e.ParamName);
        Assert.StartsWith($"the issuer must be an absolute http(s) URL (got '{issuer}')", e.Message);
    }

    [Fact]
    public void The_issuer_loses_a_typed_trailing_slash_and_http_is_accepted()
    {
        using var https = new TokenVerifier("https://forge.test/");
        using var http = new TokenVerifier("http://localhost:8080");

        Assert.Equal("https://forge.test", https.Issuer);
        Assert.Equal("http://localhost:8080", http.Issuer);
    }

    [Theory]
    [InlineData(-1, false)]
    [InlineData(0, true)]
    [InlineData(60, true)]
    [InlineData(61, false)]
    public void Clock_skew_is_allowed_from_0_to_60_seconds(int seconds, bool allowed)
    {
        var options = new TokenVerifierOptions { ClockSkew = TimeSpan.FromSeconds(seconds) };
        if (allowed)
        {
            using var verifier = new TokenVerifier(ForgedIssuer.Issuer, options);
            return;
        }
        var e = Assert.Throws<ArgumentException>(() => new TokenVerifier(ForgedIssuer.Issuer, options));
        Assert.StartsWith("ClockSkew must be between 0 and 60 seconds", e.Message);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(Jws.DefaultMaxLength, true)]
    [InlineData(Jws.DefaultMaxLength + 1, false)]
    public void Max_token_length_is_allowed_from_1_to_the_default(int length, bool allowed)
    {
        var options = new TokenVerifierOptions { MaxTokenLength = length };
        if (allowed)
        {
            using var verifier = new TokenVerifier(ForgedIssuer.Issuer, options);
            return;
        }
        var e = Assert.Throws<ArgumentException>(() => new TokenVerifier(ForgedIssuer.Issuer, options));
        Assert.StartsWith($"MaxTokenLength must be between 1 and {Jws.DefaultMaxLength}", e.Message);
    }

    [Fact]
    public async Task A_lower_max_length_refuses_a_longer_token_with_its_length_named()
    {
        var token = _forge.Sign(ForgedIssuer.Claims());
        using var verifier = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = _forge.Http(), MaxTokenLength = token.Length - 1 });
        using var exact = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = _forge.Http(), MaxTokenLength = token.Length });

        await AssertRefusedAsync(verifier, token, TokenErrors.MalformedToken, $"the token is larger than {token.Length - 1} characters");
        await exact.VerifyAsync(token, Forged, CancellationToken.None);
    }

    [Fact]
    public async Task Required_approvers_must_be_positive_and_need_the_evidence_check()
    {
        using var verifier = Verifier();
        var token = _forge.Sign(ForgedIssuer.Claims());

        foreach (var options in new VerifyOptions[] { new() { Scope = "approve:action", RequiredApprovers = 0 }, new() { Scope = "approve:action", RequiredApprovers = 1, CheckEvidence = false } })
        {
            var e = await Assert.ThrowsAsync<ArgumentException>(() => verifier.VerifyAsync(token, options, CancellationToken.None));
            Assert.StartsWith("RequiredApprovers must be at least 1, and needs CheckEvidence", e.Message);
        }
        var none = await Assert.ThrowsAsync<ArgumentException>(() => verifier.VerifyAsync(token, new() { CheckEvidence = false }, CancellationToken.None));
        Assert.StartsWith("ask for an Audience or a Scope (or both)", none.Message);
        await verifier.VerifyAsync(token, new() { Audience = "agent", CheckEvidence = false, CheckReplay = false }, CancellationToken.None);
    }

    [Fact]
    public async Task Exp_nbf_and_iat_pass_at_the_skew_and_fail_one_second_beyond()
    {
        const long now = 1_800_000_000;
        using var verifier = Verifier(new FixedClock(now), TimeSpan.FromSeconds(30));

        string Token(long exp, long nbf, long iat) => _forge.Sign(ForgedIssuer.Claims(exp: exp, nbf: nbf, iat: iat));
        await verifier.VerifyAsync(Token(now - 30, now + 30, now + 30), Forged, CancellationToken.None);

        await AssertRefusedAsync(verifier, Token(now - 31, now, now), TokenErrors.ExpiredToken,
            $"the token expired at {DateTimeOffset.FromUnixTimeSeconds(now - 31):u}");
        await AssertRefusedAsync(verifier, Token(now + 300, now + 31, now), TokenErrors.ExpiredToken,
            $"the token is not valid before {DateTimeOffset.FromUnixTimeSeconds(now + 31):u}");
        await AssertRefusedAsync(verifier, Token(now + 300, now, now + 31), TokenErrors.ExpiredToken,
            $"the token claims to be issued in the future ({DateTimeOffset.FromUnixTimeSeconds(now + 31):u})");
    }

    [Fact]
    public async Task A_token_without_nbf_is_checked_on_exp_and_iat_alone()
    {
        const long now = 1_800_000_000;
        using var verifier = Verifier(new FixedClock(now), TimeSpan.Zero);
        var claims = ForgedIssuer.Claims(exp: now, iat: now);
        claims.Remove("nbf");

        await verifier.VerifyAsync(_forge.Sign(claims), Forged, CancellationToken.None);
    }

    [Fact]
    public async Task Fractional_numeric_dates_are_floored_and_other_values_are_not_numeric_dates()
    {
        const long now = 1_800_000_000;
        using var verifier = Verifier(new FixedClock(now), TimeSpan.Zero);

        // exp 1_800_000_000.9 floors to now: still valid with no skew; iat 1_800_000_000.5 floors to now: not in the future.
        var token = SignClaims(ForgedIssuer.Claims(), c => (c["exp"], c["iat"], c["nbf"]) = (now + 0.9, now + 0.5, now - 0.5));
        var verified = await verifier.VerifyAsync(token, Forged, CancellationToken.None);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(now), verified.ExpiresAt);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(now), verified.IssuedAt);
        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["exp"] = now - 0.1), TokenErrors.ExpiredToken,
            $"the token expired at {DateTimeOffset.FromUnixTimeSeconds(now - 1):u}");

        // Beyond what a date can hold (year 9999), integer or not, or not a number: malformed, never an exception of another kind.
        var max = DateTimeOffset.MaxValue.ToUnixTimeSeconds() - 60;
        var min = DateTimeOffset.MinValue.ToUnixTimeSeconds();
        foreach (var bad in new object[] { "1800000000", max + 1, min - 1, max + 1.5, min - 0.5, long.MaxValue, 1e300, true })
        {
            await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["exp"] = bad), TokenErrors.MalformedToken, "exp is not a NumericDate");
        }
        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["nbf"] = "soon"), TokenErrors.MalformedToken, "nbf is not a NumericDate");
        // The range's own ends are dates: exp at the last one (no skew here) is valid, iat and nbf at the first one are long past.
        var edges = await verifier.VerifyAsync(SignClaims(ForgedIssuer.Claims(), c => (c["exp"], c["iat"], c["nbf"]) = (max, min, (double)min)), Forged,
            CancellationToken.None);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(max), edges.ExpiresAt);
        Assert.Equal(DateTimeOffset.MinValue, edges.IssuedAt);
    }

    [Theory]
    [InlineData("sub", "the token has no sub")]
    [InlineData("exp", "the token has no exp")]
    [InlineData("iat", "the token has no iat")]
    [InlineData("jti", "the token has no jti")]
    public async Task A_missing_registered_claim_is_named(string claim, string message)
    {
        using var verifier = Verifier();

        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c.Remove(claim)), TokenErrors.MalformedToken, message);
    }

    [Fact]
    public async Task Claims_of_the_wrong_type_are_named_and_a_null_claim_is_absent()
    {
        using var verifier = Verifier();

        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["sub"] = 42), TokenErrors.MalformedToken, "sub is not a string");
        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["scope"] = new[] { "approve:action" }), TokenErrors.MalformedToken,
            "scope is not a string");
        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["aud"] = new object[] { "agent", 7 }), TokenErrors.MalformedToken,
            "aud holds a non-string");
        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["aud"] = 7), TokenErrors.MalformedToken,
            "aud is neither a string nor an array");
        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["iss"] = null), TokenErrors.InvalidIssuer, "the token has no iss");
        // A null txn is no txn.
        await AssertRefusedAsync(verifier, SignClaims(ForgedIssuer.Claims(), c => c["txn"] = ""), TokenErrors.EvidenceMismatch,
            "not an approval: no txn names the approval request");
    }

    [Fact]
    public async Task An_audience_array_is_searched_and_the_verified_token_carries_the_claims()
    {
        using var verifier = Verifier();
        var token = SignClaims(ForgedIssuer.Claims(), c => (c["aud"], c["binding_message"]) = (new[] { "other", "agent" }, "Pay 10 EUR"));

        var verified = await verifier.VerifyAsync(token, new() { Audience = "agent", Scope = "approve:action", CheckEvidence = false, CheckReplay = false },
            CancellationToken.None);

        Assert.Equal(["other", "agent"], verified.Audiences);
        Assert.Equal(ForgedIssuer.Issuer, verified.Issuer);
        Assert.Equal("did:web:forge.test:users:usr_1", verified.Subject);
        Assert.Equal("agent", verified.ClientId);
        Assert.Equal("Pay 10 EUR", verified.BindingMessage);
        Assert.Equal("apr_forged", verified.Transaction);
        Assert.Equal("forge-key", verified.KeyId);
        Assert.Null(verified.EvidenceDevice);
        Assert.Empty(verified.EvidenceDevices);
        Assert.Empty(verified.Approvers);
        await AssertRefusedAsync(verifier, token, TokenErrors.InvalidAudience, "aud does not name 'third'",
            new() { Audience = "third", CheckEvidence = false, CheckReplay = false });
        await AssertRefusedAsync(verifier, token, TokenErrors.InsufficientScope, "scope lacks 'approve'",
            new() { Scope = "approve:action approve", CheckEvidence = false, CheckReplay = false });
    }

    [Fact]
    public async Task The_expected_binding_message_and_authorization_details_must_match_exactly()
    {
        using var verifier = Verifier();
        var details = new[] { new Dictionary<string, string> { ["type"] = "payment", ["amount"] = "10.00" } };
        var token = SignClaims(ForgedIssuer.Claims(), c => (c["binding_message"], c["authorization_details"]) = ("Pay 10 EUR", details));
        var plain = _forge.Sign(ForgedIssuer.Claims());

        await verifier.VerifyAsync(token, new() { Scope = "approve:action", CheckEvidence = false, CheckReplay = false, ExpectedBindingMessage = "Pay 10 EUR",
            ExpectedAuthorizationDetails = details }, CancellationToken.None);
        await AssertRefusedAsync(verifier, token, TokenErrors.EvidenceMismatch, "binding_message is not the expected one",
            new() { Scope = "approve:action", CheckEvidence = false, ExpectedBindingMessage = "Pay 11 EUR" });
        await AssertRefusedAsync(verifier, token, TokenErrors.EvidenceMismatch, "authorization_details are not the expected ones",
            new() { Scope = "approve:action", CheckEvidence = false, ExpectedAuthorizationDetails = new[] { new Dictionary<string, string> { ["type"] = "payment", ["amount"] = "11.00" } } });
        // A token without details does not match expected ones.
        await AssertRefusedAsync(verifier, plain, TokenErrors.EvidenceMismatch, "authorization_details are not the expected ones",
            new() { Scope = "approve:action", CheckEvidence = false, ExpectedAuthorizationDetails = details });
        Assert.True(TokenVerifier.JsonEqual(null, null));
        Assert.False(TokenVerifier.JsonEqual(JsonDocument.Parse("[]").RootElement, null));
        Assert.False(TokenVerifier.JsonEqual(null, JsonDocument.Parse("[]").RootElement));
    }

    [Fact]
    public async Task Headers_without_a_kid_or_with_another_algorithm_or_type_are_named()
    {
        using var verifier = Verifier();
        var claims = JsonSerializer.Serialize(ForgedIssuer.Claims());

        await AssertRefusedAsync(verifier, SignRaw("""{"alg":"EdDSA","typ":"at+jwt"}""", claims), TokenErrors.MalformedToken, "the header has no kid");
        await AssertRefusedAsync(verifier, SignRaw("""{"alg":"EdDSA","typ":"at+jwt","kid":""}""", claims), TokenErrors.MalformedToken, "the header has no kid");
        await AssertRefusedAsync(verifier, SignRaw("""{"alg":"EdDSA","kid":"forge-key"}""", claims), TokenErrors.MalformedToken, "typ '' is not at+jwt (RFC 9068 §4)");
        await AssertRefusedAsync(verifier, _forge.Sign(ForgedIssuer.Claims(), typ: "JWT"), TokenErrors.MalformedToken, "typ 'JWT' is not at+jwt (RFC 9068 §4)");
        // RFC 9068 §4: the media type form, compared without case, is the same type.
        await verifier.VerifyAsync(SignRaw("""{"alg":"EdDSA","typ":"Application/AT+JWT","kid":"forge-key"}""", claims), Forged, CancellationToken.None);
        await AssertRefusedAsync(verifier, _forge.Sign(ForgedIssuer.Claims(), kid: "gone"), TokenErrors.InvalidSignature,
            $"kid 'gone' is not a current key of {ForgedIssuer.Issuer}");
        await AssertRefusedAsync(verifier, _forge.Sign(ForgedIssuer.Claims(iss: "https://forge.test/other")), TokenErrors.InvalidIssuer,
            $"the token was issued by 'https://forge.test/other', not by the trusted issuer '{ForgedIssuer.Issuer}'");
    }

    [Fact]
    public async Task A_well_formed_token_of_another_algorithm_or_with_a_changed_signature_is_refused_by_name()
    {
        using var verifier = Verifier();
        var claims = JsonSerializer.Serialize(ForgedIssuer.Claims());
        var token = _forge.Sign(ForgedIssuer.Claims());
        var flipped = token[..^2] + (token[^2] == 'A' ? 'B' : 'A') + token[^1];

        await AssertRefusedAsync(verifier, SignRaw("""{"alg":"ES256","typ":"at+jwt","kid":"forge-key"}""", claims), TokenErrors.InvalidSignature,
            "alg 'ES256' is not accepted; only EdDSA");
        await AssertRefusedAsync(verifier, SignRaw("""{"typ":"at+jwt","kid":"forge-key"}""", claims), TokenErrors.InvalidSignature,
            "alg '' is not accepted; only EdDSA");
        await AssertRefusedAsync(verifier, flipped, TokenErrors.InvalidSignature, "the signature does not verify");
    }

    [Fact]
    public async Task A_token_without_scope_has_an_empty_scope()
    {
        using var verifier = Verifier();
        var token = SignClaims(ForgedIssuer.Claims(), c => c.Remove("scope"));

        var verified = await verifier.VerifyAsync(token, new() { Audience = "agent", CheckEvidence = false, CheckReplay = false }, CancellationToken.None);

        Assert.Equal("", verified.Scope);
    }

    [Fact]
    public async Task Disposing_a_verifier_leaves_the_callers_http_client_usable()
    {
        using var http = _forge.Http();
        new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = http }).Dispose();

        using var response = await http.GetAsync(ForgedIssuer.Issuer + "/jwks");

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_token_that_does_not_parse_names_a_foreign_algorithm_when_its_header_has_one()
    {
        using var verifier = Verifier();
        string Unsigned(string header) => Base64Url.Encode(Encoding.UTF8.GetBytes(header)) + ".e30.";

        await AssertRefusedAsync(verifier, Unsigned("""{"alg":"HS256"}"""), TokenErrors.InvalidSignature, "alg \"HS256\" is not accepted; only EdDSA");
        await AssertRefusedAsync(verifier, Unsigned("""{"alg":7}"""), TokenErrors.InvalidSignature, "alg 7 is not accepted; only EdDSA");
        foreach (var header in new[] { """{"alg":"EdDSA"}""", """["alg"]""", """{"typ":"JWT"}""", "not json" })
        {
            var e = await RefusedAsync(verifier, Unsigned(header));
            Assert.Equal(TokenErrors.MalformedToken, e.Code);
        }
        Assert.Equal(TokenErrors.MalformedToken, (await RefusedAsync(verifier, ".e30.")).Code);
    }

    [Fact]
    public async Task Claims_that_are_not_one_json_object_without_duplicates_are_malformed()
    {
        using var verifier = Verifier();
        const string header = """{"alg":"EdDSA","typ":"at+jwt","kid":"forge-key"}""";

        await AssertRefusedAsync(verifier, SignRaw(header, "[1]"), TokenErrors.MalformedToken, "the claims are not a JSON object");
        await AssertRefusedAsync(verifier, SignRaw(header, "{\"iss\":"), TokenErrors.MalformedToken, "the claims are not valid JSON");
        var claims = JsonSerializer.Serialize(ForgedIssuer.Claims());
        await AssertRefusedAsync(verifier, SignRaw(header, claims[..^1] + ",\"sub\":\"did:web:forge.test:users:usr_2\"}"), TokenErrors.MalformedToken,
            "the claims are not valid JSON");
        var deep = new string('[', 40) + new string(']', 40);
        await AssertRefusedAsync(verifier, SignRaw(header, claims[..^1] + ",\"x\":" + deep + "}"), TokenErrors.MalformedToken, "the claims are not valid JSON");
    }

    [Fact]
    public async Task A_replayed_jti_is_named_and_the_replay_cache_keeps_it_until_exp_plus_skew()
    {
        const long now = 1_800_000_000;
        var cache = new RecordingCache();
        using var verifier = new TokenVerifier(ForgedIssuer.Issuer, new()
        {
            HttpClient = _forge.Http(), TimeProvider = new FixedClock(now), ClockSkew = TimeSpan.FromSeconds(20), ReplayCache = cache,
        });
        var token = _forge.Sign(ForgedIssuer.Claims(exp: now + 100, iat: now, nbf: now));
        var options = new VerifyOptions { Scope = "approve:action", CheckEvidence = false };

        await verifier.VerifyAsync(token, options, CancellationToken.None);
        var jti = ClaimsJti(token);
        Assert.Equal((jti, DateTimeOffset.FromUnixTimeSeconds(now + 120)), Assert.Single(cache.Added));
        await AssertRefusedAsync(verifier, token, TokenErrors.ReplayedToken, $"jti '{jti}' was already used", options);
    }

    private static string ClaimsJti(string token) =>
        JsonDocument.Parse(Base64Url.Decode(token.Split('.')[1])).RootElement.GetProperty("jti").GetString()!;

    private sealed class RecordingCache : IReplayCache
    {
        public List<(string Jti, DateTimeOffset Until)> Added { get; } = [];

        public ValueTask<bool> TryAddAsync(string jti, DateTimeOffset keepUntil, CancellationToken ct)
        {
            if (Added.Any(a => a.Jti == jti))
            {
                return ValueTask.FromResult(false);
            }
            Added.Add((jti, keepUntil));
            return ValueTask.FromResult(true);
        }
    }
}
