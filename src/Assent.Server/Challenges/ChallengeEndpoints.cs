using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Assent.Protocol;
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

namespace Assent.Server.Challenges;

/// <summary>
/// <c>/v1/challenges</c> (docs/challenges.md §2): a backend with an API key asks a user to approve an action; the
/// challenge is an approval request like any other, so the device signs the same payload and the attestation is the
/// same EdDSA token with its evidence. Consuming it is the request's one redemption.
/// </summary>
internal static partial class ChallengeEndpoints
{
    public const string Path = "/v1/challenges";

    /// <summary>Bytes of the serialized <c>metadata</c> object at most.</summary>
    public const int MaxMetadataBytes = 4096;

    /// <summary>RFC 9110-token-ish, as the IETF Idempotency-Key draft suggests: printable ASCII, bounded.</summary>
    public const int MaxIdempotencyKeyLength = 255;

    private const string IdempotencyKeyHeader = "Idempotency-Key";

    [GeneratedRegex("^[a-z0-9._:-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex ActionPattern();

    public static IEndpointRouteBuilder MapChallenges(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Challenges").DisableAntiforgery().RequireAuthorization(AssentSchemes.ApiKey);
        group.MapPost("", CreateAsync).WithSummary("Ask a user to approve an action (API key with challenges:write). Honours Idempotency-Key")
            .Accepts<ChallengeCreateRequest>("application/json").Produces<ChallengeResponse>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status422UnprocessableEntity).ProducesProblem(StatusCodes.Status429TooManyRequests);
        group.MapGet("/{id}", GetAsync).WithSummary("A challenge, with its attestation once approved (challenges:read). Honours Prefer: wait")
            .Produces<ChallengeResponse>().ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id}/consume", ConsumeAsync).WithSummary("Mark an approved challenge used, exactly once; a second consume is 409 (challenges:write)")
            .Produces<ChallengeResponse>().ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{id}/cancel", CancelAsync).WithSummary("Withdraw a pending challenge (challenges:write)")
            .Produces<ChallengeResponse>().ProducesProblem(StatusCodes.Status409Conflict);
        group.ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        return app;
    }

    internal static async Task<IResult> CreateAsync(HttpContext http, ApiCaller caller, IdentityDirectory directory, IChallengeStore challenges,
        IApprovalStore approvals, ApprovalService service, TokenIssuer tokens, MandateBook mandates, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.ChallengesWrite) is { } refused)
        {
            return refused;
        }
        if (!http.Request.HasJsonContentType())
        {
            return Problem.UnsupportedMediaType("send the body as application/json");
        }
        byte[] body;
        try
        {
            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer, ct);
            body = buffer.ToArray();
        }
        catch (BadHttpRequestException e)
        {
            return Problem.Make(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Payload too large" : "Bad request",
                $"the request body could not be read: {e.Message}");
        }
        var idempotencyKey = http.Request.Headers[IdempotencyKeyHeader].ToString();
        if (idempotencyKey.Length > MaxIdempotencyKeyLength || idempotencyKey.Any(c => c is < '!' or > '~'))
        {
            return Problem.BadRequest($"{IdempotencyKeyHeader} must be 1 to {MaxIdempotencyKeyLength} printable ASCII characters, e.g. a UUID");
        }
        var requestHash = SHA256.HashData(body);
        if (idempotencyKey.Length > 0 && await ReplayAsync(http, caller, idempotencyKey, requestHash, challenges, approvals, tokens, mandates, time, ct) is { } replayed)
        {
            return replayed;
        }
        ChallengeCreateRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, V1Json.Default.ChallengeCreateRequest);
        }
        catch (JsonException e)
        {
            return Problem.BadRequest($"the body is not valid JSON for a challenge: {e.Message}");
        }
        if (request is null)
        {
            return Problem.BadRequest("the body must be a JSON object");
        }
        var (user, problem) = await ValidateAsync(request, caller, directory, ct);
        if (problem is not null)
        {
            return problem;
        }
        var (quorum, badQuorum) = await QuorumAsync(request.Quorum, caller, directory, ct);
        if (badQuorum is not null)
        {
            return badQuorum;
        }
        if (request.Mandate is { ValueKind: not JsonValueKind.Null } && (request.Amount is not null || request.Currency is not null || request.Payee is not null ||
                                                                       quorum is not null))
        {
            return Problem.BadRequest("a challenge asks for a mandate alone: mandate takes no amount, currency, payee or quorum beside it");
        }
        if (request.Payee is { } payee && (request.Amount is null || payee.Trim().Length == 0 || payee.Length > MandateBook.MaxPayeeLength ||
                                           Protocol.Approvals.DisplayText.Problem("payee", payee) is not null))
        {
            return Problem.BadRequest(Protocol.Approvals.DisplayText.Problem("payee", payee) ??
                                      $"payee names who an amount goes to: 1 to {MandateBook.MaxPayeeLength} characters, with an amount");
        }
        string? amount = null;
        if (request.Amount is { } rawAmount)
        {
            (amount, var bad) = Money.Parse(rawAmount, request.Currency);
            if (bad is not null)
            {
                return Problem.BadRequest(bad);
            }
        }
        else if (request.Currency is not null)
        {
            return Problem.BadRequest("currency is given without an amount");
        }
        var expiresIn = request.ExpiresIn is { } seconds ? TimeSpan.FromSeconds(seconds) : options.DefaultRequestExpiry;
        var requiresHuman = request.RequiresHuman ?? true;
        var metadata = request.Metadata is { } m ? m.GetRawText() : null;
        string details;
        if (request.Mandate is { ValueKind: not JsonValueKind.Null } asked)
        {
            if (MandateDetails(asked) is not { } mandateDetails)
            {
                return Problem.BadRequest("mandate must be an object {currency, per_payment, total, period, payees?, expires_at} (docs/policies.md §6)");
            }
            details = mandateDetails;
        }
        else
        {
            details = Details(request.Action!, amount, request.Currency, request.Payee);
        }
        ChallengeCreation outcome = ChallengeCreation.Created;
        ChallengeRecord? stored = null;
        ChallengeRecord Row(ApprovalRecord a) => stored = new ChallengeRecord(a.Id, caller.Key.Id, caller.Owner.Id, request.Action!, amount, request.Currency,
            metadata, requiresHuman, idempotencyKey.Length > 0 ? idempotencyKey : null, idempotencyKey.Length > 0 ? requestHash : null);
        // docs/policies.md §6: a challenge asking an amount inside an active mandate of this API key and user is approved at once,
        // its budget spent and this row stored in the approval's own transaction; requiresHuman wants a mandate a passkey signed.
        var coverable = amount is not null && quorum is null && Common.MinorUnits.Of(amount, request.Currency!) is { } minor and > 0
            ? new ApprovalService.CoverablePayment(new PaymentAsk(amount, minor, request.Currency!, request.Payee), ChallengeStore.Alongside(Row), requiresHuman)
            : null;
        ApprovalService.Created? created;
        try
        {
            created = await service.CreateChallengeAsync(caller.Key.Id, caller.Key.Name, user!, ChallengeScope, request.Message, details, expiresIn, quorum,
                coverable, async (a, _, audit, c) =>
                {
                    outcome = await challenges.TryCreateAsync(a, Row(a), options.Limits.MaxPendingPerAgentPerUser, audit, c);
                    return outcome == ChallengeCreation.Created;
                }, ct);
        }
        catch (PolicyDeniedException denied)
        {
            return Problem.Forbidden($"policy {denied.Policy.Label} denies this challenge; nothing was created (docs/policies.md §1)");
        }
        catch (MandateProblemException bad)
        {
            return Problem.BadRequest("mandate: " + bad.Message);
        }
        catch (System.Data.Common.DbException) when (idempotencyKey.Length > 0)
        {
            // Two requests with one key at once on PostgreSQL: the unique index let one in; answer as its replay.
            if (await challenges.FindByIdempotencyKeyAsync(caller.Key.Id, idempotencyKey, ct) is null)
            {
                throw;
            }
            created = null;
            outcome = ChallengeCreation.Duplicate;
        }
        switch (outcome)
        {
            case ChallengeCreation.Duplicate:
                return (await ReplayAsync(http, caller, idempotencyKey, requestHash, challenges, approvals, tokens, mandates, time, ct))!;
            case ChallengeCreation.OverCap:
                return Problem.TooManyRequests(
                    $"this API key already has {options.Limits.MaxPendingPerAgentPerUser} challenges pending for this user; wait for one to be decided or expire",
                    TimeSpan.FromSeconds(5));
        }
        // Answered from what was just stored: a new challenge has no decision to read back.
        var view = new ChallengeView(stored!, created!.Approval);
        http.Response.Headers.Location = $"{Path}/{view.Challenge.Id}";
        return TypedResults.Json(await ResponseAsync(view, approvals, tokens, mandates, time, ct), V1Json.Default.ChallengeResponse, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>The challenge an Idempotency-Key already made, or 422 when it came with another body; null when the key is new.</summary>
    private static async Task<IResult?> ReplayAsync(HttpContext http, ApiCaller caller, string idempotencyKey, byte[] requestHash, IChallengeStore challenges,
        IApprovalStore approvals, TokenIssuer tokens, MandateBook mandates, TimeProvider time, CancellationToken ct)
    {
        if (await challenges.FindByIdempotencyKeyAsync(caller.Key.Id, idempotencyKey, ct) is not { } earlier)
        {
            return null;
        }
        if (!CryptographicOperations.FixedTimeEquals(earlier.Challenge.RequestHash ?? [], requestHash))
        {
            return Problem.Make(StatusCodes.Status422UnprocessableEntity, "Idempotency key reused",
                $"this {IdempotencyKeyHeader} was used for challenge {earlier.Challenge.Id} with a different body; use a new key for a new challenge");
        }
        http.Response.Headers.Location = $"{Path}/{earlier.Challenge.Id}";
        http.Response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Json(await ResponseAsync(earlier, approvals, tokens, mandates, time, ct), V1Json.Default.ChallengeResponse, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<(UserRecord? User, IResult? Problem)> ValidateAsync(ChallengeCreateRequest r, ApiCaller caller, IdentityDirectory directory,
        CancellationToken ct)
    {
        if (r.Action is null || !ActionPattern().IsMatch(r.Action))
        {
            return (null, Problem.BadRequest("action is required: 1 to 64 of a-z 0-9 . _ : - (e.g. payment.send)"));
        }
        if (string.IsNullOrEmpty(r.UserId))
        {
            return (null, Problem.BadRequest("userId is required: the user's id (usr_…), handle or DID"));
        }
        if (r.ExpiresIn is { } e && (e < 10 || e > 3600))
        {
            return (null, Problem.BadRequest("expiresIn must be between 10 and 3600 seconds"));
        }
        if (r.Message is not null && ApprovalText.BindingMessageProblem(r.Message) is { } badMessage)
        {
            return (null, Problem.BadRequest("message: " + badMessage));
        }
        if (r.Metadata is { } m)
        {
            if (m.ValueKind != JsonValueKind.Object)
            {
                return (null, Problem.BadRequest("metadata must be a JSON object"));
            }
            if (System.Text.Encoding.UTF8.GetByteCount(m.GetRawText()) > MaxMetadataBytes)
            {
                return (null, Problem.BadRequest($"metadata is larger than {MaxMetadataBytes} bytes"));
            }
        }
        var user = r.UserId.StartsWith("usr_", StringComparison.Ordinal) && r.UserId.Length <= 64
            ? await directory.FindUserAsync(r.UserId, ct)
            : await directory.FindByHintAsync(r.UserId, ct);
        if (user is null)
        {
            return (null, Problem.BadRequest($"no user '{Shorten(r.UserId)}' here: give a user id (usr_…), handle or DID"));
        }
        // docs/challenges.md §1: a key asks its owner; an administrator's key (an operator's backend) may ask anyone.
        if (user.Id != caller.Owner.Id && !caller.Owner.IsAdmin)
        {
            return (null, Problem.Forbidden($"an API key of {caller.Owner.Handle} may challenge {caller.Owner.Handle} only; an administrator's key may challenge any user"));
        }
        return (user, null);
    }

    /// <summary>
    /// A challenge's <c>quorum</c> (docs/challenges.md §2.1): <c>{required, approvers}</c>, approvers named by id, handle or
    /// DID, each a user of this server, distinct users counted once, and a quorum that can be reached (1 ≤ M ≤ N).
    /// </summary>
    private static async Task<(ApprovalService.RequestedQuorum? Quorum, IResult? Problem)> QuorumAsync(JsonElement? raw, ApiCaller caller,
        IdentityDirectory directory, CancellationToken ct)
    {
        if (raw is not { } element || element.ValueKind == JsonValueKind.Null)
        {
            return (null, null);
        }
        ChallengeQuorum? q;
        try
        {
            q = element.ValueKind == JsonValueKind.Object ? element.Deserialize(V1Json.Default.ChallengeQuorum) : null;
        }
        catch (JsonException)
        {
            q = null;
        }
        if (q?.Approvers is not { Count: > 0 } named)
        {
            return (null, Problem.BadRequest("quorum must be an object {\"required\": M, \"approvers\": [users]}: M of the users named by id, handle or DID"));
        }
        if (named.Count > PolicyBook.MaxApprovers)
        {
            return (null, Problem.BadRequest($"quorum names at most {PolicyBook.MaxApprovers} approvers"));
        }
        var ids = new List<string>();
        foreach (var who in named)
        {
            var approver = who is null ? null : who.StartsWith("usr_", StringComparison.Ordinal) && who.Length <= 64
                ? await directory.FindUserAsync(who, ct)
                : await directory.FindByHintAsync(who, ct);
            if (approver is null)
            {
                return (null, Problem.BadRequest($"quorum: no user '{Shorten(who ?? "null")}' here: give user ids (usr_…), handles or DIDs"));
            }
            if (!ids.Contains(approver.Id))
            {
                ids.Add(approver.Id);
            }
        }
        // docs/challenges.md §1: only an administrator's key may ask users other than its owner.
        if (!caller.Owner.IsAdmin && ids.Any(id => id != caller.Owner.Id))
        {
            return (null, Problem.Forbidden($"an API key of {caller.Owner.Handle} may name {caller.Owner.Handle} only; an administrator's key may name any users"));
        }
        if (ids.Count < 2)
        {
            // One approver is what userId already says; a quorum of one other user would be that user's challenge.
            return (null, Problem.BadRequest("quorum names at least two distinct approvers; to ask one user, give only userId"));
        }
        var required = q.Required ?? ids.Count;
        if (required < 1 || required > ids.Count)
        {
            return (null, Problem.BadRequest($"quorum.required {required} can never be reached by {ids.Count} distinct approvers: it must be between 1 and {ids.Count}"));
        }
        return (new ApprovalService.RequestedQuorum(required, ids), null);
    }

    internal static async Task<IResult> GetAsync(string id, HttpContext http, ApiCaller caller, IChallengeStore challenges, IApprovalStore approvals,
        ApprovalHub hub, TokenIssuer tokens, MandateBook mandates, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.ChallengesRead) is { } refused && caller.Lacks(ApiScopes.ChallengesWrite) is not null)
        {
            return refused;
        }
        var version = hub.Version;
        if (await FindOwnAsync(id, caller, challenges, ct) is not { } view)
        {
            return NotFound(id);
        }
        if (!ReferenceEquals(await PreferWait.HoldIfAskedAsync(http, view.Approval, version, hub, approvals, options, time, ct), view.Approval))
        {
            // Something happened to it while held: read the challenge again with its new state.
            view = (await challenges.FindAsync(id, ct))!;
        }
        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(await ResponseAsync(view, approvals, tokens, mandates, time, ct), V1Json.Default.ChallengeResponse);
    }

    internal static async Task<IResult> ConsumeAsync(string id, ApiCaller caller, IChallengeStore challenges, IApprovalStore approvals, TokenIssuer tokens,
        MandateBook mandates, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.ChallengesWrite) is { } refused)
        {
            return refused;
        }
        if (await FindOwnAsync(id, caller, challenges, ct) is not { } view)
        {
            return NotFound(id);
        }
        var redeemed = await approvals.TryRedeemAsync(id, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.ApprovalRedeemed, view.Approval.UserId, caller.Key.Id, id), ct);
        if (redeemed is null)
        {
            var current = (await challenges.FindAsync(id, ct))!;
            var state = Status(current.Approval, time.GetUtcNow().ToUnixTimeMilliseconds());
            return Problem.Conflict(state == Consumed
                ? $"challenge {id} was already consumed; a challenge is single-use"
                : $"challenge {id} is {state}: only an approved challenge can be consumed");
        }
        return TypedResults.Json(await ResponseAsync(view with { Approval = redeemed.Approval }, approvals, tokens, mandates, time, ct), V1Json.Default.ChallengeResponse);
    }

    internal static async Task<IResult> CancelAsync(string id, ApiCaller caller, IChallengeStore challenges, IApprovalStore approvals, ApprovalHub hub,
        TokenIssuer tokens, MandateBook mandates, TimeProvider time, CancellationToken ct)
    {
        if (caller.Lacks(ApiScopes.ChallengesWrite) is { } refused)
        {
            return refused;
        }
        if (await FindOwnAsync(id, caller, challenges, ct) is not { } view)
        {
            return NotFound(id);
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // A quorum's approvers hear the cancellation too, here and on the other nodes (docs/policies.md §3).
        var approval = await approvals.WithApproversAsync(view.Approval, ct);
        if (!await approvals.TryCancelAsync(approval, now, new AuditEvent(AuditTypes.ApprovalCancelled, approval.UserId, caller.Key.Id, id), ct))
        {
            var current = (await challenges.FindAsync(id, ct))!;
            return Problem.Conflict($"challenge {id} is {Status(current.Approval, now)}: only a pending challenge can be cancelled");
        }
        // The approver's screen and anyone holding a Prefer: wait learn of it at once.
        hub.Settled(approval, StateNames.Cancelled);
        view = (await challenges.FindAsync(id, ct))!;
        return TypedResults.Json(await ResponseAsync(view, approvals, tokens, mandates, time, ct), V1Json.Default.ChallengeResponse);
    }

    /// <summary>Scope of the request a challenge raises, and of its attestation token.</summary>
    public const string ChallengeScope = "challenge";

    private const string Consumed = "consumed";

    /// <summary>A challenge of the caller's owner; another owner's is not found, so ids reveal nothing.</summary>
    private static async Task<ChallengeView?> FindOwnAsync(string id, ApiCaller caller, IChallengeStore challenges, CancellationToken ct) =>
        id.Length <= 64 && id.StartsWith("chl_", StringComparison.Ordinal) && await challenges.FindAsync(id, ct) is { } view &&
        view.Challenge.OwnerUserId == caller.Owner.Id
            ? view
            : null;

    private static IResult NotFound(string id) => Problem.NotFound($"no challenge '{Shorten(id)}' of this API key's owner");

    private static string Status(ApprovalRecord a, long now) => a.State switch
    {
        ApprovalState.Pending when a.ExpiresAt <= now => StateNames.Expired,
        ApprovalState.Redeemed => Consumed,
        var s => StateNames.Of(s),
    };

    /// <summary>The challenge as the API shows it; once approved, with the token of docs/tokens.md §3 over the approving decision.</summary>
    internal static async Task<ChallengeResponse> ResponseAsync(ChallengeView view, IApprovalStore approvals, TokenIssuer tokens, MandateBook mandates, TimeProvider time,
        CancellationToken ct)
    {
        var (c, a) = view;
        ChallengeAttestation? attestation = null;
        if (a.State is ApprovalState.Approved or ApprovalState.Redeemed)
        {
            var approving = (await approvals.ListDecisionsAsync(a.Id, ct)).Where(d => d.Decision == ApprovalState.Approved).ToList();
            var decided = new DecidedApproval(a, approving);
            // A challenge a mandate approved: amr ["mandate"], the mandate claim, the device's signature over the mandate (docs/policies.md §6).
            var token = tokens.ForApproval(decided, a.Id, includeIdToken: false, mandate: await mandates.GrantOfAsync(decided, ct)).AccessToken;
            using var evidence = JsonDocument.Parse(approving[0].Evidence);
            attestation = new ChallengeAttestation(token, evidence.RootElement.GetProperty("device").GetString()!, evidence.RootElement.GetProperty("kind").GetString()!);
        }
        using var metadata = c.Metadata is null ? null : JsonDocument.Parse(c.Metadata);
        return new ChallengeResponse(c.Id, Status(a, time.GetUtcNow().ToUnixTimeMilliseconds()), c.Action, a.UserId, c.RequiresHuman, c.Amount, c.Currency,
            a.BindingMessage, metadata?.RootElement.Clone(), WireTime.Of(a.CreatedAt)!, WireTime.Of(a.ExpiresAt)!,
            a.State is ApprovalState.Pending ? null : WireTime.Of(a.DecidedAt), WireTime.Of(a.RedeemedAt), attestation);
    }

    /// <summary>
    /// A mandate asked through a challenge: the one <c>mandate</c> entry with the fields as given, which the approvals core
    /// then checks and rewrites canonically (docs/policies.md §6); null when it is no object or names its own type.
    /// </summary>
    private static string? MandateDetails(JsonElement mandate)
    {
        if (mandate.ValueKind != JsonValueKind.Object || mandate.TryGetProperty(AuthorizationDetailFields.Type, out _))
        {
            return null;
        }
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString(AuthorizationDetailFields.Type, Protocol.Approvals.MandateDetails.MandateType);
            foreach (var p in mandate.EnumerateObject())
            {
                p.WriteTo(w);
            }
            w.WriteEndObject();
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// RFC 9396 entry the device shows and signs: <c>[{"type":"challenge","action":…,"amount":…,"currency":…,"payee":…}]</c>
    /// (docs/challenges.md §2.1).
    /// </summary>
    private static string Details(string action, string? amount, string? currency, string? payee)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString(AuthorizationDetailFields.Type, ApprovalKinds.Challenge);
            w.WriteString("action", action);
            if (amount is not null)
            {
                w.WriteString("amount", amount);
                w.WriteString("currency", currency);
                if (payee is not null)
                {
                    w.WriteString("payee", payee);
                }
            }
            w.WriteEndObject();
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
