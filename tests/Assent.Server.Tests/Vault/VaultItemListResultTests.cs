using System.Text;
using System.Text.Json;
using Assent.Protocol.Messages;
using Assent.Server.Vault;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Tests.Vault;

/// <summary>The item list answer (docs/vault.md §6) wraps the database's array as <c>{"items":…}</c>, with its length.</summary>
public sealed class VaultItemListResultTests
{
    [Theory]
    [InlineData("[]", 0)]
    [InlineData("""[{"id":"AAECAwQFBgcICQoLDA0ODw","name":"a+b@c/d","version":2,"size":31,"created_at":5,"updated_at":6}]""", 1)]
    public async Task The_answer_is_the_array_under_items_with_its_length(string array, int count)
    {
        var http = new DefaultHttpContext();
        using var body = new MemoryStream();
        http.Response.Body = body;

        await new VaultItemListResult(Encoding.UTF8.GetBytes(array)).ExecuteAsync(http);

        var expected = "{\"items\":" + array + "}";
        Assert.Equal(expected, Encoding.UTF8.GetString(body.ToArray()));
        Assert.Equal(Encoding.UTF8.GetByteCount(expected), http.Response.ContentLength);
        Assert.Equal("application/json; charset=utf-8", http.Response.ContentType);
        var list = JsonSerializer.Deserialize(body.ToArray(), VaultJson.Default.VaultItemList)!;
        Assert.Equal(count, list.Items.Count);
        if (count == 1)
        {
            Assert.Equal(new VaultItemView("AAECAwQFBgcICQoLDA0ODw", "a+b@c/d", 2, 31, 5, 6), list.Items[0]);
        }
    }
}
