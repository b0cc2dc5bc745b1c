using System.Text.Json;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Users;

/// <summary>did:web documents: every active device key of a user as a verification method (docs/concepts.md §7.1).</summary>
internal static class DidEndpoints
{
    public static IEndpointRouteBuilder MapDids(this IEndpointRouteBuilder app)
    {
        app.MapGet("/users/{id}/did.json", DocumentAsync).WithSummary("A user's DID document").WithTags("Identity");
        return app;
    }

    internal static async Task<IResult> DocumentAsync(string id, HttpResponse response, IdentityDirectory directory, IDeviceStore devices, IVaultStore vault,
        AssentOptions options, CancellationToken ct)
    {
        var user = id.Length <= 64 ? await directory.FindUserAsync(id, ct) : null;
        if (user is null)
        {
            return Problem.NotFound("no such user");
        }
        var did = DidWeb.ForUser(options.IssuerUri, user.Id);
        var methods = new List<VerificationMethod>();
        foreach (var d in await devices.ListAsync(user.Id, ct))
        {
            if (!d.Active)
            {
                continue;
            }
            var jwk = JsonSerializer.Deserialize(d.PublicJwk, JwkJson.Default.Jwk)!;
            methods.Add(new VerificationMethod($"{did}#{d.Id}", "JsonWebKey2020", did, jwk with { Kid = d.Id }));
        }
        var ids = methods.Select(m => m.Id).ToList();
        // docs/vault.md §1, DID Core §5.3.3: the devices' vault keys (X25519) are key agreement methods; the recovery key is not a device's.
        // A revoked device's keys were deleted with its revocation.
        var agreement = new List<string>();
        foreach (var k in await vault.ListKeysAsync(user.Id, ct))
        {
            if (k.Kind != Protocol.Messages.VaultKeyKinds.Device)
            {
                continue;
            }
            methods.Add(new VerificationMethod($"{did}#{k.Kid}", "JsonWebKey2020", did, new Jwk(Jwk.OctetKeyPair, "X25519", Protocol.Base64Url.Encode(k.PublicKey))));
            agreement.Add($"{did}#{k.Kid}");
        }
        // Revocation must show quickly to verifiers checking evidence.
        response.Headers.CacheControl = "no-cache";
        return TypedResults.Json(new DidDocument(["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"], did, methods, ids, ids,
                agreement.Count > 0 ? agreement : null),
            ServerJson.Default.DidDocument, "application/did+json");
    }
}
