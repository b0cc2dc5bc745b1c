using System.Text.Json;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Keys;

/// <summary>The claims of an access token this server issued, once verified.</summary>
internal sealed record AccessTokenClaims(string Subject, string? UserId, string ClientId, string Scope, string Jti, long ExpiresAt)
{
    public bool HasScope(string scope) => Scope.Split(' ').Contains(scope);
}

/// <summary>
/// Verifies access tokens of this very server (RFC 9068 §4, RFC 8725): EdDSA only, a kid of the key
/// ring (retired keys still published count), <c>typ: at+jwt</c>, exact issuer, lifetime, and the
/// revocation denylist. Used by the endpoints that take a Bearer token: /agents and /userinfo.
/// </summary>
internal sealed class AccessTokenValidator(KeyRing keys, ISessionStore sessions, AssentOptions options, TimeProvider time)
{
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(60);

    public sealed record Outcome(AccessTokenClaims? Claims, string? Error);

    /// <summary>RFC 6750 §2.1: the token from <c>Authorization: Bearer …</c>, or null.</summary>
    public static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 ? header[7..].Trim() : null;
    }

    public async Task<Outcome> ValidateAsync(string token, CancellationToken ct, bool allowExpired = false)
    {
        if (!Jws.TryParse(token, Jws.DefaultMaxLength, out var parts, out var error))
        {
            return Fail($"the token is malformed: {error}");
        }
        if (parts!.Header.Alg != Jws.EdDsa || parts.Header.Typ != Jws.AccessTokenType)
        {
            return Fail("not an access token of this server (alg EdDSA, typ at+jwt)");
        }
        var key = keys.Published.FirstOrDefault(k => k.Kid == parts.Header.Kid);
        if (key is null || !key.TryGetEd25519(out var publicKey) || !Jws.VerifySignature(token, parts, publicKey))
        {
            return Fail("the token's signature does not verify against this server's keys");
        }
        string? iss, sub, clientId, scope, jti;
        long exp, nbf;
        try
        {
            using var doc = JsonDocument.Parse(parts.Payload);
            var root = doc.RootElement;
            iss = String(root, ClaimNames.Issuer);
            sub = String(root, ClaimNames.Subject);
            clientId = String(root, ClaimNames.ClientId);
            scope = String(root, ClaimNames.Scope);
            jti = String(root, ClaimNames.JwtId);
            exp = root.TryGetProperty(ClaimNames.Expiration, out var e) && e.TryGetInt64(out var ev) ? ev : 0;
            nbf = root.TryGetProperty(ClaimNames.NotBefore, out var n) && n.TryGetInt64(out var nv) ? nv : 0;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return Fail("the token's claims are not a valid JSON object");
        }
        if (iss != options.IssuerString)
        {
            return Fail("the token was issued by another issuer");
        }
        if (sub is null || clientId is null || scope is null || jti is null || exp == 0)
        {
            return Fail("the token lacks sub, client_id, scope, jti or exp");
        }
        var now = time.GetUtcNow();
        if (!allowExpired && exp <= now.ToUnixTimeSeconds())
        {
            return Fail("the token has expired");
        }
        if (nbf > (now + Skew).ToUnixTimeSeconds())
        {
            return Fail("the token is not valid yet");
        }
        if (await sessions.IsAccessTokenRevokedAsync(jti, ct))
        {
            return Fail("the token has been revoked");
        }
        var userId = DidWeb.TryGetUserId(sub, out var id) && DidWeb.ForUser(options.IssuerUri, id) == sub ? id : null;
        return new Outcome(new AccessTokenClaims(sub, userId, clientId, scope, jti, exp), null);
    }

    private static string? String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static Outcome Fail(string error) => new(null, error);
}
