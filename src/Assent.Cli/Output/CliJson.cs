using System.Text.Json.Serialization;
using Assent.Client.Authenticator;
using Assent.Cli.Devices;

namespace Assent.Cli.Output;

internal sealed record InviteOutput(string Code, string Link, string Handle, string UserId, bool Admin, DateTimeOffset ExpiresAt, string EnrollCommand);

internal sealed record AgentOutput(string ClientId, string ClientSecret, string Name, string Scopes, string Owner);

internal sealed record KeyOutput(string Kid);

internal sealed record EnrollOutput(string DeviceId, string UserDid, string UserId, string Handle, string Server, string Name, string KeyFile);

internal sealed record LocalDeviceView(string DeviceId, string Server, string Handle, string UserDid, string Name, DateTimeOffset CreatedAt, bool Selected);

internal sealed record DeviceListOutput(IReadOnlyList<LocalDeviceView> Local, ServerDeviceList? Server);

internal sealed record DecidedItem(string Id, string Decision, string State);

internal sealed record FailedItem(string Id, string Decision, int ExitCode, string Error);

internal sealed record DecideOutput(IReadOnlyList<DecidedItem> Decided, IReadOnlyList<FailedItem> Failed);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = false,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InviteOutput))]
[JsonSerializable(typeof(AgentOutput))]
[JsonSerializable(typeof(KeyOutput))]
[JsonSerializable(typeof(EnrollOutput))]
[JsonSerializable(typeof(DeviceListOutput))]
[JsonSerializable(typeof(DecideOutput))]
[JsonSerializable(typeof(DeviceFile))]
internal sealed partial class CliJson : JsonSerializerContext;
