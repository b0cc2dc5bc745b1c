using System.Security.Cryptography;
using Assent.Protocol.Messages;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Webhooks;

/// <summary>
/// <c>/v1/webhooks</c> (docs/webhooks.md): endpoints that receive signed events (Standard Webhooks), their delivery
/// log and manual retry. An API key with <c>webhooks:manage</c> manages its owner's endpoints.
/// </summary>
internal static class WebhookEndpoints
{
    public const string Path = "/v1/webhooks";

    /// <summary>Standard Webhooks: secrets are <c>whsec_</c> and base64 of 24 to 64 random bytes; ours have 32.</summary>
    public const string SecretPrefix = "whsec_";

    /// <summary>The associated data a secret is sealed under: bound to its endpoint, so a sealed secret cannot be moved to another row.</summary>
    internal static string SealContext(string endpointId) => "webhook-secret:" + endpointId;

    public static IEndpointRouteBuilder MapWebhooks(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Webhooks").DisableAntiforgery().RequireAuthorization(AssentSchemes.ApiKey);
        group.MapPost("", CreateAsync).WithSummary("Register an endpoint for events; the signing secret is in this answer only (webhooks:manage)")
            .Accepts<WebhookCreateRequest>("application/json").Produces<WebhookResponse>(StatusCodes.Status201Created).ProducesProblem(StatusCodes.Status400BadRequest);
        group.MapGet("", ListAsync).WithSummary("Your webhook endpoints and their state (webhooks:manage)").Produces<WebhookList>();
        group.MapGet("/{id}", GetAsync).WithSummary("One endpoint (webhooks:manage)").Produces<WebhookResponse>();
        group.MapDelete("/{id}", DeleteAsync).WithSummary("Remove an endpoint; its undelivered events are dropped (webhooks:manage)");
        group.MapPost("/{id}/enable", EnableAsync).WithSummary("Turn a disabled endpoint back on (webhooks:manage)");
        group.MapPost("/{id}/test", TestAsync).WithSummary("Queue a webhook.ping event to the endpoint (webhooks:manage)");
        group.MapGet("/{id}/deliveries", DeliveriesAsync).WithSummary("The endpoint's delivery log, newest first (webhooks:manage)").Produces<DeliveryList>();
        group.MapPost("/{id}/deliveries/{deliveryId}/retry", RetryAsync).WithSummary("Deliver one event again now (webhooks:manage)");
        group.ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    internal static async Task<IResult> CreateAsync(HttpContext http, ApiCaller caller, IWebhookStore webhooks, TargetGuard guard, MasterKey master,
        AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.WebhooksManage) is { } refused)
        {
            return refused;
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, V1Json.Default.WebhookCreateRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var (url, events) = (read.Value!.Url?.Trim(), read.Value.Events);
        if (string.IsNullOrEmpty(url))
        {
            return Problem.BadRequest("url is required: where to POST events, e.g. https://example.com/hooks/assent");
        }
        if (events is null || events.Count == 0 || events.Count > 32)
        {
            return Problem.BadRequest($"events is required: 1 to 32 of {string.Join(", ", EventTypes.All)}, a family such as challenge.*, or *");
        }
        if (events.FirstOrDefault(e => e is null || !EventTypes.IsPattern(e)) is { } unknown || events.Any(e => e is null))
        {
            return Problem.BadRequest($"unknown event '{events.FirstOrDefault(e => e is null || !EventTypes.IsPattern(e))}': use {string.Join(", ", EventTypes.All)}, family.* or *");
        }
        if (await guard.ProblemAsync(url, ct) is { } badUrl)
        {
            return Problem.BadRequest(badUrl);
        }
        if ((await webhooks.ListEndpointsAsync(caller.Owner.Id, ct)).Count >= options.Webhooks.MaxEndpointsPerUser)
        {
            return Problem.Conflict($"{caller.Owner.Handle} has {options.Webhooks.MaxEndpointsPerUser} webhook endpoints already; remove one first");
        }
        var id = Ids.New("whk");
        var secret = SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var distinct = events.Distinct(StringComparer.Ordinal).ToList();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var record = new WebhookEndpointRecord(id, caller.Owner.Id, url, string.Join(' ', distinct),
            master.Seal(System.Text.Encoding.UTF8.GetBytes(secret), SealContext(id)), now, 0, null, null, null, null, null);
        await webhooks.CreateEndpointAsync(record, distinct, new AuditEvent(AuditTypes.WebhookCreated, caller.Owner.Id, caller.Key.Id, id,
            new Dictionary<string, string> { ["url"] = url, ["events"] = record.Events }), ct);
        http.Response.Headers.Location = $"{Path}/{id}";
        return TypedResults.Json(View(record) with { Secret = secret }, V1Json.Default.WebhookResponse, statusCode: StatusCodes.Status201Created);
    }

    internal static async Task<IResult> ListAsync(ApiCaller caller, IWebhookStore webhooks, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.WebhooksManage) is { } refused)
        {
            return refused;
        }
        var list = await webhooks.ListEndpointsAsync(caller.Owner.Id, ct);
        return TypedResults.Json(new WebhookList([.. list.Select(View)]), V1Json.Default.WebhookList);
    }

    internal static async Task<IResult> GetAsync(string id, ApiCaller caller, IWebhookStore webhooks, CancellationToken ct) =>
        caller.Lacks(ApiScopes.WebhooksManage) ?? (await FindOwnAsync(id, caller, webhooks, ct) is { } e
            ? TypedResults.Json(View(e), V1Json.Default.WebhookResponse)
            : NotFound());

    internal static async Task<IResult> DeleteAsync(string id, ApiCaller caller, IWebhookStore webhooks, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.WebhooksManage) is { } refused)
        {
            return refused;
        }
        return id.Length <= 64 && await webhooks.TryDeleteEndpointAsync(id, caller.Owner.Id, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.WebhookDeleted, caller.Owner.Id, caller.Key.Id, id), ct)
            ? TypedResults.NoContent()
            : NotFound();
    }

    internal static async Task<IResult> EnableAsync(string id, ApiCaller caller, IWebhookStore webhooks, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.WebhooksManage) is { } refused)
        {
            return refused;
        }
        if (await FindOwnAsync(id, caller, webhooks, ct) is null)
        {
            return NotFound();
        }
        if (!await webhooks.TryEnableEndpointAsync(id, caller.Owner.Id, new AuditEvent(AuditTypes.WebhookEnabled, caller.Owner.Id, caller.Key.Id, id), ct))
        {
            return Problem.Conflict("this endpoint is not disabled");
        }
        return TypedResults.Json(View((await webhooks.FindEndpointAsync(id, ct))!), V1Json.Default.WebhookResponse);
    }

    internal static async Task<IResult> TestAsync(string id, ApiCaller caller, IWebhookStore webhooks, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.WebhooksManage) is { } refused)
        {
            return refused;
        }
        if (await FindOwnAsync(id, caller, webhooks, ct) is not { Active: true })
        {
            return NotFound();
        }
        var now = time.GetUtcNow();
        var eventId = Ids.Ordered("msg", now);
        await webhooks.EnqueueAsync(eventId, id, EventTypes.Ping, id, now.ToUnixTimeMilliseconds(), ct);
        return TypedResults.Accepted($"{Path}/{id}/deliveries", new DeliveryResponse(eventId + "." + id, eventId, EventTypes.Ping, id, "pending", 0,
            WireTime.Of(now.ToUnixTimeMilliseconds())!));
    }

    internal static async Task<IResult> DeliveriesAsync(string id, ApiCaller caller, IWebhookStore webhooks, TimeProvider time, HttpRequest request,
        CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.WebhooksManage) is { } refused)
        {
            return refused;
        }
        if (await FindOwnAsync(id, caller, webhooks, ct) is null)
        {
            return NotFound();
        }
        var before = long.MaxValue;
        if (request.Query["before"].ToString() is { Length: > 0 } cursor && !long.TryParse(cursor, out before))
        {
            return Problem.BadRequest("before must be the cursor a previous page returned");
        }
        var limit = 50;
        if (request.Query["limit"].ToString() is { Length: > 0 } l && (!int.TryParse(l, out limit) || limit is < 1 or > 200))
        {
            return Problem.BadRequest("limit must be between 1 and 200");
        }
        var page = await webhooks.ListDeliveriesAsync(id, before, limit, ct);
        var next = page.Count == limit ? page[^1].CreatedAt.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        return TypedResults.Json(new DeliveryList([.. page.Select(View)], next), V1Json.Default.DeliveryList);
    }

    internal static async Task<IResult> RetryAsync(string id, string deliveryId, ApiCaller caller, IWebhookStore webhooks, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.WebhooksManage) is { } refused)
        {
            return refused;
        }
        if (await FindOwnAsync(id, caller, webhooks, ct) is not { Active: true })
        {
            return NotFound();
        }
        return deliveryId.Length <= 160 && await webhooks.TryRetryAsync(id, deliveryId, time.GetUtcNow().ToUnixTimeMilliseconds(), ct)
            ? TypedResults.Accepted($"{Path}/{id}/deliveries")
            : Problem.NotFound("this endpoint has no such delivery");
    }

    private static async Task<WebhookEndpointRecord?> FindOwnAsync(string id, ApiCaller caller, IWebhookStore webhooks, CancellationToken ct) =>
        id.Length <= 64 && await webhooks.FindEndpointAsync(id, ct) is { DeletedAt: null } e && e.OwnerUserId == caller.Owner.Id ? e : null;

    private static IResult NotFound() => Problem.NotFound("no webhook endpoint of this API key's owner with this id");

    internal static WebhookResponse View(WebhookEndpointRecord e) =>
        new(e.Id, e.Url, e.Events.Split(' '), e.DisabledAt is not null ? "disabled" : e.FailingSince is not null ? "failing" : "active", WireTime.Of(e.CreatedAt)!,
            null, WireTime.Of(e.FailingSince), WireTime.Of(e.DisabledAt), e.DisabledReason);

    internal static DeliveryResponse View(DeliveryRecord d) =>
        new(d.Id, d.EventId, d.Type, d.Subject, d.State switch { DeliveryState.Delivered => "delivered", DeliveryState.Failed => "failed", _ => "pending" },
            d.Attempts, WireTime.Of(d.CreatedAt)!, d.State == DeliveryState.Pending ? WireTime.Of(d.NextAttemptAt) : null, WireTime.Of(d.LastAttemptAt),
            d.LastStatus, d.LastError, WireTime.Of(d.DeliveredAt));
}
