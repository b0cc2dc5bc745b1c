using Microsoft.AspNetCore.Http;

namespace Assent.Server.Vault;

/// <summary>
/// <c>GET …/vault/items</c> (docs/vault.md §6): <c>{"items":[{id, name, version, size, created_at, updated_at}]}</c>, the array as
/// the database built it (<see cref="Storage.IVaultStore.ListItemsJsonAsync"/>), sent with its Content-Length so that the client
/// reads a body whose length it knows. An owner may have 50,000 items (some 7 MB of JSON): no object per item is made here.
/// </summary>
internal sealed class VaultItemListResult(byte[] itemsArray) : IResult
{
    private static readonly byte[] Head = "{\"items\":"u8.ToArray();

    private static readonly byte[] Tail = "}"u8.ToArray();

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = Head.Length + itemsArray.Length + Tail.Length;
        await response.Body.WriteAsync(Head, httpContext.RequestAborted);
        await response.Body.WriteAsync(itemsArray, httpContext.RequestAborted);
        await response.Body.WriteAsync(Tail, httpContext.RequestAborted);
    }
}
