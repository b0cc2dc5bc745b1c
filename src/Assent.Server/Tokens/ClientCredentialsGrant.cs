using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Assent.Server.Tokens;

/// <summary>
/// RFC 6749 §4.4: the agent authenticates as itself, with no human involved. Every scope an agent is registered
/// with is one it may ask a human for, so none of them is granted here (that would be an approval no human gave);
/// the token carries no scope and a type of its own (docs/tokens.md §7).
/// </summary>
internal sealed class ClientCredentialsGrant(TokenIssuer issuer)
{
    public Results<Ok<TokenResponse>, OAuthError> Issue(IFormCollection form, ClientRecord client)
    {
        var requested = form.Value(OAuthParameters.Scope)?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        var allowed = client.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (requested.Any(allowed.Contains))
        {
            return new OAuthError(OAuthErrors.InvalidScope, "approval scopes are granted only by a human decision: use CIBA");
        }
        if (requested.Length > 0)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"this client may not ask for: {string.Join(' ', requested.Distinct())}");
        }
        var resource = form.Value(OAuthParameters.Resource);
        if (resource is not null && !Uri.TryCreate(resource, UriKind.Absolute, out _))
        {
            return new OAuthError(OAuthErrors.InvalidTarget, "resource must be an absolute URI");
        }
        var tokens = issuer.ForClient(client, resource);
        return TypedResults.Ok(new TokenResponse(tokens.AccessToken, TokenTypes.Bearer, tokens.ExpiresIn, Scope: null));
    }
}
