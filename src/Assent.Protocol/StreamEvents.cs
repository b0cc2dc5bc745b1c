namespace Assent.Protocol;

/// <summary>The Server-Sent Events a device stream carries (docs/http-api.md §11).</summary>
public static class StreamEvents
{
    /// <summary>A request waiting for the user's decision; data is the request's view.</summary>
    public const string Approval = "approval";

    /// <summary>A request that was decided, expired or cancelled; data is <c>{id, state}</c>.</summary>
    public const string Settled = "settled";
}
