using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Push;

/// <summary>
/// The server's VAPID key pair (RFC 8292 §2, §3: ES256 on P-256): made once per deployment, stored in <c>meta</c> sealed
/// under the key-encryption key like the signing keys (docs/deployment.md §3). Every node loads the same pair, so a
/// subscription made through one node accepts pushes signed by any: a browser binds its subscription to the public key
/// it was given (Push API <c>applicationServerKey</c>), and the push service refuses any other.
/// </summary>
internal sealed class VapidKeys
{
    /// <summary>The <c>meta</c> row: AES-256-GCM over d (32 bytes) ‖ the uncompressed public point (65 bytes) (docs/storage.md §3).</summary>
    internal const string MetaKey = "vapid_key";

    private readonly byte[] _d;
    private readonly byte[] _q;

    private VapidKeys(byte[] privateKey, byte[] publicKey)
    {
        _d = privateKey;
        _q = publicKey;
        PrivateKey = Base64Url.Encode(privateKey);
        PublicKey = Base64Url.Encode(publicKey);
    }

    /// <summary>
    /// RFC 8292 §2: a JWT signed with ES256 whose <c>aud</c> is the push resource's origin and whose <c>exp</c> is at most
    /// 24 hours ahead; <c>sub</c>, a contact, when there is one (§2.1).
    /// </summary>
    public string Token(string audience, DateTimeOffset expires, string? subject)
    {
        var header = Base64Url.Encode("{\"typ\":\"JWT\",\"alg\":\"ES256\"}"u8);
        using var buffer = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("aud", audience);
            json.WriteNumber("exp", expires.ToUnixTimeSeconds());
            if (subject is not null)
            {
                json.WriteString("sub", subject);
            }
            json.WriteEndObject();
        }
        var signingInput = header + "." + Base64Url.Encode(buffer.ToArray());
        using var key = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256, D = _d, Q = new ECPoint { X = _q[1..33], Y = _q[33..] },
        });
        // JWS (RFC 7518 §3.4): ES256's signature is R ‖ S, which is .NET's default (IEEE P1363) format.
        return signingInput + "." + Base64Url.Encode(key.SignData(System.Text.Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256));
    }

    /// <summary>RFC 8292 §3.2: the uncompressed P-256 point (X9.62, 65 bytes), base64url: the browser's <c>applicationServerKey</c>.</summary>
    public string PublicKey { get; }

    /// <summary>The private scalar, base64url; never logged or served.</summary>
    public string PrivateKey { get; }

    /// <summary>Loads the pair, making it first when none exists: of nodes starting together one insert wins and all load its pair.</summary>
    public static async Task<VapidKeys> LoadAsync(IMetaStore meta, MasterKey master, CancellationToken ct)
    {
        var sealedPair = await meta.GetAsync(MetaKey, ct);
        if (sealedPair is null)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var p = key.ExportParameters(includePrivateParameters: true);
            sealedPair = await meta.GetOrAddAsync(MetaKey, master.Seal([.. p.D!, 0x04, .. p.Q.X!, .. p.Q.Y!], MetaKey), ct);
        }
        var pair = master.Open(sealedPair, MetaKey);
        return pair.Length == 97 ? new VapidKeys(pair[..32], pair[32..]) : throw new CryptographicException($"the stored {MetaKey} is not a P-256 key pair");
    }
}
