using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Authentication;

/// <summary>A human signed in with <c>assent auth login</c> (RFC 8628): the CLI's session token, for the endpoints a human calls from a terminal.</summary>
internal static class CliSession
{
    /// <summary>The session of a signed-in human: an access token of ours, for the CLI client, with the session scopes.</summary>
    public static async Task<(UserRecord? User, IResult? Refused)> UserAsync(HttpRequest request, AccessTokenValidator validator,
        IdentityDirectory directory, string scope, CancellationToken ct)
    {
        var token = AccessTokenValidator.BearerToken(request);
        if (token is null)
        {
            return (null, BearerError.Missing(problem: true));
        }
        var (claims, error) = await validator.ValidateAsync(token, ct);
        if (claims is null)
        {
            return (null, BearerError.InvalidToken(error!, problem: true));
        }
        if (claims.ClientId != CliClient.Id || !claims.HasScope(CliClient.SessionScope))
        {
            return (null, BearerError.InvalidToken("not a signed-in session token; sign in with assent auth login", problem: true));
        }
        if (!claims.HasScope(scope))
        {
            return (null, BearerError.InsufficientScope(scope, problem: true));
        }
        var user = claims.UserId is null ? null : await directory.FindUserAsync(claims.UserId, ct);
        return user is null ? (null, BearerError.InvalidToken("the token's user does not exist here", problem: true)) : (user, null);
    }
}
