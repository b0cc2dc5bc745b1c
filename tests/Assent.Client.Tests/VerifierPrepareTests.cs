using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Jose;

namespace Assent.Client.Tests;

/// <summary>
/// <see cref="TokenVerifier.PrepareAsync"/>: what a verification needs is fetched while the approval is pending, and
/// nothing is trusted any longer for it: the DID document's cache duration, the JWKS rule for an unknown kid and the
/// issuer check stay as they were.
/// </summary>
[Collection(IssuersCollection.Name)]
public sealed class VerifierPrepareTests(Issuers issuers)
{
    private static readonly VerifyOptions Again = new() { Scope = "approve:action", CheckReplay = false };

    private async Task<(TestUser User, string Token)> ApprovedTokenAsync(IssuerServer server, TestUser? user = null)
    {
        user ??= await server.UserAsync();
        using var client = server.ClientFor(user);
        var human = Human.DecideAsync(user, Decisions.Approve);
        var approval = await client.ApproveAsync("Deploy api to prod", new() { Scope = "approve:action" }, CancellationToken.None);
        await human;
        Assert.True(approval.Approved);
        return (user, approval.AccessToken!);
    }

    private static async Task<string> RefusedAsync(TokenVerifier verifier, string token)
    {
        var e = await Assert.ThrowsAsync<TokenVerificationException>(() => verifier.VerifyAsync(token, Again, CancellationToken.None));
        return e.Code;
    }

    [Fact]
    public async Task The_prepared_keys_and_DID_document_are_the_ones_the_verification_uses()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.A);
        using var counting = new DidDocumentGate();
        using var http = new HttpClient(counting);
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { HttpClient = http });

        await verifier.PrepareAsync(user.Did, CancellationToken.None);
        Assert.Equal((1, 1), (verifier.JwksFetches, counting.DidDocumentRequests));
        // Prepared again at once: both are held and fresh, nothing is fetched.
        await verifier.PrepareAsync(user.Did, CancellationToken.None);
        var verified = await verifier.VerifyAsync(token, Again, CancellationToken.None);

        Assert.Equal($"{user.Did}#{user.DeviceId}", verified.EvidenceDevice);
        Assert.Equal((1, 1), (verifier.JwksFetches, counting.DidDocumentRequests));
    }

    [Fact]
    public async Task A_verification_joins_the_DID_document_fetch_under_way_instead_of_starting_another()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.A);
        using var gate = new DidDocumentGate(hold: true);
        using var http = new HttpClient(gate);
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { HttpClient = http });

        var preparing = verifier.PrepareAsync(user.Did, CancellationToken.None);
        // Bounded: a verifier that fetched nothing ahead fails the test here rather than hanging it.
        await gate.Requested.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var verifying = verifier.VerifyAsync(token, Again, CancellationToken.None);
        // The verification gets as far as the evidence (keys come unheld) and waits there for the held document.
        await Task.Delay(300);
        Assert.False(verifying.IsCompleted);
        gate.Release();

        var verified = await verifying;
        await preparing;
        Assert.Equal($"{user.Did}#{user.DeviceId}", verified.EvidenceDevice);
        Assert.Equal(1, gate.DidDocumentRequests);
        Assert.Equal(1, verifier.DidDocumentFetches);
    }

    [Fact]
    public async Task Preparing_refreshes_an_aging_DID_document_so_a_revoked_device_stops_verifying_no_later_than_before()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.A);
        var clock = new ShiftedClock();
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { TimeProvider = clock });
        await verifier.VerifyAsync(token, Again, CancellationToken.None);

        await user.Device.RevokeDeviceAsync(user.DeviceId, CancellationToken.None);
        clock.Shift(TimeSpan.FromSeconds(6));
        // Within the 10 s cache duration the document fetched before the revocation is still used, as ever.
        await verifier.VerifyAsync(token, Again, CancellationToken.None);
        Assert.Equal(1, verifier.DidDocumentFetches);

        // Older than half the duration: preparing fetches it again, and the revoked device no longer verifies.
        await verifier.PrepareAsync(user.Did, CancellationToken.None);
        Assert.Equal(2, verifier.DidDocumentFetches);
        Assert.Equal(TokenErrors.EvidenceMismatch, await RefusedAsync(verifier, token));
    }

    [Fact]
    public async Task With_no_DID_document_caching_nothing_is_fetched_ahead_and_every_verification_fetches()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.A);
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { DidDocumentCacheDuration = TimeSpan.Zero });

        await verifier.PrepareAsync(user.Did, CancellationToken.None);
        Assert.Equal(0, verifier.DidDocumentFetches);
        await verifier.VerifyAsync(token, Again, CancellationToken.None);
        await verifier.VerifyAsync(token, Again, CancellationToken.None);

        Assert.Equal(2, verifier.DidDocumentFetches);
    }

    [Fact]
    public async Task Prepared_keys_are_still_refetched_for_an_unknown_kid_at_most_once_per_30_seconds()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.A);
        var clock = new ShiftedClock();
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { TimeProvider = clock });
        await verifier.PrepareAsync(user.Did, CancellationToken.None);
        Assert.Equal(1, verifier.JwksFetches);
        var forged = Jws.Sign(Jws.EncodeHeader("no-such-kid", Jws.AccessTokenType), Base64Url.Decode(token.Split('.')[1]), Protocol.Crypto.Ed25519.NewSeed());

        // The prepared fetch counts: no refetch within the interval.
        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, forged));
        Assert.Equal(1, verifier.JwksFetches);
        clock.Shift(TimeSpan.FromSeconds(31));
        Assert.Equal(TokenErrors.InvalidSignature, await RefusedAsync(verifier, forged));
        Assert.Equal(2, verifier.JwksFetches);
        // Held keys are not refetched by preparing, however old; the genuine token still verifies.
        clock.Shift(TimeSpan.FromSeconds(31));
        await verifier.PrepareAsync(user.Did, CancellationToken.None);
        Assert.Equal(2, verifier.JwksFetches);
        await verifier.VerifyAsync(token, Again, CancellationToken.None);
    }

    [Fact]
    public async Task A_token_of_another_issuer_is_still_refused_after_preparing()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.B);
        using var verifier = new TokenVerifier(issuers.A.Issuer);

        await verifier.PrepareAsync(user.Did, CancellationToken.None);

        Assert.Equal(TokenErrors.InvalidIssuer, await RefusedAsync(verifier, token));
    }

    [Fact]
    public async Task Preparing_reports_nothing_the_verification_then_reports_what_failed()
    {
        var (user, token) = await ApprovedTokenAsync(issuers.A);
        using var verifier = new TokenVerifier(issuers.A.Issuer, new() { JwksUri = new Uri($"http://127.0.0.1:{Ports.Reserve()}/oauth/jwks") });

        await verifier.PrepareAsync(user.Did, CancellationToken.None);
        await verifier.PrepareAsync("not-a-did", CancellationToken.None);
        await verifier.PrepareAsync(null, CancellationToken.None);

        Assert.Equal(TokenErrors.JwksUnavailable, await RefusedAsync(verifier, token));
    }

    /// <summary>Passes requests to the network; counts DID document requests and, when asked, holds their answers until released.</summary>
    private sealed class DidDocumentGate(bool hold = false) : DelegatingHandler(new SocketsHttpHandler())
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _requests;

        public TaskCompletionSource Requested { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int DidDocumentRequests => Volatile.Read(ref _requests);

        public void Release() => _released.TrySetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath.EndsWith("/did.json", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _requests);
                Requested.TrySetResult();
                if (hold)
                {
                    await _released.Task.WaitAsync(cancellationToken);
                }
            }
            return await base.SendAsync(request, cancellationToken);
        }
    }
}
