using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;

namespace Assent.Protocol.WebAuthn;

/// <summary>The authenticator data flags (WebAuthn L3 §6.1); bits 1 and 5 are reserved.</summary>
[Flags]
public enum AuthenticatorFlags : byte
{
    None = 0,
    UserPresent = 0x01,
    UserVerified = 0x04,
    BackupEligible = 0x08,
    BackupState = 0x10,
    AttestedCredentialData = 0x40,
    ExtensionData = 0x80,
}

/// <summary>An assertion whose signature and client data verified.</summary>
/// <param name="SignCount">The authenticator's signature counter as it signed it (WebAuthn L3 §6.1.1).</param>
public sealed record VerifiedAssertion(AuthenticatorFlags Flags, uint SignCount, ClientData ClientData);

/// <summary>
/// The offline check of the passkey assertion a token's <c>webauthn</c> evidence carries: the
/// signature of a public JWK, taken from the approver's DID document, over authenticatorData ‖
/// SHA-256(clientDataJSON), with client data and flags checked as WebAuthn L3 §7.2 steps 11–21
/// say. Nothing here throws on malformed input.
/// </summary>
/// <remarks>
/// Not Fido2: the server runs its ceremonies through Fido2 (Assent.Server.Passkeys.PasskeyCeremonies),
/// but this is no ceremony — there is no stored challenge, no counter and no attestation, only a
/// signature by a key the verifier already has as a JWK, while Fido2 wants a COSE key and the
/// options of a ceremony it ran. The SDK uses this too, and stays free of Fido2's dependencies
/// (NSec, Microsoft.IdentityModel); .NET's ECDsa and RSA and <see cref="Ed25519"/> do the crypto.
/// </remarks>
public static class WebAuthnVerifier
{
    /// <summary>WebAuthn L3 §6.5.1: a credential id is at most 1023 bytes.</summary>
    public const int MaxCredentialIdLength = 1023;

    /// <summary>Smallest RSA modulus accepted, in bits.</summary>
    public const int MinRsaBits = 2048;

    /// <summary>Largest RSA modulus accepted, in bits; caps verification cost.</summary>
    public const int MaxRsaBits = 8192;

    // WebAuthn L3 §6.1: rpIdHash (32) ‖ flags (1) ‖ signCount (4, big-endian), then optional parts.
    private const int RpIdHashLength = 32;
    private const int FixedLength = RpIdHashLength + 1 + 4;
    private const int P256CoordinateSize = 32;

    private const string JwkEc = "EC";
    private const string JwkRsa = "RSA";
    private const string JwkP256 = "P-256";

    /// <summary>
    /// Verifies an assertion against <paramref name="publicKey"/>: client data of type
    /// <c>webauthn.get</c> whose challenge equals <paramref name="expectedChallenge"/> (compared in
    /// fixed time), not cross-origin, UP and (unless not required) UV set, BS only with BE, and a
    /// valid ES256, EdDSA or RS256 signature. The SDK derives the challenge itself and may pass null
    /// for <paramref name="rpId"/> or <paramref name="allowedOrigins"/> to skip those checks; the
    /// credential is still scoped to its RP by the authenticator. The counter is reported, not judged.
    /// </summary>
    public static WebAuthnResult<VerifiedAssertion> VerifyAssertionSignature(
        ReadOnlySpan<byte> authenticatorData,
        ReadOnlySpan<byte> clientDataJson,
        ReadOnlySpan<byte> signature,
        Jwk publicKey,
        ReadOnlySpan<byte> expectedChallenge,
        string? rpId = null,
        IReadOnlyCollection<string>? allowedOrigins = null,
        bool requireUserVerification = true)
    {
        if (CheckClientData(clientDataJson, expectedChallenge, allowedOrigins, out var clientData) is { } clientError)
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(clientError);
        }
        if (authenticatorData.Length < FixedLength)
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(WebAuthnFailures.MalformedAuthenticatorData,
                $"authenticator data is {authenticatorData.Length} bytes, shorter than {FixedLength}");
        }
        var flags = (AuthenticatorFlags)authenticatorData[RpIdHashLength];
        // §7.2 step 15.
        if (rpId is not null &&
            !CryptographicOperations.FixedTimeEquals(authenticatorData[..RpIdHashLength], SHA256.HashData(Encoding.UTF8.GetBytes(rpId))))
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(WebAuthnFailures.RpIdMismatch, $"rpIdHash is not SHA-256 of {rpId}");
        }
        if (!flags.HasFlag(AuthenticatorFlags.UserPresent))
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(WebAuthnFailures.UserNotPresent, "the UP flag is not set");
        }
        if (requireUserVerification && !flags.HasFlag(AuthenticatorFlags.UserVerified))
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(WebAuthnFailures.UserNotVerified, "the UV flag is not set");
        }
        // §6.1: BS may only be set when BE is.
        if (flags.HasFlag(AuthenticatorFlags.BackupState) && !flags.HasFlag(AuthenticatorFlags.BackupEligible))
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(WebAuthnFailures.InvalidBackupFlags, "BS is set without BE");
        }
        // §7.2 steps 20–21: the signature covers authData ‖ SHA-256(clientDataJSON).
        var signed = new byte[authenticatorData.Length + SHA256.HashSizeInBytes];
        authenticatorData.CopyTo(signed);
        SHA256.HashData(clientDataJson, signed.AsSpan(authenticatorData.Length));
        if (Check(publicKey, signed, signature, verify: true) is { } signatureError)
        {
            return WebAuthnResult<VerifiedAssertion>.Failure(signatureError);
        }
        var signCount = BinaryPrimitives.ReadUInt32BigEndian(authenticatorData.Slice(RpIdHashLength + 1, 4));
        return WebAuthnResult<VerifiedAssertion>.Success(new VerifiedAssertion(flags, signCount, clientData));
    }

    /// <summary>
    /// Whether <paramref name="jwk"/> is a key an assertion can be checked with: EC P-256 (ES256),
    /// OKP Ed25519 (EdDSA) or RSA of <see cref="MinRsaBits"/>–<see cref="MaxRsaBits"/> bits (RS256).
    /// </summary>
    public static bool IsUsableKey(Jwk jwk, [NotNullWhen(false)] out WebAuthnError? error)
    {
        error = Check(jwk, [], [], verify: false);
        return error is null;
    }

    private static WebAuthnError? CheckClientData(ReadOnlySpan<byte> json, ReadOnlySpan<byte> expectedChallenge,
        IReadOnlyCollection<string>? allowedOrigins, out ClientData clientData)
    {
        clientData = new ClientData("", [], "", false, null);
        if (!ClientData.TryParse(json, out var parsed, out var error))
        {
            return error;
        }
        clientData = parsed;
        // WebAuthn L3 §7.2 steps 11–13.
        if (parsed.Type != ClientData.TypeGet)
        {
            return new WebAuthnError(WebAuthnFailures.WrongType, $"client data type is {parsed.Type}, not {ClientData.TypeGet}");
        }
        if (!CryptographicOperations.FixedTimeEquals(parsed.Challenge, expectedChallenge))
        {
            return new WebAuthnError(WebAuthnFailures.ChallengeMismatch, "challenge is not the one expected");
        }
        if (allowedOrigins is not null && !allowedOrigins.Contains(parsed.Origin, StringComparer.Ordinal))
        {
            return new WebAuthnError(WebAuthnFailures.OriginNotAllowed, $"origin {parsed.Origin} is not allowed");
        }
        // An approval is never given from inside another site's iframe.
        return parsed.CrossOrigin || parsed.TopOrigin is not null
            ? new WebAuthnError(WebAuthnFailures.CrossOriginRefused, "the ceremony ran in a cross-origin iframe")
            : null;
    }

    /// <summary>
    /// Checks the key and, when <paramref name="verify"/>, the signature over <paramref name="data"/>:
    /// ES256 signatures are ASN.1 DER (WebAuthn L3 §6.5.5), EdDSA ones the raw 64 bytes
    /// (RFC 8032 §5.1.6), RS256 ones PKCS#1 v1.5 of exactly the modulus length (RFC 8017 §8.2.2).
    /// </summary>
    private static WebAuthnError? Check(Jwk jwk, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, bool verify)
    {
        var invalid = new WebAuthnError(WebAuthnFailures.InvalidSignature, "assertion signature does not verify");
        switch (jwk.Kty)
        {
            case JwkEc when jwk.Crv == JwkP256:
                if (!TryMember(jwk.X, out var x) || !TryMember(jwk.Y, out var y) || x.Length != P256CoordinateSize || y.Length != P256CoordinateSize)
                {
                    return InvalidKey("a P-256 JWK needs x and y of 32 bytes each");
                }
                ECDsa ecdsa;
                try
                {
                    // Import checks that the point is on the curve; a key that passed is kept (ImportedKeys), one that failed is not.
                    ecdsa = ImportedKeys.GetOrImport("EC P-256 " + Convert.ToHexString(x) + Convert.ToHexString(y),
                        () => ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = x, Y = y } }));
                }
                catch (CryptographicException)
                {
                    return InvalidKey("the P-256 point is not on the curve");
                }
                if (!verify)
                {
                    return null;
                }
                lock (ecdsa)
                {
                    return ecdsa.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence) ? null : invalid;
                }
            case Jwk.OctetKeyPair when jwk.Crv == Jwk.Ed25519Curve:
                if (!jwk.TryGetEd25519(out var publicKey))
                {
                    return InvalidKey("an Ed25519 JWK needs an x of 32 bytes");
                }
                return !verify || (signature.Length == Ed25519.SignatureSize && Ed25519.Verify(publicKey, data, signature)) ? null : invalid;
            case JwkRsa:
                // RFC 7518 §6.3.1: unsigned big-endian in the minimum number of octets.
                if (!TryMember(jwk.N, out var n) || !TryMember(jwk.E, out var e) || n.Length == 0 || n[0] == 0 || e.Length is 0 or > 4 || e[0] == 0)
                {
                    return InvalidKey("an RSA JWK needs n and e as minimal big-endian integers");
                }
                var bits = (n.Length - 1) * 8 + (32 - BitOperations.LeadingZeroCount((uint)n[0]));
                if (bits is < MinRsaBits or > MaxRsaBits || (n[^1] & 1) == 0 || (e[^1] & 1) == 0)
                {
                    return InvalidKey($"an RSA modulus of {bits} bits is outside {MinRsaBits}–{MaxRsaBits}, or n or e is even");
                }
                RSA rsa;
                try
                {
                    rsa = ImportedKeys.GetOrImport("RSA " + Convert.ToHexString(e) + " " + Convert.ToHexString(n),
                        () => RSA.Create(new RSAParameters { Modulus = n, Exponent = e }));
                }
                catch (CryptographicException)
                {
                    return InvalidKey("the RSA key could not be imported");
                }
                if (!verify)
                {
                    return null;
                }
                if (signature.Length != n.Length)
                {
                    return invalid;
                }
                lock (rsa)
                {
                    return rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1) ? null : invalid;
                }
            default:
                return new WebAuthnError(WebAuthnFailures.UnsupportedAlgorithm, $"JWK kty {jwk.Kty} with crv {jwk.Crv ?? "(none)"} is not supported");
        }
    }

    private static bool TryMember(string? value, out byte[] bytes)
    {
        bytes = [];
        return value is not null && Base64Url.TryDecode(value, out bytes);
    }

    private static WebAuthnError InvalidKey(string detail) => new(WebAuthnFailures.InvalidKey, detail);
}
