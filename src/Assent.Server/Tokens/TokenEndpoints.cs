using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Authentication;
using Assent.Server.Authorize;
using Assent.Server.Ciba;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Tokens;

/// <summary>The token endpoint (RFC 6749 §3.2): authenticate the client, then hand the request to its grant.</summary>
internal static class TokenEndpoints
{
    public static IEndpointRouteBuilder MapTokens(this IEndpointRouteBuilder app)
    {
        app.MapPost(EndpointPaths.Token, TokenAsync)
            .DisableAntiforgery()
            .WithSummary("Token endpoint: CIBA, device_code, refresh_token, client_credentials, authorization_code (RFC 6749 §3.2, CIBA Core §10, RFC 8628 §3.4)")
            .WithTags("OAuth");
        return app;
    }

    internal static async Task<Results<Ok<TokenResponse>, OAuthError>> TokenAsync(HttpContext http, ClientAuthenticator clients, CibaGrant ciba,
        DeviceCodeGrant deviceCode, SessionService sessions, ClientCredentialsGrant clientCredentials, AuthorizationCodeGrant authorizationCode, CancellationToken ct)
    {
        // Web clients (docs/http-api.md §17) are not agents: the authorization_code grant authenticates its own clients.
        if (http.Request.HasFormContentType && await RequestBodies.ReadFormAsync(http.Request, ct) is { Form: { } early })
        {
            if (early.Value(OAuthParameters.GrantType) == AuthorizationCodeGrant.GrantType)
            {
                return await authorizationCode.RedeemAsync(http.Request, early, ct);
            }
            if (early.Value(OAuthParameters.GrantType) == GrantTypes.RefreshToken && AuthorizationCodeGrant.IsWebClientRequest(http.Request, early))
            {
                return await authorizationCode.RefreshAsync(http.Request, early, ct);
            }
        }
        // The human grants come from the public CLI client, which has no secret.
        static bool IsHumanGrant(string? grant) => grant is GrantTypes.DeviceCode or GrantTypes.RefreshToken;
        var (read, client, error) = await clients.ReadFormAsync(http.Request, f => IsHumanGrant(f.Value(OAuthParameters.GrantType)), ct);
        if (error is not null)
        {
            return error;
        }
        var form = read!;
        var grant = form.Value(OAuthParameters.GrantType);
        if (IsHumanGrant(grant) && client!.Id != CliClient.Id)
        {
            // Sessions are for humans at the CLI; agents get their tokens through CIBA.
            return new OAuthError(OAuthErrors.UnauthorizedClient, $"grant_type '{grant}' is only for the public client {CliClient.Id}");
        }
        return grant switch
        {
            GrantTypes.Ciba => await ciba.RedeemAsync(http, form, client!, ct),
            GrantTypes.DeviceCode => await deviceCode.RedeemAsync(http, form, ct),
            GrantTypes.RefreshToken => await sessions.RefreshAsync(form.Value(OAuthParameters.RefreshToken), form.Value(OAuthParameters.Scope), ct),
            GrantTypes.ClientCredentials => clientCredentials.Issue(form, client!),
            null => new OAuthError(OAuthErrors.InvalidRequest, "grant_type is required"),
            var other => new OAuthError(OAuthErrors.UnsupportedGrantType, $"grant_type '{other}' is not supported here"),
        };
    }
}
