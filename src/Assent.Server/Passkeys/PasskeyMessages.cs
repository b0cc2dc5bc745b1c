using System.Text.Json.Serialization;

namespace Assent.Server.Passkeys;

// Requests from the web app: snake_case like the rest of the API, binary values base64url.

internal sealed record RegistrationOptionsRequest(string? Code);

internal sealed record RegistrationRequest(string? ClientDataJson, string? AttestationObject, string? Name);

// Continue: on a sign-in, the authorization request the sign-in page continues (docs/http-api.md §12.3, §17.2).
internal sealed record AssertionRequest(string? CredentialId, string? ClientDataJson, string? AuthenticatorData, string? Signature, string? Decision = null,
    string? Continue = null);

internal sealed record RegistrationResponse(string DeviceId, string UserId, string UserDid, string Handle);

// CredentialId: the passkey this session signed in with, the one that registers the browser's vault key (docs/vault.md §1).
// RedirectTo: after a sign-in that continued an authorization request, the client's redirect URI with the code (§17.2).
internal sealed record SessionView(string UserId, string UserDid, string Handle, string DeviceId, long ExpiresAt, string RpId, IReadOnlyList<string> Credentials,
    string? CredentialId = null, string? RedirectTo = null);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RegistrationOptionsRequest))]
[JsonSerializable(typeof(RegistrationRequest))]
[JsonSerializable(typeof(AssertionRequest))]
[JsonSerializable(typeof(RegistrationResponse))]
[JsonSerializable(typeof(SessionView))]
internal sealed partial class PasskeyJson : JsonSerializerContext;
