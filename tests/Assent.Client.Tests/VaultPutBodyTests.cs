using System.Text.Json;
using Assent.Client.Authenticator;
using Assent.Protocol.Messages;

namespace Assent.Client.Tests;

/// <summary>The put body written from the sealed bytes is the <see cref="VaultPutRequest"/> document the serializer writes (docs/vault.md §6).</summary>
public sealed class VaultPutBodyTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(29, 1)]
    [InlineData(30, 2)]
    [InlineData(31, 3)]
    [InlineData(1024 * 1024 + 29, 11)]
    public void The_body_is_the_serializers_document(int size, int keys)
    {
        var sealedItem = Enumerable.Range(0, size).Select(i => (byte)(i * 13 + 5)).ToArray();
        var wraps = Enumerable.Range(0, keys).Select(i => new VaultWrap($"kid-{i}_x", Protocol.Base64Url.Encode([1, .. new byte[92]]))).ToList();
        var expected = JsonSerializer.SerializeToUtf8Bytes(new VaultPutRequest("AAECAwQFBgcICQoLDA0ODw", 7, Protocol.Base64Url.Encode(sealedItem), wraps),
            VaultJson.Default.VaultPutRequest);

        var body = AuthenticatorClient.PutBody("AAECAwQFBgcICQoLDA0ODw", 7, sealedItem, wraps);

        Assert.True(expected.AsSpan().SequenceEqual(body), "the hand-written body differs from the serializer's");
    }
}
