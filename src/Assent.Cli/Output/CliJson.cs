using System.Text.Json.Serialization;
using Assent.Cli.Devices;
using Assent.Protocol.Messages;

namespace Assent.Cli.Output;

internal sealed record InviteOutput(string Code, string Link, string Handle, string UserId, bool Admin, DateTimeOffset ExpiresAt, string EnrollCommand);

internal sealed record AgentOutput(string ClientId, string ClientSecret, string Name, string Scopes, string Owner);

internal sealed record AgentDeliveryOutput(string ClientId, string DeliveryMode, string? NotificationEndpoint);

internal sealed record ApiKeyOutput(string Id, string Key, string Name, string Scopes, string Owner);

internal sealed record KeyOutput(string Kid);

internal sealed record WebClientOutput(string ClientId, string? ClientSecret, string Name, IReadOnlyList<string> RedirectUris,
    IReadOnlyList<string> PostLogoutRedirectUris, bool Public, string IdTokenSignedResponseAlg, string TokenEndpointAuthMethod);

internal sealed record EnrollOutput(string DeviceId, string UserDid, string UserId, string Handle, string Server, string Name, string KeyFile);

internal sealed record LocalDeviceView(string DeviceId, string Server, string Handle, string UserDid, string Name, DateTimeOffset CreatedAt, bool Selected);

internal sealed record DeviceListOutput(IReadOnlyList<LocalDeviceView> Local, DeviceList? Server);

internal sealed record ConsentRevokeOutput(string ClientId, bool Revoked);

internal sealed record DecidedItem(string Id, string Decision, string State);

internal sealed record FailedItem(string Id, string Decision, int ExitCode, string Error);

internal sealed record DecideOutput(IReadOnlyList<DecidedItem> Decided, IReadOnlyList<FailedItem> Failed);

internal sealed record ApproveOutput(bool Approved, string Status, string? AccessToken = null, string? Scope = null, int? ExpiresIn = null);

internal sealed record VerifyOutput(bool Valid, string? Error = null, string? Message = null, string? Sub = null, string? ClientId = null,
    string? Scope = null, IReadOnlyList<string>? Aud = null, string? BindingMessage = null, System.Text.Json.JsonElement? AuthorizationDetails = null,
    string? Txn = null, string? Jti = null, long? Exp = null, string? EvidenceDevice = null);

internal sealed record AuditExport(string Server, long After, AuditCheckpoint? Checkpoint, IReadOnlyList<AuditEntry> Entries);

internal sealed record AuditVerifyOutput(bool Valid, long Verified, string? Head, long? FailedAt = null, string? Reason = null);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = false,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InviteOutput))]
[JsonSerializable(typeof(PolicyResponse))]
[JsonSerializable(typeof(PolicyList))]
[JsonSerializable(typeof(PolicyTestResponse))]
[JsonSerializable(typeof(AgentOutput))]
[JsonSerializable(typeof(AgentDeliveryOutput))]
[JsonSerializable(typeof(ApiKeyOutput))]
[JsonSerializable(typeof(KeyOutput))]
[JsonSerializable(typeof(WebClientOutput))]
[JsonSerializable(typeof(EnrollOutput))]
[JsonSerializable(typeof(DeviceListOutput))]
[JsonSerializable(typeof(ConsentList))]
[JsonSerializable(typeof(ConsentRevokeOutput))]
[JsonSerializable(typeof(DecideOutput))]
[JsonSerializable(typeof(DeviceFile))]
[JsonSerializable(typeof(ApproveOutput))]
[JsonSerializable(typeof(VerifyOutput))]
[JsonSerializable(typeof(AuditExport))]
[JsonSerializable(typeof(AuditVerifyOutput))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(string))]
internal sealed partial class CliJson : JsonSerializerContext;
