using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Assent.Protocol;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;

namespace Assent.Server.Passkeys;

/// <summary>
/// Stateless sign-in challenges (docs/http-api.md §12.3): <c>POST /webauthn/signin/options</c> writes nothing. A challenge is
/// 16 random bytes, its expiry and an HMAC-SHA256 over both, keyed with a key derived from the key-encryption key and bound
/// to this server's RP ID, so that only this deployment's nodes mint them and a challenge cannot be moved to another RP.
/// Single use is kept at assertion time: the challenge's hash goes into <c>spent_challenges</c> in the transaction that
/// opens the session (or alone when the sign-in is refused), and a second use finds it there until it expires.
/// </summary>
internal sealed class SignInChallenges(MasterKey master, AssentOptions options, TimeProvider time)
{
    private const int NonceBytes = 16;
    private const int ExpiryBytes = 8;
    private const int MacBytes = 32;

    /// <summary>WebAuthn L3 §5.8.6, UserVerificationRequirement: a sign-in counts as multi-factor only with user verification.</summary>
    private const string UserVerificationRequired = "required";

    /// <summary>WebAuthn L3 §13.4.3 asks for at least 16 random bytes; ours are that plus the expiry and the MAC: 56, under the 64 the assertion endpoint reads.</summary>
    public const int Length = NonceBytes + ExpiryBytes + MacBytes;

    private readonly byte[] _key = master.Derive("assent webauthn sign-in challenge v1");
    private readonly byte[] _binding = Encoding.UTF8.GetBytes("signin\0" + options.RpId + "\0");

    /// <summary>A new challenge, valid for <see cref="AssentOptions.WebAuthnChallengeLifetime"/>.</summary>
    public byte[] Issue()
    {
        var challenge = new byte[Length];
        RandomNumberGenerator.Fill(challenge.AsSpan(0, NonceBytes));
        var expires = time.GetUtcNow().ToUnixTimeMilliseconds() + (long)options.WebAuthnChallengeLifetime.TotalMilliseconds;
        BinaryPrimitives.WriteInt64BigEndian(challenge.AsSpan(NonceBytes, ExpiryBytes), expires);
        Mac(challenge.AsSpan(0, NonceBytes + ExpiryBytes), challenge.AsSpan(NonceBytes + ExpiryBytes));
        return challenge;
    }

    /// <summary>
    /// The options of <c>navigator.credentials.get</c> for a sign-in, around a new challenge: empty allowCredentials (a
    /// discoverable credential names its user, WebAuthn L3 §5.4.3, usernameless sign-in), user verification required.
    /// </summary>
    public RequestOptions IssueOptions() =>
        new(Base64Url.Encode(Issue()), (long)PasskeyCeremonies.CeremonyTimeout.TotalMilliseconds, options.RpId, [], UserVerificationRequired);

    /// <summary>
    /// The expiry (Unix ms) of a challenge this deployment issued for sign-in at this RP and that has not expired; null
    /// otherwise (another server's, another ceremony's, altered, or late). Whether it was spent is the store's to say.
    /// </summary>
    public long? Open(ReadOnlySpan<byte> challenge, long now)
    {
        if (challenge.Length != Length)
        {
            return null;
        }
        Span<byte> expected = stackalloc byte[MacBytes];
        Mac(challenge[..(NonceBytes + ExpiryBytes)], expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, challenge[(NonceBytes + ExpiryBytes)..]))
        {
            return null;
        }
        var expires = BinaryPrimitives.ReadInt64BigEndian(challenge.Slice(NonceBytes, ExpiryBytes));
        return expires > now ? expires : null;
    }

    private void Mac(ReadOnlySpan<byte> nonceAndExpiry, Span<byte> mac)
    {
        Span<byte> message = stackalloc byte[_binding.Length + NonceBytes + ExpiryBytes];
        _binding.CopyTo(message);
        nonceAndExpiry.CopyTo(message[_binding.Length..]);
        HMACSHA256.HashData(_key, message, mac);
    }
}
