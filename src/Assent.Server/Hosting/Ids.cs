using System.Security.Cryptography;
using Assent.Protocol;

namespace Assent.Server.Hosting;

/// <summary>Identifiers and secrets. Prefixes tell a human what a string is at a glance.</summary>
internal static class Ids
{
    public static string New(string prefix, int bytes = 12) => prefix + "_" + Base64Url.Encode(RandomNumberGenerator.GetBytes(bytes));

    /// <summary>A 256-bit secret (SPEC §1: client secrets ≥ 256 bits).</summary>
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

    public static string NormalizeInviteCode(string code) => Protocol.Devices.DeviceSignatures.NormalizeInviteCode(code);
}
