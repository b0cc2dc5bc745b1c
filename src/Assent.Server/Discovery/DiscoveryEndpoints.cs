using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Jose;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Authorize;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Discovery;

/// <summary>OpenID Connect Discovery 1.0 §4 and the JWKS (RFC 7517 §5).</summary>
internal static class DiscoveryEndpoints
{
    public static IEndpointRouteBuilder MapDiscovery(this IEndpointRouteBuilder app, AssentOptions options)
    {
        var document = JsonSerializer.SerializeToUtf8Bytes(Document(options), ProtocolJson.Default.DiscoveryDocument);
        app.MapGet(EndpointPaths.Discovery, (HttpResponse response) =>
            {
                response.Headers.CacheControl = "public, max-age=300";
                return TypedResults.Bytes(document, "application/json");
            })
            .WithSummary("OpenID Connect discovery document").WithTags("Discovery");
        app.MapGet(EndpointPaths.Jwks, (HttpResponse response, KeyRing keys) =>
            {
                // Short cache: a rotation must reach verifiers quickly (they also refetch on an unknown kid).
                response.Headers.CacheControl = "public, max-age=60";
                return TypedResults.Bytes(keys.JwksJson, "application/jwk-set+json");
            })
            .WithSummary("The issuer's signing keys (current and still-valid previous)").WithTags("Discovery");
        return app;
    }

    internal static DiscoveryDocument Document(AssentOptions options)
    {
        var issuer = options.IssuerString;
        return new DiscoveryDocument(
            Issuer: issuer,
            JwksUri: issuer + EndpointPaths.Jwks,
            TokenEndpoint: issuer + EndpointPaths.Token,
            BackchannelAuthenticationEndpoint: issuer + EndpointPaths.BackchannelAuthentication,
            DeviceAuthorizationEndpoint: issuer + EndpointPaths.DeviceAuthorization,
            RevocationEndpoint: issuer + EndpointPaths.Revocation,
            UserinfoEndpoint: issuer + EndpointPaths.UserInfo,
            GrantTypesSupported: [GrantTypes.Ciba, GrantTypes.DeviceCode, GrantTypes.RefreshToken, GrantTypes.ClientCredentials, AuthorizationCodeGrant.GrantType],
            BackchannelTokenDeliveryModesSupported: [DeliveryModes.Poll, DeliveryModes.Ping, DeliveryModes.Push],
            BackchannelUserCodeParameterSupported: false,
            // None: the CLI's public client (RFC 8414 §2), which only signs humans in.
            TokenEndpointAuthMethodsSupported: [ClientAuthMethods.ClientSecretBasic, ClientAuthMethods.ClientSecretPost, ClientAuthMethods.None],
            IdTokenSigningAlgValuesSupported: IdTokenAlgs.All,
            AuthorizationDetailsTypesSupported: options.AuthorizationDetailsTypes,
            ScopesSupported: [.. AuthorizationRequests.Scopes, CliClient.SessionScope, CliClient.AgentsWriteScope],
            // "code" for web clients' sign-in (docs/http-api.md §17); "token" as before for the CIBA and device grants' answers.
            ResponseTypesSupported: ["code", "token"],
            SubjectTypesSupported: ["public"],
            ClaimsSupported: [ClaimNames.Issuer, ClaimNames.Subject, ClaimNames.Audience, ClaimNames.AuthTime, ClaimNames.AuthenticationMethods,
                ClaimNames.AuthReqId, ClaimNames.BindingMessage, ClaimNames.AuthorizationDetails, ClaimNames.Transaction, ClaimNames.Evidence,
                IdTokenClaims.Nonce, IdTokenClaims.Acr, IdTokenClaims.AccessTokenHash],
            AuthorizationEndpoint: issuer + AuthorizePaths.Authorize,
            EndSessionEndpoint: issuer + AuthorizePaths.EndSession,
            CodeChallengeMethodsSupported: [PkceMethods.S256],
            ResponseModesSupported: [ResponseModes.Query, ResponseModes.FormPost],
            PromptValuesSupported: [Prompts.None, Prompts.Login, Prompts.Consent, Prompts.SelectAccount],
            AcrValuesSupported: [IdTokenClaims.PhishingResistant],
            // RFC 9207 §3: iss is in every authorization response.
            AuthorizationResponseIssParameterSupported: true);
    }
}
