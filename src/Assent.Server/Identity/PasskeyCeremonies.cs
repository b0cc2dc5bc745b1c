using System.Collections.Concurrent;
using System.Formats.Cbor;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;
using Assent.Server.Common;
using Fido2NetLib;
using Fido2NetLib.Exceptions;
using Fido2NetLib.Objects;
using Fido2AuthenticatorData = Fido2NetLib.Objects.AuthenticatorData;
using Fido2Selection = Fido2NetLib.AuthenticatorSelection;

namespace Assent.Server.Identity;

/// <summary>Options for navigator.credentials.create, and the challenge they carry for the caller to store.</summary>
internal sealed record PasskeyCreation(byte[] Challenge, CreationOptions Options);

/// <summary>A passkey whose registration verified (WebAuthn L3 §7.1).</summary>
/// <param name="PublicKey">The credential public key as a JWK, the form DID documents publish.</param>
/// <param name="Algorithm">The COSE algorithm: -8 EdDSA, -7 ES256 or -257 RS256.</param>
/// <param name="AttestationTrusted">Whether the attestation chained to a root this server trusts; false unless <c>trusted</c>.</param>
internal sealed record RegisteredPasskey(byte[] CredentialId, Jwk PublicKey, int Algorithm, uint SignCount, Guid Aaguid, string AttestationFormat,
    bool AttestationTrusted);

/// <summary>A registered passkey as stored: what an assertion is checked against.</summary>
internal sealed record StoredPasskey(byte[] CredentialId, string PublicJwk, long SignCount);

/// <summary>An assertion that verified (WebAuthn L3 §7.2); the caller stores <paramref name="SignCount"/>.</summary>
internal sealed record PasskeyAssertion(uint SignCount);

/// <summary>
/// The server's WebAuthn ceremonies, run by Fido2: registration options and verification, and
/// the verification of an assertion against a stored passkey, with the RP ID and origins of
/// <see cref="AssentOptions"/> and user verification required. Every refusal is a
/// <see cref="WebAuthnError"/> with a <see cref="WebAuthnFailures"/> code; nothing throws on what
/// a client sends.
/// </summary>
internal sealed class PasskeyCeremonies
{
    /// <summary>What navigator.credentials is told to wait (WebAuthn L3 §5.4 timeout); the challenge lives longer.</summary>
    public static readonly TimeSpan CeremonyTimeout = TimeSpan.FromMinutes(2);

    // WebAuthn L3 §13.4.3: at least 16 bytes; 32 as before.
    private const int ChallengeSize = 32;

    private const string RpName = "Assent";

    /// <summary>In order of preference: EdDSA (RFC 9053 §2.2), ES256 (RFC 9053 §2.1), RS256 (RFC 8812 §2).</summary>
    private static readonly PubKeyCredParam[] Algorithms = [PubKeyCredParam.Ed25519, PubKeyCredParam.ES256, PubKeyCredParam.RS256];

    private readonly Fido2Configuration _config;
    private readonly AttestationTrust? _trust;
    private readonly Fido2 _fido2;
    private readonly string[] _origins;

    /// <summary>At most this many parsed passkey keys are kept: as many as the key imports (Assent.Protocol's ImportedKeys).</summary>
    internal const int MaxStoredKeys = 4096;

    private ConcurrentDictionary<string, Jwk> _storedKeys = new(StringComparer.Ordinal);

    private PasskeyCeremonies(AssentOptions options, AttestationTrust? trust)
    {
        _config = new Fido2Configuration
        {
            RPID = options.RpId,
            RPName = RpName,
            Origins = new HashSet<string>(options.Origins, StringComparer.Ordinal),
            ChallengeSize = ChallengeSize,
            Timeout = (uint)CeremonyTimeout.TotalMilliseconds,
        };
        _trust = trust;
        _fido2 = new Fido2(_config, trust);
        // As Fido2 compared them: scheme, host and a port other than the scheme's default (WebAuthn L3 §7.2 step 12).
        // A browser sends the serialized origin (HTML, "ASCII serialization of an origin"), which is this form.
        _origins = [.. options.Origins.Select(o => Uri.TryCreate(o, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Authority) : o).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Builds the ceremonies; with <c>trusted</c> attestation, reads the trust roots and the MDS BLOB first.</summary>
    public static async Task<PasskeyCeremonies> CreateAsync(AssentOptions options, CancellationToken ct) =>
        new(options, options.WebAuthnAttestation == WebAuthnAttestationModes.Trusted ? await AttestationTrust.LoadAsync(options, ct) : null);

    /// <summary>
    /// Options for registering a passkey for <paramref name="userId"/> (WebAuthn L3 §5.4): a fresh
    /// challenge, the user's existing credentials excluded (§5.4.3), a discoverable credential
    /// preferred, user verification required, and attestation <c>none</c>, or <c>direct</c> when
    /// attestations must chain to trusted roots.
    /// </summary>
    public PasskeyCreation RegistrationOptions(string userId, string handle, IEnumerable<byte[]> excludeCredentialIds)
    {
        var created = _fido2.RequestNewCredential(new RequestNewCredentialParams
        {
            User = User(userId, handle),
            ExcludeCredentials = [.. excludeCredentialIds.Select(id => new PublicKeyCredentialDescriptor(id))],
            AuthenticatorSelection = Selection(),
            AttestationPreference = Conveyance(),
            PubKeyCredParams = Algorithms,
        });
        var selection = created.AuthenticatorSelection;
        // The web app reads the WebAuthn L3 §5.1.1 JSON form it always has.
        return new PasskeyCreation(created.Challenge, new CreationOptions(
            new RpEntity(created.Rp.Id, created.Rp.Name),
            new UserEntity(Base64Url.Encode(created.User.Id), created.User.Name, created.User.DisplayName),
            Base64Url.Encode(created.Challenge),
            [.. created.PubKeyCredParams.Select(p => new CredentialParameter(p.Type.ToEnumMemberValue(), (int)p.Alg))],
            (long)created.Timeout,
            [.. created.ExcludeCredentials.Select(c => new CredentialDescriptor(c.Type.ToEnumMemberValue(), Base64Url.Encode(c.Id)))],
            new AuthenticatorSelection(selection.ResidentKey.ToEnumMemberValue(), selection.ResidentKey == ResidentKeyRequirement.Required,
                selection.UserVerification.ToEnumMemberValue()),
            created.Attestation.ToEnumMemberValue()));
    }

    /// <summary>
    /// Verifies a registration (WebAuthn L3 §7.1) made with <paramref name="challenge"/> for
    /// <paramref name="userId"/>. With <c>trusted</c> attestation, only an attestation whose
    /// certificate chain Fido2 validated against the trusted roots is accepted; otherwise any
    /// statement Fido2 verifies is, and none of them is trusted. Whether the credential is
    /// already registered is the caller's question.
    /// </summary>
    public async Task<WebAuthnResult<RegisteredPasskey>> VerifyRegistrationAsync(string userId, byte[] attestationObject, byte[] clientDataJson,
        byte[] challenge, CancellationToken ct)
    {
        RegisteredPublicKeyCredential credential;
        try
        {
            // The web app posts no credential id: it is read from the attestation, which Fido2 then matches against it.
            var parsed = AuthenticatorAttestationResponse.Parse(Attestation([0], attestationObject, clientDataJson));
            var credentialId = parsed.AttestationObject.AuthData.AttestedCredentialData?.CredentialId is { Length: > 0 } id ? id : [0];
            credential = await _fido2.MakeNewCredentialAsync(new MakeNewCredentialParams
            {
                AttestationResponse = Attestation(credentialId, attestationObject, clientDataJson),
                OriginalOptions = new CredentialCreateOptions
                {
                    Rp = new PublicKeyCredentialRpEntity(_config.RPID, _config.RPName),
                    User = User(userId, userId),
                    Challenge = challenge,
                    PubKeyCredParams = Algorithms,
                    AuthenticatorSelection = Selection(),
                    Attestation = Conveyance(),
                },
                IsCredentialIdUniqueToUserCallback = static (_, _) => Task.FromResult(true),
            }, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return WebAuthnResult<RegisteredPasskey>.Failure(Refusal(e, WebAuthnFailures.MalformedAttestation));
        }

        if (_trust is not null)
        {
            // WebAuthn L3 §7.1 step 24: none and self attestation prove nothing about the authenticator's make.
            if (credential.AttestationType == AttestationType.None.Value || credential.AttestationType == AttestationType.Self.Value)
            {
                return WebAuthnResult<RegisteredPasskey>.Failure(WebAuthnFailures.AttestationNotTrusted,
                    $"{credential.AttestationFormat} attestation of type {credential.AttestationType} does not chain to a trusted root, and only such attestations are accepted here");
            }
            if (!_trust.Covers(credential.AaGuid))
            {
                return WebAuthnResult<RegisteredPasskey>.Failure(WebAuthnFailures.AttestationNotTrusted,
                    $"no trusted root or metadata covers authenticator model {credential.AaGuid}");
            }
        }
        if (!CoseJwk.TryToJwk(credential.PublicKey, out var jwk, out var algorithm))
        {
            return WebAuthnResult<RegisteredPasskey>.Failure(WebAuthnFailures.UnsupportedAlgorithm, "the credential key is not an EdDSA, ES256 or RS256 key");
        }
        // Evidence made with this key is checked by the SDK's verifier: it must be able to.
        if (!WebAuthnVerifier.IsUsableKey(jwk, out var keyError))
        {
            return WebAuthnResult<RegisteredPasskey>.Failure(keyError);
        }
        return WebAuthnResult<RegisteredPasskey>.Success(new RegisteredPasskey(credential.Id, jwk, algorithm, credential.SignCount, credential.AaGuid,
            credential.AttestationFormat, _trust is not null));
    }

    /// <summary>
    /// Verifies an assertion by <paramref name="passkey"/> over <paramref name="challenge"/>
    /// (WebAuthn L3 §7.2), user verification required. The signature counter (§6.1.1): when the
    /// stored or the new counter is nonzero and the new one is not greater, the assertion is
    /// refused as <see cref="WebAuthnFailures.SignCountRegression"/>, a possibly cloned
    /// authenticator the caller audits; a passkey that always reports 0 keeps working.
    /// </summary>
    /// <remarks>
    /// One verification, and one signature check. A decision's assertion becomes token evidence that the SDK checks
    /// offline (<see cref="WebAuthnVerifier.VerifyAssertionSignature"/>), more strictly than Fido2 parses (DER signatures,
    /// JSON without duplicate members, no cross-origin or top origin): what it would refuse must be refused here, so that
    /// check is the one that runs, with the ceremony's RP ID and origins, on the key it keeps imported (ImportedKeys: a
    /// key is validated once per process, by its exact bytes, so a replaced key is imported afresh). Fido2's
    /// <c>MakeAssertionAsync</c> ran the same steps before it and imported the key again on every call (a P-256 point
    /// validation as dear as the verification, and a native key left to the finalizer); what it checked that the offline
    /// check does not, is done here on the bytes: the authenticator data's structure (Fido2's parser, no signature) and
    /// the counter, judged after the signature as §7.2 orders it.
    /// </remarks>
    public Task<WebAuthnResult<PasskeyAssertion>> VerifyAssertionAsync(StoredPasskey passkey, byte[] authenticatorData, byte[] clientDataJson,
        byte[] signature, byte[] challenge, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult(VerifyAssertion(passkey, authenticatorData, clientDataJson, signature, challenge));
    }

    private WebAuthnResult<PasskeyAssertion> VerifyAssertion(StoredPasskey passkey, byte[] authenticatorData, byte[] clientDataJson, byte[] signature,
        byte[] challenge)
    {
        if (passkey.CredentialId.Length == 0 || StoredKey(passkey.PublicJwk) is not { } jwk)
        {
            return WebAuthnResult<PasskeyAssertion>.Failure(WebAuthnFailures.InvalidKey, "the stored passkey key is unusable");
        }
        try
        {
            // WebAuthn L3 §6.1: flags consistent with what follows them (attested credential data, CBOR extensions), nothing after.
            Fido2AuthenticatorData.Parse(authenticatorData);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return WebAuthnResult<PasskeyAssertion>.Failure(Refusal(e, WebAuthnFailures.MalformedAuthenticatorData));
        }
        // §7.2 steps 11–21: type, challenge (fixed time), origin, not cross-origin, rpIdHash, UP, UV (sign-in and decisions
        // alike need it, whatever the defaults), BS only with BE, and the signature over authData ‖ SHA-256(clientDataJSON).
        var verified = WebAuthnVerifier.VerifyAssertionSignature(authenticatorData, clientDataJson, signature, jwk, challenge,
            _config.RPID, _origins, requireUserVerification: true);
        if (!verified.Succeeded)
        {
            return WebAuthnResult<PasskeyAssertion>.Failure(verified.Error);
        }
        // §7.2 step 22 (§6.1.1): when either counter is nonzero, the new one must be greater.
        var storedSignCount = (uint)Math.Clamp(passkey.SignCount, 0, uint.MaxValue);
        var signCount = verified.Value.SignCount;
        if ((signCount != 0 || storedSignCount != 0) && signCount <= storedSignCount)
        {
            return WebAuthnResult<PasskeyAssertion>.Failure(WebAuthnFailures.SignCountRegression,
                $"signature counter {signCount} is not above the stored {storedSignCount}");
        }
        return WebAuthnResult<PasskeyAssertion>.Success(new PasskeyAssertion(signCount));
    }

    /// <summary>
    /// The stored JWK read and found usable, or null. Usable keys are kept by their exact stored text, so a passkey that
    /// signs in again is not parsed and checked again, and a replaced key (other text) is never served the old one.
    /// Bounded like the imports it stands beside: past <see cref="MaxStoredKeys"/> the map starts over; unusable keys are not kept.
    /// </summary>
    private Jwk? StoredKey(string publicJwk)
    {
        var keys = _storedKeys;
        if (keys.TryGetValue(publicJwk, out var known))
        {
            return known;
        }
        Jwk? jwk;
        try
        {
            jwk = JsonSerializer.Deserialize(publicJwk, JwkJson.Default.Jwk);
        }
        catch (JsonException)
        {
            return null;
        }
        if (jwk is null || !WebAuthnVerifier.IsUsableKey(jwk, out _))
        {
            return null;
        }
        if (keys.Count >= MaxStoredKeys)
        {
            keys = _storedKeys = new ConcurrentDictionary<string, Jwk>(StringComparer.Ordinal);
        }
        keys[publicJwk] = jwk;
        return jwk;
    }

    /// <summary>How many stored keys are kept parsed (tests).</summary>
    internal int StoredKeyCount => _storedKeys.Count;

    private static Fido2User User(string userId, string handle) => new() { Id = Encoding.UTF8.GetBytes(userId), Name = handle, DisplayName = handle };

    private static Fido2Selection Selection() => new() { ResidentKey = ResidentKeyRequirement.Preferred, UserVerification = UserVerificationRequirement.Required };

    private AttestationConveyancePreference Conveyance() => _trust is null ? AttestationConveyancePreference.None : AttestationConveyancePreference.Direct;

    private static AuthenticatorAttestationRawResponse Attestation(byte[] credentialId, byte[] attestationObject, byte[] clientDataJson) => new()
    {
        Id = Base64Url.Encode(credentialId),
        RawId = credentialId,
        Type = PublicKeyCredentialType.PublicKey,
        Response = new AuthenticatorAttestationRawResponse.AttestationResponse
        {
            AttestationObject = attestationObject,
            ClientDataJson = clientDataJson,
            Transports = [],
        },
        ClientExtensionResults = new AuthenticationExtensionsClientOutputs(),
    };

    /// <summary>
    /// Names a Fido2 refusal with our code. Fido2 reads attacker bytes with casts and a CBOR
    /// reader that raise more than its own exception type (a truncated map, a text string where
    /// bytes belong), so any exception is a refusal of the input, reported with
    /// <paramref name="unreadable"/>. Internal for the table test of the mapping.
    /// </summary>
    internal static WebAuthnError Refusal(Exception e, string unreadable) => e is Fido2VerificationException f
        ? new WebAuthnError(f.Code switch
        {
            Fido2ErrorCode.InvalidRpidHash => WebAuthnFailures.RpIdMismatch,
            Fido2ErrorCode.InvalidSignature => WebAuthnFailures.InvalidSignature,
            Fido2ErrorCode.InvalidSignCount => WebAuthnFailures.SignCountRegression,
            Fido2ErrorCode.UserVerificationRequirementNotMet => WebAuthnFailures.UserNotVerified,
            Fido2ErrorCode.UserPresentFlagNotSet => WebAuthnFailures.UserNotPresent,
            Fido2ErrorCode.MissingStoredPublicKey or Fido2ErrorCode.InvalidCredentialPublicKey => WebAuthnFailures.InvalidKey,
            Fido2ErrorCode.InvalidAttestation => WebAuthnFailures.InvalidAttestation,
            Fido2ErrorCode.InvalidAttestationObject or Fido2ErrorCode.MalformedAttestationObject or Fido2ErrorCode.MissingAttestationObject
                => WebAuthnFailures.MalformedAttestation,
            Fido2ErrorCode.AttestedCredentialDataFlagNotSet or Fido2ErrorCode.InvalidAttestedCredentialData => WebAuthnFailures.MissingAttestedCredential,
            Fido2ErrorCode.UnknownAttestationType or Fido2ErrorCode.MissingAttestationType => WebAuthnFailures.UnsupportedAttestation,
            Fido2ErrorCode.UnexpectedExtensions or Fido2ErrorCode.MalformedExtensionsDetected or Fido2ErrorCode.UnexpectedExtensionsDetected
                or Fido2ErrorCode.MissingAuthenticatorData or Fido2ErrorCode.InvalidAuthenticatorData => WebAuthnFailures.MalformedAuthenticatorData,
            // The raw response's id and type are ours, so what is left of these is the client data type (WebAuthn L3 §7.1 step 7, §7.2 step 11).
            Fido2ErrorCode.InvalidAssertionResponse or Fido2ErrorCode.InvalidAttestationResponse => WebAuthnFailures.WrongType,
            Fido2ErrorCode.InvalidAuthenticatorResponse or Fido2ErrorCode.MalformedAuthenticatorResponse
                or Fido2ErrorCode.MissingAuthenticatorResponseChallenge or Fido2ErrorCode.MissingAuthenticatorResponseOrigin => WebAuthnFailures.MalformedClientData,
            Fido2ErrorCode.InvalidAuthenticatorResponseChallenge => WebAuthnFailures.ChallengeMismatch,
            Fido2ErrorCode.InvalidAuthenticatorResponseOrigin => WebAuthnFailures.OriginNotAllowed,
            Fido2ErrorCode.CrossOriginRequestNotAllowed or Fido2ErrorCode.InvalidAuthenticatorResponseTopOrigin => WebAuthnFailures.CrossOriginRefused,
            Fido2ErrorCode.UnimplementedAlgorithm or Fido2ErrorCode.CredentialAlgorithmRequirementNotMet => WebAuthnFailures.UnsupportedAlgorithm,
            Fido2ErrorCode.BackupEligibilityRequirementNotMet or Fido2ErrorCode.BackupStateRequirementNotMet or Fido2ErrorCode.InvalidBackupFlags
                => WebAuthnFailures.InvalidBackupFlags,
            Fido2ErrorCode.InvalidCertificateChain or Fido2ErrorCode.UndesiredMetadataStatus or Fido2ErrorCode.AaGuidNotFound => WebAuthnFailures.AttestationNotTrusted,
            _ => unreadable,
        }, f.Message)
        : new WebAuthnError(unreadable, $"{e.GetType().Name}: {e.Message}");
}

/// <summary>
/// A credential public key as a COSE_Key (RFC 9052 §7) and as a JWK (RFC 7517), for the three
/// algorithms Assent asks for: EC2 P-256 with ES256, OKP Ed25519 with EdDSA (RFC 9053 §7.1,
/// §7.2), RSA with RS256 (RFC 8230 §4). Passkeys are stored as JWKs because DID documents publish
/// those; Fido2 takes and gives COSE.
/// </summary>
internal static class CoseJwk
{
    // RFC 9052 §7.1 common labels, RFC 9053 §7 and RFC 8230 §4 key type parameters.
    private const int LabelKty = 1;
    private const int LabelAlg = 3;
    private const int LabelCrvOrN = -1;
    private const int LabelXOrE = -2;
    private const int LabelY = -3;
    private const int KtyOkp = 1;
    private const int KtyEc2 = 2;
    private const int KtyRsa = 3;
    private const int CrvP256 = 1;
    private const int CrvEd25519 = 6;
    private const int AlgEs256 = (int)COSE.Algorithm.ES256;
    private const int AlgEdDsa = (int)COSE.Algorithm.EdDSA;
    private const int AlgRs256 = (int)COSE.Algorithm.RS256;
    private const string JwkEc = "EC";
    private const string JwkRsa = "RSA";
    private const string JwkP256 = "P-256";

    /// <summary>Reads a COSE key Fido2 verified at registration; false for anything but the three key kinds.</summary>
    public static bool TryToJwk(byte[] cose, out Jwk jwk, out int algorithm)
    {
        jwk = new Jwk("", null, null);
        var integers = new Dictionary<int, long>();
        var bytes = new Dictionary<int, byte[]>();
        try
        {
            var reader = new CborReader(cose, CborConformanceMode.Lax);
            var count = reader.ReadStartMap();
            for (var i = 0; count is null ? reader.PeekState() != CborReaderState.EndMap : i < count; i++)
            {
                var label = reader.ReadInt32();
                switch (reader.PeekState())
                {
                    case CborReaderState.UnsignedInteger or CborReaderState.NegativeInteger:
                        integers[label] = reader.ReadInt64();
                        break;
                    case CborReaderState.ByteString:
                        bytes[label] = reader.ReadByteString();
                        break;
                    default:
                        reader.SkipValue();
                        break;
                }
            }
        }
        catch (Exception e) when (e is CborContentException or InvalidOperationException or OverflowException)
        {
            algorithm = 0;
            return false;
        }
        var kty = integers.GetValueOrDefault(LabelKty);
        var crv = integers.GetValueOrDefault(LabelCrvOrN);
        algorithm = (int)integers.GetValueOrDefault(LabelAlg);
        switch (algorithm)
        {
            case AlgEs256 when kty == KtyEc2 && crv == CrvP256 && bytes.TryGetValue(LabelXOrE, out var x) && bytes.TryGetValue(LabelY, out var y):
                jwk = new Jwk(JwkEc, JwkP256, Base64Url.Encode(x), Base64Url.Encode(y));
                return true;
            case AlgEdDsa when kty == KtyOkp && crv == CrvEd25519 && bytes.TryGetValue(LabelXOrE, out var x):
                jwk = new Jwk(Jwk.OctetKeyPair, Jwk.Ed25519Curve, Base64Url.Encode(x));
                return true;
            case AlgRs256 when kty == KtyRsa && bytes.TryGetValue(LabelCrvOrN, out var n) && bytes.TryGetValue(LabelXOrE, out var e):
                jwk = new Jwk(JwkRsa, null, null, N: Base64Url.Encode(n), E: Base64Url.Encode(e));
                return true;
            default:
                return false;
        }
    }

    /// <summary>The CTAP2-canonical COSE key for a JWK that <see cref="WebAuthnVerifier.IsUsableKey"/> accepted.</summary>
    public static byte[] FromJwk(Jwk jwk)
    {
        var writer = new CborWriter(CborConformanceMode.Ctap2Canonical);
        switch (jwk.Kty)
        {
            case JwkEc:
                writer.WriteStartMap(5);
                WriteKeyType(writer, KtyEc2, AlgEs256);
                writer.WriteInt32(LabelCrvOrN);
                writer.WriteInt32(CrvP256);
                writer.WriteInt32(LabelXOrE);
                writer.WriteByteString(Base64Url.Decode(jwk.X));
                writer.WriteInt32(LabelY);
                writer.WriteByteString(Base64Url.Decode(jwk.Y));
                break;
            case JwkRsa:
                writer.WriteStartMap(4);
                WriteKeyType(writer, KtyRsa, AlgRs256);
                writer.WriteInt32(LabelCrvOrN);
                writer.WriteByteString(Base64Url.Decode(jwk.N));
                writer.WriteInt32(LabelXOrE);
                writer.WriteByteString(Base64Url.Decode(jwk.E));
                break;
            default:
                writer.WriteStartMap(4);
                WriteKeyType(writer, KtyOkp, AlgEdDsa);
                writer.WriteInt32(LabelCrvOrN);
                writer.WriteInt32(CrvEd25519);
                writer.WriteInt32(LabelXOrE);
                writer.WriteByteString(Base64Url.Decode(jwk.X));
                break;
        }
        writer.WriteEndMap();
        return writer.Encode();
    }

    private static void WriteKeyType(CborWriter writer, int kty, int alg)
    {
        writer.WriteInt32(LabelKty);
        writer.WriteInt32(kty);
        writer.WriteInt32(LabelAlg);
        writer.WriteInt32(alg);
    }
}
