using System.Diagnostics.CodeAnalysis;

namespace Assent.Protocol.WebAuthn;

/// <summary>The failure codes WebAuthn verification reports; stable strings for audit records and error details.</summary>
public static class WebAuthnFailures
{
    public const string MalformedClientData = "malformed_client_data";
    public const string WrongType = "wrong_type";
    public const string ChallengeMismatch = "challenge_mismatch";
    public const string OriginNotAllowed = "origin_not_allowed";
    public const string CrossOriginRefused = "cross_origin_refused";
    public const string MalformedAuthenticatorData = "malformed_authenticator_data";
    public const string RpIdMismatch = "rp_id_mismatch";
    public const string UserNotPresent = "user_not_present";
    public const string UserNotVerified = "user_not_verified";
    public const string InvalidBackupFlags = "invalid_backup_flags";
    public const string MissingAttestedCredential = "missing_attested_credential";
    public const string MalformedAttestation = "malformed_attestation";
    public const string UnsupportedAttestation = "unsupported_attestation";
    public const string InvalidAttestation = "invalid_attestation";
    public const string AttestationNotTrusted = "attestation_not_trusted";
    public const string MalformedAssertion = "malformed_assertion";
    public const string InvalidKey = "invalid_key";
    public const string UnsupportedAlgorithm = "unsupported_algorithm";
    public const string InvalidSignature = "invalid_signature";
    public const string SignCountRegression = "sign_count_regression";
}

/// <summary>Why verification or parsing failed: a <see cref="WebAuthnFailures"/> code and a human detail.</summary>
public sealed record WebAuthnError(string Code, string Detail);

/// <summary>Either a verified value or the <see cref="WebAuthnError"/> that stopped verification.</summary>
public sealed record WebAuthnResult<T>
    where T : class
{
    private WebAuthnResult(T? value, WebAuthnError? error)
    {
        Value = value;
        Error = error;
        Succeeded = error is null;
    }

    public T? Value { get; }

    public WebAuthnError? Error { get; }

    [MemberNotNullWhen(true, nameof(Value))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded { get; }

    public static WebAuthnResult<T> Success(T value) => new(value, null);

    public static WebAuthnResult<T> Failure(WebAuthnError error) => new(null, error);

    public static WebAuthnResult<T> Failure(string code, string detail) => new(null, new WebAuthnError(code, detail));
}
