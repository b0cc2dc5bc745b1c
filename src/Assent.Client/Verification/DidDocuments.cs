using System.Collections.Concurrent;
using System.Text.Json;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;

namespace Assent.Client.Verification;

/// <summary>
/// did:web resolution for evidence checks: the verification methods of a user's DID document,
/// cached briefly. A revoked device is simply absent from the document (docs/tokens.md).
/// </summary>
internal sealed class DidDocuments(HttpClient http, TimeProvider time, TimeSpan cacheFor)
{
    private const int MaxCached = 1024;

    private readonly ConcurrentDictionary<string, (long FetchedAt, IReadOnlyDictionary<string, Jwk> Methods)> _cache = new(StringComparer.Ordinal);

    /// <summary>The DID's verification methods by id (<c>did#fragment</c>).</summary>
    public async Task<IReadOnlyDictionary<string, Jwk>> MethodsAsync(string did, CancellationToken ct)
    {
        if (cacheFor > TimeSpan.Zero && _cache.TryGetValue(did, out var hit) && time.GetElapsedTime(hit.FetchedAt) < cacheFor)
        {
            return hit.Methods;
        }
        if (!DidWeb.TryGetDocumentUrl(did, out var url))
        {
            throw new TokenVerificationException(TokenErrors.EvidenceMismatch, $"the approver '{did}' is not a resolvable did:web");
        }
        using var doc = await RemoteJson.GetAsync(http, url!, ct)
            ?? throw new TokenVerificationException(TokenErrors.EvidenceMismatch, $"the approver's DID document {url} does not exist");
        var root = doc.RootElement;
        // DID Core §7.1.2 / did:web: the document must be about the DID that was resolved.
        if (RemoteJson.String(root, "id") != did)
        {
            throw new TokenVerificationException(TokenErrors.EvidenceMismatch, $"the DID document at {url} is not about {did}");
        }
        var methods = new Dictionary<string, Jwk>(StringComparer.Ordinal);
        if (root.TryGetProperty("verificationMethod", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var m in list.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.Object && RemoteJson.String(m, "id") is { } id &&
                    m.TryGetProperty("publicKeyJwk", out var jwk) && jwk.ValueKind == JsonValueKind.Object &&
                    RemoteJson.String(jwk, "kty") is { } kty)
                {
                    methods[id] = new Jwk(kty, RemoteJson.String(jwk, "crv"), RemoteJson.String(jwk, "x"), RemoteJson.String(jwk, "y"),
                        RemoteJson.String(jwk, "n"), RemoteJson.String(jwk, "e"), RemoteJson.String(jwk, "kid"));
                }
            }
        }
        if (cacheFor > TimeSpan.Zero)
        {
            if (_cache.Count >= MaxCached)
            {
                _cache.Clear();
            }
            _cache[did] = (time.GetTimestamp(), methods);
        }
        return methods;
    }
}
