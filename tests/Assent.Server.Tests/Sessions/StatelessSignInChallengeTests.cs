using System.Net;
using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Protocol.WebAuthn;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Passkeys;
using Assent.Server.Storage;
using Assent.Server.Tests.Passkeys;

namespace Assent.Server.Tests.Sessions;

/// <summary>
/// Sign-in challenges are stateless (docs/http-api.md §12.3): the options step writes nothing, and the challenge carries its
/// expiry under a MAC keyed from the key-encryption key and bound to the RP ID. Single use is kept at assertion time by
/// <c>spent_challenges</c>, in the sign-in's own transaction.
/// </summary>
public sealed class StatelessSignInChallengeTests
{
    private static Task<PasskeyUser> PasskeyAsync() => PasskeyUser.StartAsync("stateless");

    private static Task<byte[]> ChallengeAsync(PasskeyUser s) => s.SignInChallengeAsync();

    private static Task<HttpResponseMessage> SignInAsync(PasskeyUser s, byte[] challenge, bool corrupt = false) =>
        s.Server.Http.PostAsync("/webauthn/signin", TestDevice.JsonBody(s.Assertion(challenge, corrupt: corrupt)));

    private static Task<long> CountAsync(TestServer server, string table) =>
        server.Store.Database.ReadAsync(async q => (await q.AllAsync($"SELECT COUNT(*) FROM {table}", r => r.GetInt64(0)))[0], default);

    private static async Task AssertChallengeRefusedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("challenge", await response.Content.ReadAsStringAsync());
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task Sign_in_options_write_nothing_and_the_challenge_signs_in_once()
    {
        await using var s = await PasskeyAsync();
        var before = (await CountAsync(s.Server, "webauthn_challenges"), await CountAsync(s.Server, "spent_challenges"));

        var challenge = await ChallengeAsync(s);

        Assert.Equal(SignInChallenges.Length, challenge.Length);
        Assert.Equal(before, (await CountAsync(s.Server, "webauthn_challenges"), await CountAsync(s.Server, "spent_challenges")));
        using var first = await SignInAsync(s, challenge);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(before.Item2 + 1, await CountAsync(s.Server, "spent_challenges"));
        using var again = await SignInAsync(s, challenge);
        await AssertChallengeRefusedAsync(again);
    }

    [Fact]
    public async Task An_altered_challenge_is_refused_before_any_passkey_is_looked_at()
    {
        await using var s = await PasskeyAsync();
        var challenge = await ChallengeAsync(s);
        // A later expiry, correctly signed by the passkey: only the server's MAC can tell.
        challenge[16] ^= 0x40;

        using var response = await SignInAsync(s, challenge);

        await AssertChallengeRefusedAsync(response);
        Assert.Equal(0, await CountAsync(s.Server, "spent_challenges"));
    }

    [Fact]
    public async Task A_challenge_is_refused_once_its_lifetime_has_passed()
    {
        await using var s = await PasskeyAsync();
        var challenge = await ChallengeAsync(s);

        s.Server.Clock.Advance(s.Server.Options.WebAuthnChallengeLifetime + TimeSpan.FromMilliseconds(1));
        using var response = await SignInAsync(s, challenge);

        await AssertChallengeRefusedAsync(response);
    }

    [Fact]
    public async Task A_challenge_minted_with_another_key_or_for_another_relying_party_is_refused()
    {
        await using var s = await PasskeyAsync();
        var master = MasterKey.Load(s.Server.Options);
        var otherDeployment = new SignInChallenges(MasterKey.FromBytes(RandomNumberGenerator.GetBytes(32)), s.Server.Options, s.Server.Clock);
        var otherRp = new SignInChallenges(master, new AssentOptions { Issuer = s.Server.Options.Issuer, WebAuthnRpId = "elsewhere.example" }, s.Server.Clock);
        var same = new SignInChallenges(master, s.Server.Options, s.Server.Clock);

        using var foreignKey = await SignInAsync(s, otherDeployment.Issue());
        using var foreignRp = await SignInAsync(s, otherRp.Issue());
        using var ours = await SignInAsync(s, same.Issue());

        await AssertChallengeRefusedAsync(foreignKey);
        await AssertChallengeRefusedAsync(foreignRp);
        // The control: the same construction with this server's key and RP ID is accepted.
        Assert.Equal(HttpStatusCode.OK, ours.StatusCode);
    }

    [Fact]
    public async Task A_refused_assertion_spends_its_stateless_challenge()
    {
        await using var s = await PasskeyAsync();
        var challenge = await ChallengeAsync(s);

        using var forged = await SignInAsync(s, challenge, corrupt: true);
        using var genuine = await SignInAsync(s, challenge);

        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        Assert.Contains(WebAuthnFailures.InvalidSignature, await forged.Content.ReadAsStringAsync());
        await AssertChallengeRefusedAsync(genuine);
    }

    [Fact]
    public async Task The_same_assertion_sent_many_times_at_once_signs_in_exactly_once()
    {
        await using var s = await PasskeyAsync();
        var challenge = await ChallengeAsync(s);

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => SignInAsync(s, challenge)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.OK), r => Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode));
        foreach (var r in responses)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task Spent_challenges_are_kept_until_they_expire_and_purged_after()
    {
        await using var s = await PasskeyAsync();
        var store = s.Server.Store.Sessions;
        var now = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var hash = RandomNumberGenerator.GetBytes(32);

        Assert.True(await store.TrySpendChallengeAsync(hash, now + 1_000, now, default));
        Assert.False(await store.TrySpendChallengeAsync(hash, now + 1_000, now + 999, default));
        // Expired: refused without a write, and another spending purges the row.
        Assert.False(await store.TrySpendChallengeAsync(hash, now + 1_000, now + 1_000, default));
        Assert.Equal(1, await CountAsync(s.Server, "spent_challenges"));
        Assert.True(await store.TrySpendChallengeAsync(RandomNumberGenerator.GetBytes(32), now + 5_000, now + 1_000, default));
        Assert.Equal(1, await CountAsync(s.Server, "spent_challenges"));
    }

    [Fact]
    public async Task A_sign_in_whose_challenge_is_spent_or_expired_writes_nothing_else()
    {
        await using var s = await PasskeyAsync();
        var store = s.Server.Store.Sessions;
        var now = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var audit = new AuditEvent(AuditTypes.SessionCreated, s.UserId, s.DeviceId, s.UserId);
        WebSessionRecord Session() => new(RandomNumberGenerator.GetBytes(32), s.UserId, s.DeviceId, now, now + 60_000);
        var hash = RandomNumberGenerator.GetBytes(32);
        var (expired, spent, opened) = (Session(), Session(), Session());

        Assert.Equal(PasskeySignInOutcome.ChallengeRefused, await store.TrySignInSpendingAsync(hash, now, 1, expired, now, audit, default));
        Assert.Equal(PasskeySignInOutcome.Opened, await store.TrySignInSpendingAsync(hash, now + 60_000, 1, opened, now, audit, default));
        Assert.Equal(PasskeySignInOutcome.ChallengeRefused, await store.TrySignInSpendingAsync(hash, now + 60_000, 2, spent, now, audit, default));

        Assert.Null(await store.FindWebSessionAsync(expired.TokenHash, now, default));
        Assert.Null(await store.FindWebSessionAsync(spent.TokenHash, now, default));
        Assert.NotNull(await store.FindWebSessionAsync(opened.TokenHash, now, default));
        Assert.Equal(1, (await s.Server.Store.Devices.FindAsync(s.DeviceId, default))!.SignCount);
    }
}
