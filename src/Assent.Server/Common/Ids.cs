using System.Security.Cryptography;
using Assent.Protocol;

namespace Assent.Server.Common;

/// <summary>Identifiers and secrets. Prefixes tell a human what a string is at a glance.</summary>
internal static class Ids
{
    public static string New(string prefix, int bytes = 12) => prefix + "_" + Base64Url.Encode(RandomNumberGenerator.GetBytes(bytes));

    /// <summary>
    /// An identifier that sorts by creation time: 12 hex digits of Unix milliseconds, then 96 random bits.
    /// Rows keyed by it are appended at the end of their index instead of on a random page, so a commit
    /// of many new rows rewrites a few pages rather than one per row.
    /// </summary>
    public static string Ordered(string prefix, DateTimeOffset now)
    {
        Span<byte> random = stackalloc byte[12];
        RandomNumberGenerator.Fill(random);
        return prefix + "_" + now.ToUnixTimeMilliseconds().ToString("x12", System.Globalization.CultureInfo.InvariantCulture) + Base64Url.Encode(random);
    }

    /// <summary>
    /// A secret stored by its hash and keyed by its creation time (docs/concepts.md §9): a request's handle
    /// (<c>auth_req_id</c>), a web session token, an authorization code. 48 bits of Unix milliseconds, then 256 random bits,
    /// base64url. The time is not secret; it lets <see cref="HandleKey"/> store the secret where new rows go last.
    /// </summary>
    public static string OrderedHandle(DateTimeOffset now)
    {
        Span<byte> bytes = stackalloc byte[HandleTimeBytes + 32];
        var ms = now.ToUnixTimeMilliseconds();
        for (var i = 0; i < HandleTimeBytes; i++)
        {
            bytes[i] = (byte)(ms >> (8 * (HandleTimeBytes - 1 - i)));
        }
        RandomNumberGenerator.Fill(bytes[HandleTimeBytes..]);
        return Base64Url.Encode(bytes);
    }

    /// <summary>
    /// What a handle is stored and looked up by: its SHA-256, after its creation time when it carries one
    /// (<see cref="OrderedHandle"/>). A random hash alone put every new row (a request's, a session's, a code's) on a random
    /// page of its unique index, one more page each commit writes out; with the time first they go to its end, a few to a page. A
    /// handle of an earlier release (256 random bits, no time) keys as its hash alone, as it was stored.
    /// </summary>
    public static byte[] HandleKey(string handle)
    {
        var hash = Hash(handle);
        Span<byte> time = stackalloc byte[HandleTimeBytes];
        // DecodeFromChars reports text that is not base64url; TryDecodeFromChars throws on it, and a caller chooses the handle.
        if (handle.Length != OrderedHandleLength ||
            System.Buffers.Text.Base64Url.DecodeFromChars(handle.AsSpan(0, 8), time, out _, out var written) != System.Buffers.OperationStatus.Done ||
            written != HandleTimeBytes)
        {
            return hash;
        }
        var key = new byte[HandleTimeBytes + hash.Length];
        time.CopyTo(key);
        hash.CopyTo(key, HandleTimeBytes);
        return key;
    }

    private const int HandleTimeBytes = 6;

    /// <summary>38 bytes in base64url without padding.</summary>
    private const int OrderedHandleLength = 51;

    /// <summary>A 256-bit secret (docs/concepts.md §9: secrets are at least 256 bits).</summary>
    public static string Secret(string prefix) => New(prefix, 32);

    /// <summary>
    /// Secrets and handles are stored only as SHA-256. They are 256-bit random values, so a
    /// plain hash is enough: there is nothing to brute-force that a slow KDF would protect.
    /// </summary>
    public static byte[] Hash(string value) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value));

    /// <summary>An invite code a human can type: 4 groups of 4 from an unambiguous alphabet (~80 bits).</summary>
    public static string InviteCode()
    {
        const string alphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"; // no I, L, O, U, 0, 1
        Span<char> chars = stackalloc char[19];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = i % 5 == 4 ? '-' : alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
        }
        return new string(chars);
    }

    /// <summary>RFC 8628 §6.1: the alphabet of user codes, consonants only (no words, no look-alikes); 20^8 ≈ 2^34.6.</summary>
    public const string UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ";

    /// <summary>An RFC 8628 user code, shown as XXXX-XXXX.</summary>
    public static string UserCode()
    {
        Span<char> chars = stackalloc char[9];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = i == 4 ? '-' : UserCodeAlphabet[RandomNumberGenerator.GetInt32(UserCodeAlphabet.Length)];
        }
        return new string(chars);
    }

    /// <summary>RFC 8628 §6.1: case, dashes and spaces do not matter when a human types the code back; null when it cannot be one.</summary>
    public static string? NormalizeUserCode(string? code)
    {
        if (code is null || code.Length > 32)
        {
            return null;
        }
        var chars = code.ToUpperInvariant().Where(c => c is not ('-' or ' ')).ToArray();
        return chars.Length == 8 && chars.All(c => UserCodeAlphabet.Contains(c)) ? new string(chars, 0, 4) + "-" + new string(chars, 4, 4) : null;
    }

    public static string NormalizeInviteCode(string code) => Protocol.Devices.DeviceSignatures.NormalizeInviteCode(code);
}
