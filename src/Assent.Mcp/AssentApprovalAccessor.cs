using Assent.Client.Verification;

namespace Assent.Mcp;

/// <summary>The approval a gated tool call runs under: the verified token and the access token itself.</summary>
/// <param name="Token">The verified claims: approver (<c>Subject</c>), <c>txn</c>, binding message, details, evidence device.</param>
/// <param name="AccessToken">The access token, for passing on to a service that verifies it itself.</param>
public sealed record AssentToolApproval(VerifiedToken Token, string AccessToken);

/// <summary>
/// Gives a gated tool the approval it runs under, as <c>IHttpContextAccessor</c> gives the request: take it as a
/// tool parameter (it is a DI service) and read <see cref="Current"/>. Null outside a gated call.
/// </summary>
public sealed class AssentApprovalAccessor
{
    private static readonly AsyncLocal<AssentToolApproval?> Holder = new();

    /// <summary>The approval of the gated call running on this async flow, or null.</summary>
    public AssentToolApproval? Current
    {
        get => Holder.Value;
        internal set => Holder.Value = value;
    }
}
