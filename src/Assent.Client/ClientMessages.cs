using System.Text.Json.Serialization;

namespace Assent.Client;

/// <summary>The members of OpenID Connect Discovery 1.0 §3 the SDK reads.</summary>
internal sealed record DiscoveryDocument(
    string? Issuer,
    string? JwksUri,
    string? TokenEndpoint,
    string? BackchannelAuthenticationEndpoint);

/// <summary>CIBA Core §7.3 successful authentication request acknowledgement.</summary>
internal sealed record BcAuthorizeAnswer(string? AuthReqId, int? ExpiresIn, int? Interval);

/// <summary>RFC 6749 §5.1 token response.</summary>
internal sealed record TokenAnswer(string? AccessToken, string? TokenType, int? ExpiresIn, string? Scope, string? IdToken);

/// <summary>RFC 6749 §5.2 error response.</summary>
internal sealed record OAuthErrorBody(string? Error, string? ErrorDescription);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(DiscoveryDocument))]
[JsonSerializable(typeof(BcAuthorizeAnswer))]
[JsonSerializable(typeof(TokenAnswer))]
[JsonSerializable(typeof(OAuthErrorBody))]
[JsonSerializable(typeof(Dictionary<string, System.Text.Json.JsonElement>))]
internal sealed partial class SdkJson : JsonSerializerContext;
