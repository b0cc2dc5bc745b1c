using System.Text.Json.Serialization;

namespace Assent.Mcp;

[JsonSerializable(typeof(string))]
internal sealed partial class McpJson : JsonSerializerContext;
