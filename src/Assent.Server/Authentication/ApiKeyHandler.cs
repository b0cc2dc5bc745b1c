using System.Security.Claims;
using System.Text.Encodings.Web;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Assent.Server.Authentication;

/// <summary>The API key a <c>/v1</c> call came with (docs/challenges.md §1); handlers take it as a parameter.</summary>
internal sealed record ApiCaller(ApiKeyRecord Key, UserRecord Owner)
{
    public static ValueTask<ApiCaller?> BindAsync(HttpContext http) => ValueTask.FromResult(http.Features.Get<ApiCaller>());

    /// <summary>RFC 6750 §3.1 <c>insufficient_scope</c>, as a problem: the key is valid but may not do this.</summary>
    public IResult? Lacks(string scope) =>
        Key.HasScope(scope) ? null : Problem.Forbidden($"this API key lacks the scope {scope} (it has: {Key.Scopes}); create one with it: assent apikey create --scopes {scope}");
}

/// <summary>API key scopes (docs/challenges.md §1).</summary>
internal static class ApiScopes
{
    public const string ChallengesWrite = "challenges:write";
    public const string ChallengesRead = "challenges:read";
    public const string WebhooksManage = "webhooks:manage";
    public const string PoliciesManage = "policies:manage";

    public static readonly IReadOnlyList<string> All = [ChallengesWrite, ChallengesRead, WebhooksManage, PoliciesManage];

    /// <summary>Space- or comma-separated scopes, checked and in a fixed order; throws on an unknown one.</summary>
    public static string Normalize(string scopes)
    {
        var list = scopes.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToList();
        if (list.Count == 0)
        {
            throw new ArgumentException($"give at least one scope: {string.Join(", ", All)}");
        }
        if (list.FirstOrDefault(s => !All.Contains(s)) is { } unknown)
        {
            throw new ArgumentException($"unknown scope '{unknown}': an API key's scopes are {string.Join(", ", All)}");
        }
        return string.Join(' ', All.Where(list.Contains));
    }
}

/// <summary>
/// <c>Authorization: Bearer sk_…</c>: the key is looked up by its SHA-256 (a 256-bit random value needs no slow hash,
/// and a lookup by hash compares nothing secret in variable time). Failures are counted per address, as client
/// secrets are (docs/deployment.md §10), so keys cannot be guessed at speed.
/// </summary>
internal sealed class ApiKeyHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IApiKeyStore keys,
    Identity.IdentityDirectory directory, AttemptLimiter limiter, AssentOptions settings, TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, NullLoggerFactory.Instance, encoder)
{
    public const string Prefix = "sk_";

    /// <summary><see cref="ApiKeyRecord.LastUsedAt"/> is written at most this often per key.</summary>
    private const long TouchGranularity = 60_000;

    private readonly ILogger _log = logger.CreateLogger<ApiKeyHandler>();
    private readonly AttemptPolicy _policy = AttemptPolicy.ForApiKeys(settings.Limits);

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail(new Refusal(StatusCodes.Status401Unauthorized, "send an API key: Authorization: Bearer sk_…", null));
        }
        var presented = header[7..].Trim();
        AttemptKey[] attempt = [new(_policy.Key("address", ClientAddress.Of(Context)), null)];
        if (!limiter.RefusesNone && limiter.Refused(attempt) is { } refused)
        {
            var wait = refused.Counts ? await limiter.FailedAsync(_policy, attempt, Context.RequestAborted) ?? refused.RetryAfter : refused.RetryAfter;
            return AuthenticateResult.Fail(new Refusal(StatusCodes.Status429TooManyRequests, "too many failed API key attempts from this address; try again later", wait));
        }
        var key = presented.StartsWith(Prefix, StringComparison.Ordinal) && presented.Length <= 128
            ? await keys.FindByHashAsync(Ids.Hash(presented), Context.RequestAborted)
            : null;
        var owner = key is { Active: true } ? await directory.FindUserAsync(key.OwnerUserId, Context.RequestAborted) : null;
        if (key is null || owner is null)
        {
            var wait = await limiter.FailedAsync(_policy, attempt, Context.RequestAborted);
            return AuthenticateResult.Fail(new Refusal(StatusCodes.Status401Unauthorized,
                key is null ? "unknown API key" : "this API key was revoked", wait));
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (key.LastUsedAt is null || key.LastUsedAt <= now - TouchGranularity)
        {
            await keys.TouchAsync(key.Id, now, TouchGranularity, Context.RequestAborted);
        }
        Context.Features.Set(new ApiCaller(key, owner));
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, owner.Id), new Claim("api_key", key.Id)], Scheme.Name);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure as Refusal ?? new Refusal(StatusCodes.Status401Unauthorized, "not authenticated", null);
        _log.LogInformation("refused an API key request to {Endpoint}: {Reason}", Context.GetEndpoint()?.DisplayName, failure.Message);
        // RFC 6750 §3: the scheme a client should use.
        Response.Headers.WWWAuthenticate = "Bearer realm=\"assent\"";
        var answer = failure.Status == StatusCodes.Status429TooManyRequests
            ? Problem.TooManyRequests(failure.Message, failure.RetryAfter ?? TimeSpan.FromSeconds(1))
            : Problem.Unauthorized(failure.Message);
        if (failure.Status != StatusCodes.Status429TooManyRequests && failure.RetryAfter is { } retry)
        {
            Problem.SetRetryAfter(Response, retry);
        }
        await answer.ExecuteAsync(Context);
    }

    private sealed class Refusal(int status, string message, TimeSpan? retryAfter) : Exception(message)
    {
        public int Status => status;

        public TimeSpan? RetryAfter => retryAfter;
    }
}
