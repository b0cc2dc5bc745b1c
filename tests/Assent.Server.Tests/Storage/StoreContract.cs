using System.Text;
using System.Text.Json;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Storage.Postgres;
using Npgsql;

namespace Assent.Server.Tests.Storage;

/// <summary>One storage contract, run unchanged against every engine.</summary>
public abstract class StoreContract : IAsyncLifetime
{
    private AssentStore _store = null!;

    internal AssentStore Store => _store;

    protected ManualClock Clock { get; } = new(DateTimeOffset.UtcNow);

    internal abstract Task<AssentStore> OpenAsync();

    public async Task InitializeAsync()
    {
        _store = await OpenAsync();
        await _store.MigrateAsync(default);
    }

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private protected long Now => Clock.GetUtcNow().ToUnixTimeMilliseconds();

    private protected async Task<UserRecord> UserAsync(string handle)
    {
        var code = Ids.Hash(Guid.NewGuid().ToString());
        return await Store.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), handle, false, Now), new InviteRecord(code, "", Now + 60_000, null),
            new AuditEvent(AuditTypes.UserInvited, null, "test", null), default);
    }

    private protected async Task<ApprovalRecord> PendingAsync(UserRecord user, long lifetimeMs = 300_000, int quorum = 1, int approvers = 1)
    {
        var a = new ApprovalRecord(Ids.New("apr"), Ids.Hash(Guid.NewGuid().ToString()), ApprovalKinds.Ciba, "agt_x", user.Id, "openid", "hello",
            "[{\"type\":\"payment\"}]", null, [1, 2, 3], ApprovalState.Pending, Now, Now + lifetimeMs, Quorum: quorum, Approvers: approvers);
        await Store.Approvals.CreateAsync(a, new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "agt_x", a.Id), default);
        return a;
    }

    private Task DeviceAsync(UserRecord user, string id) =>
        Store.Devices.AddAsync(new DeviceRecord(id, user.Id, DeviceKinds.Ed25519, "d", "{}", null, 0, Now, null),
            new AuditEvent(AuditTypes.DeviceEnrolled, user.Id, id, id), default);

    private DecisionRecord Decision(ApprovalRecord a, string device, ApprovalState state = ApprovalState.Approved, string? user = null) =>
        new(a.Id, user ?? a.UserId, device, state, "{\"kind\":\"ed25519\",\"device\":\"" + device + "\"}", Now);

    /// <summary>One approver decides; true when the decision was taken.</summary>
    private async Task<bool> DecideAsync(ApprovalRecord a, string device, ApprovalState state = ApprovalState.Approved, string? user = null) =>
        await Store.Approvals.TryDecideAsync(a, Decision(a, device, state, user), null,
            new AuditEvent(state == ApprovalState.Approved ? AuditTypes.ApprovalApproved : AuditTypes.ApprovalDenied, a.UserId, device, a.Id), default) is not null;

    [Fact]
    public async Task Migrating_twice_is_harmless()
    {
        await Store.MigrateAsync(default);
        Assert.False(await Store.Users.AnyAsync(default));
    }

    private async Task<(WebClientRecord Client, AuthorizationCodeRecord Code)> WebCodeAsync(UserRecord user)
    {
        var client = new WebClientRecord(Ids.New("web"), null, "wiki", ["https://wiki.example/cb"], [], "EdDSA", Now, null);
        await Store.WebClients.CreateAsync(client, new AuditEvent(AuditTypes.WebClientCreated, null, "test", client.Id), default);
        var code = new AuthorizationCodeRecord(Ids.Hash(Guid.NewGuid().ToString()), client.Id, user.Id, "dev_x", "https://wiki.example/cb", "openid", "challenge",
            "nonce", Now, "hwk user mfa", Now, Now + 60_000);
        await Store.WebClients.CreateCodeAsync(code, Now + 360_000, default);
        return (client, code);
    }

    [Fact]
    public async Task An_authorization_code_is_redeemed_once_of_racing_redemptions_and_a_replay_names_the_token_it_issued()
    {
        var (client, code) = await WebCodeAsync(await UserAsync("wendy"));
        Assert.Equal(client.RedirectUris, (await Store.WebClients.FindAsync(client.Id, default))!.RedirectUris);

        // A mismatch spends nothing.
        var (mismatch, _) = await Store.WebClients.TryRedeemCodeAsync(code.CodeHash, Now, "jti0", Now + 1000, _ => "wrong verifier", _ => null, default);
        Assert.Equal(CodeRedemption.Mismatch, mismatch);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            Store.WebClients.TryRedeemCodeAsync(code.CodeHash, Now, "jti" + i, Now + 300_000, _ => null, _ => null, default)));
        var winner = Assert.Single(outcomes, o => o.Outcome == CodeRedemption.Redeemed);
        Assert.All(outcomes.Where(o => o.Outcome != CodeRedemption.Redeemed), o =>
        {
            Assert.Equal(CodeRedemption.Replayed, o.Outcome);
            Assert.Equal(winner.Code!.IssuedJti, o.Code!.IssuedJti);
        });
        Assert.Equal(CodeRedemption.Unknown, (await Store.WebClients.TryRedeemCodeAsync([9], Now, "j", Now, _ => null, _ => null, default)).Outcome);
    }

    [Fact]
    public async Task An_authorization_code_expires_and_a_consent_is_replaced_by_a_wider_one()
    {
        var user = await UserAsync("xena");
        var (client, code) = await WebCodeAsync(user);
        Clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(CodeRedemption.Expired, (await Store.WebClients.TryRedeemCodeAsync(code.CodeHash, Now, "j", Now, _ => null, _ => null, default)).Outcome);

        Assert.Null(await Store.WebClients.ConsentedScopesAsync(user.Id, client.Id, default));
        await Store.WebClients.GrantConsentAsync(user.Id, client.Id, "openid", Now, new AuditEvent(AuditTypes.WebConsentGranted, user.Id, "d", client.Id), default);
        await Store.WebClients.GrantConsentAsync(user.Id, client.Id, "openid profile", Now, new AuditEvent(AuditTypes.WebConsentGranted, user.Id, "d", client.Id), default);
        Assert.Equal("openid profile", await Store.WebClients.ConsentedScopesAsync(user.Id, client.Id, default));
    }

    [Fact]
    public async Task The_first_es256_key_has_one_winner()
    {
        JoseKeyRecord Key(string kid) => new(kid, "ES256", "{}", [1, 2], Now, null);
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
            Store.JoseKeys.TryAddFirstAsync(Key("k" + i), new AuditEvent(AuditTypes.KeyCreated, null, "system", "k" + i), default)));
        Assert.Single(results, r => r);
        Assert.Single(await Store.JoseKeys.ListAsync(default));
        Assert.True(await Store.JoseKeys.TryAddFirstAsync(Key("rs") with { Alg = "RS256" }, new AuditEvent(AuditTypes.KeyCreated, null, "system", "rs"), default));
    }

    [Fact]
    public async Task An_invite_for_an_existing_handle_reuses_the_user_and_can_promote_to_admin()
    {
        var first = await UserAsync("dana");
        var again = await Store.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), "dana", true, Now), new InviteRecord(Ids.Hash("x" + Guid.NewGuid()), "", Now + 1000, null),
            new AuditEvent(AuditTypes.UserInvited, null, "test", null), default);
        Assert.Equal(first.Id, again.Id);
        Assert.True(again.IsAdmin);
        Assert.True((await Store.Users.FindByHandleAsync("dana", default))!.IsAdmin);
    }

    [Fact]
    public async Task An_invite_enrols_exactly_one_device_even_when_raced()
    {
        var code = Ids.Hash("code-" + Guid.NewGuid());
        await Store.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), "erin", false, Now), new InviteRecord(code, "", Now + 60_000, null),
            new AuditEvent(AuditTypes.UserInvited, null, "test", null), default);
        var attempts = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Store.Devices.TryEnrollAsync(code, Now,
            u => new DeviceRecord($"dev_{i}", u.Id, DeviceKinds.Ed25519, "d", "{}", null, 0, Now, null),
            (u, d) => new AuditEvent(AuditTypes.DeviceEnrolled, u.Id, d.Id, d.Id), default)));
        Assert.Single(attempts, u => u is not null);
        var user = attempts.First(u => u is not null)!;
        Assert.Single(await Store.Devices.ListAsync(user.Id, default));
    }

    [Fact]
    public async Task An_expired_invite_enrols_nothing()
    {
        var code = Ids.Hash("old-" + Guid.NewGuid());
        await Store.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), "fred", false, Now), new InviteRecord(code, "", Now + 1000, null),
            new AuditEvent(AuditTypes.UserInvited, null, "test", null), default);
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await Store.Devices.TryEnrollAsync(code, Now, u => new DeviceRecord("dev_late", u.Id, DeviceKinds.Ed25519, "d", "{}", null, 0, Now, null),
            (u, d) => new AuditEvent(AuditTypes.DeviceEnrolled, u.Id, d.Id, d.Id), default));
    }

    [Fact]
    public async Task Racing_decisions_yield_exactly_one()
    {
        var user = await UserAsync("gail");
        var a = await PendingAsync(user);
        for (var i = 0; i < 20; i++)
        {
            await DeviceAsync(user, "dev_" + i);
        }
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            DecideAsync(a, "dev_" + i, i % 2 == 0 ? ApprovalState.Approved : ApprovalState.Denied)));
        Assert.Single(results, r => r);
        var stored = (await Store.Approvals.FindAsync(a.Id, default))!;
        Assert.NotEqual(ApprovalState.Pending, stored.State);
        var decision = Assert.Single(await Store.Approvals.ListDecisionsAsync(a.Id, default));
        Assert.Equal(stored.State, decision.Decision);
    }

    [Fact]
    public async Task A_quorum_request_is_approved_by_the_mth_distinct_approver_and_each_user_decides_once()
    {
        var owner = await UserAsync("quinn");
        var second = await UserAsync("quade");
        var third = await UserAsync("quill");
        await DeviceAsync(owner, "dev_q1");
        await DeviceAsync(owner, "dev_q1b");
        await DeviceAsync(second, "dev_q2");
        await DeviceAsync(third, "dev_q3");
        var a = await PendingAsync(owner, quorum: 2, approvers: 3);

        Assert.Equal(ApprovalState.Pending, await Store.Approvals.TryDecideAsync(a with { Quorum = 2 }, Decision(a, "dev_q1"), null, Audit(a, "dev_q1"), default));
        // The same user again, from another of their devices: one user is one approver.
        Assert.Null(await Store.Approvals.TryDecideAsync(a with { Quorum = 2 }, Decision(a, "dev_q1b"), null, Audit(a, "dev_q1b"), default));
        Assert.Equal(ApprovalState.Pending, (await Store.Approvals.FindAsync(a.Id, default))!.State);
        Assert.Equal(ApprovalState.Approved,
            await Store.Approvals.TryDecideAsync(a with { Quorum = 2 }, Decision(a, "dev_q2", user: second.Id), null, Audit(a, "dev_q2"), default));
        Assert.Null(await Store.Approvals.TryDecideAsync(a with { Quorum = 2 }, Decision(a, "dev_q3", user: third.Id), null, Audit(a, "dev_q3"), default));

        var redeemed = await Store.Approvals.TryRedeemAsync(a.Id, Now, new AuditEvent(AuditTypes.ApprovalRedeemed, owner.Id, "agt_x", a.Id), default);
        Assert.Equal(["dev_q1", "dev_q2"], redeemed!.Decisions.Select(d => d.DeviceId).Order());
        Assert.Equal([owner.Id, second.Id], redeemed.Decisions.Select(d => d.UserId).OrderBy(u => u == owner.Id ? 0 : 1));
    }

    [Fact]
    public async Task A_quorum_request_is_denied_once_approval_can_no_longer_reach_its_quorum()
    {
        var owner = await UserAsync("dora");
        var second = await UserAsync("dale");
        await DeviceAsync(owner, "dev_d1");
        await DeviceAsync(second, "dev_d2");
        var a = await PendingAsync(owner, quorum: 2, approvers: 3);
        // Two of three may still approve after one denial.
        Assert.Equal(ApprovalState.Pending, await Store.Approvals.TryDecideAsync(a with { Quorum = 2 }, Decision(a, "dev_d1", ApprovalState.Denied), null, Audit(a, "dev_d1"), default));
        Assert.Equal(ApprovalState.Denied,
            await Store.Approvals.TryDecideAsync(a with { Quorum = 2 }, Decision(a, "dev_d2", ApprovalState.Denied, second.Id), null, Audit(a, "dev_d2"), default));
        Assert.Equal(ApprovalState.Denied, (await Store.Approvals.FindAsync(a.Id, default))!.State);
        Assert.Equal(2, (await Store.Approvals.ListDecisionsAsync(a.Id, default)).Count);
    }

    [Fact]
    public async Task Racing_quorum_approvers_settle_the_request_exactly_once()
    {
        var users = new List<UserRecord>();
        for (var i = 0; i < 6; i++)
        {
            users.Add(await UserAsync("racer" + i));
            await DeviceAsync(users[i], "dev_race" + i);
        }
        var a = await PendingAsync(users[0], quorum: 3, approvers: 6);
        var results = await Task.WhenAll(users.Select((u, i) =>
            Store.Approvals.TryDecideAsync(a with { Quorum = 3 }, Decision(a, "dev_race" + i, user: u.Id), null, Audit(a, "dev_race" + i), default)));
        Assert.Single(results, r => r == ApprovalState.Approved);
        Assert.Equal(2, results.Count(r => r == ApprovalState.Pending));
        Assert.Equal(3, (await Store.Approvals.ListDecisionsAsync(a.Id, default)).Count);
    }

    private static AuditEvent Audit(ApprovalRecord a, string device) => new(AuditTypes.ApprovalApproved, a.UserId, device, a.Id);

    [Fact]
    public async Task Racing_redemptions_yield_exactly_one_and_only_after_approval()
    {
        var user = await UserAsync("hank");
        var a = await PendingAsync(user);
        await DeviceAsync(user, "dev_1");
        Assert.Null(await Store.Approvals.TryRedeemAsync(a.Id, Now, new AuditEvent(AuditTypes.ApprovalRedeemed, user.Id, "agt_x", a.Id), default));
        Assert.True(await DecideAsync(a, "dev_1"));
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ =>
            Store.Approvals.TryRedeemAsync(a.Id, Now, new AuditEvent(AuditTypes.ApprovalRedeemed, user.Id, "agt_x", a.Id), default)));
        var redeemed = Assert.Single(results, r => r is not null)!;
        Assert.Equal(ApprovalState.Redeemed, redeemed.Approval.State);
        var decision = Assert.Single(redeemed.Decisions);
        Assert.Equal("dev_1", decision.DeviceId);
        Assert.Equal("{\"kind\":\"ed25519\",\"device\":\"dev_1\"}", decision.Evidence);
        Assert.Equal(ApprovalState.Redeemed, (await Store.Approvals.FindAsync(a.Id, default))!.State);
    }

    [Fact]
    public async Task A_revoked_device_cannot_decide_and_changes_nothing()
    {
        var user = await UserAsync("rhea");
        var a = await PendingAsync(user);
        await DeviceAsync(user, "dev_r");
        Assert.True(await Store.Devices.TryRevokeAsync("dev_r", user.Id, Now, new AuditEvent(AuditTypes.DeviceRevoked, user.Id, "dev_r", "dev_r"), default));
        var (size, _) = await Store.Audit.ReadHeadAsync(default);
        Assert.False(await DecideAsync(a, "dev_r"));
        Assert.Equal(ApprovalState.Pending, (await Store.Approvals.FindAsync(a.Id, default))!.State);
        Assert.Equal(size, (await Store.Audit.ReadHeadAsync(default)).Size);
    }

    [Fact]
    public async Task A_request_past_its_expiry_cannot_be_decided_and_is_swept_once()
    {
        var user = await UserAsync("ivy");
        var a = await PendingAsync(user, lifetimeMs: 1000);
        await DeviceAsync(user, "dev_1");
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.False(await DecideAsync(a, "dev_1"));
        var sweeps = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Store.Approvals.ExpireDueAsync(Now, 100, default)));
        Assert.Equal(1, sweeps.Sum(s => s.Count(x => x.Id == a.Id)));
        Assert.Equal(ApprovalState.Expired, (await Store.Approvals.FindAsync(a.Id, default))!.State);
        Assert.Empty(await Store.Approvals.ListPendingAsync(user.Id, Now, default));
        Assert.Single(await Store.Approvals.ListHistoryAsync(user.Id, 10, default));
    }

    [Fact]
    public async Task Lookups_by_handle_hash_and_pending_lists_see_what_was_created()
    {
        var user = await UserAsync("jack");
        var a = await PendingAsync(user);
        var byHandle = (await Store.Approvals.FindByHandleAsync(a.HandleHash, default))!;
        Assert.Equal(a.Id, byHandle.Id);
        Assert.Equal(a.Payload, byHandle.Payload);
        Assert.Equal("[{\"type\":\"payment\"}]", byHandle.AuthorizationDetails);
        Assert.Equal(a.Id, Assert.Single(await Store.Approvals.ListPendingAsync(user.Id, Now, default)).Id);
    }

    [Fact]
    public async Task Devices_rename_revoke_and_sign_counts_only_move_forward()
    {
        var code = Ids.Hash("dev-" + Guid.NewGuid());
        await Store.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), "kate", false, Now), new InviteRecord(code, "", Now + 60_000, null),
            new AuditEvent(AuditTypes.UserInvited, null, "test", null), default);
        var user = (await Store.Devices.TryEnrollAsync(code, Now, u => new DeviceRecord("dev_k", u.Id, DeviceKinds.WebAuthn, "phone", "{}", [9, 9], 5, Now, null),
            (u, d) => new AuditEvent(AuditTypes.DeviceEnrolled, u.Id, d.Id, d.Id), default))!;
        Assert.Equal("dev_k", (await Store.Devices.FindByCredentialIdAsync([9, 9], default))!.Id);
        Assert.True(await Store.Devices.TryAdvanceSignCountAsync("dev_k", 6, default));
        Assert.False(await Store.Devices.TryAdvanceSignCountAsync("dev_k", 6, default));
        Assert.False(await Store.Devices.TryAdvanceSignCountAsync("dev_k", 3, default));
        Assert.True(await Store.Devices.TryRenameAsync("dev_k", user.Id, "work phone", new AuditEvent(AuditTypes.DeviceRenamed, user.Id, "dev_k", "dev_k"), default));
        Assert.False(await Store.Devices.TryRenameAsync("dev_k", "usr_other", "x", new AuditEvent(AuditTypes.DeviceRenamed, user.Id, "dev_k", "dev_k"), default));
        Assert.True(await Store.Devices.TryRevokeAsync("dev_k", user.Id, Now, new AuditEvent(AuditTypes.DeviceRevoked, user.Id, "dev_k", "dev_k"), default));
        Assert.False(await Store.Devices.TryRevokeAsync("dev_k", user.Id, Now, new AuditEvent(AuditTypes.DeviceRevoked, user.Id, "dev_k", "dev_k"), default));
        var device = (await Store.Devices.FindAsync("dev_k", default))!;
        Assert.False(device.Active);
        Assert.Equal("work phone", device.Name);
        Assert.Equal(6, device.SignCount);
    }

    [Fact]
    public async Task A_user_cannot_revoke_or_rename_another_users_device()
    {
        var alice = await UserAsync("alice-" + Guid.NewGuid().ToString("N")[..8]);
        var bob = await UserAsync("bob-" + Guid.NewGuid().ToString("N")[..8]);
        await DeviceAsync(alice, "dev_alice");
        await DeviceAsync(bob, "dev_bob");

        Assert.False(await Store.Devices.TryRevokeAsync("dev_bob", alice.Id, Now, new AuditEvent(AuditTypes.DeviceRevoked, alice.Id, "dev_alice", "dev_bob"), default));
        Assert.False(await Store.Devices.TryRenameAsync("dev_bob", alice.Id, "taken", new AuditEvent(AuditTypes.DeviceRenamed, alice.Id, "dev_alice", "dev_bob"), default));

        var device = (await Store.Devices.FindAsync("dev_bob", default))!;
        Assert.True(device.Active);
        Assert.Equal("d", device.Name);
        Assert.DoesNotContain(await Store.Audit.ReadAsync(0, 10_000, null, default), r => Encoding.UTF8.GetString(r.Entry).Contains("\"subject\":\"dev_bob\"", StringComparison.Ordinal) &&
            !Encoding.UTF8.GetString(r.Entry).Contains(AuditTypes.DeviceEnrolled, StringComparison.Ordinal));
        Assert.True(await Store.Devices.TryRevokeAsync("dev_bob", bob.Id, Now, new AuditEvent(AuditTypes.DeviceRevoked, bob.Id, "dev_bob", "dev_bob"), default));
    }

    [Fact]
    public async Task Signing_keys_rotate_by_retiring_the_current_one()
    {
        await Store.Keys.AddAsync(new SigningKeyRecord("k1", [1], [2], Now, null), Now, null, default);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Keys.AddAsync(new SigningKeyRecord("k2", [3], [4], Now, null), Now, new AuditEvent(AuditTypes.KeyRotated, null, "op", "k2"), default);
        var keys = await Store.Keys.ListAsync(default);
        Assert.Equal(["k1", "k2"], keys.Select(k => k.Kid));
        Assert.NotNull(keys[0].RetiredAt);
        Assert.Null(keys[1].RetiredAt);
    }

    [Fact]
    public async Task Meta_values_are_set_once()
    {
        Assert.Equal([1], await Store.Meta.GetOrAddAsync("m", [1], default));
        Assert.Equal([1], await Store.Meta.GetOrAddAsync("m", [2], default));
        Assert.Equal([1], await Store.Meta.GetAsync("m", default));
        Assert.Null(await Store.Meta.GetAsync("absent", default));
    }

    [Fact]
    public async Task A_passkey_challenge_is_spent_by_its_first_use_even_when_raced()
    {
        var hash = Ids.Hash("challenge-" + Guid.NewGuid());
        await Store.Devices.CreateChallengeAsync(new WebAuthnChallengeRecord(hash, "signin", null, null, Now + 60_000), Now, default);
        var takes = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Store.Devices.TryTakeChallengeAsync(hash, Now, default)));
        Assert.Single(takes, t => t is not null);
        var late = Ids.Hash("late-" + Guid.NewGuid());
        await Store.Devices.CreateChallengeAsync(new WebAuthnChallengeRecord(late, "signin", null, null, Now + 1000), Now, default);
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await Store.Devices.TryTakeChallengeAsync(late, Now, default));
    }

    [Fact]
    public async Task A_stateless_sign_in_challenge_is_spent_once_when_raced_and_kept_until_it_expires()
    {
        var user = await UserAsync("stella");
        await Store.Devices.AddAsync(new DeviceRecord("dev_st", user.Id, DeviceKinds.WebAuthn, "phone", "{}", [8], 0, Now, null),
            new AuditEvent(AuditTypes.DeviceEnrolled, user.Id, "dev_st", "dev_st"), default);
        var audit = new AuditEvent(AuditTypes.SessionCreated, user.Id, "dev_st", user.Id);
        WebSessionRecord Session() => new(Ids.Hash("st-" + Guid.NewGuid()), user.Id, "dev_st", Now, Now + 60_000);

        var raced = Ids.Hash("sc-" + Guid.NewGuid());
        Assert.False(await Store.Sessions.IsChallengeSpentAsync(raced, default));
        var sessions = Enumerable.Range(0, 6).Select(_ => Session()).ToList();
        var outcomes = await Task.WhenAll(sessions.Select(s => Store.Sessions.TrySignInSpendingAsync(raced, Now + 60_000, 2, s, Now, audit, default)));
        Assert.Single(outcomes, o => o == PasskeySignInOutcome.Opened);
        Assert.All(outcomes.Where(o => o != PasskeySignInOutcome.Opened), o => Assert.Equal(PasskeySignInOutcome.ChallengeRefused, o));
        Assert.Single(await Task.WhenAll(sessions.Select(s => Store.Sessions.FindWebSessionAsync(s.TokenHash, Now, default))), f => f is not null);
        Assert.True(await Store.Sessions.IsChallengeSpentAsync(raced, default));
        Assert.Equal(2, (await Store.Devices.FindAsync("dev_st", default))!.SignCount);

        // Refused sign-ins spend theirs too, racing or not; an expired one is refused without a write.
        var refused = Ids.Hash("sc-" + Guid.NewGuid());
        Assert.Single(await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Store.Sessions.TrySpendChallengeAsync(refused, Now + 1_000, Now, default))), spent => spent);
        Assert.Equal(PasskeySignInOutcome.ChallengeRefused, await Store.Sessions.TrySignInSpendingAsync(refused, Now + 1_000, 3, Session(), Now, audit, default));
        Assert.False(await Store.Sessions.TrySpendChallengeAsync(Ids.Hash("sc-late"), Now, Now, default));
        Assert.False(await Store.Sessions.IsChallengeSpentAsync(Ids.Hash("sc-late"), default));

        // Past its expiry a spent hash is purged by the next spending (its MAC check refuses the challenge by then anyway).
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await Store.Sessions.TrySpendChallengeAsync(Ids.Hash("sc-" + Guid.NewGuid()), Now + 1_000, Now, default));
        Assert.False(await Store.Sessions.IsChallengeSpentAsync(refused, default));
        Assert.True(await Store.Sessions.IsChallengeSpentAsync(raced, default));
        Assert.Equal(2, (await Store.Devices.FindAsync("dev_st", default))!.SignCount);
        Assert.True(AuditChain.Verify(await Store.Audit.ReadAsync(0, 1000, null, default)).Valid);
    }

    [Fact]
    public async Task A_passkey_sign_in_spends_its_challenge_moves_the_counter_and_opens_one_session_in_one_transaction_even_when_raced()
    {
        var user = await UserAsync("sigrid");
        await Store.Devices.AddAsync(new DeviceRecord("dev_s", user.Id, DeviceKinds.WebAuthn, "phone", "{}", [9], 0, Now, null),
            new AuditEvent(AuditTypes.DeviceEnrolled, user.Id, "dev_s", "dev_s"), default);
        var audit = new AuditEvent(AuditTypes.SessionCreated, user.Id, "dev_s", user.Id);
        WebSessionRecord Session() => new(Ids.Hash("st-" + Guid.NewGuid()), user.Id, "dev_s", Now, Now + 60_000);
        async Task<byte[]> ChallengeAsync(string purpose = ChallengePurposes.SignIn, long lifetime = 60_000)
        {
            var hash = Ids.Hash("ch-" + Guid.NewGuid());
            await Store.Devices.CreateChallengeAsync(new WebAuthnChallengeRecord(hash, purpose, null, null, Now + lifetime), Now, default);
            return hash;
        }

        var raced = await ChallengeAsync();
        Assert.Equal(ChallengePurposes.SignIn, await Store.Sessions.FindLiveChallengePurposeAsync(raced, Now, default));
        var sessions = Enumerable.Range(0, 6).Select(_ => Session()).ToList();
        var outcomes = await Task.WhenAll(sessions.Select(s => Store.Sessions.TrySignInAsync(raced, ChallengePurposes.SignIn, 3, s, Now, audit, default)));
        Assert.Single(outcomes, o => o == PasskeySignInOutcome.Opened);
        Assert.All(outcomes.Where(o => o != PasskeySignInOutcome.Opened), o => Assert.Equal(PasskeySignInOutcome.ChallengeRefused, o));
        var found = await Task.WhenAll(sessions.Select(s => Store.Sessions.FindWebSessionAsync(s.TokenHash, Now, default)));
        Assert.Single(found, f => f is not null);
        Assert.Null(await Store.Sessions.FindLiveChallengePurposeAsync(raced, Now, default));
        Assert.Equal(3, (await Store.Devices.FindAsync("dev_s", default))!.SignCount);

        // The counter did not advance: no session, and the challenge is spent all the same.
        var stale = await ChallengeAsync();
        var refused = Session();
        Assert.Equal(PasskeySignInOutcome.CounterRefused, await Store.Sessions.TrySignInAsync(stale, ChallengePurposes.SignIn, 3, refused, Now, audit, default));
        Assert.Null(await Store.Sessions.FindWebSessionAsync(refused.TokenHash, Now, default));
        Assert.Null(await Store.Devices.TryTakeChallengeAsync(stale, Now, default));
        Assert.Equal(3, (await Store.Devices.FindAsync("dev_s", default))!.SignCount);

        // Another ceremony's challenge, or an expired one, opens nothing.
        var register = await ChallengeAsync(ChallengePurposes.Register);
        Assert.Equal(PasskeySignInOutcome.ChallengeRefused, await Store.Sessions.TrySignInAsync(register, ChallengePurposes.SignIn, 4, Session(), Now, audit, default));
        var late = await ChallengeAsync(lifetime: 1000);
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await Store.Sessions.FindLiveChallengePurposeAsync(late, Now, default));
        Assert.Equal(PasskeySignInOutcome.ChallengeRefused, await Store.Sessions.TrySignInAsync(late, ChallengePurposes.SignIn, 4, Session(), Now, audit, default));
        Assert.Equal(3, (await Store.Devices.FindAsync("dev_s", default))!.SignCount);
        Assert.True(AuditChain.Verify(await Store.Audit.ReadAsync(0, 1000, null, default)).Valid);
    }

    [Fact]
    public async Task A_web_session_ends_at_expiry_on_sign_out_and_when_its_passkey_is_revoked()
    {
        var code = Ids.Hash("ws-" + Guid.NewGuid());
        await Store.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), "mona", false, Now), new InviteRecord(code, "", Now + 60_000, null),
            new AuditEvent(AuditTypes.UserInvited, null, "test", null), default);
        Assert.NotNull(await Store.Users.FindInviteUserAsync(code, Now, default));
        var user = (await Store.Devices.TryEnrollAsync(code, Now, u => new DeviceRecord("dev_m", u.Id, DeviceKinds.WebAuthn, "phone", "{}", [7], 0, Now, null),
            (u, d) => new AuditEvent(AuditTypes.DeviceEnrolled, u.Id, d.Id, d.Id), default))!;
        Assert.Null(await Store.Users.FindInviteUserAsync(code, Now, default));
        await Store.Devices.AddAsync(new DeviceRecord("dev_m2", user.Id, DeviceKinds.WebAuthn, "laptop", "{}", [8], 0, Now, null),
            new AuditEvent(AuditTypes.DeviceEnrolled, user.Id, "dev_m", "dev_m2"), default);
        Assert.Equal(2, (await Store.Devices.ListAsync(user.Id, default)).Count);

        var (a, b) = (Ids.Hash("s1" + Guid.NewGuid()), Ids.Hash("s2" + Guid.NewGuid()));
        await Store.Sessions.CreateWebSessionAsync(new WebSessionRecord(a, user.Id, "dev_m", Now, Now + 60_000), Now, new AuditEvent("session.created", user.Id, "dev_m", null), default);
        await Store.Sessions.CreateWebSessionAsync(new WebSessionRecord(b, user.Id, "dev_m2", Now, Now + 60_000), Now, new AuditEvent("session.created", user.Id, "dev_m2", null), default);
        Assert.NotNull(await Store.Sessions.FindWebSessionAsync(a, Now, default));
        await Store.Sessions.DeleteWebSessionAsync(a, default);
        Assert.Null(await Store.Sessions.FindWebSessionAsync(a, Now, default));
        await Store.Devices.TryRevokeAsync("dev_m2", user.Id, Now, new AuditEvent(AuditTypes.DeviceRevoked, user.Id, "dev_m", "dev_m2"), default);
        Assert.Null(await Store.Sessions.FindWebSessionAsync(b, Now, default));
        await Store.Audit.AppendAsync(new AuditEvent("device.sign_count_regression", user.Id, "dev_m", "dev_m"), default);
        Assert.True(AuditChain.Verify(await Store.Audit.ReadAsync(0, 1000, null, default)).Valid);
    }

    [Fact]
    public async Task A_user_code_binds_one_request_and_a_refresh_token_rotates_once_even_when_raced()
    {
        var user = await UserAsync("nora");
        var auth = new DeviceAuthorizationRecord(Ids.New("da"), Ids.Hash("dc" + Guid.NewGuid()), Ids.Hash("uc" + Guid.NewGuid()), "assent-cli",
            "openid session", "a terminal", null, Now, Now + 600_000);
        await Store.Sessions.CreateDeviceAuthorizationAsync(auth, null, null, default);
        Assert.Equal(auth.Id, (await Store.Sessions.FindDeviceAuthorizationByUserCodeAsync(auth.UserCodeHash, default))!.Id);

        ApprovalRecord Login() => new(Ids.New("apr"), Ids.Hash(Guid.NewGuid().ToString()), ApprovalKinds.DeviceLogin, "assent-cli", user.Id,
            "openid session", "Sign in", null, null, [1], ApprovalState.Pending, Now, Now + 600_000);
        var binds = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ =>
        {
            var a = Login();
            return Store.Sessions.TryBindUserCodeAsync(auth.Id, Now, a, new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "assent-cli", a.Id), default);
        }));
        Assert.Single(binds, b => b);
        var bound = (await Store.Sessions.FindDeviceAuthorizationAsync(auth.DeviceCodeHash, default))!;
        var login = Assert.Single(await Store.Approvals.ListPendingAsync(user.Id, Now, default));
        Assert.Equal(login.Id, bound.ApprovalId);

        await DeviceAsync(user, "dev_n");
        Assert.True(await DecideAsync(login, "dev_n"));
        RefreshTokenRecord Token(string family) => new(Ids.Hash("rt" + Guid.NewGuid()), family, user.Id, "assent-cli", "openid session", login.Id, Now, Now + 60_000);
        var first = Token("fam_1");
        var evidence = await Store.Sessions.TryStartSessionAsync(login.Id, Now, first, new AuditEvent("session.started", user.Id, "assent-cli", "fam_1"), default);
        Assert.Equal("dev_n", Assert.Single(evidence!).DeviceId);
        Assert.Null(await Store.Sessions.TryStartSessionAsync(login.Id, Now, Token("fam_2"), new AuditEvent("session.started", user.Id, "assent-cli", "fam_2"), default));

        var rotations = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Store.Sessions.TryRotateRefreshTokenAsync(first.TokenHash, "assent-cli", Now, t => Token(t.FamilyId), default)));
        Assert.Single(rotations, r => r.Outcome == RefreshOutcome.Rotated);
        // The first late racer is reuse (it revokes the family); any after it find the family revoked.
        Assert.Contains(rotations, r => r.Outcome == RefreshOutcome.Reused);
        Assert.All(rotations.Where(r => r.Outcome != RefreshOutcome.Rotated), r => Assert.Contains(r.Outcome, new[] { RefreshOutcome.Reused, RefreshOutcome.Revoked }));

        await Store.Sessions.RevokeAccessTokenAsync("jti-1", Now + 60_000, Now, new AuditEvent("access_token.revoked", user.Id, "assent-cli", "jti-1"), default);
        Assert.True(await Store.Sessions.IsAccessTokenRevokedAsync("jti-1", default));
        Assert.False(await Store.Sessions.IsAccessTokenRevokedAsync("jti-2", default));
        Assert.True(AuditChain.Verify(await Store.Audit.ReadAsync(0, 1000, null, default)).Valid);
    }

    [Fact]
    public async Task A_failing_write_fails_alone_and_the_writes_around_it_commit()
    {
        var user = await UserAsync("olga");
        Assert.True(await Store.Clients.TryCreateAsync(new ClientRecord("agt_dup", [1], "first", user.Id, "openid", Now, null),
            new AuditEvent(AuditTypes.AgentCreated, user.Id, "op", "agt_dup"), default));
        var writes = Enumerable.Range(0, 30).Select(i => i == 15
            ? Store.Clients.TryCreateAsync(new ClientRecord("agt_dup", [2], "again", user.Id, "openid", Now, null), new AuditEvent(AuditTypes.AgentCreated, user.Id, "op", "agt_dup"), default)
            : (Task)PendingAsync(user)).ToList();
        await Assert.ThrowsAnyAsync<Exception>(() => writes[15]);
        foreach (var w in writes.Where((_, i) => i != 15))
        {
            await w;
        }
        Assert.Equal(29, (await Store.Approvals.ListPendingAsync(user.Id, Now, default)).Count);
        Assert.Equal("first", (await Store.Clients.FindAsync("agt_dup", default))!.Name);
        var chain = AuditChain.Verify(await Store.Audit.ReadAsync(0, 10_000, null, default));
        Assert.True(chain.Valid, chain.Reason);
    }

    private async Task<ClientRecord?> ClientAsync(UserRecord owner, string name, string? id = null)
    {
        var client = new ClientRecord(id ?? Ids.New("agt"), [1], name, owner.Id, "openid", Now, null);
        return await Store.Clients.TryCreateAsync(client, new AuditEvent(AuditTypes.AgentCreated, owner.Id, "op", client.Id), default) ? client : null;
    }

    private async Task<ApprovalRecord> ApprovedAsync(UserRecord user, string kind)
    {
        var a = new ApprovalRecord(Ids.New("apr"), Ids.Hash(Guid.NewGuid().ToString()), kind, "assent-cli", user.Id, "openid", "allow",
            null, null, [1], ApprovalState.Pending, Now, Now + 300_000);
        await Store.Approvals.CreateAsync(a, new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "assent-cli", a.Id), default);
        await DeviceAsync(user, "dev_" + a.Id);
        Assert.True(await DecideAsync(a, "dev_" + a.Id));
        return a;
    }

    [Fact]
    public async Task An_owners_active_agents_have_distinct_names_compared_without_case()
    {
        var owner = await UserAsync("nina");
        var other = await UserAsync("noah");

        var first = await ClientAsync(owner, "Deploy-Bot");
        Assert.NotNull(first);
        Assert.Null(await ClientAsync(owner, "deploy-bot"));
        Assert.NotNull(await ClientAsync(other, "deploy-bot"));
        Assert.Equal(first!.Id, (await Store.Clients.FindActiveByNameAsync(owner.Id, "DEPLOY-BOT", default))?.Id);
        Assert.Null(await Store.Clients.FindActiveByNameAsync(owner.Id, "deploy-bot-2", default));

        // A registration approved for a name taken meanwhile creates nothing and stays approved.
        var registration = await ApprovedAsync(owner, ApprovalKinds.AgentRegistration);
        Assert.Equal(AgentCreation.NameTaken, await Store.Clients.TryCreateFromRegistrationAsync(registration.Id, Now,
            new ClientRecord("agt_r1", [1], "DEPLOY-bot", owner.Id, "openid", Now, null), new AuditEvent(AuditTypes.AgentCreated, owner.Id, "op", "agt_r1"), default));
        Assert.Equal(ApprovalState.Approved, (await Store.Approvals.FindAsync(registration.Id, default))!.State);
        Assert.Null(await Store.Clients.FindAsync("agt_r1", default));
        Assert.Equal(AgentCreation.Created, await Store.Clients.TryCreateFromRegistrationAsync(registration.Id, Now,
            new ClientRecord("agt_r1", [1], "ci-bot", owner.Id, "openid", Now, null), new AuditEvent(AuditTypes.AgentCreated, owner.Id, "op", "agt_r1"), default));
        Assert.Equal(AgentCreation.AlreadyRedeemed, await Store.Clients.TryCreateFromRegistrationAsync(registration.Id, Now,
            new ClientRecord("agt_r2", [1], "other-bot", owner.Id, "openid", Now, null), new AuditEvent(AuditTypes.AgentCreated, owner.Id, "op", "agt_r2"), default));

        // A revoked agent's name is free again.
        await Store.Database.WriteAsync(w => w.ExecAsync("UPDATE clients SET revoked_at = $2 WHERE id = $1", first.Id, Now), default);
        Assert.NotNull(await ClientAsync(owner, "deploy-BOT"));
    }

    [Fact]
    public async Task A_consent_exists_only_by_redeeming_the_users_approved_consent_request_once_and_ends_when_revoked()
    {
        var owner = await UserAsync("olive");
        var user = await UserAsync("otto");
        var agent = (await ClientAsync(owner, "helper"))!;
        var pending = await PendingAsync(user);
        ConsentRecord For(ApprovalRecord a) => new(a.Id, user.Id, agent.Id, Now, null);
        AuditEvent Granted() => new(AuditTypes.ConsentGranted, user.Id, "dev", agent.Id);

        // Not a consent request, or not approved: nothing.
        Assert.False(await Store.Consents.TryGrantFromApprovalAsync(For(pending), Now, Granted(), default));
        var ciba = await ApprovedAsync(user, ApprovalKinds.Ciba);
        Assert.False(await Store.Consents.TryGrantFromApprovalAsync(For(ciba), Now, Granted(), default));
        Assert.False(await Store.Consents.IsGrantedAsync(user.Id, agent.Id, default));

        var consent = await ApprovedAsync(user, ApprovalKinds.AgentConsent);
        var raced = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Store.Consents.TryGrantFromApprovalAsync(For(consent), Now, Granted(), default)));
        Assert.Single(raced, r => r);
        Assert.True(await Store.Consents.IsGrantedAsync(user.Id, agent.Id, default));
        Assert.False(await Store.Consents.IsGrantedAsync(owner.Id, agent.Id, default));
        Assert.Equal(ApprovalState.Redeemed, (await Store.Approvals.FindAsync(consent.Id, default))!.State);
        // A second approved request while one is active keeps the one.
        var twice = await ApprovedAsync(user, ApprovalKinds.AgentConsent);
        Assert.True(await Store.Consents.TryGrantFromApprovalAsync(For(twice), Now, Granted(), default));
        Assert.Equal(consent.Id, Assert.Single(await Store.Consents.ListAsync(user.Id, default)).ApprovalId);

        Assert.True(await Store.Consents.TryRevokeAsync(user.Id, agent.Id, Now, new AuditEvent(AuditTypes.ConsentRevoked, user.Id, "dev", agent.Id), default));
        Assert.False(await Store.Consents.TryRevokeAsync(user.Id, agent.Id, Now, new AuditEvent(AuditTypes.ConsentRevoked, user.Id, "dev", agent.Id), default));
        Assert.False(await Store.Consents.IsGrantedAsync(user.Id, agent.Id, default));
        Clock.Advance(TimeSpan.FromSeconds(1));
        var again = await ApprovedAsync(user, ApprovalKinds.AgentConsent);
        Assert.True(await Store.Consents.TryGrantFromApprovalAsync(For(again), Now, Granted(), default));
        Assert.True(await Store.Consents.IsGrantedAsync(user.Id, agent.Id, default));
        var list = await Store.Consents.ListAsync(user.Id, default);
        Assert.Equal([false, true], list.Select(c => c.Active));
        Assert.Equal([consent.Id, again.Id], list.Select(c => c.ApprovalId));
        var chain = AuditChain.Verify(await Store.Audit.ReadAsync(0, 10_000, null, default));
        Assert.True(chain.Valid, chain.Reason);
    }

    [Fact]
    public async Task A_device_request_nonce_is_accepted_once_and_pruned_once_it_expires()
    {
        Assert.True(await Store.Devices.TryUseNonceAsync("dev_a", "nonce-0123456789abcdef", Now + 1000, default));
        Assert.False(await Store.Devices.TryUseNonceAsync("dev_a", "nonce-0123456789abcdef", Now + 1000, default));
        Assert.True(await Store.Devices.TryUseNonceAsync("dev_b", "nonce-0123456789abcdef", Now + 60_000, default));

        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, await Store.PruneExpiredAsync(Now, default));
        Assert.False(await Store.Devices.TryUseNonceAsync("dev_b", "nonce-0123456789abcdef", Now + 60_000, default));
    }

    [Fact]
    public async Task Pruning_removes_only_expired_sign_in_rows()
    {
        var live = Ids.Hash("live" + Guid.NewGuid());
        var dead = Ids.Hash("dead" + Guid.NewGuid());
        await Store.Devices.CreateChallengeAsync(new WebAuthnChallengeRecord(dead, "signin", null, null, Now + 1000), Now, default);
        await Store.Devices.CreateChallengeAsync(new WebAuthnChallengeRecord(live, "signin", null, null, Now + 60_000), Now, default);
        await Store.Sessions.RevokeAccessTokenAsync("old-jti", Now + 1000, Now, new AuditEvent("access_token.revoked", null, "t", "old-jti"), default);
        await Store.Sessions.RevokeAccessTokenAsync("new-jti", Now + 60_000, Now, new AuditEvent("access_token.revoked", null, "t", "new-jti"), default);
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(2, await Store.PruneExpiredAsync(Now, default));
        Assert.False(await Store.Sessions.IsAccessTokenRevokedAsync("old-jti", default));
        Assert.True(await Store.Sessions.IsAccessTokenRevokedAsync("new-jti", default));
        Assert.NotNull(await Store.Devices.TryTakeChallengeAsync(live, Now, default));
    }

    private ApprovalRecord NewPending(UserRecord user, string clientId, long lifetimeMs = 300_000) =>
        new(Ids.New("apr"), Ids.Hash(Guid.NewGuid().ToString()), ApprovalKinds.Ciba, clientId, user.Id, "openid", "hello", null, null, [1, 2, 3],
            ApprovalState.Pending, Now, Now + lifetimeMs);

    private Task<bool> TryCreateAsync(ApprovalRecord a, int maxPending) =>
        Store.Approvals.TryCreateAsync(a, maxPending, null, new AuditEvent(AuditTypes.ApprovalCreated, a.UserId, a.ClientId, a.Id), default);

    [Fact]
    public async Task Each_transition_is_audited_once_and_fans_out_its_webhook_event_once()
    {
        var user = await UserAsync("tess");
        var peer = await UserAsync("theo");
        await DeviceAsync(user, "dev_tess");
        await Store.Webhooks.CreateEndpointAsync(new WebhookEndpointRecord("whk_tess", user.Id, "https://hooks.example/tess", "*", new byte[32], Now, 0,
            null, null, null, null, null), ["*"], new AuditEvent(AuditTypes.WebhookCreated, user.Id, user.Id, "whk_tess"), default);

        var approved = await PendingAsync(user);
        Assert.True(await DecideAsync(approved, "dev_tess"));
        var cancelled = NewPending(user, "agt_x");
        Assert.True(await Store.Approvals.TryCreateAsync(cancelled, 10, [7, 7, 7], new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "agt_x", cancelled.Id), default));
        Assert.Equal(new byte[] { 7, 7, 7 }, await Store.Webhooks.FindCibaNotificationAsync(cancelled.Id, default));
        Assert.True(await Store.Approvals.TryCancelAsync(cancelled, Now, new AuditEvent(AuditTypes.ApprovalCancelled, user.Id, "agt_x", cancelled.Id), default));
        Assert.False(await Store.Approvals.TryCancelAsync(cancelled, Now, new AuditEvent(AuditTypes.ApprovalCancelled, user.Id, "agt_x", cancelled.Id), default));
        var quorum = NewPending(user, "agt_x", lifetimeMs: 1000) with { Quorum = 2, Approvers = 2, EligibleUsers = [peer.Id, user.Id] };
        Assert.True(await Store.Approvals.TryCreateAsync(quorum, 10, null, new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "agt_x", quorum.Id), default));
        Assert.Null(await Store.Webhooks.FindCibaNotificationAsync(quorum.Id, default));
        var direct = await PendingAsync(user, lifetimeMs: 1000);
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(new[] { direct.Id, quorum.Id }.Order(StringComparer.Ordinal), (await Store.Approvals.ExpireDueAsync(Now, 100, default)).Select(a => a.Id).Order(StringComparer.Ordinal));
        Assert.Null(await Store.Approvals.TryRedeemAsync(direct.Id, Now, new AuditEvent(AuditTypes.ApprovalRedeemed, user.Id, "agt_x", direct.Id), default));
        Assert.NotNull(await Store.Approvals.TryRedeemAsync(approved.Id, Now, new AuditEvent(AuditTypes.ApprovalRedeemed, user.Id, "agt_x", approved.Id), default));
        Assert.Equal(new[] { user.Id, peer.Id }.Order(StringComparer.Ordinal), await Store.Approvals.ListEligibleAsync(quorum.Id, default));
        Assert.Empty(await Store.Approvals.ListEligibleAsync(approved.Id, default));

        var audited = (await Store.Audit.ReadAsync(0, 10_000, null, default))
            .Select(r => JsonDocument.Parse(r.Entry).RootElement)
            .Select(e => (Type: e.GetProperty("type").GetString(), Subject: e.GetProperty("subject").GetString()))
            .Where(e => e.Type!.StartsWith("approval.", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(new[]
        {
            (AuditTypes.ApprovalCreated, approved.Id), (AuditTypes.ApprovalApproved, approved.Id), (AuditTypes.ApprovalRedeemed, approved.Id),
            (AuditTypes.ApprovalCreated, cancelled.Id), (AuditTypes.ApprovalCancelled, cancelled.Id),
            (AuditTypes.ApprovalCreated, quorum.Id), (AuditTypes.ApprovalExpired, quorum.Id),
            (AuditTypes.ApprovalCreated, direct.Id), (AuditTypes.ApprovalExpired, direct.Id),
        }.Select(e => ((string?)e.Item1, (string?)e.Item2)).Order(), audited.Select(e => (e.Type, e.Subject)));

        var delivered = (await Store.Webhooks.ListDeliveriesAsync("whk_tess", long.MaxValue, 100, default)).Select(d => (d.Type, d.Subject)).Order();
        Assert.Equal(new[]
        {
            ("approval.approved", approved.Id), ("approval.cancelled", cancelled.Id), ("approval.expired", quorum.Id), ("approval.expired", direct.Id),
        }.Order(), delivered);
    }

    [Fact]
    public async Task An_event_reaches_an_endpoint_or_a_notified_agent_that_its_own_transaction_added_before_it()
    {
        // SQLite asks once per transaction whether any event may have a delivery, and skips the fan-out when none may
        // (docs/storage.md §9); a statement of the same transaction that turns an agent to ping (or back), or adds an
        // endpoint, must count for the events after it. Each transaction starts with nobody listening.
        var user = await UserAsync("lena");
        var agent = (await ClientAsync(user, "lena-bot"))!;
        var endpoint = new WebhookEndpointRecord("whk_lena", user.Id, "https://hooks.example/lena", "*", new byte[32], Now, 0, null, null, null, null, null);
        OutboxEvent Approved(string subject) => new(Ids.Ordered("msg", Clock.GetUtcNow()), "approval.approved", subject, user.Id, agent.Id, Now, true);
        var toAgent = await Store.Database.WriteAsync(async w =>
        {
            await w.ExecAsync("INSERT INTO ciba_notifications(approval_id, sealed) VALUES($1, $2)", "apr_lena1", new byte[] { 1 });
            var before = await w.EmitAsync(Store.Database.Outbox, Approved("apr_lena1"));
            await w.ExecAsync("UPDATE clients SET delivery_mode = 'ping', notification_endpoint = $2 WHERE id = $1", agent.Id, "https://agent.example/cb");
            var pinged = await w.EmitAsync(Store.Database.Outbox, Approved("apr_lena1"));
            await w.ExecAsync("UPDATE clients SET delivery_mode = 'poll', notification_endpoint = NULL WHERE id = $1", agent.Id);
            var polling = await w.EmitAsync(Store.Database.Outbox, Approved("apr_lena1"));
            return (before, pinged, polling);
        }, default);
        var toEndpoint = await Store.Database.WriteAsync(async w =>
        {
            var before = await w.EmitAsync(Store.Database.Outbox, Approved("apr_lena2"));
            await WebhookStore.InsertEndpointAsync(w, endpoint, ["*"]);
            var after = await w.EmitAsync(Store.Database.Outbox, Approved("apr_lena3"));
            return (before, after);
        }, default);

        Assert.Equal((0, 1, 0), toAgent);
        Assert.Equal((0, 1), toEndpoint);
        Assert.Equal("apr_lena3", Assert.Single(await Store.Webhooks.ListDeliveriesAsync(endpoint.Id, long.MaxValue, 100, default)).Subject);
    }

    [Fact]
    public async Task Quorum_tallies_count_only_their_own_request_and_a_passkey_decision_moves_the_counter_with_it()
    {
        var user = await UserAsync("uma");
        var peer = await UserAsync("ugo");
        await DeviceAsync(user, "dev_uma");
        var first = NewPending(user, "agt_x") with { Quorum = 2, Approvers = 2, EligibleUsers = [user.Id, peer.Id] };
        var second = NewPending(user, "agt_x") with { Quorum = 2, Approvers = 2, EligibleUsers = [user.Id, peer.Id] };
        // The uncapped create writes the eligible users too.
        await Store.Approvals.CreateAsync(first, new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "agt_x", first.Id), default);
        await Store.Approvals.CreateAsync(second, new AuditEvent(AuditTypes.ApprovalCreated, user.Id, "agt_x", second.Id), default);
        Assert.Equal(new[] { user.Id, peer.Id }.Order(StringComparer.Ordinal), await Store.Approvals.ListEligibleAsync(first.Id, default));

        // One approval on each: each request has one of two, whatever the other holds.
        Assert.Equal(ApprovalState.Pending, await Store.Approvals.TryDecideAsync(first, Decision(first, "dev_uma"), null, Audit(first, "dev_uma"), default));
        Assert.Equal(ApprovalState.Pending, await Store.Approvals.TryDecideAsync(second, Decision(second, "dev_uma"), null, Audit(second, "dev_uma"), default));
        var audited = (await Store.Audit.ReadAsync(0, 10_000, null, default)).Select(r => JsonDocument.Parse(r.Entry).RootElement).ToList();
        Assert.Single(audited, e => e.GetProperty("type").GetString() == AuditTypes.ApprovalApproved && e.GetProperty("subject").GetString() == second.Id);

        // A request nobody subscribed to is still cancelled: the outcome does not depend on deliveries.
        var unwatched = await PendingAsync(peer);
        Assert.True(await Store.Approvals.TryCancelAsync(unwatched, Now, new AuditEvent(AuditTypes.ApprovalCancelled, peer.Id, "agt_x", unwatched.Id), default));

        // The sweeper is the actor of an expiry.
        var lapsing = await PendingAsync(peer, lifetimeMs: 1000);
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Contains(lapsing.Id, (await Store.Approvals.ExpireDueAsync(Now, 100, default)).Select(a => a.Id));
        var expiry = Assert.Single((await Store.Audit.ReadAsync(0, 10_000, null, default)).Select(r => JsonDocument.Parse(r.Entry).RootElement),
            e => e.GetProperty("type").GetString() == AuditTypes.ApprovalExpired && e.GetProperty("subject").GetString() == lapsing.Id);
        Assert.Equal("system", expiry.GetProperty("actor").GetString());

        // A passkey's counter moves with its decision, and a decision with a counter that does not advance is not taken.
        await Store.Devices.AddAsync(new DeviceRecord("dev_pk_uma", user.Id, DeviceKinds.WebAuthn, "passkey", "{}", [1, 2, 3], 4, Now, null),
            new AuditEvent(AuditTypes.DeviceEnrolled, user.Id, "dev_pk_uma", "dev_pk_uma"), default);
        var stale = await PendingAsync(user);
        Assert.Null(await Store.Approvals.TryDecideAsync(stale, Decision(stale, "dev_pk_uma"), 4, Audit(stale, "dev_pk_uma"), default));
        Assert.Equal(ApprovalState.Pending, (await Store.Approvals.FindAsync(stale.Id, default))!.State);
        Assert.Equal(ApprovalState.Approved, await Store.Approvals.TryDecideAsync(stale, Decision(stale, "dev_pk_uma"), 9, Audit(stale, "dev_pk_uma"), default));
        Assert.Equal(9, (await Store.Devices.FindAsync("dev_pk_uma", default))!.SignCount);
    }

    [Fact]
    public async Task A_capped_create_refuses_a_request_over_the_clients_cap_and_counts_only_its_unexpired_pending_ones()
    {
        var user = await UserAsync("mona");
        var other = await UserAsync("nils");
        var shortLived = NewPending(user, "agt_a", lifetimeMs: 1000);
        Assert.True(await TryCreateAsync(shortLived, 3));
        var kept = NewPending(user, "agt_a");
        Assert.True(await TryCreateAsync(kept, 3));
        Assert.True(await TryCreateAsync(NewPending(user, "agt_a"), 3));
        var refused = NewPending(user, "agt_a");
        Assert.False(await TryCreateAsync(refused, 3));
        Assert.Null(await Store.Approvals.FindAsync(refused.Id, default));
        Assert.DoesNotContain(await Store.Audit.ReadAsync(0, 10_000, null, default),
            r => JsonDocument.Parse(r.Entry).RootElement.GetProperty("subject").GetString() == refused.Id);

        // Per client and user: another agent, or the same agent for another user, still creates.
        Assert.True(await TryCreateAsync(NewPending(user, "agt_b"), 3));
        Assert.True(await TryCreateAsync(NewPending(other, "agt_a"), 3));
        Assert.Equal(shortLived.ExpiresAt, await Store.Approvals.NextPendingExpiryAsync("agt_a", user.Id, Now, default));
        Assert.Null(await Store.Approvals.NextPendingExpiryAsync("agt_c", user.Id, Now, default));

        // A decided request, or one past its expiry (swept or not), no longer counts.
        await DeviceAsync(user, "dev_mona");
        Assert.True(await DecideAsync(kept, "dev_mona"));
        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await TryCreateAsync(NewPending(user, "agt_a"), 3));
        Assert.True(await TryCreateAsync(NewPending(user, "agt_a"), 3));
        Assert.False(await TryCreateAsync(NewPending(user, "agt_a"), 3));
    }

    [Fact]
    public async Task Capped_creates_raced_for_one_client_and_user_stay_at_the_cap_on_one_writer()
    {
        var user = await UserAsync("olga");
        var created = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => TryCreateAsync(NewPending(user, "agt_race"), 5)));
        var pending = (await Store.Approvals.ListPendingAsync(user.Id, Now, default)).Count;
        Assert.Equal(pending, created.Count(c => c));
        // Exact where one writer commits (SQLite, one PostgreSQL batch); on PostgreSQL, racing commits may pass it together.
        Assert.InRange(pending, 5, Store.Engine == "sqlite" ? 5 : 30);
    }

    [Fact]
    public async Task Rate_counters_count_each_key_in_its_window_start_again_in_the_next_and_keep_a_lockout_until_it_ends()
    {
        const long window = 60_000;
        var start = Now - Now % window;
        Assert.Equal(new long[] { 1, 1 }, (await Store.RateCounters.CountAsync(["a", "b"], start, start + window, default)).OrderBy(c => c.Key).Select(c => c.Count));
        var counted = await Store.RateCounters.CountAsync(["a"], start, start + window, default);
        Assert.Equal(new RateCount("a", 2, 0), Assert.Single(counted));
        Assert.Equal(3, (await Store.RateCounters.CountAsync(["b", "a"], start, start + window, default)).Single(c => c.Key == "a").Count);

        await Store.RateCounters.LockAsync("a", start + 10 * window, new AuditEvent(AuditTypes.LimitLockedOut, null, "system", "a"), default);
        // The next window counts from 1 again; the lockout stays.
        var next = await Store.RateCounters.CountAsync(["a"], start + window, start + 2 * window, default);
        Assert.Equal(new RateCount("a", 1, start + 10 * window), Assert.Single(next));
        Assert.Single(await Store.Audit.ReadAsync(0, 10_000, null, default),
            r => JsonDocument.Parse(r.Entry).RootElement.GetProperty("type").GetString() == AuditTypes.LimitLockedOut);

        // Pruned once both its window and its lockout are over: "b" after its window, "a" only after its lockout (with "b" again).
        Assert.Equal(0, await Store.PruneExpiredAsync(start + window - 1, default));
        Assert.Equal(1, await Store.PruneExpiredAsync(start + 2 * window, default));
        Assert.Equal(new RateCount("b", 1, 0), Assert.Single(await Store.RateCounters.CountAsync(["b"], start + 2 * window, start + 3 * window, default)));
        Assert.Equal(2, await Store.PruneExpiredAsync(start + 10 * window, default));
        Assert.Equal(new RateCount("a", 1, 0), Assert.Single(await Store.RateCounters.CountAsync(["a"], start + 11 * window, start + 12 * window, default)));
    }

    [Fact]
    public async Task Racing_counts_of_one_key_each_get_their_own_number()
    {
        var counts = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Store.RateCounters.CountAsync(["hot"], 0, long.MaxValue, default)));
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), counts.Select(c => c[0].Count).Order());
    }

    [Fact]
    public async Task Concurrent_writes_keep_one_verifiable_audit_chain()
    {
        var user = await UserAsync("liam");
        await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => PendingAsync(user)));
        var rows = await Store.Audit.ReadAsync(0, 10_000, null, default);
        var result = AuditChain.Verify(rows);
        Assert.True(result.Valid, result.Reason);
        var (size, head) = await Store.Audit.ReadHeadAsync(default);
        Assert.Equal(rows.Count, size);
        Assert.Equal(result.Head, head);
        Assert.All(await Store.Audit.ReadAsync(0, 10_000, user.Id, default),
            r => Assert.Equal(user.Id, JsonDocument.Parse(r.Entry).RootElement.GetProperty("user").GetString()));
    }

    private PushSubscriptionRecord Subscription(UserRecord user, string device, string endpoint, byte auth = 1) =>
        new(Ids.New("psb"), user.Id, device, endpoint, [4, 1, 2], Enumerable.Repeat(auth, 16).ToArray(), Now);

    private static AuditEvent Subscribed(UserRecord user) => new(AuditTypes.PushSubscribed, user.Id, "dev", null);

    [Fact]
    public async Task A_push_subscription_is_stored_refreshed_by_its_endpoint_and_capped_per_user()
    {
        var user = await UserAsync("push-cap");
        await DeviceAsync(user, "dev_push_cap");
        var first = Subscription(user, "dev_push_cap", "https://push.example/a");
        Assert.Equal((PushSubscribeOutcome.Created, first.Id), await Store.PushSubscriptions.SubscribeAsync(first, 2, Subscribed(user), default));
        // The same endpoint again: the same row, with the new keys.
        var again = Subscription(user, "dev_push_cap", "https://push.example/a", auth: 2);
        Assert.Equal((PushSubscribeOutcome.Updated, first.Id), await Store.PushSubscriptions.SubscribeAsync(again, 2, Subscribed(user), default));
        Assert.Equal(PushSubscribeOutcome.Created,
            (await Store.PushSubscriptions.SubscribeAsync(Subscription(user, "dev_push_cap", "https://push.example/b"), 2, Subscribed(user), default)).Outcome);
        Assert.Equal(PushSubscribeOutcome.OverLimit,
            (await Store.PushSubscriptions.SubscribeAsync(Subscription(user, "dev_push_cap", "https://push.example/c"), 2, Subscribed(user), default)).Outcome);

        var listed = await Store.PushSubscriptions.ListActiveAsync(user.Id, default);
        Assert.Equal(["https://push.example/a", "https://push.example/b"], listed.Select(s => s.Endpoint).Order().ToArray());
        Assert.Equal(again.Auth, listed.Single(s => s.Id == first.Id).Auth);
    }

    [Fact]
    public async Task Racing_subscribes_of_one_user_never_pass_the_cap()
    {
        var user = await UserAsync("push-race");
        await DeviceAsync(user, "dev_push_race");
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
            Store.PushSubscriptions.SubscribeAsync(Subscription(user, "dev_push_race", $"https://push.example/race/{i}"), 5, Subscribed(user), default)));
        Assert.Equal(5, outcomes.Count(o => o.Outcome == PushSubscribeOutcome.Created));
        Assert.Equal(5, (await Store.PushSubscriptions.ListActiveAsync(user.Id, default)).Count);
    }

    [Fact]
    public async Task A_revoked_devices_push_subscriptions_receive_nothing_and_a_gone_one_is_dropped_only_as_it_was()
    {
        var user = await UserAsync("push-drop");
        await DeviceAsync(user, "dev_push_kept");
        await DeviceAsync(user, "dev_push_revoked");
        var kept = Subscription(user, "dev_push_kept", "https://push.example/kept");
        await Store.PushSubscriptions.SubscribeAsync(kept, 10, Subscribed(user), default);
        await Store.PushSubscriptions.SubscribeAsync(Subscription(user, "dev_push_revoked", "https://push.example/revoked"), 10, Subscribed(user), default);
        await Store.Devices.TryRevokeAsync("dev_push_revoked", user.Id, Now, new AuditEvent(AuditTypes.DeviceRevoked, user.Id, "dev_push_kept", "dev_push_revoked"), default);

        Assert.Equal(kept.Id, Assert.Single(await Store.PushSubscriptions.ListActiveAsync(user.Id, default)).Id);

        var dropped = new AuditEvent(AuditTypes.PushDropped, user.Id, "system", kept.Id);
        // Re-registered with new keys since the failed push: that answer was about the old subscription.
        Assert.False(await Store.PushSubscriptions.TryDropAsync(kept.Id, kept.Endpoint, Enumerable.Repeat((byte)9, 16).ToArray(), dropped, default));
        Assert.True(await Store.PushSubscriptions.TryDropAsync(kept.Id, kept.Endpoint, kept.Auth, dropped, default));
        Assert.Empty(await Store.PushSubscriptions.ListActiveAsync(user.Id, default));
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresStoreContract(PostgresCluster cluster) : StoreContract
{
    internal override async Task<AssentStore> OpenAsync() =>
        new(new PostgresDatabase(NpgsqlDataSource.Create(PostgresDatabase.ToConnectionString(await cluster.CreateDatabaseAsync())), Clock));
}
