using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;

namespace Assent.Client.Verification;

/// <summary>
/// The issuer's Ed25519 keys by <c>kid</c>, as raw public key bytes, from the JWKS named by its
/// discovery document. An unknown kid refetches at most once per interval; concurrent refetches share one request.
/// </summary>
internal sealed class IssuerKeys(string issuer, Uri? jwksUri, HttpClient http, TimeProvider time, TimeSpan refreshInterval)
{
    private readonly Lock _gate = new();
    private Dictionary<string, byte[]>? _keys;
    private Uri? _jwksUri = jwksUri;
    private Task? _fetching;
    private long _lastFetch;
    private int _fetches;

    /// <summary>How many JWKS fetches were started (tests check the rate limit with it).</summary>
    public int Fetches => Volatile.Read(ref _fetches);

    /// <summary>The raw key for <paramref name="kid"/>, or null when the issuer does not (or no longer) publish it.</summary>
    public async ValueTask<byte[]?> FindAsync(string kid, CancellationToken ct)
    {
        var keys = Volatile.Read(ref _keys);
        if (keys is not null && keys.TryGetValue(kid, out var key))
        {
            return key;
        }
        Task fetch;
        lock (_gate)
        {
            if (_fetching is { IsCompleted: false } running)
            {
                fetch = running;
            }
            else if (_keys is null || time.GetElapsedTime(_lastFetch) >= refreshInterval)
            {
                // RFC 8725 §3.10 spirit: an attacker sending random kids must not turn the verifier into a JWKS flood.
                _lastFetch = time.GetTimestamp();
                Interlocked.Increment(ref _fetches);
                fetch = _fetching = FetchAsync();
            }
            else
            {
                return _keys.GetValueOrDefault(kid);
            }
        }
        await fetch.WaitAsync(ct);
        return Volatile.Read(ref _keys)?.GetValueOrDefault(kid);
    }

    /// <summary>
    /// Starts loading the key set when none is held yet (nor being fetched), so that a token verified a little later
    /// finds its key; once loaded, only an unknown kid refetches (<see cref="FindAsync"/>, rate-limited as ever).
    /// Returns the fetch, which may fail: the verification that needs the keys fetches again and reports it.
    /// </summary>
    public Task Prepare()
    {
        lock (_gate)
        {
            if (_fetching is { IsCompleted: false } running)
            {
                return running;
            }
            if (_keys is not null)
            {
                return Task.CompletedTask;
            }
            // As FindAsync with no keys yet: one fetch, counted against the refresh interval.
            _lastFetch = time.GetTimestamp();
            Interlocked.Increment(ref _fetches);
            return _fetching = FetchAsync();
        }
    }

    private async Task FetchAsync()
    {
        // Not the caller's token: the fetch is shared, and one caller giving up must not fail the others.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), time);
        _jwksUri ??= await DiscoverAsync(timeout.Token);
        using var doc = await RemoteJson.GetAsync(http, _jwksUri, timeout.Token)
            ?? throw RemoteJson.Unavailable(_jwksUri, "answered 404");
        if (!doc.RootElement.TryGetProperty("keys", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            throw RemoteJson.Unavailable(_jwksUri, "is not a JWK Set (no keys array)");
        }
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var jwk in list.EnumerateArray())
        {
            if (jwk.ValueKind != JsonValueKind.Object ||
                RemoteJson.String(jwk, "kid") is not { Length: > 0 } kid ||
                RemoteJson.String(jwk, "kty") != Jwk.OctetKeyPair || RemoteJson.String(jwk, "crv") != Jwk.Ed25519Curve ||
                RemoteJson.String(jwk, "x") is not { } x || !Base64Url.TryDecode(x, out var raw) || raw.Length != Ed25519.PublicKeySize ||
                (jwk.TryGetProperty("use", out _) && RemoteJson.String(jwk, "use") != "sig") ||
                (jwk.TryGetProperty("alg", out _) && RemoteJson.String(jwk, "alg") != Jws.EdDsa))
            {
                // Keys of other types or uses are not for verifying Assent tokens.
                continue;
            }
            keys[kid] = raw;
        }
        Volatile.Write(ref _keys, keys);
    }

    /// <summary>OpenID Connect Discovery §4.3: the document must name exactly the issuer it was fetched for.</summary>
    private async Task<Uri> DiscoverAsync(CancellationToken ct)
    {
        var url = new Uri(issuer + "/.well-known/openid-configuration");
        using var doc = await RemoteJson.GetAsync(http, url, ct) ?? throw RemoteJson.Unavailable(url, "answered 404; is this an Assent issuer?");
        var named = RemoteJson.String(doc.RootElement, "issuer");
        if (named != issuer)
        {
            throw RemoteJson.Unavailable(url, $"names issuer '{named}', not '{issuer}'");
        }
        if (RemoteJson.String(doc.RootElement, "jwks_uri") is not { } jwks || !Uri.TryCreate(jwks, UriKind.Absolute, out var uri) ||
            uri.Scheme is not ("https" or "http"))
        {
            throw RemoteJson.Unavailable(url, "has no usable jwks_uri");
        }
        return uri;
    }
}
