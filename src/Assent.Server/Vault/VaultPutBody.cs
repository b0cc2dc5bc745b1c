using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;
using Assent.Protocol.Messages;

namespace Assent.Server.Vault;

/// <summary>
/// The body of <c>PUT …/vault/items/{name}</c> as the server reads it: <see cref="VaultPutRequest"/>'s JSON (docs/vault.md §6),
/// with the ciphertext decoded from base64url as it is read. A sealed MiB is 1.4 MB of base64url; read as a string it was
/// first widened to UTF-16 (2.8 MB) and then decoded into a buffer and copied again, three large-object-heap allocations
/// per put. Here it is decoded once, from the UTF-8 bytes, into an array of its exact size.
/// </summary>
internal sealed record VaultPutBody(string? Id, uint? Version, [property: JsonConverter(typeof(Base64UrlBytesConverter))] byte[]? Ciphertext,
    IReadOnlyList<VaultWrap>? Wraps);

/// <summary>
/// Strict unpadded base64url (RFC 4648 §5) read straight from a JSON string's UTF-8 bytes, as <c>Base64Url.TryDecode</c> reads it
/// (the same alphabet check, then the framework decoder). A string that is not base64url reads as an empty array, which no
/// caller accepts, so the endpoint answers with its own message; a value that is not a string is not valid JSON for the body.
/// </summary>
internal sealed class Base64UrlBytesConverter : JsonConverter<byte[]>
{
    private static readonly SearchValues<byte> Alphabet = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"u8);

    public override bool HandleNull => false;

    public override byte[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException("expected a base64url string");
        }
        if (reader.HasValueSequence || reader.ValueIsEscaped)
        {
            // Split across buffers, or with JSON escapes (which no base64url character needs): the string way, once.
            return Protocol.Base64Url.TryDecode(reader.GetString(), out var bytes) ? bytes : [];
        }
        return TryDecode(reader.ValueSpan, out var decoded) ? decoded : [];
    }

    internal static bool TryDecode(ReadOnlySpan<byte> utf8, out byte[] bytes)
    {
        bytes = [];
        if (utf8.ContainsAnyExcept(Alphabet) || utf8.Length % 4 == 1)
        {
            return false;
        }
        var decoded = new byte[System.Buffers.Text.Base64Url.GetMaxDecodedLength(utf8.Length)];
        if (System.Buffers.Text.Base64Url.DecodeFromUtf8(utf8, decoded, out var consumed, out var written) != OperationStatus.Done || consumed != utf8.Length)
        {
            return false;
        }
        bytes = written == decoded.Length ? decoded : decoded[..written];
        return true;
    }

    public override void Write(Utf8JsonWriter writer, byte[] value, JsonSerializerOptions options) => writer.WriteStringValue(Protocol.Base64Url.Encode(value));
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VaultPutBody))]
internal sealed partial class VaultServerJson : JsonSerializerContext;
