using System.Text.Json.Serialization;

namespace Assent.Server.Identity;

// Options for navigator.credentials: the WebAuthn L3 JSON forms (§5.1.1
// PublicKeyCredentialCreationOptionsJSON, §5.5 PublicKeyCredentialRequestOptionsJSON), camelCase by spec.

internal sealed record RpEntity(string Id, string Name);

internal sealed record UserEntity(string Id, string Name, string DisplayName);

internal sealed record CredentialParameter(string Type, int Alg);

internal sealed record CredentialDescriptor(string Type, string Id);

internal sealed record AuthenticatorSelection(string ResidentKey, bool RequireResidentKey, string UserVerification);

internal sealed record CreationOptions(
    RpEntity Rp,
    UserEntity User,
    string Challenge,
    IReadOnlyList<CredentialParameter> PubKeyCredParams,
    long Timeout,
    IReadOnlyList<CredentialDescriptor> ExcludeCredentials,
    AuthenticatorSelection AuthenticatorSelection,
    string Attestation);

internal sealed record RequestOptions(string Challenge, long Timeout, string RpId, IReadOnlyList<CredentialDescriptor> AllowCredentials, string UserVerification);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(CreationOptions))]
[JsonSerializable(typeof(RequestOptions))]
internal sealed partial class WebAuthnOptionsJson : JsonSerializerContext;
