using System.Text;
using System.Text.Json;
using Assent.Client.Vault;
using Assent.Protocol.Messages;

namespace Assent.Client.Tests;

/// <summary>The hand-written reader of the item list (docs/vault.md §6) reads what the serializer reads, and refuses what it refuses.</summary>
public sealed class VaultItemListReaderTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2_000)]
    public void It_reads_the_serializers_document(int count)
    {
        var list = new VaultItemList([.. Enumerable.Range(0, count).Select(i => new VaultItemView(Protocol.Vault.VaultFormat.NewItemId(),
            i % 2 == 0 ? $"prod/db+{i}@host" : $"n-{i}", (uint)i + 1, 29L + i, 1_764_700_000_000 + i, 1_764_800_000_000 + i))]);

        var read = VaultItemListReader.Parse(JsonSerializer.SerializeToUtf8Bytes(list, VaultJson.Default.VaultItemList));

        Assert.Equal(list.Items, read.Items);
    }

    [Fact]
    public void Whitespace_member_order_escapes_and_unknown_members_read_as_the_serializer_reads_them()
    {
        const string Json = """
            { "next": {"a": [1, {"b": null}]}, "items" : [ { "updated_at" : 6, "extra": [[], {}], "size" : 31, "name" : "a\u002Bb", "version" : 2,
              "created_at" : 5, "id" : "AAECAwQFBgcICQoLDA0ODw" } ], "more": "x" }
            """;

        var read = VaultItemListReader.Parse(Encoding.UTF8.GetBytes(Json));

        Assert.Equal(JsonSerializer.Deserialize(Json, VaultJson.Default.VaultItemList)!.Items, read.Items);
        Assert.Equal(new VaultItemView("AAECAwQFBgcICQoLDA0ODw", "a+b", 2, 31, 5, 6), Assert.Single(read.Items));
    }

    [Theory]
    [InlineData("""{"items":[{"id":"x","name":"n","version":1,"size":2,"created_at":3}]}""")]
    [InlineData("""{"items":[{"id":"x","name":"n","version":"1","size":2,"created_at":3,"updated_at":4}]}""")]
    [InlineData("""{"items":[{"id":"x","name":"n","version":-1,"size":2,"created_at":3,"updated_at":4}]}""")]
    [InlineData("""{"items":[{"id":5,"name":"n","version":1,"size":2,"created_at":3,"updated_at":4}]}""")]
    [InlineData("""{"items":[{"id":"x","name":"n","version":1,"size":2.5,"created_at":3,"updated_at":4}]}""")]
    [InlineData("""{"items":[1]}""")]
    [InlineData("""{"items":{}}""")]
    [InlineData("""{"items":[]""")]
    [InlineData("""{"items":[]} {}""")]
    [InlineData("""{"items":[],}""")]
    [InlineData("""{}""")]
    [InlineData("""[]""")]
    [InlineData("")]
    public void A_document_of_another_shape_is_refused(string json)
    {
        var e = Record.Exception(() => VaultItemListReader.Parse(Encoding.UTF8.GetBytes(json)));
        // The kinds ListVaultItemsAsync turns into AssentProtocolException.
        Assert.True(e is JsonException or FormatException or InvalidOperationException, e?.ToString() ?? "nothing was thrown");
    }
}
