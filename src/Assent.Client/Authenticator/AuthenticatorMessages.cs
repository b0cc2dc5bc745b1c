using System.Text.Json.Serialization;
using Assent.Protocol;
using Assent.Protocol.Approvals;

namespace Assent.Client.Authenticator;

/// <summary>The key a device holds: its id at the server and its Ed25519 seed (the private key).</summary>
public sealed record DeviceKey(string DeviceId, byte[] Seed);

/// <summary>The result of enrolling: the new device key and whom it belongs to.</summary>
public sealed record EnrolledDevice(DeviceKey Key, string PublicKey, string UserId, string UserDid, string Handle, string Issuer);

/// <summary>
/// A request waiting for this user's decision. <see cref="Payload"/> is what the human must be
/// shown: the parsed form of <see cref="PayloadBytes"/>, the exact bytes the device signs.
/// It is null when the bytes are not a valid v1 payload for this request; such a request must not be decided.
/// <see cref="ClientOwner"/> is the handle of the asking agent's owner, as the server states it (not part of the
/// payload); null for requests the server raises itself. Show it beside the agent's name and client id.
/// <see cref="Policy"/> names the policy that applied (<c>name@version</c>) and <see cref="Quorum"/> where a request several
/// users decide stands (docs/policies.md §3).
/// </summary>
public sealed record PendingRequest(string Id, string Kind, string? State, byte[] PayloadBytes, ApprovalPayload? Payload, string? ClientOwner = null,
    string? Policy = null, Assent.Protocol.Messages.QuorumProgress? Quorum = null)
{
    /// <summary>"1 of 2 approved, waiting for bob, carol"; null unless several users decide the request.</summary>
    public string? QuorumLine => Quorum is not { } q
        ? null
        : $"{q.Approved.Count} of {q.Required} approved" +
          (q.Approved.Count > 0 ? $" ({string.Join(", ", q.Approved)})" : "") +
          (q.Waiting.Count > 0 ? $", waiting for {string.Join(", ", q.Waiting)}" : "") +
          (q.Denied.Count > 0 ? $", denied by {string.Join(", ", q.Denied)}" : "");
}

/// <summary>One event of the device stream: a request to decide (<see cref="Request"/>), or one that settled (<see cref="State"/>).</summary>
public sealed record AuthenticatorEvent(string Type, string Id, PendingRequest? Request, string? State)
{
    /// <summary>A request waiting for a decision.</summary>
    public const string Approval = StreamEvents.Approval;

    /// <summary>A request that was decided, expired or cancelled.</summary>
    public const string Settled = StreamEvents.Settled;
}

/// <summary>
/// Reads an error answer whichever shape the endpoint sends: RFC 9457 problem details (<c>title</c>, <c>detail</c>) or
/// an RFC 6749 error (<c>error</c>, <c>error_description</c>).
/// </summary>
internal sealed record ProblemBody(string? Title, string? Detail, string? Error, string? ErrorDescription);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ProblemBody))]
internal sealed partial class ClientJson : JsonSerializerContext;
