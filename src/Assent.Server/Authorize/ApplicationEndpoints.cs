using System.Text.Json.Serialization;
using Assent.Protocol;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Authorize;

/// <summary>
/// The web app's "Applications" (docs/http-api.md §17.8): the signed-in user lists the web clients they consented to and
/// revokes a consent; an administrator registers web clients, as <c>assent admin client create</c> does offline. The
/// session cookie (SameSite=Strict) and the Origin check of every state-changing call protect them, as every other
/// endpoint of the web app.
/// </summary>
internal static class ApplicationEndpoints
{
    public const string Path = EndpointPaths.WebAuthn + "/applications";
    public const string ClientsPath = EndpointPaths.WebAuthn + "/web-clients";

    public static IEndpointRouteBuilder MapApplications(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(EndpointPaths.WebAuthn).WithTags("Sign-in").DisableAntiforgery().RequireAuthorization(AssentSchemes.WebSession);
        group.MapGet("/applications", ListConsentsAsync).WithSummary("The web applications the user consented to sign them in (session cookie)");
        group.MapDelete("/applications/{clientId}", RevokeConsentAsync)
            .WithSummary("Revoke a consent: the next sign-in asks again; the application's refresh tokens for the user end (session cookie)");
        group.MapGet("/web-clients", ListClientsAsync).WithSummary("Registered web clients (an administrator's session cookie)");
        group.MapPost("/web-clients", CreateClientAsync)
            .WithSummary("Register a web client, as assent admin client create; the secret is in this answer only (an administrator's session cookie)");
        return app;
    }

    internal static async Task<IResult> ListConsentsAsync(Approver approver, IWebClientStore clients, CancellationToken ct)
    {
        var consents = await clients.ListConsentsAsync(approver.User.Id, ct);
        return TypedResults.Json(new WebConsentList([.. consents.Select(c => new WebConsentView(c.ClientId, c.ClientName, c.Scope, c.CreatedAt / 1000))]),
            ApplicationJson.Default.WebConsentList);
    }

    internal static async Task<IResult> RevokeConsentAsync(string clientId, Approver approver, IWebClientStore clients, TimeProvider time, CancellationToken ct)
    {
        var ok = clientId.Length <= 128 && await clients.TryRevokeConsentAsync(approver.User.Id, clientId, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.WebConsentRevoked, approver.User.Id, approver.DeviceId, clientId), ct);
        return ok ? TypedResults.NoContent() : Problem.NotFound("you have not consented to this application");
    }

    internal static async Task<IResult> ListClientsAsync(Approver approver, IWebClientStore clients, CancellationToken ct)
    {
        if (NotAdmin(approver) is { } refused)
        {
            return refused;
        }
        var list = await clients.ListAsync(ct);
        return TypedResults.Json(new WebClientList([.. list.Select(c => new WebClientView(c.Id, c.Name, c.RedirectUris, c.PostLogoutRedirectUris, c.IsPublic,
            c.IdTokenAlg, c.CreatedAt / 1000, c.RevokedAt is not null))]), ApplicationJson.Default.WebClientList);
    }

    internal static async Task<IResult> CreateClientAsync(HttpRequest request, HttpResponse response, Approver approver, IWebClientStore clients,
        TimeProvider time, CancellationToken ct)
    {
        if (NotAdmin(approver) is { } refused)
        {
            return refused;
        }
        var read = await RequestBodies.ReadJsonAsync(request, ApplicationJson.Default.WebClientBody, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        var redirects = body.RedirectUris ?? [];
        var logouts = body.PostLogoutRedirectUris ?? [];
        if (redirects.Count > 20 || logouts.Count > 20)
        {
            return Problem.BadRequest("at most 20 redirect URIs and 20 post-logout redirect URIs");
        }
        CreatedWebClient created;
        try
        {
            // The same checks as the CLI's (docs/cli.md §6): name, exact redirect URIs, algorithm.
            created = await WebClientRegistration.CreateAsync(clients, body.Name ?? "", redirects, logouts, body.Public ?? false, body.IdTokenAlg, time, ct,
                actor: approver.DeviceId, userId: approver.User.Id);
        }
        catch (ArgumentException e)
        {
            return Problem.BadRequest(e.Message.Replace("--redirect-uri", "redirect_uris", StringComparison.Ordinal)
                .Replace("--id-token-alg", "id_token_alg", StringComparison.Ordinal));
        }
        // The secret is shown this once: nothing may keep the answer.
        response.Headers.CacheControl = "no-store";
        return TypedResults.Json(new CreatedWebClientView(created.ClientId, created.ClientSecret, created.Name, created.RedirectUris,
            created.PostLogoutRedirectUris, created.Public, created.IdTokenAlg), ApplicationJson.Default.CreatedWebClientView, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>
    /// Registering a client is the operator's act offline (direct database access); online it takes an administrator
    /// (docs/concepts.md §1), the same authority that manages policies.
    /// </summary>
    private static IResult? NotAdmin(Approver approver) =>
        approver.User.IsAdmin ? null : Problem.Forbidden("only an administrator may register web clients");
}

/// <summary>A consent as its user sees it; <c>consented_at</c> in Unix seconds.</summary>
internal sealed record WebConsentView(string ClientId, string Name, string Scope, long ConsentedAt);

internal sealed record WebConsentList(IReadOnlyList<WebConsentView> Applications);

internal sealed record WebClientView(string ClientId, string Name, IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris,
    bool Public, string IdTokenAlg, long CreatedAt, bool Revoked);

internal sealed record WebClientList(IReadOnlyList<WebClientView> Clients);

/// <summary>The registration form: what <c>assent admin client create</c> takes.</summary>
internal sealed record WebClientBody(string? Name, IReadOnlyList<string>? RedirectUris, IReadOnlyList<string>? PostLogoutRedirectUris, bool? Public,
    string? IdTokenAlg);

/// <summary>A client just registered; <c>client_secret</c> (absent for a public client) is in this answer only.</summary>
internal sealed record CreatedWebClientView(string ClientId, string? ClientSecret, string Name, IReadOnlyList<string> RedirectUris,
    IReadOnlyList<string> PostLogoutRedirectUris, bool Public, string IdTokenAlg);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WebConsentList))]
[JsonSerializable(typeof(WebClientList))]
[JsonSerializable(typeof(WebClientBody))]
[JsonSerializable(typeof(CreatedWebClientView))]
internal sealed partial class ApplicationJson : JsonSerializerContext;
