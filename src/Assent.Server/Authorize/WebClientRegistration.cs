using System.Net;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Authorize;

/// <summary>A web client just registered; <see cref="ClientSecret"/> (null for a public client) is shown this once.</summary>
internal sealed record CreatedWebClient(string ClientId, string? ClientSecret, string Name, IReadOnlyList<string> RedirectUris,
    IReadOnlyList<string> PostLogoutRedirectUris, bool Public, string IdTokenAlg);

/// <summary>Registers web clients (docs/cli.md §6, <c>assent admin client create</c>): names, redirect URIs and algorithm checked.</summary>
internal static class WebClientRegistration
{
    /// <summary>Prefix of a web client's id, beside agents' <c>agt_</c>.</summary>
    public const string IdPrefix = "web";

    /// <summary>Whether <paramref name="clientId"/> is a web client's (the CLI's and agents' ids have other prefixes).</summary>
    public static bool IsWebClient(string clientId) => clientId.StartsWith(IdPrefix + "_", StringComparison.Ordinal);

    public static async Task<CreatedWebClient> CreateAsync(IWebClientStore store, string name, IReadOnlyList<string> redirectUris,
        IReadOnlyList<string> postLogoutRedirectUris, bool isPublic, string? idTokenAlg, TimeProvider time, CancellationToken ct,
        string actor = "operator", string? userId = null)
    {
        name = name.Trim();
        if (Naming.NameProblem("the client name", name) is { } refused)
        {
            throw new ArgumentException(refused);
        }
        if (redirectUris.Count == 0)
        {
            throw new ArgumentException("at least one --redirect-uri is required");
        }
        foreach (var uri in redirectUris.Concat(postLogoutRedirectUris))
        {
            if (RedirectUriProblem(uri) is { } problem)
            {
                throw new ArgumentException(problem);
            }
        }
        var alg = idTokenAlg is null ? IdTokenAlgs.EdDsa
            : IdTokenAlgs.Parse(idTokenAlg) ?? throw new ArgumentException($"--id-token-alg must be one of {string.Join(", ", IdTokenAlgs.All)}");
        var clientId = Ids.New(IdPrefix);
        var secret = isPublic ? null : Ids.Secret("sec");
        var redirects = redirectUris.Distinct(StringComparer.Ordinal).ToList();
        var logouts = postLogoutRedirectUris.Distinct(StringComparer.Ordinal).ToList();
        await store.CreateAsync(new WebClientRecord(clientId, secret is null ? null : Ids.Hash(secret), name, redirects, logouts, alg,
                time.GetUtcNow().ToUnixTimeMilliseconds(), null),
            new AuditEvent(AuditTypes.WebClientCreated, userId, actor, clientId,
                new Dictionary<string, string> { ["name"] = name, ["public"] = isPublic ? "true" : "false", ["id_token_alg"] = alg }), ct);
        return new CreatedWebClient(clientId, secret, name, redirects, logouts, isPublic, alg);
    }

    /// <summary>
    /// RFC 6749 §3.1.2 and RFC 9700 §2.1 / §4.1.1: an absolute URI without a fragment, compared exactly later; https,
    /// or http only to a loopback host (RFC 8252 §7.3). No user information, which only serves to mislead.
    /// </summary>
    public static string? RedirectUriProblem(string uri)
    {
        if (uri.Length > 512 || !Uri.TryCreate(uri, UriKind.Absolute, out var parsed))
        {
            return $"'{Shorten(uri)}' is not an absolute URI";
        }
        if (uri.Contains('#', StringComparison.Ordinal))
        {
            return $"'{Shorten(uri)}' has a fragment, which a redirect URI must not have (RFC 6749 §3.1.2)";
        }
        if (parsed.UserInfo.Length > 0)
        {
            return $"'{Shorten(uri)}' has user information";
        }
        var loopback = parsed.Host == "localhost" || (IPAddress.TryParse(parsed.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
        if (parsed.Scheme != Uri.UriSchemeHttps && !(parsed.Scheme == Uri.UriSchemeHttp && loopback))
        {
            return $"'{Shorten(uri)}' must use https (http only for localhost or a loopback address)";
        }
        return null;
    }

    private static string Shorten(string s) => s.Length > 80 ? s[..80] + "…" : s;
}
