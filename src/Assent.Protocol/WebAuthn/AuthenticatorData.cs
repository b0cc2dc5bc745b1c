using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

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

/// <summary>Attested credential data (WebAuthn L3 §6.5.1).</summary>
/// <param name="PublicKeyCose">The credential public key exactly as the authenticator encoded it.</param>
public sealed record AttestedCredentialData(Guid Aaguid, byte[] CredentialId, CoseKey PublicKey, byte[] PublicKeyCose);

/// <summary>
/// Parsed authenticator data (WebAuthn L3 §6.1). <see cref="Extensions"/> holds the raw CBOR
/// extension outputs map when the ED flag is set; it is checked to be a map but not interpreted.
/// </summary>
public sealed record AuthenticatorData(
    byte[] RpIdHash,
    AuthenticatorFlags Flags,
    uint SignCount,
    AttestedCredentialData? AttestedCredential,
    byte[]? Extensions)
{
    /// <summary>WebAuthn L3 §6.5.1: credentialIdLength is at most 1023.</summary>
    public const int MaxCredentialIdLength = 1023;

    private const int RpIdHashLength = 32;
    private const int FixedLength = RpIdHashLength + 1 + 4;
    private const int AaguidLength = 16;

    public bool UserPresent => Flags.HasFlag(AuthenticatorFlags.UserPresent);

    public bool UserVerified => Flags.HasFlag(AuthenticatorFlags.UserVerified);

    /// <summary>Parses authenticator data; trailing bytes after the last present part are refused.</summary>
    public static bool TryParse(ReadOnlySpan<byte> data, [NotNullWhen(true)] out AuthenticatorData? authenticatorData, [NotNullWhen(false)] out WebAuthnError? error)
    {
        authenticatorData = null;
        try
        {
            authenticatorData = Parse(data);
            error = null;
            return true;
        }
        catch (WebAuthnFormatException e)
        {
            error = e.Error;
            return false;
        }
    }

    internal static AuthenticatorData Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < FixedLength)
        {
            throw Malformed($"authenticator data is {data.Length} bytes, shorter than {FixedLength}");
        }
        var rpIdHash = data[..RpIdHashLength].ToArray();
        var flags = (AuthenticatorFlags)data[RpIdHashLength];
        var signCount = BinaryPrimitives.ReadUInt32BigEndian(data.Slice(RpIdHashLength + 1, 4));
        var rest = data[FixedLength..];

        AttestedCredentialData? attested = null;
        if (flags.HasFlag(AuthenticatorFlags.AttestedCredentialData))
        {
            if (rest.Length < AaguidLength + 2)
            {
                throw Malformed("attested credential data is truncated");
            }
            var aaguid = new Guid(rest[..AaguidLength], bigEndian: true);
            var idLength = BinaryPrimitives.ReadUInt16BigEndian(rest.Slice(AaguidLength, 2));
            rest = rest[(AaguidLength + 2)..];
            if (idLength > MaxCredentialIdLength || idLength > rest.Length)
            {
                throw Malformed($"credential id length {idLength} is too long");
            }
            var credentialId = rest[..idLength].ToArray();
            rest = rest[idLength..];
            // The COSE key has no length prefix: its end is wherever its CBOR ends.
            CborValue keyValue;
            int keyLength;
            try
            {
                keyValue = Cbor.DecodeFirst(rest, out keyLength);
            }
            catch (CborException e)
            {
                throw new WebAuthnFormatException(WebAuthnFailures.InvalidKey, "credential public key is not valid CBOR: " + e.Message);
            }
            attested = new AttestedCredentialData(aaguid, credentialId, CoseKey.FromCbor(keyValue), rest[..keyLength].ToArray());
            rest = rest[keyLength..];
        }

        byte[]? extensions = null;
        if (flags.HasFlag(AuthenticatorFlags.ExtensionData))
        {
            int length;
            try
            {
                if (Cbor.DecodeFirst(rest, out length) is not CborMap map || map.Entries.Keys.Any(k => k is not CborTextString))
                {
                    throw Malformed("extensions are not a map keyed by identifiers");
                }
            }
            catch (CborException e)
            {
                throw Malformed("extensions are not valid CBOR: " + e.Message);
            }
            extensions = rest[..length].ToArray();
            rest = rest[length..];
        }

        if (!rest.IsEmpty)
        {
            throw Malformed($"{rest.Length} trailing bytes after authenticator data");
        }
        return new AuthenticatorData(rpIdHash, flags, signCount, attested, extensions);
    }

    private static WebAuthnFormatException Malformed(string detail) => new(WebAuthnFailures.MalformedAuthenticatorData, detail);
}
