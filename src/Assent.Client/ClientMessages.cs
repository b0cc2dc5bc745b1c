using System.Text.Json.Serialization;

namespace Assent.Client;

/// <summary>The claims of an issued token, read for the caller's convenience (the wire messages are Assent.Protocol.Messages).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Dictionary<string, System.Text.Json.JsonElement>))]
internal sealed partial class SdkJson : JsonSerializerContext;
