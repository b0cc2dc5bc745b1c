namespace Assent.Server.Storage;

/// <summary>
/// Where a multi-node engine reports what other nodes did (PostgreSQL LISTEN/NOTIFY), so storage never needs to
/// know who listens. The approval hub implements it: it wakes held token requests and feeds device streams.
/// </summary>
internal interface IApprovalEvents
{
    /// <summary>Whether anyone here wants to hear of <paramref name="userId"/>'s new requests (an open device stream).</summary>
    bool Wants(string userId);

    /// <summary>A request was created on another node.</summary>
    void Created(ApprovalRecord approval);

    /// <summary>A request settled on another node: approved, denied, expired or cancelled (<see cref="StateNames"/>).</summary>
    void Settled(string approvalId, string userId, string state);

    /// <summary>A shared request settled on another node: each of <paramref name="userIds"/> (its user and its approvers) hears of it.</summary>
    void Settled(string approvalId, IEnumerable<string> userIds, string state);

    /// <summary>News may have been missed (the notification connection was lost): everyone waiting must look again.</summary>
    void Resync();
}
