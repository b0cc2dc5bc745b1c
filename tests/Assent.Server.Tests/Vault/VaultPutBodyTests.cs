using System.Text;
using System.Text.Json;
using Assent.Protocol.Messages;
using Assent.Server.Vault;

namespace Assent.Server.Tests.Vault;

/// <summary>The put body's ciphertext, decoded from UTF-8 as it is read, is what strict base64url decoding gives (docs/vault.md §6).</summary>
public sealed class VaultPutBodyTests
{
    public static TheoryData<string> Values() =>
    [
        "", "AQ", "AQI", "AQID", "AQIDBA", "_-_-", "A", "AQ==", "AQ=", "AQ I", " AQI", "AQI\n", "A+/B", "AQ.I", "é", "AQIDBAUGBwgJCgsMDQ4PEA",
        Protocol.Base64Url.Encode(Enumerable.Range(0, 70_001).Select(i => (byte)(i * 7)).ToArray()),
    ];

    [Theory]
    [MemberData(nameof(Values))]
    public void The_ciphertext_reads_as_strict_base64url_does_and_anything_else_as_nothing(string text)
    {
        var expected = Protocol.Base64Url.TryDecode(text, out var bytes) ? bytes : [];
        var json = JsonSerializer.Serialize(new VaultPutRequest("id", 1, text, []), VaultJson.Default.VaultPutRequest);

        var body = JsonSerializer.Deserialize(json, VaultServerJson.Default.VaultPutBody)!;

        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(body.Ciphertext!));
        Assert.Equal(("id", 1u), (body.Id, body.Version));
    }

    [Fact]
    public void An_escaped_string_reads_the_same_and_a_missing_one_is_null_and_a_number_is_refused()
    {
        var escaped = JsonSerializer.Deserialize("""{"ciphertext":"\u0041QID"}""", VaultServerJson.Default.VaultPutBody)!;
        Assert.Equal([1, 2, 3], escaped.Ciphertext);
        Assert.Null(JsonSerializer.Deserialize("""{"id":"x"}""", VaultServerJson.Default.VaultPutBody)!.Ciphertext);
        Assert.Null(JsonSerializer.Deserialize("""{"ciphertext":null}""", VaultServerJson.Default.VaultPutBody)!.Ciphertext);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("""{"ciphertext":12}""", VaultServerJson.Default.VaultPutBody));
    }

    [Fact]
    public async Task A_large_ciphertext_split_across_the_readers_buffers_reads_whole()
    {
        var sealedItem = Enumerable.Range(0, 1024 * 1024 + 29).Select(i => (byte)(i * 31 + 1)).ToArray();
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new VaultPutRequest("id", 2, Protocol.Base64Url.Encode(sealedItem), [new VaultWrap("k", "w")]),
            VaultJson.Default.VaultPutRequest));

        var body = await JsonSerializer.DeserializeAsync(new MemoryStream(json), VaultServerJson.Default.VaultPutBody);

        Assert.True(sealedItem.AsSpan().SequenceEqual(body!.Ciphertext));
        Assert.Equal("k", Assert.Single(body.Wraps!).Kid);
    }
}
