using System.Collections.Concurrent;
using System.Text.Json;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;

namespace Assent.Client.Verification;

/// <summary>
/// did:web resolution for evidence checks: the verification methods of a user's DID document,
/// cached briefly. A revoked device is simply absent from the document (docs/tokens.md).
/// </summary>
/// <remarks>
/// While a document is cached, callers that need it fresh share one fetch of it (so a fetch started by
/// <see cref="Prepare"/> while an approval is pending is the one its verification uses); with no caching
/// (<c>cacheFor</c> zero) every call fetches on its own, as that setting promises.
/// </remarks>
internal sealed class DidDocuments(HttpClient http, TimeProvider time, TimeSpan cacheFor)
{
    private const int MaxCached = 1024;

    // A shared fetch is no caller's: it is bounded on its own, as IssuerKeys bounds the JWKS fetch.
    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, (long FetchedAt, IReadOnlyDictionary<string, Jwk> Methods)> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<IReadOnlyDictionary<string, Jwk>>>> _fetching = new(StringComparer.Ordinal);
    private int _fetches;

    /// <summary>How many DID documents were fetched (tests check the cache and the shared fetches with it).</summary>
    public int Fetches => Volatile.Read(ref _fetches);

    /// <summary>The DID's verification methods by id (<c>did#fragment</c>).</summary>
    public async Task<IReadOnlyDictionary<string, Jwk>> MethodsAsync(string did, CancellationToken ct)
    {
        if (Cached(did) is { } hit && time.GetElapsedTime(hit.FetchedAt) < cacheFor)
        {
            return hit.Methods;
        }
        if (!DidWeb.TryGetDocumentUrl(did, out var url))
        {
            throw new TokenVerificationException(TokenErrors.EvidenceMismatch, $"the approver '{did}' is not a resolvable did:web");
        }
        if (cacheFor <= TimeSpan.Zero)
        {
            Interlocked.Increment(ref _fetches);
            return await FetchAsync(did, url!, ct);
        }
        return await Shared(did, url!).WaitAsync(ct);
    }

    /// <summary>
    /// Starts fetching the DID's document unless a copy younger than half the cache duration is held (or being
    /// fetched), so that a token verified a little later finds it fresh; with no caching there is nothing to prepare.
    /// Returns the fetch (which may fail; the verification that needs the document fetches again and reports it).
    /// </summary>
    public Task Prepare(string did)
    {
        if (cacheFor <= TimeSpan.Zero || !DidWeb.TryGetDocumentUrl(did, out var url)
            || (Cached(did) is { } hit && time.GetElapsedTime(hit.FetchedAt) < cacheFor / 2))
        {
            return Task.CompletedTask;
        }
        return Shared(did, url!);
    }

    private (long FetchedAt, IReadOnlyDictionary<string, Jwk> Methods)? Cached(string did) =>
        cacheFor > TimeSpan.Zero && _cache.TryGetValue(did, out var hit) ? hit : null;

    /// <summary>The fetch of <paramref name="did"/>'s document in progress, or a new one; it is forgotten once done, its result cached.</summary>
    private Task<IReadOnlyDictionary<string, Jwk>> Shared(string did, Uri url)
    {
        var fetch = _fetching.GetOrAdd(did, d => new Lazy<Task<IReadOnlyDictionary<string, Jwk>>>(() => FetchSharedAsync(d, url)));
        return fetch.Value;
    }

    private async Task<IReadOnlyDictionary<string, Jwk>> FetchSharedAsync(string did, Uri url)
    {
        Interlocked.Increment(ref _fetches);
        try
        {
            using var timeout = new CancellationTokenSource(FetchTimeout, time);
            try
            {
                // Yields first: the Lazy that runs this is not re-entered, and no caller runs the fetch's HTTP work inline.
                await Task.Yield();
                return await FetchAsync(did, url, timeout.Token);
            }
            catch (OperationCanceledException e) when (timeout.IsCancellationRequested)
            {
                throw RemoteJson.Unavailable(url, "timed out", e);
            }
        }
        finally
        {
            _fetching.TryRemove(did, out _);
        }
    }

    private async Task<IReadOnlyDictionary<string, Jwk>> FetchAsync(string did, Uri url, CancellationToken ct)
    {
        using var doc = await RemoteJson.GetAsync(http, url, ct)
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
