using Assent.Client.Verification;
using Assent.Protocol.Approvals;
using Assent.Server.Approvals;

namespace Assent.Client.Tests;

/// <summary><see cref="VerifyOptions.RequiredApprovers"/> (docs/tokens.md §9.1): M distinct users' devices, each checked against their DID document.</summary>
[Collection(IssuersCollection.Name)]
public sealed class QuorumVerifierTests(Issuers issuers)
{
    private static async Task DecideWhenPendingAsync(TestUser user, string decision)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < until)
        {
            if ((await user.Device.ListPendingAsync(CancellationToken.None)) is { Count: > 0 } pending)
            {
                await user.Device.DecideAsync(Assert.Single(pending), decision, CancellationToken.None);
                return;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException("no pending request appeared");
    }

    [Fact]
    public async Task A_two_of_three_token_proves_two_distinct_approvers_and_no_more()
    {
        var server = issuers.A;
        var (alice, bob, carol) = (await server.UserAsync(), await server.UserAsync(), await server.UserAsync());
        await server.Service<PolicyBook>().AddAsync(new PolicyDraft("q" + Guid.NewGuid().ToString("N")[..10], 10, alice.ClientId, "approve:action", null, null,
            null, null, "quorum", 2, [alice.Handle, bob.Handle, carol.Handle]), "test", CancellationToken.None);
        using var client = server.ClientFor(alice);
        var approving = Task.WhenAll(DecideWhenPendingAsync(bob, Decisions.Approve), DecideWhenPendingAsync(carol, Decisions.Approve));
        var approval = await client.ApproveAsync("Move 12,500 USD to the reserve", new() { Scope = "approve:action" }, CancellationToken.None);
        await approving;
        Assert.True(approval.Approved);

        using var verifier = new TokenVerifier(server.Issuer);
        var verified = await verifier.VerifyAsync(approval.AccessToken!, new() { Scope = "approve:action", RequiredApprovers = 2, CheckReplay = false },
            CancellationToken.None);
        Assert.Equal(alice.Did, verified.Subject);
        Assert.Equal(new[] { bob.Did, carol.Did }.Order(), verified.Approvers.Order());
        Assert.Equal(2, verified.EvidenceDevices.Count);

        var e = await Assert.ThrowsAsync<TokenVerificationException>(() =>
            verifier.VerifyAsync(approval.AccessToken!, new() { Scope = "approve:action", RequiredApprovers = 3, CheckReplay = false }, CancellationToken.None));
        Assert.Equal(TokenErrors.EvidenceMismatch, e.Code);

        // Once Carol's device is revoked her signature no longer verifies against her DID document: the token proves no quorum.
        await carol.Device.RevokeDeviceAsync(carol.DeviceId, CancellationToken.None);
        using var fresh = new TokenVerifier(server.Issuer);
        e = await Assert.ThrowsAsync<TokenVerificationException>(() =>
            fresh.VerifyAsync(approval.AccessToken!, new() { Scope = "approve:action", RequiredApprovers = 2, CheckReplay = false }, CancellationToken.None));
        Assert.Equal(TokenErrors.EvidenceMismatch, e.Code);
    }

    [Fact]
    public async Task A_single_approver_token_does_not_meet_a_required_quorum_of_two()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        var human = Human.DecideAsync(user, Decisions.Approve);
        var approval = await client.ApproveAsync("Rotate the keys", new() { Scope = "approve:action" }, CancellationToken.None);
        await human;
        using var verifier = new TokenVerifier(issuers.A.Issuer);
        Assert.Single((await verifier.VerifyAsync(approval.AccessToken!, new() { Scope = "approve:action", RequiredApprovers = 1, CheckReplay = false },
            CancellationToken.None)).Approvers);
        var e = await Assert.ThrowsAsync<TokenVerificationException>(() =>
            verifier.VerifyAsync(approval.AccessToken!, new() { Scope = "approve:action", RequiredApprovers = 2, CheckReplay = false }, CancellationToken.None));
        Assert.Equal(TokenErrors.EvidenceMismatch, e.Code);
        Assert.Equal("2 distinct approvers are required; the evidence proves 1", e.Message);
    }
}
