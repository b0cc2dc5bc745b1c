using System.Diagnostics.CodeAnalysis;

namespace Assent.Protocol.WebAuthn;

/// <summary>
/// A parsed attestation object (WebAuthn L3 §6.5.4) of one of the two statement formats Assent
/// accepts: <c>none</c> (§8.7) and <c>packed</c> self attestation (§8.2, the statement signed by
/// the credential key itself).
/// </summary>
/// <remarks>
/// Attestation certificate chains are not validated: a packed statement carrying <c>x5c</c>
/// (or <c>ecdaaKeyId</c>) and every other format (<c>fido-u2f</c>, <c>tpm</c>,
/// <c>android-key</c>, <c>apple</c>, …) are refused with
/// <see cref="WebAuthnFailures.UnsupportedAttestation"/>. Assent therefore never learns or claims
/// an authenticator's make; the AAGUID it reports is unauthenticated.
/// </remarks>
public sealed record AttestationObject(
    string Format,
    AuthenticatorData AuthenticatorData,
    byte[] AuthenticatorDataBytes,
    AttestedCredentialData Credential,
    int? StatementAlgorithm,
    byte[]? StatementSignature)
{
    public const string FormatNone = "none";
    public const string FormatPacked = "packed";

    private const string KeyFormat = "fmt";
    private const string KeyStatement = "attStmt";
    private const string KeyAuthenticatorData = "authData";
    private const string StatementAlg = "alg";
    private const string StatementSig = "sig";
    private const string StatementX5c = "x5c";
    private const string StatementEcdaa = "ecdaaKeyId";

    /// <summary>
    /// Parses the attestation object and its authenticator data, which must carry attested
    /// credential data. The statement signature is checked by <see cref="VerifyStatement"/>.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> cbor, [NotNullWhen(true)] out AttestationObject? attestation, [NotNullWhen(false)] out WebAuthnError? error)
    {
        attestation = null;
        try
        {
            attestation = Parse(cbor);
            error = null;
            return true;
        }
        catch (CborException e)
        {
            error = new WebAuthnError(WebAuthnFailures.MalformedAttestation, "attestation object is not valid CBOR: " + e.Message);
        }
        catch (WebAuthnFormatException e)
        {
            error = e.Error;
        }
        return false;
    }

    /// <summary>
    /// Verifies the attestation statement against the SHA-256 of clientDataJSON: nothing for
    /// <c>none</c>; for packed self attestation (WebAuthn L3 §8.2.2) that <c>alg</c> is the
    /// credential key's algorithm and <c>sig</c> is its signature over authData ‖ clientDataHash.
    /// </summary>
    public WebAuthnError? VerifyStatement(ReadOnlySpan<byte> clientDataHash)
    {
        if (Format == FormatNone)
        {
            return null;
        }
        if (StatementAlgorithm != Credential.PublicKey.Algorithm)
        {
            return new WebAuthnError(WebAuthnFailures.AttestationAlgorithmMismatch,
                $"statement alg {StatementAlgorithm} is not the credential key's alg {Credential.PublicKey.Algorithm}");
        }
        var signed = new byte[AuthenticatorDataBytes.Length + clientDataHash.Length];
        AuthenticatorDataBytes.CopyTo(signed, 0);
        clientDataHash.CopyTo(signed.AsSpan(AuthenticatorDataBytes.Length));
        return Credential.PublicKey.VerifySignature(signed, StatementSignature)
            ? null
            : new WebAuthnError(WebAuthnFailures.InvalidAttestationSignature, "packed self attestation signature does not verify");
    }

    private static AttestationObject Parse(ReadOnlySpan<byte> cbor)
    {
        if (Cbor.Decode(cbor) is not CborMap map)
        {
            throw Malformed("attestation object is not a map");
        }
        if (map.Entries.Count != 3 || map[KeyFormat] is not CborTextString { Value: var format } ||
            map[KeyStatement] is not CborMap statement || map[KeyAuthenticatorData] is not CborByteString authDataBytes)
        {
            throw Malformed("attestation object must hold exactly fmt (text), attStmt (map) and authData (bytes)");
        }
        var authData = AuthenticatorData.Parse(authDataBytes.Value);
        if (authData.AttestedCredential is not { } credential)
        {
            throw new WebAuthnFormatException(WebAuthnFailures.MissingAttestedCredential,
                "authenticator data carries no attested credential data");
        }
        switch (format)
        {
            case FormatNone:
                // WebAuthn L3 §8.7: the none statement is the empty map.
                if (statement.Entries.Count != 0)
                {
                    throw Malformed("none attestation statement is not empty");
                }
                return new AttestationObject(format, authData, authDataBytes.Value, credential, null, null);
            case FormatPacked:
                if (statement[StatementX5c] is not null || statement[StatementEcdaa] is not null)
                {
                    throw new WebAuthnFormatException(WebAuthnFailures.UnsupportedAttestation,
                        "packed attestation with a certificate chain or ECDAA is not supported, only self attestation");
                }
                if (statement.Entries.Count != 2 || statement[StatementAlg] is not CborInteger { Value: >= int.MinValue and <= int.MaxValue } alg ||
                    statement[StatementSig] is not CborByteString sig)
                {
                    throw Malformed("packed self attestation must hold exactly alg (integer) and sig (bytes)");
                }
                return new AttestationObject(format, authData, authDataBytes.Value, credential, (int)alg.Value, sig.Value);
            default:
                throw new WebAuthnFormatException(WebAuthnFailures.UnsupportedAttestation,
                    $"attestation format {format} is not supported");
        }
    }

    private static WebAuthnFormatException Malformed(string detail) => new(WebAuthnFailures.MalformedAttestation, detail);
}
