using Assent.Protocol;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Assent.Server.Push;

/// <summary>
/// The web app's notification switch (docs/http-api.md §12.6): the VAPID public key to subscribe with, and the user's
/// subscriptions, each held for the passkey whose session registered it. Session cookie only.
/// </summary>
internal static class PushEndpoints
{
    /// <summary>Registers the push services: the VAPID keys, the subscriptions store and the sender, which hears of every new request.</summary>
    public static async Task AddPushAsync(this IServiceCollection services, AssentStore store, MasterKey master, CancellationToken ct)
    {
        services.AddSingleton(await VapidKeys.LoadAsync(store.Meta, master, ct));
        services.AddSingleton(store.PushSubscriptions);
        services.AddSingleton<PushNotifier>();
        services.AddSingleton<INewRequestListener>(sp => sp.GetRequiredService<PushNotifier>());
        services.AddHostedService(sp => sp.GetRequiredService<PushNotifier>());
    }

    public static IEndpointRouteBuilder MapPush(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(EndpointPaths.WebAuthn + "/push").WithTags("Web Push").DisableAntiforgery().RequireAuthorization(AssentSchemes.WebSession);
        group.MapGet("", StatusAsync).WithSummary("The VAPID public key (applicationServerKey) and the user's push subscriptions (session cookie)");
        group.MapPost("/subscriptions", SubscribeAsync).WithSummary("Register this browser's push subscription for the session's passkey (session cookie)");
        group.MapPost("/unsubscribe", UnsubscribeAsync).WithSummary("Remove the subscription of an endpoint (session cookie)");
        group.MapDelete("/subscriptions/{id}", DeleteAsync).WithSummary("Remove one of the user's push subscriptions (session cookie)");
        return app;
    }

    internal static async Task<IResult> StatusAsync(Approver approver, VapidKeys keys, IPushSubscriptionStore subscriptions, CancellationToken ct)
    {
        var list = await subscriptions.ListActiveAsync(approver.User.Id, ct);
        return TypedResults.Json(new PushStatus(keys.PublicKey, [.. list.Select(s => View(s, approver))]), PushJson.Default.PushStatus);
    }

    internal static async Task<IResult> SubscribeAsync(HttpRequest request, HttpResponse response, Approver approver, IPushSubscriptionStore subscriptions, AssentOptions options,
        TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, PushJson.Default.PushSubscriptionBody, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (PushTargets.EndpointProblem(body.Endpoint, options.Push) is { } endpointProblem)
        {
            return Problem.BadRequest(endpointProblem);
        }
        if (PushTargets.KeysProblem(body.Keys?.P256dh, body.Keys?.Auth, out var p256dh, out var auth) is { } keysProblem)
        {
            return Problem.BadRequest(keysProblem);
        }
        var record = new PushSubscriptionRecord(Ids.New("psb"), approver.User.Id, approver.DeviceId, body.Endpoint!, p256dh, auth,
            time.GetUtcNow().ToUnixTimeMilliseconds());
        var (outcome, id) = await subscriptions.SubscribeAsync(record, options.Push.MaxSubscriptionsPerUser,
            new AuditEvent(AuditTypes.PushSubscribed, approver.User.Id, approver.DeviceId, record.Id,
                new Dictionary<string, string> { ["push_service"] = PushTargets.Origin(record.Endpoint) }), ct);
        var view = View(record with { Id = id }, approver);
        return outcome switch
        {
            PushSubscribeOutcome.Created => Created(response, view),
            PushSubscribeOutcome.Updated => TypedResults.Json(view, PushJson.Default.PushSubscriptionView),
            _ => Problem.Conflict($"this user already has {options.Push.MaxSubscriptionsPerUser} push subscriptions (Assent:Push:MaxSubscriptionsPerUser): " +
                                  "turn notifications off on a browser that no longer needs them"),
        };
    }

    internal static async Task<IResult> UnsubscribeAsync(HttpRequest request, Approver approver, IPushSubscriptionStore subscriptions, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, PushJson.Default.UnsubscribeBody, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var endpoint = read.Value!.Endpoint;
        if (string.IsNullOrEmpty(endpoint) || endpoint.Length > PushTargets.MaxEndpointLength)
        {
            return Problem.BadRequest($"endpoint must be the push subscription's URL, at most {PushTargets.MaxEndpointLength} characters");
        }
        return await subscriptions.TryUnsubscribeAsync(approver.User.Id, endpoint, Unsubscribed(approver, null), ct)
            ? TypedResults.NoContent()
            : Problem.NotFound("no push subscription of this endpoint for this user");
    }

    internal static async Task<IResult> DeleteAsync(string id, Approver approver, IPushSubscriptionStore subscriptions, CancellationToken ct) =>
        id.Length <= 64 && await subscriptions.TryDeleteAsync(approver.User.Id, id, Unsubscribed(approver, id), ct)
            ? TypedResults.NoContent()
            : Problem.NotFound("no such push subscription for this user");

    private static IResult Created(HttpResponse response, PushSubscriptionView view)
    {
        response.Headers.Location = $"{EndpointPaths.WebAuthn}/push/subscriptions/{view.Id}";
        return TypedResults.Json(view, PushJson.Default.PushSubscriptionView, statusCode: StatusCodes.Status201Created);
    }

    private static AuditEvent Unsubscribed(Approver approver, string? id) => new(AuditTypes.PushUnsubscribed, approver.User.Id, approver.DeviceId, id);

    private static PushSubscriptionView View(PushSubscriptionRecord s, Approver approver) =>
        new(s.Id, s.DeviceId, PushTargets.Origin(s.Endpoint), s.CreatedAt / 1000, s.DeviceId == approver.DeviceId);
}
