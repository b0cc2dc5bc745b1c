namespace Assent.Server.Approvals;

/// <summary>
/// A feature that acts on a request created on this node, once, after it is stored (e.g. Web Push to the approver's
/// phones). Called on the request path: an implementation only queues and returns at once. A request created on
/// another node reaches that node's listeners, never these.
/// </summary>
internal interface INewRequestListener
{
    void Created(Storage.ApprovalRecord approval, string clientName);
}
