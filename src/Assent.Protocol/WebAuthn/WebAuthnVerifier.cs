using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Assent.Protocol.WebAuthn;

/// <summary>A credential whose registration verified (WebAuthn L3 §7.1).</summary>
/// <param name="PublicKeyCose">The credential public key as the authenticator encoded it, for storage.</param>
/// <param name="Aaguid">The authenticator model; unauthenticated, since attestation chains are not validated.</param>
public sealed record RegisteredCredential(
    byte[] CredentialId,
    CoseKey PublicKey,
    byte[] PublicKeyCose,
    int Algorithm,
    uint SignCount,
    AuthenticatorFlags Flags,
    Guid Aaguid,
    string AttestationFormat);

/// <summary>An assertion whose signature and client data verified (WebAuthn L3 §7.2).</summary>
public sealed record VerifiedAssertion(AuthenticatorData AuthenticatorData, ClientData ClientData)
{
    /// <summary>The authenticator's new signature counter; the caller stores it.</summary>
    public uint SignCount => AuthenticatorData.SignCount;

    public AuthenticatorFlags Flags => AuthenticatorData.Flags;
}

/// <summary>
/// Relying-party verification of WebAuthn registrations and assertions (WebAuthn L3 §7),
/// shared by the server and the SDK. Every failure is a <see cref="WebAuthnError"/>; nothing
/// throws on malformed input.
/// </summary>
public static class WebAuthnVerifier
{
    /// <summary>
    /// Verifies a registration ceremony (WebAuthn L3 §7.1): client data of type
    /// <c>webauthn.create</c> with the expected challenge from an allowed origin, rpIdHash of
    /// <paramref name="rpId"/>, UP (and UV unless not required), consistent backup flags,
    /// attested credential data, and a <c>none</c> or packed self attestation statement.
    /// Attestation certificate chains are not validated; see <see cref="AttestationObject"/>.
    /// </summary>
    public static WebAuthnResult<RegisteredCredential> VerifyRegistration(
        ReadOnlySpan<byte> attestationObject,
        ReadOnlySpan<byte> clientDataJson,
        ReadOnlySpan<byte> expectedChallenge,
        IReadOnlyCollection<string> allowedOrigins,
        string rpId,
        bool requireUserVerification = true)
    {
        if (!TryCheckClientData(clientDataJson, ClientData.TypeCreate, expectedChallenge, allowedOrigins, out _, out var clientError))
        {
            return WebAuthnResult<RegisteredCredential>.Failure(clientError);
        }
        if (!AttestationObject.TryParse(attestationObject, out var attestation, out var parseError))
        {
            return WebAuthnResult<RegisteredCredential>.Failure(parseError);
        }
        var authData = attestation.AuthenticatorData;
        if (CheckAuthenticatorData(authData, rpId, requireUserVerification) is { } authError)
        {
            return WebAuthnResult<RegisteredCredential>.Failure(authError);
        }
        // WebAuthn L3 §7.1 step 21: verify the statement over authData and the client data hash.
        if (attestation.VerifyStatement(SHA256.HashData(clientDataJson)) is { } statementError)
        {
            return WebAuthnResult<RegisteredCredential>.Failure(statementError);
        }
        var credential = attestation.Credential;
        return WebAuthnResult<RegisteredCredential>.Success(new RegisteredCredential(
            credential.CredentialId,
            credential.PublicKey,
            credential.PublicKeyCose,
            credential.PublicKey.Algorithm,
            authData.SignCount,
            authData.Flags,
            credential.Aaguid,
            attestation.Format));
    }

    /// <summary>
    /// Verifies an authentication ceremony for a stored credential (WebAuthn L3 §7.2): everything
    /// <see cref="VerifyAssertionSignature"/> checks with the origin and RP ID required, then the
    /// signature counter. When both <paramref name="storedSignCount"/> and the new counter are
    /// nonzero and the new one is not greater, the result is
    /// <see cref="WebAuthnFailures.SignCountRegression"/>, a possible cloned authenticator
    /// (§6.1.1) that the caller audits. A counter of zero on either side means the authenticator
    /// keeps none, and is accepted.
    /// </summary>
    public static WebAuthnResult<VerifiedAssertion> VerifyAssertion(
        ReadOnlySpan<byte> authenticatorData,
        ReadOnlySpan<byte> clientDataJson,
        ReadOnlySpan<byte> signature,
        CoseKey publicKey,
        ReadOnlySpan<byte> expectedChallenge,
        IReadOnlyCollection<string> allowedOrigins,
        string rpId,
        uint storedSignCount,
        bool requireUserVerification = true)
    {
        var result = VerifyAssertionSignature(
            authenticatorData, clientDataJson, signature, publicKey, expectedChallenge, rpId, allowedOrigins, requireUserVerification);
        if (!result.Succeeded)
        {
            return result;
        }
        var signCount = result.Value.SignCount;
        if (storedSignCount != 0 && signCount != 0 && signCount <= storedSignCount)
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(WebAuthnFailures.SignCountRegression,
                $"signature counter {signCount} is not above the stored {storedSignCount}");
        }
        return result;
    }

    /// <summary>
    /// The assertion checks the server and the SDK share: client data of type
    /// <c>webauthn.get</c> whose challenge equals <paramref name="expectedChallenge"/> (compared
    /// in fixed time), not cross-origin, UP and (unless not required) UV set, consistent backup
    /// flags, and a valid signature by <paramref name="publicKey"/> over
    /// authenticatorData ‖ SHA-256(clientDataJSON) (WebAuthn L3 §7.2 steps 11–21).
    /// The SDK, which derives the challenge itself, may pass null for <paramref name="rpId"/>
    /// or <paramref name="allowedOrigins"/> to skip those checks; the credential is still scoped
    /// to its RP by the authenticator. The signature counter is not judged here.
    /// </summary>
    public static WebAuthnResult<VerifiedAssertion> VerifyAssertionSignature(
        ReadOnlySpan<byte> authenticatorData,
        ReadOnlySpan<byte> clientDataJson,
        ReadOnlySpan<byte> signature,
        CoseKey publicKey,
        ReadOnlySpan<byte> expectedChallenge,
        string? rpId = null,
        IReadOnlyCollection<string>? allowedOrigins = null,
        bool requireUserVerification = true)
    {
        if (!TryCheckClientData(clientDataJson, ClientData.TypeGet, expectedChallenge, allowedOrigins, out var clientData, out var clientError))
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(clientError);
        }
        if (!AuthenticatorData.TryParse(authenticatorData, out var authData, out var parseError))
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(parseError);
        }
        if (CheckAuthenticatorData(authData, rpId, requireUserVerification) is { } authError)
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(authError);
        }
        // WebAuthn L3 §7.2 steps 20–21: the signature covers authData ‖ SHA-256(clientDataJSON).
        var signed = new byte[authenticatorData.Length + SHA256.HashSizeInBytes];
        authenticatorData.CopyTo(signed);
        SHA256.HashData(clientDataJson, signed.AsSpan(authenticatorData.Length));
        if (!publicKey.VerifySignature(signed, signature))
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(WebAuthnFailures.InvalidSignature, "assertion signature does not verify");
        }
        return WebAuthnResult<VerifiedAssertion>.Success(new VerifiedAssertion(authData, clientData));
    }

    private static bool TryCheckClientData(
        ReadOnlySpan<byte> json,
        string expectedType,
        ReadOnlySpan<byte> expectedChallenge,
        IReadOnlyCollection<string>? allowedOrigins,
        [NotNullWhen(true)] out ClientData? clientData,
        [NotNullWhen(false)] out WebAuthnError? error)
    {
        if (!ClientData.TryParse(json, out clientData, out error))
        {
            return false;
        }
        // WebAuthn L3 §7.1 steps 7–9 and §7.2 steps 11–13.
        if (clientData.Type != expectedType)
        {
            error = new WebAuthnError(WebAuthnFailures.WrongType, $"client data type is {clientData.Type}, not {expectedType}");
        }
        else if (!CryptographicOperations.FixedTimeEquals(clientData.Challenge, expectedChallenge))
        {
            error = new WebAuthnError(WebAuthnFailures.ChallengeMismatch, "challenge is not the one issued");
        }
        else if (allowedOrigins is not null && !allowedOrigins.Contains(clientData.Origin, StringComparer.Ordinal))
        {
            error = new WebAuthnError(WebAuthnFailures.OriginNotAllowed, $"origin {clientData.Origin} is not allowed");
        }
        else if (clientData.CrossOrigin || clientData.TopOrigin is not null)
        {
            // §7.1 step 10: an approval is never given from inside another site's iframe.
            error = new WebAuthnError(WebAuthnFailures.CrossOriginRefused, "the ceremony ran in a cross-origin iframe");
        }
        if (error is not null)
        {
            clientData = null;
            return false;
        }
        return true;
    }

    private static WebAuthnError? CheckAuthenticatorData(AuthenticatorData authData, string? rpId, bool requireUserVerification)
    {
        // §7.1 step 14 / §7.2 step 15.
        if (rpId is not null &&
            !CryptographicOperations.FixedTimeEquals(authData.RpIdHash, SHA256.HashData(Encoding.UTF8.GetBytes(rpId))))
        {
            return new WebAuthnError(WebAuthnFailures.RpIdMismatch, $"rpIdHash is not SHA-256 of {rpId}");
        }
        if (!authData.UserPresent)
        {
            return new WebAuthnError(WebAuthnFailures.UserNotPresent, "the UP flag is not set");
        }
        if (requireUserVerification && !authData.UserVerified)
        {
            return new WebAuthnError(WebAuthnFailures.UserNotVerified, "the UV flag is not set");
        }
        // §6.1: BS may only be set when BE is.
        if (authData.Flags.HasFlag(AuthenticatorFlags.BackupState) && !authData.Flags.HasFlag(AuthenticatorFlags.BackupEligible))
        {
            return new WebAuthnError(WebAuthnFailures.InvalidBackupFlags, "BS is set without BE");
        }
        return null;
    }
}
