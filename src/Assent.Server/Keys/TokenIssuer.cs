using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Keys;

internal sealed record IssuedTokens(string AccessToken, string? IdToken, int ExpiresIn);

/// <summary>Signs access tokens (RFC 9068, <c>typ: at+jwt</c>), CIBA ID tokens and client_credentials tokens (<c>client+jwt</c>) with the current issuer key.</summary>
internal sealed class TokenIssuer(KeyRing keys, AssentOptions options, TimeProvider time)
{
    /// <summary>The JOSE <c>typ</c> of a client_credentials token (RFC 8725 §3.11): not an access token a human approved.</summary>
    public const string ClientTokenType = "client+jwt";

    private readonly string _issuer = options.IssuerString;
    private readonly Uri _issuerUri = options.IssuerUri;

    public string UserDid(string userId) => DidWeb.ForUser(_issuerUri, userId);

    /// <summary>Tokens for an approved request: the access token carries the devices' evidence (docs/tokens.md §3–§4).</summary>
    /// <param name="withAtHash">CIBA Core §10.3.1: a pushed ID token carries <c>at_hash</c> of the access token it comes with.</param>
    /// <param name="mandate">The spending mandate that approved the request with no human at that moment (docs/policies.md §6), if one did.</param>
    public IssuedTokens ForApproval(DecidedApproval decided, string authReqId, bool includeIdToken, bool withAtHash = false, MandateGrant? mandate = null)
    {
        var (approval, decisions) = decided;
        var key = keys.Current;
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var lifetime = (int)options.AccessTokenLifetime.TotalSeconds;
        var sub = UserDid(approval.UserId);
        var authTime = (approval.DecidedAt ?? approval.CreatedAt) / 1000;
        // docs/tokens.md §3: a mandate's payment names the mandate as its method; no device acted at this moment.
        var amr = mandate is null ? Amr(decisions) : [AuthenticationMethods.Mandate];

        var access = AccessClaims(approval, decisions, approval.Scope, actor: true, now, lifetime, sub, authTime, amr, mandate);
        var accessToken = Jws.Sign(key.AccessTokenHeader, access, key.Signer);

        string? idToken = null;
        if (includeIdToken)
        {
            var id = Write(w =>
            {
                w.WriteString(ClaimNames.Issuer, _issuer);
                w.WriteString(ClaimNames.Subject, sub);
                w.WriteString(ClaimNames.Audience, approval.ClientId);
                w.WriteNumber(ClaimNames.IssuedAt, now);
                w.WriteNumber(ClaimNames.Expiration, now + lifetime);
                w.WriteNumber(ClaimNames.AuthTime, authTime);
                WriteAmr(w, amr);
                // CIBA Core §7.4 / §10.3.1: the ID token names the request it answers.
                w.WriteString(ClaimNames.AuthReqId, authReqId);
                if (withAtHash)
                {
                    // OIDC Core §3.1.3.6: the left half of the hash the signature algorithm uses; Ed25519 hashes with SHA-512.
                    w.WriteString(ClaimNames.AccessTokenHash, Base64Url.Encode(SHA512.HashData(System.Text.Encoding.ASCII.GetBytes(accessToken))[..32]));
                }
            });
            idToken = Jws.Sign(key.JwtHeader, id, key.Signer);
        }
        return new IssuedTokens(accessToken, idToken, lifetime);
    }

    /// <summary>
    /// A human's CLI session (RFC 8628): the same claims and device evidence as an approval token, but the
    /// human acts for themself, so there is no <c>act</c>. Refreshed tokens keep the original approval's evidence.
    /// </summary>
    public IssuedTokens ForSession(DecidedApproval decided, string scope)
    {
        var (approval, decisions) = decided;
        var key = keys.Current;
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var lifetime = (int)options.AccessTokenLifetime.TotalSeconds;
        var access = AccessClaims(approval, decisions, scope, actor: false, now, lifetime, UserDid(approval.UserId), (approval.DecidedAt ?? approval.CreatedAt) / 1000,
            Amr(decisions));
        return new IssuedTokens(Jws.Sign(key.AccessTokenHeader, access, key.Signer), null, lifetime);
    }

    private byte[] AccessClaims(ApprovalRecord approval, IReadOnlyList<DecisionRecord> decisions, string scope, bool actor, long now, int lifetime, string sub,
        long authTime, string[] amr, MandateGrant? mandate = null) => Write(w =>
    {
        w.WriteString(ClaimNames.Issuer, _issuer);
        w.WriteString(ClaimNames.Subject, sub);
        w.WriteString(ClaimNames.Audience, approval.Resource ?? approval.ClientId);
        w.WriteString(ClaimNames.ClientId, approval.ClientId);
        if (actor)
        {
            // RFC 8693 §4.1: the agent acts on the approver's behalf.
            w.WriteStartObject(ClaimNames.Actor);
            w.WriteString(ClaimNames.Subject, approval.ClientId);
            w.WriteEndObject();
        }
        w.WriteString(ClaimNames.Scope, scope);
        w.WriteString(ClaimNames.JwtId, NewJti());
        w.WriteNumber(ClaimNames.IssuedAt, now);
        w.WriteNumber(ClaimNames.NotBefore, now);
        w.WriteNumber(ClaimNames.Expiration, now + lifetime);
        w.WriteNumber(ClaimNames.AuthTime, authTime);
        WriteAmr(w, amr);
        if (approval.BindingMessage is not null)
        {
            w.WriteString(ClaimNames.BindingMessage, approval.BindingMessage);
        }
        if (approval.AuthorizationDetails is not null)
        {
            w.WritePropertyName(ClaimNames.AuthorizationDetails);
            w.WriteRawValue(approval.AuthorizationDetails, skipInputValidation: true);
        }
        w.WriteString(ClaimNames.Transaction, approval.Id);
        if (approval.Policy is not null)
        {
            // docs/tokens.md §3: the policy that decided what the request needed, as name@version.
            w.WriteString(ClaimNames.Policy, approval.Policy);
        }
        if (mandate is not null)
        {
            // docs/tokens.md §3: the mandate, and what its current window had left after this payment; the evidence
            // below is the device's signature over the mandate's own payload.
            w.WriteStartObject(ClaimNames.Mandate);
            w.WriteString("id", mandate.Id);
            w.WriteString("remaining", mandate.Remaining);
            w.WriteEndObject();
        }
        if (decisions.Count == 1 && decisions[0].UserId == approval.UserId && approval.Quorum == 1)
        {
            w.WritePropertyName(ClaimNames.Evidence);
            w.WriteRawValue(decisions[0].Evidence, skipInputValidation: true);
        }
        else if (decisions.Count > 0)
        {
            // A quorum (or approvers a policy named instead of the requested user): every approver, and one evidence
            // entry per approving device, all over the same payload (docs/tokens.md §4).
            w.WriteStartArray(ClaimNames.Approvers);
            foreach (var d in decisions)
            {
                w.WriteStringValue(UserDid(d.UserId));
            }
            w.WriteEndArray();
            w.WriteStartArray(ClaimNames.Evidence);
            foreach (var d in decisions)
            {
                w.WriteRawValue(d.Evidence, skipInputValidation: true);
            }
            w.WriteEndArray();
        }
    });

    /// <summary>
    /// client_credentials: the agent acting for itself, no human involved. RFC 8725 §3.11: a different kind of
    /// JWT gets a different type, so this is <c>client+jwt</c>, never <c>at+jwt</c>, and carries no scope, act,
    /// txn, evidence or amr: nothing a verifier could mistake for an approval (docs/tokens.md §7).
    /// </summary>
    public IssuedTokens ForClient(ClientRecord client, string? resource)
    {
        var key = keys.Current;
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var lifetime = (int)options.AccessTokenLifetime.TotalSeconds;
        var payload = Write(w =>
        {
            w.WriteString(ClaimNames.Issuer, _issuer);
            w.WriteString(ClaimNames.Subject, client.Id);
            w.WriteString(ClaimNames.Audience, resource ?? client.Id);
            w.WriteString(ClaimNames.ClientId, client.Id);
            w.WriteString(ClaimNames.JwtId, NewJti());
            w.WriteNumber(ClaimNames.IssuedAt, now);
            w.WriteNumber(ClaimNames.NotBefore, now);
            w.WriteNumber(ClaimNames.Expiration, now + lifetime);
        });
        return new IssuedTokens(Jws.Sign(key.ClientTokenHeader, payload, key.Signer), null, lifetime);
    }

    /// <summary>
    /// The authorization_code grant (docs/tokens.md §11): an access token like §3's but for the user themself (no
    /// <c>act</c>, no evidence: no action was approved), always EdDSA; and an ID token (OpenID Connect Core §2, §3.1.3.6)
    /// signed with the client's <c>id_token_signed_response_alg</c>.
    /// </summary>
    public async Task<IssuedTokens> ForAuthorizationCodeAsync(AuthorizationCodeRecord code, string jti, string idTokenAlg, CancellationToken ct)
    {
        var key = keys.Current;
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var lifetime = (int)options.AccessTokenLifetime.TotalSeconds;
        var sub = UserDid(code.UserId);
        var authTime = code.AuthTime / 1000;
        var amr = code.Amr.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var access = Write(w =>
        {
            w.WriteString(ClaimNames.Issuer, _issuer);
            w.WriteString(ClaimNames.Subject, sub);
            w.WriteString(ClaimNames.Audience, code.ClientId);
            w.WriteString(ClaimNames.ClientId, code.ClientId);
            w.WriteString(ClaimNames.Scope, code.Scope);
            w.WriteString(ClaimNames.JwtId, jti);
            w.WriteNumber(ClaimNames.IssuedAt, now);
            w.WriteNumber(ClaimNames.NotBefore, now);
            w.WriteNumber(ClaimNames.Expiration, now + lifetime);
            w.WriteNumber(ClaimNames.AuthTime, authTime);
            WriteAmr(w, amr);
        });
        var accessToken = Jws.Sign(key.AccessTokenHeader, access, key.Signer);
        var id = Write(w =>
        {
            w.WriteString(ClaimNames.Issuer, _issuer);
            w.WriteString(ClaimNames.Subject, sub);
            w.WriteString(ClaimNames.Audience, code.ClientId);
            w.WriteNumber(ClaimNames.IssuedAt, now);
            w.WriteNumber(ClaimNames.Expiration, now + lifetime);
            w.WriteNumber(ClaimNames.AuthTime, authTime);
            if (code.Nonce is not null)
            {
                // OpenID Connect Core §3.1.3.6 / §2: the nonce of the authentication request, unmodified.
                w.WriteString(Authorize.IdTokenClaims.Nonce, code.Nonce);
            }
            w.WriteString(Authorize.IdTokenClaims.Acr, Authorize.IdTokenClaims.PhishingResistant);
            WriteAmr(w, amr);
            w.WriteString(Authorize.IdTokenClaims.AccessTokenHash, AccessTokenHash(accessToken, idTokenAlg));
        });
        var idToken = idTokenAlg == Jws.EdDsa
            ? Jws.Sign(key.JwtHeader, id, key.Signer)
            : (await keys.JoseKeyAsync(idTokenAlg, ct)).Sign(id);
        return new IssuedTokens(accessToken, idToken, lifetime);
    }

    /// <summary>
    /// OpenID Connect Core §3.1.3.6: the left half of the hash of the access token's ASCII bytes, with the hash of the ID
    /// token's alg: SHA-256 for ES256 and RS256; for EdDSA over Ed25519, SHA-512, whose half is 256 bits (as the
    /// OpenID Foundation's certified providers do; docs/tokens.md §11).
    /// </summary>
    internal static string AccessTokenHash(string accessToken, string alg)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(accessToken);
        var hash = alg == Jws.EdDsa ? SHA512.HashData(bytes) : SHA256.HashData(bytes);
        return Base64Url.Encode(hash.AsSpan(0, hash.Length / 2));
    }

    /// <summary>
    /// RFC 8176: a passkey with user verification is hardware key + user presence + MFA; a software key is swk.
    /// With several approvers, hardware only when every one of them used a passkey.
    /// </summary>
    /// <remarks>The evidence object is written by ApprovalService.Evidence with <c>kind</c> first, so its prefix names the device kind.</remarks>
    private static string[] Amr(IReadOnlyList<DecisionRecord> decisions) =>
        decisions.Count > 0 && decisions.All(d => d.Evidence.StartsWith("{\"kind\":\"" + DeviceKinds.WebAuthn + "\"", StringComparison.Ordinal))
            ? [AuthenticationMethods.HardwareKey, AuthenticationMethods.User, AuthenticationMethods.MultiFactor]
            : [AuthenticationMethods.SoftwareKey];

    private static void WriteAmr(Utf8JsonWriter w, string[] amr)
    {
        w.WriteStartArray(ClaimNames.AuthenticationMethods);
        foreach (var m in amr)
        {
            w.WriteStringValue(m);
        }
        w.WriteEndArray();
    }

    private static string NewJti() => Base64Url.Encode(RandomNumberGenerator.GetBytes(16));

    private static byte[] Write(Action<Utf8JsonWriter> claims)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            claims(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
