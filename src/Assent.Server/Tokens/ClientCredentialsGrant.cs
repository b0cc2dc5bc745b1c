using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Assent.Server.Tokens;

/// <summary>RFC 6749 §4.4: the agent authenticates as itself, with no human involved.</summary>
internal sealed class ClientCredentialsGrant(TokenIssuer issuer)
{
    public Results<Ok<TokenResponse>, OAuthError> Issue(IFormCollection form, ClientRecord client)
    {
        var allowed = client.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var requested = form.Value(OAuthParameters.Scope)?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? allowed;
        var extra = requested.Where(s => !allowed.Contains(s)).ToList();
        if (extra.Count > 0)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"this client may not ask for: {string.Join(' ', extra)}");
        }
        var resource = form.Value(OAuthParameters.Resource);
        if (resource is not null && !Uri.TryCreate(resource, UriKind.Absolute, out _))
        {
            return new OAuthError(OAuthErrors.InvalidTarget, "resource must be an absolute URI");
        }
        var scope = string.Join(' ', requested.Distinct());
        var tokens = issuer.ForClient(client, scope, resource);
        return TypedResults.Ok(new TokenResponse(tokens.AccessToken, "Bearer", tokens.ExpiresIn, scope));
    }
}
