using System.Text.Json;
using Assent.Protocol.Jose;
using Assent.Protocol.Messages;

namespace Assent.Client.Verification;

/// <summary>
/// Verifies an audit checkpoint (docs/tokens.md §10, docs/concepts.md §8.3): its compact JWS is EdDSA, typed
/// <c>assent-checkpoint+jwt</c>, signed by a key the issuer publishes, and signs exactly the checkpoint's
/// <c>{size, head, ts}</c>. Only then does a checkpoint commit the server to the first <c>size</c> entries of its
/// audit chain: the unsigned fields beside the JWS are what a tampered export would change.
/// </summary>
/// <example>
/// <code>
/// using var checkpoints = new AuditCheckpointVerifier("https://assent.example.com");
/// await checkpoints.VerifyAsync(checkpoint, ct);
/// </code>
/// </example>
public sealed class AuditCheckpointVerifier : IDisposable
{
    /// <summary>The JWS <c>typ</c> of a checkpoint.</summary>
    public const string CheckpointType = "assent-checkpoint+jwt";

    // A checkpoint's JWS is a header, three small members and a signature: 2 KiB is ample (RFC 8725 §3.5 spirit).
    private const int MaxLength = 2048;

    private readonly string _issuer;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly IssuerKeys _keys;

    /// <summary>A verifier for checkpoints of <paramref name="issuer"/> (its base URL); the JWKS is found through its discovery document.</summary>
    /// <exception cref="ArgumentException">The issuer is not an absolute http(s) URL.</exception>
    public AuditCheckpointVerifier(string issuer, HttpClient? http = null, TimeProvider? time = null)
    {
        if (!Uri.TryCreate(issuer, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException($"the issuer must be an absolute http(s) URL (got '{issuer}')", nameof(issuer));
        }
        _issuer = issuer.TrimEnd('/');
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        _keys = new IssuerKeys(_issuer, null, _http, time ?? TimeProvider.System, TimeSpan.FromMinutes(1));
    }

    /// <summary>Returns when the checkpoint is the issuer's; otherwise throws <see cref="TokenVerificationException"/>.</summary>
    /// <exception cref="TokenVerificationException">
    /// <see cref="TokenErrors.MalformedToken"/>: not a checkpoint JWS, or its signed payload differs from the fields beside it;
    /// <see cref="TokenErrors.InvalidSignature"/>: not EdDSA, a key the issuer does not publish, or a bad signature;
    /// <see cref="TokenErrors.JwksUnavailable"/>: the issuer's keys could not be read.
    /// </exception>
    public async Task VerifyAsync(AuditCheckpoint checkpoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var parts = Parse(checkpoint);
        // The JWKS through discovery; failures to read it are TokenErrors.JwksUnavailable.
        var key = await _keys.FindAsync(parts.Header.Kid!, ct)
            ?? throw TokenVerifier.Fail(TokenErrors.InvalidSignature,
                $"the checkpoint's key '{parts.Header.Kid}' is not published by {_issuer} (a key rotated away no longer proves it; keep checkpoints verified when taken)");
        if (!Jws.VerifySignature(checkpoint.Signature, parts, key))
        {
            throw TokenVerifier.Fail(TokenErrors.InvalidSignature, "the checkpoint's signature does not verify");
        }
    }

    /// <summary>
    /// What can be checked without the issuer: a well-formed EdDSA checkpoint JWS whose payload is exactly the
    /// checkpoint's size, head and time. Throws <see cref="TokenVerificationException"/> otherwise.
    /// </summary>
    public static void CheckPayload(AuditCheckpoint checkpoint) => Parse(checkpoint);

    private static JwsParts Parse(AuditCheckpoint checkpoint)
    {
        if (checkpoint.Signature is not { Length: > 0 } jws || jws.Length > MaxLength || !Jws.TryParse(jws, MaxLength, out var parts, out _))
        {
            throw TokenVerifier.Fail(TokenErrors.MalformedToken, "the checkpoint's signature is not a compact JWS");
        }
        // RFC 8725 §3.1: the algorithm is pinned; §3.11: the type keeps other JWTs of the issuer out.
        if (parts!.Header.Alg != Jws.EdDsa)
        {
            throw TokenVerifier.Fail(TokenErrors.InvalidSignature, $"alg '{parts.Header.Alg}' is not accepted; only EdDSA");
        }
        if (parts.Header.Typ != CheckpointType)
        {
            throw TokenVerifier.Fail(TokenErrors.MalformedToken, $"typ '{parts.Header.Typ}' is not {CheckpointType}");
        }
        if (parts.Header.Kid is not { Length: > 0 })
        {
            throw TokenVerifier.Fail(TokenErrors.MalformedToken, "the checkpoint's header has no kid");
        }
        if (!SignsExactly(parts.Payload, checkpoint))
        {
            throw TokenVerifier.Fail(TokenErrors.MalformedToken,
                $"the checkpoint's signed payload is not {{size: {checkpoint.Size}, head: {checkpoint.Head}, ts: {checkpoint.Ts}}}: the fields beside the signature were changed");
        }
        return parts;
    }

    private static bool SignsExactly(byte[] payload, AuditCheckpoint c)
    {
        try
        {
            using var doc = JsonDocument.Parse(payload);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || root.EnumerateObject().Count() != 3)
            {
                return false;
            }
            return root.TryGetProperty("size", out var size) && size.ValueKind == JsonValueKind.Number && size.TryGetInt64(out var n) && n == c.Size &&
                root.TryGetProperty("head", out var head) && head.ValueKind == JsonValueKind.String && head.GetString() == c.Head &&
                root.TryGetProperty("ts", out var ts) && ts.ValueKind == JsonValueKind.Number && ts.TryGetInt64(out var t) && t == c.Ts;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }
}
