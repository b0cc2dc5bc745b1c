using System.Buffers;

namespace Assent.Protocol;

/// <summary>Unpadded base64url (RFC 4648 §5), the encoding JOSE uses everywhere (RFC 7515 §2).</summary>
public static class Base64Url
{
    private static readonly SearchValues<char> Alphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

    public static string Encode(ReadOnlySpan<byte> data) => System.Buffers.Text.Base64Url.EncodeToString(data);

    /// <summary>Decodes strict unpadded base64url; returns false on any other character or on padding.</summary>
    public static bool TryDecode(ReadOnlySpan<char> text, out byte[] bytes)
    {
        bytes = [];
        // The framework decoder skips whitespace, so check the alphabet first: one value, one spelling.
        if (text.ContainsAnyExcept(Alphabet) || text.Length % 4 == 1)
        {
            return false;
        }
        var max = System.Buffers.Text.Base64Url.GetMaxDecodedLength(text.Length);
        var buffer = max <= 256 ? stackalloc byte[256] : new byte[max];
        var status = System.Buffers.Text.Base64Url.DecodeFromChars(text, buffer, out var consumed, out var written);
        if (status != OperationStatus.Done || consumed != text.Length)
        {
            return false;
        }
        bytes = buffer[..written].ToArray();
        return true;
    }

    public static byte[] Decode(ReadOnlySpan<char> text) =>
        TryDecode(text, out var bytes) ? bytes : throw new FormatException("not valid unpadded base64url");
}
