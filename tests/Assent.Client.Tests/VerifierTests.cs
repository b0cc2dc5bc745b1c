using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Jose;

namespace Assent.Client.Tests;

/// <summary>Every check of docs/tokens.md, each attacked on its own and refused with its code.</summary>
[Collection(IssuersCollection.Name)]
public sealed class VerifierTests(Issuers issuers)
{
    private static readonly VerifyOptions ActionScope = new() { Scope = "approve:action" };

    // Forged approvals carry no device evidence; the checks under test come before it.
    private static readonly VerifyOptions ForgedActionScope = new() { Scope = "approve:action", CheckEvidence = false };

    private async Task<(TestUser User, string Token)> ApprovedTokenAsync(IssuerServer server, string message = "Delete user alice@corp", TestUser? user = null)
    {
        user ??= await server.UserAsync();
        using var client = server.ClientFor(user);
        var human = Human.DecideAsync(user, Decisions.Approve);
        var approval = await client.ApproveAsync(message, new() { Scope = "approve:action" }, CancellationToken.None);
        await human;
        Assert.True(approval.Approved);
        return (user, approval.AccessToken!);
    }

    private static async Task<string> RefusedAsync(TokenVerifier verifier, string token, VerifyOptions? options = null)
    {
        var e = await Assert.ThrowsAsync<TokenVerificationException>(() => verifier.VerifyAsync(token, options ?? ActionScope, CancellationToken.None));
        return e.Code;
    }

    private static string[] Split(string token) => token.Split('.');

    private static JsonObject ClaimsOf(string token) => JsonNode.Parse(Base64Url.Decode(Split(token)[1]))!.AsObject();

    [Fact]
    public async Task Alg_none_is_refused()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        var header = Base64Url.Encode(Encoding.UTF8.GetBytes("""{"alg":"none","typ":"at+jwt"}"""));
        using var verifier = new TokenVerifier(issuers.A.Issuer);

        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, $"{header}.{Split(token)[1]}."));
    }

    [Fact]
    public async Task HS256_signed_with_the_public_key_bytes_is_refused()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        using var verifier = new TokenVerifier(issuers.A.Issuer);
        await verifier.VerifyAsync(token, ActionScope, CancellationToken.None);
        var jwks = JsonNode.Parse(await new HttpClient().GetStringAsync(issuers.A.Issuer + "/oauth/jwks"))!["keys"]![0]!;
        var header = Base64Url.Encode(Encoding.UTF8.GetBytes($$"""{"alg":"HS256","typ":"at+jwt","kid":"{{jwks["kid"]}}"}"""));
        var input = header + "." + Split(token)[1];
        var mac = HMACSHA256.HashData(Base64Url.Decode(jwks["x"]!.GetValue<string>()), Encoding.ASCII.GetBytes(input));

        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, input + "." + Base64Url.Encode(mac)));
    }

    [Fact]
    public async Task Unknown_kid_is_refused_and_refetches_the_JWKS_at_most_once_per_30_seconds()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        var clock = new ShiftedClock();
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { TimeProvider = clock });
        await verifier.VerifyAsync(token, ActionScope, CancellationToken.None);
        Assert.Equal(1, verifier.JwksFetches);
        var forged = Jws.Sign(Jws.EncodeHeader("no-such-kid", Jws.AccessTokenType), Base64Url.Decode(Split(token)[1]), Protocol.Crypto.Ed25519.NewSeed());

        clock.Shift(TimeSpan.FromSeconds(31));
        var codes = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => RefusedAsync(verifier, forged)));
        Assert.All(codes, c => Assert.Equal(TokenErrors.InvalidSignature, c));
        Assert.Equal(2, verifier.JwksFetches);

        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, forged));
        Assert.Equal(2, verifier.JwksFetches);
        clock.Shift(TimeSpan.FromSeconds(31));
        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, forged));
        Assert.Equal(3, verifier.JwksFetches);
    }

    [Fact]
    public async Task Token_of_another_issuer_is_refused()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.B);
        using var verifier = new TokenVerifier(issuers.A.Issuer);

        // Refused for what it is, before any key of A is looked up for it.
        Assert.Equal(TokenErrors.InvalidIssuer, await RefusedAsync(verifier, token));
    }

    [Fact]
    public async Task Expired_token_is_refused()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        var clock = new ShiftedClock();
        clock.Shift(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(61));
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { TimeProvider = clock });

        Assert.Equal(TokenErrors.ExpiredToken, await RefusedAsync(verifier, token));
    }

    [Fact]
    public async Task Expiry_within_the_allowed_skew_is_accepted()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        var clock = new ShiftedClock();
        clock.Shift(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(50));
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { TimeProvider = clock });

        await verifier.VerifyAsync(token, ActionScope, CancellationToken.None);
    }

    [Fact]
    public async Task Nbf_in_the_future_is_refused()
    {
        using var forge = new ForgedIssuer();
        using var verifier = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = forge.Http() });
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        Assert.Equal(TokenErrors.ExpiredToken, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(nbf: now + 120))));
        Assert.Equal(TokenErrors.ExpiredToken, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(iat: now + 120))));
        await verifier.VerifyAsync(forge.Sign(ForgedIssuer.Claims(nbf: now + 30)), ForgedActionScope, CancellationToken.None);
    }

    [Fact]
    public async Task Wrong_issuer_is_refused_even_with_a_trusted_key()
    {
        using var forge = new ForgedIssuer();
        using var verifier = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = forge.Http() });

        Assert.Equal(TokenErrors.InvalidIssuer, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(iss: "https://forge.test/other"))));
        Assert.Equal(TokenErrors.InvalidIssuer, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(iss: null))));
    }

    [Fact]
    public async Task Missing_or_wrong_audience_and_scope_are_refused()
    {
        using var forge = new ForgedIssuer();
        using var verifier = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = forge.Http() });

        Assert.Equal(TokenErrors.InvalidAudience, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(aud: null)), new() { Audience = "agent" }));
        Assert.Equal(TokenErrors.InvalidAudience, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(aud: "other")), new() { Audience = "agent" }));
        Assert.Equal(TokenErrors.InsufficientScope, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(scope: "openid")), ActionScope));
        Assert.Equal(TokenErrors.InsufficientScope, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(scope: "openid approve:actions")), ActionScope));
        await Assert.ThrowsAsync<ArgumentException>(() => verifier.VerifyAsync(forge.Sign(ForgedIssuer.Claims()), new(), CancellationToken.None));
        await verifier.VerifyAsync(forge.Sign(ForgedIssuer.Claims()), new() { Audience = "agent", Scope = "approve:action openid", CheckEvidence = false },
            CancellationToken.None);
    }

    [Fact]
    public async Task Id_token_and_other_typ_are_refused()
    {
        using var forge = new ForgedIssuer();
        using var verifier = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = forge.Http() });

        Assert.Equal(TokenErrors.MalformedToken, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(), typ: Jws.JwtType)));
        Assert.Equal(TokenErrors.MalformedToken, await RefusedAsync(verifier, forge.Sign(ForgedIssuer.Claims(), typ: "client+jwt")));
    }

    [Fact]
    public async Task A_client_credentials_token_is_not_an_approval()
    {
        var user = await issuers.A.UserAsync();
        using var http = new HttpClient();
        using var response = await http.PostAsync(issuers.A.Issuer + "/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = user.ClientId,
            ["client_secret"] = user.ClientSecret,
        }));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var token = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["access_token"]!.GetValue<string>();
        using var verifier = new TokenVerifier(issuers.A.Issuer);

        Assert.Equal(TokenErrors.MalformedToken, await RefusedAsync(verifier, token));
        Assert.Equal(TokenErrors.MalformedToken, await RefusedAsync(verifier, token, new() { Audience = user.ClientId, CheckEvidence = false }));
    }

    [Fact]
    public async Task A_token_with_no_human_decision_behind_it_is_refused_whatever_its_scope()
    {
        using var forge = new ForgedIssuer();
        using var verifier = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = forge.Http() });
        const string noTxn = "not an approval: no txn names the approval request";
        const string noAct = "not an approval: no act object names the agent acting for the approver";
        const string otherAct = "not an approval: act.sub is not the token's client_id";
        var withoutClientId = ForgedIssuer.Claims();
        withoutClientId.Remove("client_id");
        var notApprovals = new Dictionary<string, (Dictionary<string, object?> Claims, string Message)>
        {
            // What client_credentials used to issue: the agent's own id as sub, its approval scope, nothing else.
            ["client_credentials"] = (ForgedIssuer.Claims(sub: "agent", txn: null, noAct: true), noTxn),
            // A human's CLI session: a DID and a txn, but no agent acting for them.
            ["session"] = (ForgedIssuer.Claims(noAct: true), noAct),
            ["no txn"] = (ForgedIssuer.Claims(txn: null), noTxn),
            ["act a string"] = (ForgedIssuer.Claims(act: "agent"), noAct),
            ["act of another agent"] = (ForgedIssuer.Claims(act: new Dictionary<string, string> { ["sub"] = "other" }), otherAct),
            ["no client_id"] = (withoutClientId, otherAct),
            ["sub not a DID"] = (ForgedIssuer.Claims(sub: "agent"), "not an approval: sub 'agent' is not the did:web DID of an approver"),
        };

        foreach (var (name, (claims, message)) in notApprovals)
        {
            foreach (var options in new[] { ForgedActionScope, ActionScope })
            {
                var e = await Assert.ThrowsAsync<TokenVerificationException>(() => verifier.VerifyAsync(forge.Sign(claims), options, CancellationToken.None));
                Assert.True(e.Code == TokenErrors.EvidenceMismatch, $"{name}: {e.Code}: {e.Message}");
                Assert.Equal(message, e.Message);
            }
        }
        await verifier.VerifyAsync(forge.Sign(ForgedIssuer.Claims()), ForgedActionScope, CancellationToken.None);
    }

    [Fact]
    public async Task By_default_the_evidence_is_checked_against_a_cached_DID_document()
    {
        var (user, a) = await ApprovedTokenAsync(issuers.A, "Action A");
        var (_, b) = await ApprovedTokenAsync(issuers.A, "Action B", user);
        using var counting = new CountingHandler();
        using var http = new HttpClient(counting);
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { HttpClient = http });

        var first = await verifier.VerifyAsync(a, ActionScope, CancellationToken.None);
        var second = await verifier.VerifyAsync(b, ActionScope, CancellationToken.None);

        Assert.Equal($"{user.Did}#{user.DeviceId}", first.EvidenceDevice);
        Assert.Equal($"{user.Did}#{user.DeviceId}", second.EvidenceDevice);
        Assert.Equal(1, counting.DidDocumentFetches);
    }

    [Fact]
    public async Task Replayed_jti_is_refused()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        using var verifier = new TokenVerifier(issuers.A.Issuer);
        await verifier.VerifyAsync(token, ActionScope, CancellationToken.None);

        Assert.Equal(TokenErrors.ReplayedToken, await RefusedAsync(verifier, token));
    }

    [Fact]
    public async Task Flipped_signature_bit_is_refused()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        var parts = Split(token);
        var sig = Base64Url.Decode(parts[2]);
        sig[17] ^= 0x01;
        using var verifier = new TokenVerifier(issuers.A.Issuer);

        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, $"{parts[0]}.{parts[1]}.{Base64Url.Encode(sig)}"));
    }

    [Fact]
    public async Task Claims_swapped_between_two_tokens_are_refused()
    {
        var (user, a) = await ApprovedTokenAsync(issuers.A, "Action A");
        var (_, b) = await ApprovedTokenAsync(issuers.A, "Action B", user);
        using var verifier = new TokenVerifier(issuers.A.Issuer);

        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, $"{Split(a)[0]}.{Split(b)[1]}.{Split(a)[2]}"));
    }

    [Fact]
    public async Task Evidence_of_another_request_is_refused()
    {
        var (user, a) = await ApprovedTokenAsync(issuers.A, "Action A");
        var (_, b) = await ApprovedTokenAsync(issuers.A, "Action B", user);
        var spliced = ClaimsOf(b);
        spliced["evidence"] = ClaimsOf(a)["evidence"]!.DeepClone();

        // Re-signed by anyone but the issuer: the signature fails first.
        var kid = JsonNode.Parse(Base64Url.Decode(Split(b)[0]))!["kid"]!.GetValue<string>();
        var resigned = Jws.Sign(Jws.EncodeHeader(kid, Jws.AccessTokenType), Encoding.UTF8.GetBytes(spliced.ToJsonString()), Protocol.Crypto.Ed25519.NewSeed());
        using var verifier = new TokenVerifier(issuers.A.Issuer);
        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, resigned, new() { Scope = "approve:action", CheckEvidence = true }));

        // Even an issuer that signs the splice is caught by the evidence check: the device signed request A.
        using var forge = new ForgedIssuer();
        spliced["iss"] = ForgedIssuer.Issuer;
        using var forgeVerifier = new TokenVerifier(ForgedIssuer.Issuer, new() { HttpClient = forge.Http() });
        var forged = forge.Sign(JsonDocument.Parse(spliced.ToJsonString()).RootElement);
        Assert.Equal(TokenErrors.EvidenceMismatch, await RefusedAsync(forgeVerifier, forged, new() { Scope = "approve:action", CheckEvidence = true }));

        // A genuine token for B is not proof that A was approved.
        Assert.Equal(TokenErrors.EvidenceMismatch, await RefusedAsync(verifier, b, new() { Scope = "approve:action", ExpectedBindingMessage = "Action A" }));
        Assert.Equal(TokenErrors.EvidenceMismatch, await RefusedAsync(verifier, b,
            new() { Scope = "approve:action", ExpectedAuthorizationDetails = """[{"type":"payment","amount":"1"}]""" }));
        await verifier.VerifyAsync(b, new() { Scope = "approve:action", ExpectedBindingMessage = "Action B", CheckEvidence = true }, CancellationToken.None);
    }

    [Fact]
    public async Task Evidence_of_a_device_revoked_since_fails_the_default_check_and_CheckEvidence_false_opts_out()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.A);
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { DidDocumentCacheDuration = TimeSpan.Zero });
        var byDefault = new VerifyOptions { Scope = "approve:action", CheckReplay = false };
        Assert.Equal($"{user.Did}#{user.DeviceId}", (await verifier.VerifyAsync(token, byDefault, CancellationToken.None)).EvidenceDevice);

        await user.Device.RevokeDeviceAsync(user.DeviceId, CancellationToken.None);

        Assert.Equal(TokenErrors.EvidenceMismatch, await RefusedAsync(verifier, token, byDefault));
        var optedOut = await verifier.VerifyAsync(token, new() { Scope = "approve:action", CheckReplay = false, CheckEvidence = false }, CancellationToken.None);
        Assert.Null(optedOut.EvidenceDevice);
    }

    [Fact]
    public async Task Oversize_token_is_refused_before_parsing()
    {
        using var verifier = new TokenVerifier(issuers.A.Issuer);

        Assert.Equal(TokenErrors.MalformedToken, await RefusedAsync(verifier, new string('a', 16 * 1024 + 1)));
        Assert.Equal(TokenErrors.MalformedToken, await RefusedAsync(verifier, "not.a.jwt"));
        Assert.Equal(0, verifier.JwksFetches);
    }

    [Fact]
    public async Task Unreachable_issuer_is_jwks_unavailable()
    {
        var (_, token) = await ApprovedTokenAsync(issuers.A);
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { JwksUri = new Uri($"http://127.0.0.1:{Ports.Reserve()}/oauth/jwks") });

        Assert.Equal(TokenErrors.JwksUnavailable, await RefusedAsync(verifier, token));
    }

    /// <summary>Passes every request to the network and counts the DID documents fetched.</summary>
    private sealed class CountingHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _didDocuments;

        public int DidDocumentFetches => Volatile.Read(ref _didDocuments);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath.EndsWith("/did.json", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _didDocuments);
            }
            return base.SendAsync(request, cancellationToken);
        }
    }
}
