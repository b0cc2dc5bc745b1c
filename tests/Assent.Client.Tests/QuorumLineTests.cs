using Assent.Client.Authenticator;
using Assent.Protocol.Messages;

namespace Assent.Client.Tests;

/// <summary>The line a device shows for a request several users decide (docs/policies.md §3), as <c>assent device watch</c> prints it.</summary>
public sealed class QuorumLineTests
{
    private static PendingRequest With(QuorumProgress? quorum) => new("apr_1", "ciba", "pending", [], null, Policy: "treasury-large@1", Quorum: quorum);

    [Fact]
    public void One_of_two_approved_names_who_approved_and_who_is_awaited()
    {
        Assert.Equal("1 of 2 approved (alice), waiting for bob", With(new QuorumProgress(2, 2, ["alice"], ["bob"], [])).QuorumLine);
        Assert.Equal("0 of 2 approved, waiting for alice, bob, carol", With(new QuorumProgress(2, 3, [], ["alice", "bob", "carol"], [])).QuorumLine);
        Assert.Equal("1 of 2 approved (bob), waiting for alice, denied by carol", With(new QuorumProgress(2, 3, ["bob"], ["alice"], ["carol"])).QuorumLine);
    }

    [Fact]
    public void A_request_its_own_user_decides_alone_has_no_quorum_line()
    {
        Assert.Null(With(null).QuorumLine);
    }
}
