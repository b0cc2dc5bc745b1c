using System.Formats.Cbor;
using Assent.Protocol.WebAuthn;
using Assent.Server.Identity;
using Fido2NetLib;
using Fido2NetLib.Exceptions;

namespace Assent.Server.Tests.Passkeys;

/// <summary>
/// How a Fido2 refusal is named: each Fido2 error code the ceremonies map, to its
/// <see cref="WebAuthnFailures"/> code, with Fido2's message as the detail; anything else, the
/// ceremony's own "unreadable" code.
/// </summary>
public sealed class PasskeyRefusalTests
{
    private const string Unreadable = "the_ceremony_s_own";

    public static TheoryData<Fido2ErrorCode, string> Mapped => new()
    {
        { Fido2ErrorCode.InvalidRpidHash, WebAuthnFailures.RpIdMismatch },
        { Fido2ErrorCode.InvalidSignature, WebAuthnFailures.InvalidSignature },
        { Fido2ErrorCode.InvalidSignCount, WebAuthnFailures.SignCountRegression },
        { Fido2ErrorCode.UserVerificationRequirementNotMet, WebAuthnFailures.UserNotVerified },
        { Fido2ErrorCode.UserPresentFlagNotSet, WebAuthnFailures.UserNotPresent },
        { Fido2ErrorCode.MissingStoredPublicKey, WebAuthnFailures.InvalidKey },
        { Fido2ErrorCode.InvalidCredentialPublicKey, WebAuthnFailures.InvalidKey },
        { Fido2ErrorCode.InvalidAttestation, WebAuthnFailures.InvalidAttestation },
        { Fido2ErrorCode.InvalidAttestationObject, WebAuthnFailures.MalformedAttestation },
        { Fido2ErrorCode.MalformedAttestationObject, WebAuthnFailures.MalformedAttestation },
        { Fido2ErrorCode.MissingAttestationObject, WebAuthnFailures.MalformedAttestation },
        { Fido2ErrorCode.AttestedCredentialDataFlagNotSet, WebAuthnFailures.MissingAttestedCredential },
        { Fido2ErrorCode.InvalidAttestedCredentialData, WebAuthnFailures.MissingAttestedCredential },
        { Fido2ErrorCode.UnknownAttestationType, WebAuthnFailures.UnsupportedAttestation },
        { Fido2ErrorCode.MissingAttestationType, WebAuthnFailures.UnsupportedAttestation },
        { Fido2ErrorCode.UnexpectedExtensions, WebAuthnFailures.MalformedAuthenticatorData },
        { Fido2ErrorCode.MalformedExtensionsDetected, WebAuthnFailures.MalformedAuthenticatorData },
        { Fido2ErrorCode.UnexpectedExtensionsDetected, WebAuthnFailures.MalformedAuthenticatorData },
        { Fido2ErrorCode.MissingAuthenticatorData, WebAuthnFailures.MalformedAuthenticatorData },
        { Fido2ErrorCode.InvalidAuthenticatorData, WebAuthnFailures.MalformedAuthenticatorData },
        { Fido2ErrorCode.InvalidAssertionResponse, WebAuthnFailures.WrongType },
        { Fido2ErrorCode.InvalidAttestationResponse, WebAuthnFailures.WrongType },
        { Fido2ErrorCode.InvalidAuthenticatorResponse, WebAuthnFailures.MalformedClientData },
        { Fido2ErrorCode.MalformedAuthenticatorResponse, WebAuthnFailures.MalformedClientData },
        { Fido2ErrorCode.MissingAuthenticatorResponseChallenge, WebAuthnFailures.MalformedClientData },
        { Fido2ErrorCode.MissingAuthenticatorResponseOrigin, WebAuthnFailures.MalformedClientData },
        { Fido2ErrorCode.InvalidAuthenticatorResponseChallenge, WebAuthnFailures.ChallengeMismatch },
        { Fido2ErrorCode.InvalidAuthenticatorResponseOrigin, WebAuthnFailures.OriginNotAllowed },
        { Fido2ErrorCode.CrossOriginRequestNotAllowed, WebAuthnFailures.CrossOriginRefused },
        { Fido2ErrorCode.InvalidAuthenticatorResponseTopOrigin, WebAuthnFailures.CrossOriginRefused },
        { Fido2ErrorCode.UnimplementedAlgorithm, WebAuthnFailures.UnsupportedAlgorithm },
        { Fido2ErrorCode.CredentialAlgorithmRequirementNotMet, WebAuthnFailures.UnsupportedAlgorithm },
        { Fido2ErrorCode.BackupEligibilityRequirementNotMet, WebAuthnFailures.InvalidBackupFlags },
        { Fido2ErrorCode.BackupStateRequirementNotMet, WebAuthnFailures.InvalidBackupFlags },
        { Fido2ErrorCode.InvalidBackupFlags, WebAuthnFailures.InvalidBackupFlags },
        { Fido2ErrorCode.InvalidCertificateChain, WebAuthnFailures.AttestationNotTrusted },
        { Fido2ErrorCode.UndesiredMetadataStatus, WebAuthnFailures.AttestationNotTrusted },
        { Fido2ErrorCode.AaGuidNotFound, WebAuthnFailures.AttestationNotTrusted },
    };

    [Theory]
    [MemberData(nameof(Mapped))]
    public void Each_fido2_code_named_maps_to_its_failure_with_fido2s_message(Fido2ErrorCode code, string expected)
    {
        var error = PasskeyCeremonies.Refusal(new Fido2VerificationException(code, $"fido2 says {code}"), Unreadable);

        Assert.Equal(new WebAuthnError(expected, $"fido2 says {code}"), error);
    }

    [Fact]
    public void A_fido2_code_not_named_is_reported_as_unreadable_input()
    {
        var named = Mapped.Select(row => (Fido2ErrorCode)row[0]).ToHashSet();
        var others = Enum.GetValues<Fido2ErrorCode>().Where(code => !named.Contains(code)).ToList();

        Assert.NotEmpty(others);
        foreach (var code in others)
        {
            Assert.Equal(new WebAuthnError(Unreadable, "not named"), PasskeyCeremonies.Refusal(new Fido2VerificationException(code, "not named"), Unreadable));
        }
    }

    [Fact]
    public void Any_other_exception_is_unreadable_input_named_with_its_type_and_message()
    {
        Assert.Equal(new WebAuthnError(Unreadable, "CborContentException: truncated"),
            PasskeyCeremonies.Refusal(new CborContentException("truncated"), Unreadable));
        Assert.Equal(new WebAuthnError(WebAuthnFailures.MalformedAssertion, "InvalidCastException: not bytes"),
            PasskeyCeremonies.Refusal(new InvalidCastException("not bytes"), WebAuthnFailures.MalformedAssertion));
    }
}
