using System.Text.Json.Serialization;
using Assent.Protocol.Jose;

namespace Assent.Server.Common;

// Documents only the server writes; the messages it shares with its clients are in Assent.Protocol.Messages.

/// <summary>DID Core §5.2 member names are camelCase, unlike the rest of the API.</summary>
internal sealed record VerificationMethod(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("controller")] string Controller,
    [property: JsonPropertyName("publicKeyJwk")] Jwk PublicKeyJwk);

internal sealed record DidDocument(
    [property: JsonPropertyName("@context")] IReadOnlyList<string> Context,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("verificationMethod")] IReadOnlyList<VerificationMethod> VerificationMethod,
    [property: JsonPropertyName("authentication")] IReadOnlyList<string> Authentication,
    [property: JsonPropertyName("assertionMethod")] IReadOnlyList<string> AssertionMethod,
    [property: JsonPropertyName("keyAgreement"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? KeyAgreement = null);

internal sealed record HealthReport(string Status, string Storage, string? Detail = null);


[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(DidDocument))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(JwkSet))]
internal sealed partial class ServerJson : JsonSerializerContext;
