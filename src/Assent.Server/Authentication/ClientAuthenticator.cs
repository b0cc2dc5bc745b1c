using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Authentication;

/// <summary>
/// Authenticates an agent by <c>client_secret_basic</c> or <c>client_secret_post</c>
/// (RFC 6749 §2.3.1). Secrets are compared as SHA-256 hashes in fixed time, and an unknown
/// client costs the same hash-and-compare, and the same counting of the failure, as a known one.
/// Failures are limited per client_id and per address (docs/deployment.md §10): backed off, then
/// locked out; meanwhile every attempt is refused with <c>Retry-After</c>, its secret unchecked.
/// </summary>
internal sealed class ClientAuthenticator(ClientDirectory directory, AttemptLimiter limiter, AssentOptions options)
{
    private static readonly byte[] DummyHash = SHA256.HashData("assent-no-such-client"u8);
    private readonly AttemptPolicy _policy = AttemptPolicy.ForClients(options.Limits);

    public sealed record Outcome(ClientRecord? Client, OAuthError? Error);

    /// <param name="allowPublic">Whether the public CLI client (<see cref="CliClient"/>, identified by client_id alone) may call.</param>
    public sealed record AuthenticatedForm(IFormCollection? Form, ClientRecord? Client, OAuthError? Error);

    /// <summary>
    /// The opening of every OAuth endpoint: answers are never cached (RFC 6749 §5.1), the body is a
    /// form, and the client authenticates. <paramref name="allowPublic"/> decides per request whether
    /// the public CLI client may come without a secret.
    /// </summary>
    public async Task<AuthenticatedForm> ReadFormAsync(HttpRequest request, Func<IFormCollection, bool> allowPublic, CancellationToken ct)
    {
        OAuthError.NoStore(request.HttpContext.Response);
        var read = await RequestBodies.ReadFormAsync(request, ct);
        if (read.Error is not null)
        {
            return new AuthenticatedForm(null, null, read.Error);
        }
        var (client, error) = await AuthenticateAsync(request, read.Form!, ct, allowPublic(read.Form!));
        return new AuthenticatedForm(read.Form, client, error);
    }

    public async Task<Outcome> AuthenticateAsync(HttpRequest request, IFormCollection form, CancellationToken ct, bool allowPublic = false)
    {
        string? id, secret;
        var header = request.Headers.Authorization.ToString();
        var postedId = form.Value(OAuthParameters.ClientId);
        var postedSecret = form.Value(OAuthParameters.ClientSecret);
        if (postedId == CliClient.Id && header.Length == 0 && postedSecret is null)
        {
            // RFC 6749 §3.2.1: a public client sends its client_id and nothing to authenticate with.
            return allowPublic ? new Outcome(CliClient.Record, null) : Fail(new OAuthError(OAuthErrors.UnauthorizedClient,
                "the public client assent-cli may only use the device_code and refresh_token grants and revocation", StatusCodes.Status400BadRequest));
        }
        if (header.Length > 0)
        {
            // RFC 6749 §2.3: a client must not use more than one authentication method per request.
            if (postedSecret is not null)
            {
                return Fail(new OAuthError(OAuthErrors.InvalidRequest, "use either HTTP Basic or client_secret in the body, not both"));
            }
            if (!TryParseBasic(header, out id, out secret))
            {
                return Fail(OAuthError.InvalidClient("the Authorization header is not valid HTTP Basic client authentication"));
            }
            if (postedId is not null && postedId != id)
            {
                return Fail(new OAuthError(OAuthErrors.InvalidRequest, "client_id in the body differs from the authenticated client"));
            }
        }
        else
        {
            (id, secret) = (postedId, postedSecret);
        }
        if (id is null || secret is null)
        {
            return Fail(OAuthError.InvalidClient("client authentication is required (client_secret_basic or client_secret_post)"));
        }
        var client = id.Length <= 128 ? await directory.FindAsync(id, ct) : null;
        // The agent's owner hears of attacks on it in their audit trail; an address's are for admins.
        AttemptKey[] Keys() =>
        [
            new(_policy.Key("client", id.Length <= 128 ? id : Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(id)))), client?.OwnerUserId),
            new(_policy.Key("address", ClientAddress.Of(request.HttpContext)), null),
        ];
        // Nothing refused anywhere (the usual case): no keys to build on the way to a success.
        var keys = limiter.RefusesNone ? null : Keys();
        if (keys is not null && limiter.Refused(keys) is { } refused)
        {
            // RFC 6749 §5.2: still invalid_client, the OAuth answer to an authentication not accepted. An attempt that
            // does not wait out a backoff counts as a failure, so hammering through one ends in the lockout.
            var wait = refused.Counts ? await limiter.FailedAsync(_policy, keys, ct) ?? refused.RetryAfter : refused.RetryAfter;
            return Fail(OAuthError.InvalidClient("too many failed client authentications from this client or address; try again later", wait));
        }
        var presented = Ids.Hash(secret);
        var matches = CryptographicOperations.FixedTimeEquals(presented, client?.SecretHash ?? DummyHash);
        if (client is null || !matches || client.RevokedAt is not null)
        {
            return Fail(OAuthError.InvalidClient("unknown client or wrong secret", await limiter.FailedAsync(_policy, keys ?? Keys(), ct)));
        }
        return new Outcome(client, null);
    }

    private static Outcome Fail(OAuthError error) => new(null, error);

    /// <summary>RFC 6749 §2.3.1: id and secret are form-urlencoded before being joined by ':' and base64-encoded.</summary>
    internal static bool TryParseBasic(string header, out string? id, out string? secret)
    {
        id = secret = null;
        if (!AuthenticationHeaderValue.TryParse(header, out var value) || !string.Equals(value.Scheme, "Basic", StringComparison.OrdinalIgnoreCase) || value.Parameter is null)
        {
            return false;
        }
        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(Convert.FromBase64String(value.Parameter));
        }
        catch (FormatException)
        {
            return false;
        }
        var colon = decoded.IndexOf(':');
        if (colon <= 0)
        {
            return false;
        }
        id = Uri.UnescapeDataString(decoded[..colon].Replace('+', ' '));
        secret = Uri.UnescapeDataString(decoded[(colon + 1)..].Replace('+', ' '));
        return secret.Length > 0;
    }
}
