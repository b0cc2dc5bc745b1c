using System.Buffers;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Mandates;

/// <summary>
/// Spending mandates (docs/policies.md §6, docs/http-api.md §19). An agent asks with its client credentials
/// (<c>POST /v1/mandates</c>, a CIBA request whose one authorization detail is the mandate, so it is followed with
/// <c>/oauth/token</c> like any other); the user lists, inspects and revokes their mandates with the CLI's session token
/// (<c>/v1/mandates</c>) or the web app's session (<c>/webauthn/mandates</c>).
/// </summary>
internal static class MandateEndpoints
{
    public const string Path = "/v1/mandates";

    public static IEndpointRouteBuilder MapMandates(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup(Path).WithTags("Mandates").DisableAntiforgery();
        v1.MapPost("", CreateAsync).WithSummary("An agent (client_secret_basic) asks a user for a spending mandate; follow it with /oauth/token and its auth_req_id")
            .Accepts<MandateCreateRequest>("application/json").Produces<MandateCreated>(StatusCodes.Status201Created);
        v1.MapGet("", ListAsync).WithSummary("Your spending mandates (session token)").Produces<MandateList>();
        v1.MapGet("/{id}", ShowAsync).WithSummary("One of your mandates with its payments (session token)").Produces<MandateResponse>();
        v1.MapPost("/{id}/revoke", RevokeAsync).WithSummary("Revoke one of your mandates (session token): it approves nothing after this");
        var web = app.MapGroup(EndpointPaths.WebAuthn + "/mandates").WithTags("Web app").DisableAntiforgery().RequireAuthorization(AssentSchemes.WebSession);
        web.MapGet("", (Approver a, MandateBook book, CancellationToken ct) => ListFor(a.User, book, ct)).WithSummary("Your spending mandates (session cookie)")
            .Produces<MandateList>();
        web.MapGet("/{id}", (string id, Approver a, MandateBook book, CancellationToken ct) => ShowFor(id, a.User, book, ct))
            .WithSummary("One of your mandates with its payments (session cookie)").Produces<MandateResponse>();
        web.MapPost("/{id}/revoke", (string id, Approver a, MandateBook book, CancellationToken ct) => RevokeFor(id, a.User, a.DeviceId, book, ct))
            .WithSummary("Revoke one of your mandates (session cookie)");
        return app;
    }

    internal static async Task<IResult> CreateAsync(HttpContext http, ClientAuthenticator clients, IdentityDirectory directory, AgentConsents consents,
        ApprovalService approvals, AssentOptions options, CancellationToken ct)
    {
        OAuthError.NoStore(http.Response);
        var read = await RequestBodies.ReadJsonAsync(http.Request, MandateJson.Default.MandateCreateRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var (client, error) = await clients.AuthenticateAsync(http.Request, FormCollection.Empty, ct);
        if (error is not null)
        {
            return error;
        }
        var body = read.Value!;
        if (body.User is not { Length: > 0 and <= 256 } hint || await directory.FindByHintAsync(hint, ct) is not { } user)
        {
            return Problem.BadRequest("user is required: the handle or DID of the user who is to sign the mandate");
        }
        if (!await consents.MayAskAsync(client!, user, ct))
        {
            return Problem.Forbidden($"this agent may ask only its owner, or a user who consented to it; {hint} has not");
        }
        var message = body.BindingMessage ?? $"Spending mandate for {client!.Name}: {Text(body.Total)} {body.Currency} per {body.Period}";
        if (ApprovalText.BindingMessageProblem(message) is { } badMessage)
        {
            return Problem.BadRequest(badMessage);
        }
        var expiry = options.DefaultRequestExpiry;
        if (body.RequestedExpiry is { } seconds)
        {
            if (seconds < 1 || seconds > options.MaxRequestExpiry.TotalSeconds)
            {
                return Problem.BadRequest($"requested_expiry must be a whole number of seconds from 1 to {(int)options.MaxRequestExpiry.TotalSeconds}");
            }
            expiry = TimeSpan.FromSeconds(seconds);
        }
        // The same checks as any request's details (size, depth, hidden text in payee names) before the mandate's own.
        if (!ApprovalText.TryNormalizeDetails(Details(body), options, out var details, out var why))
        {
            return Problem.BadRequest(why);
        }
        ApprovalService.CappedCreation capped;
        try
        {
            capped = await approvals.CreateUnderCapAsync(ApprovalKinds.Ciba, client!.Id, client.Name, user, Scopes.OpenId, message, details, null, expiry,
                options.Limits.MaxPendingPerAgentPerUser, null, ct);
        }
        catch (MandateProblemException bad)
        {
            return Problem.BadRequest(bad.Message);
        }
        catch (PolicyDeniedException denied)
        {
            return Problem.Forbidden($"policy {denied.Policy.Label} denies this request");
        }
        if (capped.Created is not { } created)
        {
            return Problem.TooManyRequests($"this agent already has {options.Limits.MaxPendingPerAgentPerUser} requests waiting for this user", capped.RetryAfter);
        }
        return TypedResults.Json(new MandateCreated(MandateBook.IdFor(created.Approval.Id), "pending", created.Handle, (int)expiry.TotalSeconds,
            (int)Math.Ceiling(options.PollInterval.TotalSeconds)), MandateJson.Default.MandateCreated, statusCode: StatusCodes.Status201Created);
    }

    internal static async Task<IResult> ListAsync(HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, MandateBook book,
        CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        return refused ?? await ListFor(user!, book, ct);
    }

    internal static async Task<IResult> ShowAsync(string id, HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, MandateBook book,
        CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        return refused ?? await ShowFor(id, user!, book, ct);
    }

    internal static async Task<IResult> RevokeAsync(string id, HttpContext http, AccessTokenValidator validator, IdentityDirectory directory,
        MandateBook book, CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        return refused ?? await RevokeFor(id, user!, user!.Id, book, ct);
    }

    private static async Task<IResult> ListFor(UserRecord user, MandateBook book, CancellationToken ct)
    {
        var rows = await book.ListAsync(user.Id, ct);
        return TypedResults.Json(new MandateList([.. rows.Select(r => View(r, book, null))]), MandateJson.Default.MandateList);
    }

    private static async Task<IResult> ShowFor(string id, UserRecord user, MandateBook book, CancellationToken ct) =>
        await book.ShowAsync(id, user.Id, ct) is { } shown
            ? TypedResults.Json(View(shown.Row, book, shown.Payments), MandateJson.Default.MandateResponse)
            : Problem.NotFound("no mandate of yours with this id");

    private static async Task<IResult> RevokeFor(string id, UserRecord user, string actor, MandateBook book, CancellationToken ct) =>
        await book.RevokeAsync(id, user.Id, actor, ct) ? TypedResults.NoContent() : Problem.NotFound("no active mandate of yours with this id");

    internal static MandateResponse View(MandateRow row, MandateBook book, IReadOnlyList<MandatePaymentRecord>? payments)
    {
        var m = row.Mandate;
        var status = m.RevokedAt is not null ? "revoked"
            : row.ApprovalState is ApprovalState.Approved or ApprovalState.Redeemed
                ? (m.ExpiresAt <= book.Now ? "expired" : "active")
            : row.ApprovalState == ApprovalState.Pending ? "pending"
            : "refused";
        return new MandateResponse(m.Id, status, m.ClientId, m.Currency, m.PerPayment, m.Total, m.Period,
            m.Payees is null ? null : JsonSerializer.Deserialize(m.Payees, MandateListJson.Default.IReadOnlyListString), WireTime.Of(m.ExpiresAt)!,
            book.SpentInWindow(m), book.Remaining(m), MinorUnits.Format(m.Spent, m.Currency), m.Payments, WireTime.Of(m.CreatedAt)!, WireTime.Of(m.RevokedAt),
            m.ApprovalId, payments?.Select(p => new MandatePayment(p.ApprovalId, p.Amount, p.Payee, p.Remaining, WireTime.Of(p.CreatedAt)!)).ToList());
    }

    /// <summary>The one mandate entry the request's limits make, as asked; <see cref="MandateBook.ParseRequest"/> checks and rewrites it.</summary>
    private static string Details(MandateCreateRequest b)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString("type", MandateDetails.MandateType);
            if (b.Currency is not null)
            {
                w.WriteString(MandateDetails.Currency, b.Currency);
            }
            void Raw(string name, JsonElement? value)
            {
                if (value is { } v)
                {
                    w.WritePropertyName(name);
                    v.WriteTo(w);
                }
            }
            Raw(MandateDetails.PerPayment, b.PerPayment);
            Raw(MandateDetails.Total, b.Total);
            if (b.Period is not null)
            {
                w.WriteString(MandateDetails.Period, b.Period);
            }
            Raw(MandateDetails.Payees, b.Payees);
            if (b.ExpiresAt is not null)
            {
                w.WriteString(MandateDetails.ExpiresAt, b.ExpiresAt);
            }
            w.WriteEndObject();
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Text(JsonElement? amount) => amount switch
    {
        { ValueKind: JsonValueKind.String } s => s.GetString()!,
        { ValueKind: JsonValueKind.Number } n => n.GetRawText(),
        _ => "?",
    };
}
