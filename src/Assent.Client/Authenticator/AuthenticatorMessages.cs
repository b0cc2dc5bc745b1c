using System.Text.Json;
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
/// </summary>
public sealed record PendingRequest(string Id, string Kind, string? State, byte[] PayloadBytes, ApprovalPayload? Payload, string? ClientOwner = null);

/// <summary>One event of the device stream: a request to decide (<see cref="Request"/>), or one that settled (<see cref="State"/>).</summary>
public sealed record AuthenticatorEvent(string Type, string Id, PendingRequest? Request, string? State)
{
    /// <summary>A request waiting for a decision.</summary>
    public const string Approval = StreamEvents.Approval;

    /// <summary>A request that was decided, expired or cancelled.</summary>
    public const string Settled = StreamEvents.Settled;
}

/// <summary>The state of a request after a decision was accepted.</summary>
public sealed record DecisionResult(string Id, string State);

public sealed record ServerDevice(string Id, string Kind, string Name, long CreatedAt, long? RevokedAt, bool Active);

public sealed record ServerDeviceList(string UserId, string UserDid, string Handle, IReadOnlyList<ServerDevice> Devices);

/// <summary>
/// An agent of another user that this user allows to ask them for approvals, or did (<see cref="Active"/>).
/// Times are Unix seconds; <see cref="ApprovalId"/> is the request the user approved to allow it.
/// </summary>
public sealed record ServerConsent(string ClientId, string AgentName, string? Owner, long CreatedAt, long? RevokedAt, bool Active, string ApprovalId);

public sealed record ServerConsentList(IReadOnlyList<ServerConsent> Consents);

/// <summary>One audit entry: its canonical bytes and chain hash, both base64url (docs/concepts.md §8.1).</summary>
public sealed record AuditEntry(long Seq, string Entry, string Hash);

/// <summary>A page of audit entries; <see cref="Next"/> is the sequence number to continue after, null on the last page.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Entries, long? Next);

/// <summary>The signed head of the audit chain: <c>{size, head, ts}</c> and its JWS.</summary>
public sealed record AuditCheckpoint(long Size, string Head, long Ts, string Signature);

internal sealed record EnrollBody(string Code, string PublicKey, string? Name, string Proof);

internal sealed record EnrollAnswer(string DeviceId, string UserId, string UserDid, string Handle, string Issuer);

internal sealed record ApprovalView(
    string Id,
    string Kind,
    string ClientId,
    string ClientName,
    string? ClientOwner,
    string Scope,
    string? BindingMessage,
    JsonElement? AuthorizationDetails,
    long CreatedAt,
    long ExpiresAt,
    string Payload,
    string? State = null);

internal sealed record ApprovalViewList(IReadOnlyList<ApprovalView> Approvals);

internal sealed record DecisionBody(string DeviceId, string Decision, string Signature);

internal sealed record DeviceLoginBody(string UserCode);

internal sealed record ProblemBody(string? Title, string? Detail, string? Error, string? ErrorDescription);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(EnrollBody))]
[JsonSerializable(typeof(EnrollAnswer))]
[JsonSerializable(typeof(ApprovalView))]
[JsonSerializable(typeof(ApprovalViewList))]
[JsonSerializable(typeof(DecisionBody))]
[JsonSerializable(typeof(DecisionResult))]
[JsonSerializable(typeof(ServerDeviceList))]
[JsonSerializable(typeof(ServerConsentList))]
[JsonSerializable(typeof(ProblemBody))]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(AuditCheckpoint))]
[JsonSerializable(typeof(DeviceLoginBody))]
internal sealed partial class ClientJson : JsonSerializerContext;
