using System.Net;
using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Protocol.WebAuthn;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Tests.Passkeys;

/// <summary>
/// A passkey sign-in writes once: the challenge spent, the counter moved and the session opened in one transaction
/// (ISessionStore.TrySignInAsync). The challenge stays single-use however the sign-in ends, and nothing else is
/// written when it is refused.
/// </summary>
public sealed class SignInTransactionTests
{
    private static Task<PasskeyUser> PasskeyAsync() => PasskeyUser.StartAsync("signin");

    private static async Task<byte[]> ChallengeAsync(PasskeyUser s, string path = "/webauthn/signin/options", object? body = null)
    {
        using var options = await s.Server.Http.PostAsync(path, TestDevice.JsonBody(body ?? new { }));
        var (status, json) = await TestServer.ReadAsync(options);
        Assert.Equal(HttpStatusCode.OK, status);
        return Base64Url.Decode(json.GetProperty("challenge").GetString()!);
    }

    /// <summary>
    /// A sign-in challenge stored as before stateless challenges (docs/http-api.md §12.3): the options step writes none now,
    /// but the transaction still honours stored ones (a rolling upgrade), and these tests hold it to that.
    /// </summary>
    private static async Task<byte[]> StoredChallengeAsync(PasskeyUser s)
    {
        var challenge = RandomNumberGenerator.GetBytes(32);
        var now = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await s.Server.Store.Devices.CreateChallengeAsync(new WebAuthnChallengeRecord(SHA256.HashData(challenge), ChallengePurposes.SignIn, null, null,
            now + (long)s.Server.Options.WebAuthnChallengeLifetime.TotalMilliseconds), now, default);
        return challenge;
    }

    private static async Task<HttpResponseMessage> PostAsync(PasskeyUser s, Dictionary<string, string> assertion) =>
        await s.Server.Http.PostAsync("/webauthn/signin", TestDevice.JsonBody(assertion));

    private static async Task<int> SessionsOpenedAsync(PasskeyUser s) =>
        (await s.Server.Store.Audit.ReadAsync(0, 1000, s.UserId, default))
        .Count(r => System.Text.Encoding.UTF8.GetString(r.Entry).Contains(AuditTypes.SessionCreated, StringComparison.Ordinal));

    [Fact]
    public async Task A_sign_in_opens_one_session_and_its_assertion_sent_again_is_refused()
    {
        await using var s = await PasskeyAsync();
        var assertion = s.Assertion(await ChallengeAsync(s), signCount: 3);

        using var first = await PostAsync(s, assertion);
        using var again = await PostAsync(s, assertion);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Contains(first.Headers.GetValues("Set-Cookie"), c => c.StartsWith(s.Server.Options.SessionCookieName + "=", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Unauthorized, again.StatusCode);
        Assert.Contains("challenge", await again.Content.ReadAsStringAsync());
        Assert.False(again.Headers.Contains("Set-Cookie"));
        Assert.Equal(3, (await s.Server.Store.Devices.FindAsync(s.DeviceId, default))!.SignCount);
        Assert.Equal(1, await SessionsOpenedAsync(s));
    }

    [Fact]
    public async Task A_session_token_of_an_earlier_release_still_signs_in_beside_one_keyed_by_its_time()
    {
        await using var s = await PasskeyAsync();
        using var signIn = await PostAsync(s, s.Assertion(await ChallengeAsync(s)));
        Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
        var name = s.Server.Options.SessionCookieName;
        var set = signIn.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(name + "=", StringComparison.Ordinal));
        var current = set[(name.Length + 1)..set.IndexOf(';', StringComparison.Ordinal)];
        // An earlier release's token: 256 random bits, stored by their SHA-256 alone (docs/concepts.md §9).
        var earlier = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var now = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await s.Server.Store.Sessions.CreateWebSessionAsync(new WebSessionRecord(Ids.Hash(earlier), s.UserId, s.DeviceId, now, now + 600_000), now,
            new AuditEvent(AuditTypes.SessionCreated, s.UserId, s.DeviceId, s.UserId), default);

        foreach (var token in new[] { current, earlier })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/webauthn/devices");
            request.Headers.Add("Cookie", $"{name}={token}");
            using var devices = await s.Server.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, devices.StatusCode);
        }
        Assert.Equal(51, current.Length);
        Assert.Equal(43, earlier.Length);
    }

    [Fact]
    public async Task The_same_assertion_sent_many_times_at_once_opens_exactly_one_session()
    {
        await using var s = await PasskeyAsync();
        var assertion = s.Assertion(await ChallengeAsync(s));

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => PostAsync(s, assertion)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.OK), r => Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode));
        Assert.Equal(1, await SessionsOpenedAsync(s));
        foreach (var r in responses)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task A_refused_assertion_spends_its_challenge()
    {
        await using var s = await PasskeyAsync();
        var challenge = await ChallengeAsync(s);

        using var forged = await PostAsync(s, s.Assertion(challenge, corrupt: true));
        using var genuine = await PostAsync(s, s.Assertion(challenge));

        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        Assert.Contains(WebAuthnFailures.InvalidSignature, await forged.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, genuine.StatusCode);
        Assert.Contains("challenge", await genuine.Content.ReadAsStringAsync());
        Assert.Equal(0, await SessionsOpenedAsync(s));
    }

    [Fact]
    public async Task A_registration_challenge_does_not_sign_in_and_is_spent_by_the_attempt()
    {
        await using var s = await PasskeyAsync();
        var invite = await s.Server.InviteAsync("other" + Guid.NewGuid().ToString("N")[..8]);
        var challenge = await ChallengeAsync(s, "/webauthn/register/options", new { code = invite.Code });

        using var signIn = await PostAsync(s, s.Assertion(challenge));

        Assert.Equal(HttpStatusCode.Unauthorized, signIn.StatusCode);
        Assert.Null(await s.Server.Store.Sessions.FindLiveChallengePurposeAsync(SHA256.HashData(challenge), s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds(), default));
        Assert.Equal(0, await SessionsOpenedAsync(s));
    }

    [Fact]
    public async Task A_counter_that_did_not_advance_in_the_transaction_opens_no_session_and_still_spends_the_challenge()
    {
        await using var s = await PasskeyAsync();
        var store = s.Server.Store.Sessions;
        var now = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var challenge = await StoredChallengeAsync(s);
        var hash = SHA256.HashData(challenge);
        var session = new WebSessionRecord(RandomNumberGenerator.GetBytes(32), s.UserId, s.DeviceId, now, now + 60_000);
        var audit = new AuditEvent(AuditTypes.SessionCreated, s.UserId, s.DeviceId, s.UserId);
        // Another sign-in moved the counter to 7 meanwhile; this one carries 7 too.
        Assert.True(await s.Server.Store.Devices.TryAdvanceSignCountAsync(s.DeviceId, 7, default));

        Assert.Equal(ChallengePurposes.SignIn, await store.FindLiveChallengePurposeAsync(hash, now, default));
        Assert.Equal(PasskeySignInOutcome.CounterRefused, await store.TrySignInAsync(hash, ChallengePurposes.SignIn, 7, session, now, audit, default));

        Assert.Null(await store.FindWebSessionAsync(session.TokenHash, now, default));
        Assert.Null(await store.FindLiveChallengePurposeAsync(hash, now, default));
        Assert.Equal(PasskeySignInOutcome.ChallengeRefused, await store.TrySignInAsync(hash, ChallengePurposes.SignIn, 8, session, now, audit, default));
        Assert.Equal(0, await SessionsOpenedAsync(s));
    }

    [Fact]
    public async Task An_expired_or_foreign_purpose_challenge_is_refused_by_the_transaction()
    {
        await using var s = await PasskeyAsync();
        var store = s.Server.Store.Sessions;
        var now = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var audit = new AuditEvent(AuditTypes.SessionCreated, s.UserId, s.DeviceId, s.UserId);
        WebSessionRecord Session() => new(RandomNumberGenerator.GetBytes(32), s.UserId, s.DeviceId, now, now + 60_000);
        var challenge = await StoredChallengeAsync(s);
        var later = now + (long)s.Server.Options.WebAuthnChallengeLifetime.TotalMilliseconds + 1;

        Assert.Null(await store.FindLiveChallengePurposeAsync(SHA256.HashData(challenge), later, default));
        Assert.Equal(PasskeySignInOutcome.ChallengeRefused,
            await store.TrySignInAsync(SHA256.HashData(challenge), ChallengePurposes.SignIn, 1, Session(), later, audit, default));
        var other = await StoredChallengeAsync(s);
        Assert.Equal(PasskeySignInOutcome.ChallengeRefused,
            await store.TrySignInAsync(SHA256.HashData(other), ChallengePurposes.Register, 1, Session(), now, audit, default));
        var third = await StoredChallengeAsync(s);
        var opened = Session();
        Assert.Equal(PasskeySignInOutcome.Opened, await store.TrySignInAsync(SHA256.HashData(third), ChallengePurposes.SignIn, 1, opened, now, audit, default));
        Assert.NotNull(await store.FindWebSessionAsync(opened.TokenHash, now, default));
        Assert.Equal(1, (await s.Server.Store.Devices.FindAsync(s.DeviceId, default))!.SignCount);
    }
}
