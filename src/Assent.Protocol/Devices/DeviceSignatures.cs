using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Assent.Protocol.Devices;

/// <summary>
/// Proof of possession for the device API: a device signs each request with its own key, so no
/// long-lived bearer secret ever lives on the device. Header:
/// <c>Authorization: AssentDevice id="dev_…", ts="unix seconds", nonce="…", sig="base64url"</c>,
/// signature over <see cref="RequestSigningInput"/>.
/// </summary>
public static class DeviceSignatures
{
    public const string Scheme = "AssentDevice";

    /// <summary>How far a request timestamp may be from the server clock.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromSeconds(120);

    public static byte[] RequestSigningInput(string method, string pathAndQuery, long timestamp, string nonce, ReadOnlySpan<byte> body)
    {
        var bodyHash = Base64Url.Encode(SHA256.HashData(body));
        var text = string.Join('\n', "assent-device-request-v1", method.ToUpperInvariant(), pathAndQuery,
            timestamp.ToString(CultureInfo.InvariantCulture), nonce, bodyHash);
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>Invite codes are typed by humans: case, dashes and spaces do not matter. Sign and hash this form.</summary>
    public static string NormalizeInviteCode(string code) =>
        new(code.Where(c => c != '-' && !char.IsWhiteSpace(c)).Select(char.ToUpperInvariant).ToArray());

    /// <summary>What a new device signs at enrolment to prove it holds the private key of the public key it sends.</summary>
    /// <remarks>The code is normalised first (<see cref="NormalizeInviteCode"/>).</remarks>
    public static byte[] EnrollmentSigningInput(string code, string publicKey) =>
        Encoding.UTF8.GetBytes(string.Join('\n', "assent-device-enroll-v1", NormalizeInviteCode(code), publicKey));

    public static string FormatHeader(string deviceId, long timestamp, string nonce, ReadOnlySpan<byte> signature) =>
        $"{Scheme} id=\"{deviceId}\", ts=\"{timestamp.ToString(CultureInfo.InvariantCulture)}\", nonce=\"{nonce}\", sig=\"{Base64Url.Encode(signature)}\"";

    /// <summary>Builds the Authorization header value for one request.</summary>
    public static string SignRequest(string deviceId, ReadOnlySpan<byte> seed, string method, string pathAndQuery, ReadOnlySpan<byte> body, DateTimeOffset now)
    {
        var ts = now.ToUnixTimeSeconds();
        var nonce = Base64Url.Encode(RandomNumberGenerator.GetBytes(16));
        var sig = Crypto.Ed25519.Sign(seed, RequestSigningInput(method, pathAndQuery, ts, nonce, body));
        return FormatHeader(deviceId, ts, nonce, sig);
    }

    public sealed record ParsedHeader(string DeviceId, long Timestamp, string Nonce, byte[] Signature);

    public static bool TryParseHeader(string? value, out ParsedHeader? header)
    {
        header = null;
        if (value is null || !value.StartsWith(Scheme + " ", StringComparison.Ordinal) || value.Length > 1024)
        {
            return false;
        }
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in value[(Scheme.Length + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0 || part.Length < eq + 3 || part[eq + 1] != '"' || part[^1] != '"')
            {
                return false;
            }
            if (!fields.TryAdd(part[..eq], part[(eq + 2)..^1]))
            {
                return false;
            }
        }
        if (!fields.TryGetValue("id", out var id) || !fields.TryGetValue("ts", out var ts) || !fields.TryGetValue("nonce", out var nonce) ||
            !fields.TryGetValue("sig", out var sig) || !long.TryParse(ts, NumberStyles.None, CultureInfo.InvariantCulture, out var timestamp) ||
            nonce.Length is < 16 or > 64 || !Base64Url.TryDecode(sig, out var signature) || signature.Length != 64)
        {
            return false;
        }
        header = new ParsedHeader(id, timestamp, nonce, signature);
        return true;
    }
}
