using System.Text.Json;
using Assent.Protocol.Messages;

namespace Assent.Client.Vault;

/// <summary>
/// Reads <c>{"items":[{id, name, version, size, created_at, updated_at}]}</c> (docs/vault.md §6) in one forward pass over the
/// UTF-8 body. An owner may have 50,000 items: the source-generated reader builds each record through its constructor from
/// buffered arguments, several times slower than reading the six known members straight into it. Members it does not know
/// are skipped, as the serializer skips them; a missing or mistyped member is <see cref="JsonException"/>.
/// </summary>
internal static class VaultItemListReader
{
    public static VaultItemList Parse(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        Expect(ref reader, JsonTokenType.StartObject);
        List<VaultItemView>? items = null;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (!reader.ValueTextEquals("items"u8))
            {
                Skip(ref reader);
                continue;
            }
            Expect(ref reader, JsonTokenType.StartArray);
            items = [];
            while (Next(ref reader) == JsonTokenType.StartObject)
            {
                items.Add(Item(ref reader));
            }
            Is(ref reader, JsonTokenType.EndArray);
        }
        Is(ref reader, JsonTokenType.EndObject);
        if (reader.Read())
        {
            throw new JsonException("data after the end of the document");
        }
        return new VaultItemList(items ?? throw new JsonException("the list has no items member"));
    }

    private static VaultItemView Item(ref Utf8JsonReader reader)
    {
        string? id = null, name = null;
        uint? version = null;
        long? size = null, createdAt = null, updatedAt = null;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                id = Text(ref reader);
            }
            else if (reader.ValueTextEquals("name"u8))
            {
                name = Text(ref reader);
            }
            else if (reader.ValueTextEquals("version"u8))
            {
                Expect(ref reader, JsonTokenType.Number);
                version = reader.GetUInt32();
            }
            else if (reader.ValueTextEquals("size"u8))
            {
                size = Number(ref reader);
            }
            else if (reader.ValueTextEquals("created_at"u8))
            {
                createdAt = Number(ref reader);
            }
            else if (reader.ValueTextEquals("updated_at"u8))
            {
                updatedAt = Number(ref reader);
            }
            else
            {
                Skip(ref reader);
            }
        }
        Is(ref reader, JsonTokenType.EndObject);
        if (id is null || name is null || version is null || size is null || createdAt is null || updatedAt is null)
        {
            throw new JsonException("an item lacks one of id, name, version, size, created_at, updated_at");
        }
        return new VaultItemView(id, name, version.Value, size.Value, createdAt.Value, updatedAt.Value);
    }

    private static string Text(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.String);
        return reader.GetString()!;
    }

    private static long Number(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.Number);
        return reader.GetInt64();
    }

    private static void Skip(ref Utf8JsonReader reader)
    {
        Next(ref reader);
        reader.Skip();
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader) =>
        reader.Read() ? reader.TokenType : throw new JsonException("the document ends early");

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type)
    {
        Next(ref reader);
        Is(ref reader, type);
    }

    private static void Is(ref Utf8JsonReader reader, JsonTokenType type)
    {
        if (reader.TokenType != type)
        {
            throw new JsonException($"expected {type}, found {reader.TokenType}");
        }
    }
}
