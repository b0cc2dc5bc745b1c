using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Keys;

/// <summary>
/// One usable signing key with its encoded JWS headers computed once. <see cref="Signer"/> holds the seed
/// imported once: importing it for every token would cost more than the signature itself.
/// </summary>
internal sealed record SigningKey(string Kid, byte[] Seed, Ed25519Signer Signer, byte[] PublicKey, string AccessTokenHeader, string JwtHeader, string ClientTokenHeader);

/// <summary>
/// The issuer's Ed25519 signing keys. The newest is current; retired keys stay published in the
/// JWKS until every token they could have signed has expired (docs/tokens.md §2), then drop out. Another
/// process (an operator's <c>assent admin keys rotate</c>, another node) may rotate, so the ring
/// re-reads the table on a short period. Beside them, the ring holds the ES256 and RS256 keys that ID tokens of clients
/// asking for those algorithms are signed with (docs/tokens.md §11), made on first need and rotated with the Ed25519 key.
/// </summary>
internal sealed class KeyRing(IKeyStore store, IMetaStore meta, MasterKey master, AssentOptions options, TimeProvider time, IJoseKeyStore? jose = null)
{
    private const string KekCheckKey = "kek_check";
    private static readonly byte[] KekCheckPlaintext = Encoding.ASCII.GetBytes("assent-kek-check-v1");

    private volatile State? _state;

    private sealed record State(SigningKey Current, byte[] JwksJson, IReadOnlyList<Jwk> Published, string Fingerprint,
        IReadOnlyDictionary<string, JoseSigner> Jose);

    public SigningKey Current => (_state ?? throw new InvalidOperationException("key ring not loaded")).Current;

    public byte[] JwksJson => _state!.JwksJson;

    public IReadOnlyList<Jwk> Published => _state!.Published;

    /// <summary>How long a retired key stays in the JWKS: the longest token lifetime plus clock skew.</summary>
    public TimeSpan RetentionAfterRetirement => options.AccessTokenLifetime + TimeSpan.FromMinutes(5);

    /// <summary>Checks the key-encryption key, creates the first signing key if none exists, loads the ring.</summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        var check = await meta.GetOrAddAsync(KekCheckKey, master.Seal(KekCheckPlaintext, KekCheckKey), ct);
        try
        {
            master.Open(check, KekCheckKey);
        }
        catch (CryptographicException)
        {
            throw new InvalidOperationException(
                $"the key-encryption key does not match this database: check {master.Source} (docs/deployment.md §3)");
        }
        if ((await store.ListAsync(ct)).Count == 0)
        {
            // Nodes starting together on an empty database: one creates the key, the others load it.
            var (record, kid) = NewKey();
            if (!await store.TryAddFirstAsync(record, new AuditEvent(AuditTypes.KeyCreated, null, "system", kid), ct) && (await store.ListAsync(ct)).Count == 0)
            {
                throw new InvalidOperationException("this database has no signing key, yet one was created before; restore the signing_keys table or rotate with assent admin keys rotate");
            }
        }
        await RefreshAsync(ct);
    }

    /// <summary>Makes a new current key; the previous one is retired but stays published.</summary>
    public async Task<string> RotateAsync(CancellationToken ct)
    {
        var kid = await AddKeyAsync(audit: true, ct);
        if (jose is not null)
        {
            // The ES256/RS256 keys in use rotate with the Ed25519 key; an algorithm no client asked for stays without one.
            foreach (var alg in (await jose.ListAsync(ct)).Where(r => r.RetiredAt is null).Select(r => r.Alg).Distinct().ToList())
            {
                var (record, _) = NewJoseKey(alg);
                await jose.AddAsync(record, record.CreatedAt, new AuditEvent(AuditTypes.KeyRotated, null, "operator", record.Kid), ct);
            }
        }
        await RefreshAsync(ct);
        return kid;
    }

    /// <summary>
    /// The current key for ID tokens signed with <paramref name="alg"/> (ES256 or RS256), made on first need: of nodes
    /// needing it together one creates it (<see cref="IJoseKeyStore.TryAddFirstAsync"/>) and the others load it.
    /// </summary>
    public async Task<JoseSigner> JoseKeyAsync(string alg, CancellationToken ct)
    {
        if (_state!.Jose.TryGetValue(alg, out var signer))
        {
            return signer;
        }
        if (jose is null)
        {
            throw new InvalidOperationException("this key ring holds no ES256/RS256 keys");
        }
        var (record, _) = NewJoseKey(alg);
        await jose.TryAddFirstAsync(record, new AuditEvent(AuditTypes.KeyCreated, null, "system", record.Kid), ct);
        await RefreshAsync(ct);
        return _state.Jose.TryGetValue(alg, out signer) ? signer : throw new InvalidOperationException($"no {alg} key could be created or loaded");
    }

    public async Task RefreshAsync(CancellationToken ct)
    {
        var rows = await store.ListAsync(ct);
        var joseRows = jose is null ? [] : await jose.ListAsync(ct);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var current = rows.LastOrDefault(r => r.RetiredAt is null) ?? rows.Last();
        var publishedRows = rows
            .Where(r => r.RetiredAt is null || r.RetiredAt.Value + (long)RetentionAfterRetirement.TotalMilliseconds > now)
            .OrderByDescending(r => r.CreatedAt)
            .ToList();
        // Rebuild only when the current key or the published set changed (rotation, or a retired key aging out).
        var publishedJose = joseRows
            .Where(r => r.RetiredAt is null || r.RetiredAt.Value + (long)RetentionAfterRetirement.TotalMilliseconds > now)
            .OrderByDescending(r => r.CreatedAt)
            .ToList();
        var fingerprint = current.Kid + "|" + string.Join(',', publishedRows.Select(r => r.Kid)) + "|" + string.Join(',', publishedJose.Select(r => r.Kid));
        if (_state is { } s && s.Fingerprint == fingerprint)
        {
            return;
        }
        var seed = master.Open(current.EncryptedSeed, current.Kid);
        // The superseded signer is not disposed here: a request may still be signing with it. Its key
        // memory is zeroed and freed when the garbage collector finalises it.
        var signer = new Ed25519Signer(seed);
        var currentJose = new Dictionary<string, JoseSigner>(StringComparer.Ordinal);
        foreach (var row in joseRows.Where(r => r.RetiredAt is null))
        {
            // The newest unretired key of each algorithm signs.
            currentJose[row.Alg] = JoseSigner.Load(row.Kid, row.Alg, master.Open(row.EncryptedPrivateKey, row.Kid));
        }
        // docs/tokens.md §11: the Ed25519 keys carry no alg member; the ES256/RS256 keys do.
        var published = publishedRows.Select(r => Jwk.ForEd25519(r.PublicKey, r.Kid))
            .Concat(publishedJose.Select(r => JsonSerializer.Deserialize(r.PublicJwk, JwkJson.Default.Jwk)!))
            .ToList();
        var jwks = JsonSerializer.SerializeToUtf8Bytes(new JwkSet(published), JwkJson.Default.JwkSet);
        _state = new State(
            new SigningKey(current.Kid, seed, signer, current.PublicKey, Jws.EncodeHeader(current.Kid, Jws.AccessTokenType), Jws.EncodeHeader(current.Kid, Jws.JwtType),
                Jws.EncodeHeader(current.Kid, TokenIssuer.ClientTokenType)),
            jwks, published, fingerprint, currentJose);
    }

    private async Task<string> AddKeyAsync(bool audit, CancellationToken ct)
    {
        var (record, kid) = NewKey();
        await store.AddAsync(record, record.CreatedAt,
            audit ? new AuditEvent(AuditTypes.KeyRotated, null, "operator", kid) : new AuditEvent(AuditTypes.KeyCreated, null, "system", kid), ct);
        return kid;
    }

    private (JoseKeyRecord Record, string Kid) NewJoseKey(string alg)
    {
        var (pkcs8, jwk) = JoseSigner.Generate(alg);
        var record = new JoseKeyRecord(jwk.Kid!, alg, JsonSerializer.Serialize(jwk, JwkJson.Default.Jwk), master.Seal(pkcs8, jwk.Kid!),
            time.GetUtcNow().ToUnixTimeMilliseconds(), null);
        CryptographicOperations.ZeroMemory(pkcs8);
        return (record, jwk.Kid!);
    }

    private (SigningKeyRecord Record, string Kid) NewKey()
    {
        var seed = RandomNumberGenerator.GetBytes(Ed25519.SeedSize);
        var pub = Ed25519.PublicKeyFromSeed(seed);
        var kid = Jwk.Thumbprint(Base64Url.Encode(pub));
        var record = new SigningKeyRecord(kid, pub, master.Seal(seed, kid), time.GetUtcNow().ToUnixTimeMilliseconds(), null);
        CryptographicOperations.ZeroMemory(seed);
        return (record, kid);
    }
}
