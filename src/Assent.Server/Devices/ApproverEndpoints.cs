using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Messages;
using Assent.Protocol.WebAuthn;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Assent.Server.Devices;

/// <summary>
/// What an approver's device does with requests (docs/http-api.md §10, §12.4): list and stream the pending ones, read one,
/// read the history, decide. The same handlers serve the device API (signed requests) and the web app (passkey
/// session); a decision needs neither, since it carries its own signature over the exact payload.
/// </summary>
internal static class ApproverEndpoints
{
    public static IEndpointRouteBuilder MapApprover(this IEndpointRouteBuilder app)
    {
        var device = app.MapGroup(EndpointPaths.Authenticator).WithTags("Authenticator").DisableAntiforgery();
        var web = app.MapGroup(EndpointPaths.WebAuthn).WithTags("Passkeys").DisableAntiforgery();
        Map(device.MapGroup("").RequireAuthorization(AssentSchemes.Device), "signed request");
        Map(web.MapGroup("").RequireAuthorization(AssentSchemes.WebSession), "session cookie");
        foreach (var group in new[] { device, web })
        {
            group.MapPost("/approvals/{id}/decision", DecideAsync)
                .WithSummary("Approve or deny: an Ed25519 signature over decision ‖ 0x00 ‖ payload, or a passkey assertion over its SHA-256");
        }
        return app;
    }

    private static void Map(RouteGroupBuilder group, string how)
    {
        group.MapGet("/approvals", PendingAsync).WithSummary($"Pending approval requests of the user ({how})");
        group.MapGet("/approvals/{id}", ApprovalAsync).WithSummary($"One approval request of the user ({how})");
        group.MapGet("/history", HistoryAsync).WithSummary($"Decided, expired and redeemed requests, newest first ({how})");
        group.MapGet("/stream", StreamAsync).WithSummary($"Server-Sent Events: new and settled requests ({how})");
    }

    internal static async Task<IResult> PendingAsync(Approver approver, IApprovalStore approvals, ApprovalViews views, TimeProvider time, CancellationToken ct)
    {
        var pending = await approvals.ListPendingAsync(approver.User.Id, time.GetUtcNow().ToUnixTimeMilliseconds(), ct);
        return TypedResults.Json(new PendingList(await views.ViewAllAsync(pending, ct)), ProtocolJson.Default.PendingList);
    }

    internal static async Task<IResult> HistoryAsync(Approver approver, IApprovalStore approvals, ApprovalViews views, CancellationToken ct)
    {
        var history = await approvals.ListHistoryAsync(approver.User.Id, 50, ct);
        return TypedResults.Json(new PendingList(await views.ViewAllAsync(history, ct)), ProtocolJson.Default.PendingList);
    }

    internal static async Task<IResult> ApprovalAsync(string id, Approver approver, IApprovalStore approvals, ApprovalViews views, CancellationToken ct)
    {
        var approval = id.Length <= 64 ? await approvals.FindAsync(id, ct) : null;
        // Its own user's, or one a quorum lets this user decide (docs/policies.md §3).
        if (approval is null ||
            (approval.UserId != approver.User.Id && !(await approvals.ListEligibleAsync(approval.Id, ct)).Contains(approver.User.Id)))
        {
            return Problem.NotFound("no such approval request for this user");
        }
        return TypedResults.Json(await views.ViewAsync(approval, ct), ProtocolJson.Default.PendingApproval);
    }

    internal static async Task<IResult> DecideAsync(string id, HttpRequest request, ApprovalService approvals, AssentOptions options, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, ProtocolJson.Default.DecisionRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (string.IsNullOrEmpty(body.Decision))
        {
            return Problem.BadRequest("decision is required: 'approve' or 'deny'");
        }
        byte[]? vaultRelease = null;
        if (body.VaultRelease is not null && !Vault.VaultReleases.TryParseWrapped(body.VaultRelease, out vaultRelease))
        {
            return Problem.BadRequest("vault_release must be the item key wrapped to the agent's key: base64url, 93 bytes, first byte 0x01 (docs/vault.md §2.2)");
        }
        DecisionProof proof;
        if (body.AuthenticatorData is not null || body.ClientDataJson is not null || body.CredentialId is not null)
        {
            // A passkey's decision: a WebAuthn assertion over the same signing input (docs/concepts.md §5.1).
            byte[]? credentialId = null;
            if ((body.DeviceId is null && body.CredentialId is null) ||
                (body.CredentialId is not null && (!Base64Url.TryDecode(body.CredentialId, out credentialId) ||
                                                   credentialId.Length is 0 or > WebAuthnVerifier.MaxCredentialIdLength)) ||
                !Base64Url.TryDecode(body.Signature ?? "", out var assertionSignature) || assertionSignature.Length == 0 ||
                !Base64Url.TryDecode(body.AuthenticatorData ?? "", out var authenticatorData) || authenticatorData.Length == 0 ||
                !Base64Url.TryDecode(body.ClientDataJson ?? "", out var clientDataJson) || clientDataJson.Length == 0)
            {
                return Problem.BadRequest("a passkey decision needs device_id or credential_id, and signature, authenticator_data and client_data_json, all base64url");
            }
            // The assertion becomes the access token's evidence: one too large for any token verifiers accept is
            // refused before it decides anything (AccessTokenBudget).
            if (authenticatorData.Length + clientDataJson.Length + assertionSignature.Length is var bytes && bytes > options.MaxWebAuthnEvidenceBytes)
            {
                return Problem.BadRequest($"the passkey assertion is {bytes} bytes (authenticator data, client data and signature); this server keeps at most " +
                                          $"{options.MaxWebAuthnEvidenceBytes} as a token's evidence (Assent:MaxWebAuthnEvidenceBytes)");
            }
            proof = new AssertionProof(body.DeviceId, credentialId, body.Decision, authenticatorData, clientDataJson, assertionSignature);
        }
        else
        {
            if (string.IsNullOrEmpty(body.DeviceId) || string.IsNullOrEmpty(body.Signature))
            {
                return Problem.BadRequest("device_id, decision and signature are required");
            }
            if (!Base64Url.TryDecode(body.Signature, out var signature) || signature.Length != Ed25519.SignatureSize)
            {
                return Problem.Unauthorized("signature must be a base64url Ed25519 signature (64 bytes) over decision ‖ 0x00 ‖ payload");
            }
            proof = new Ed25519Proof(body.DeviceId, body.Decision, signature);
        }
        return Answer(id, await approvals.DecideAsync(id, proof, vaultRelease, ct));
    }

    internal static IResult Answer(string id, DecideOutcome outcome) => outcome.Status switch
    {
        DecideStatus.Decided => TypedResults.Ok(new DecisionResponse(id, StateNames.Of(outcome.State!.Value))),
        DecideStatus.NotFound => Problem.NotFound("no such approval request"),
        DecideStatus.UnknownDevice => Problem.Unauthorized("unknown device"),
        DecideStatus.RevokedDevice => Problem.Forbidden("this device has been revoked and can decide nothing"),
        DecideStatus.WrongUser => Problem.Forbidden("this request belongs to another user"),
        DecideStatus.InvalidSignature => Problem.Unauthorized("the signature does not verify against this device's key for this request and decision"),
        DecideStatus.AlreadyDecided => Problem.Conflict($"the request was already decided ({StateNames.Of(outcome.State ?? ApprovalState.Approved)})"),
        DecideStatus.Expired => Problem.Gone("the request has expired"),
        DecideStatus.AssertionRefused => Problem.Unauthorized("the passkey assertion was refused: " + outcome.Detail),
        DecideStatus.UserVerificationRequired => Problem.Forbidden("this challenge requires user verification: decide it with a passkey (the web app), not a software key"),
        _ => Problem.BadRequest(outcome.Detail ?? "malformed decision"),
    };

    /// <summary>
    /// Server-Sent Events: the pending list first, then new and settled requests as they happen, with a heartbeat,
    /// until the client leaves or a newer stream of the same device takes its place (docs/http-api.md §11).
    /// </summary>
    internal static async Task StreamAsync(HttpContext http, Approver approver, ApprovalHub hub, IApprovalStore approvals, ApprovalViews views,
        RefusalAudit refusals, AssentOptions options, TimeProvider time, IHostApplicationLifetime lifetime, CancellationToken ct)
    {
        // A stream ends when the node begins to stop: an open one would otherwise hold the process for the whole
        // shutdown timeout while new connections are refused, and its client would not reconnect to a live node.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct, lifetime.ApplicationStopping);
        try
        {
            await StreamUntilAsync(http, approver, hub, approvals, views, refusals, options, time, stopping.Token);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            // Ending the response (not resetting it) lets EventSource reconnect at once (docs/http-api.md §11).
            await http.Response.WriteAsync(": server stopping\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
        }
    }

    private static async Task StreamUntilAsync(HttpContext http, Approver approver, ApprovalHub hub, IApprovalStore approvals, ApprovalViews views,
        RefusalAudit refusals, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var userId = approver.User.Id;
        // Subscribe before listing, so nothing created in between is missed (a duplicate is harmless: ids are stable).
        using var subscription = hub.Subscribe(userId, approver.DeviceId, options.Limits.StreamsPerDevice);
        if (subscription.EndedOthers > 0)
        {
            await refusals.RefusedAsync(LimitNames.Streams, $"{LimitNames.Streams}:{approver.DeviceId}", userId, ApprovalService.RefusalAuditWindow,
                new Dictionary<string, string> { ["max"] = options.Limits.StreamsPerDevice.ToString(System.Globalization.CultureInfo.InvariantCulture) }, ct);
        }
        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        // The requests this stream has shown as pending and not yet as settled: after a gap it sends what changed.
        var shown = new HashSet<string>(StringComparer.Ordinal);
        await SendPendingAsync(response, shown, userId, approvals, views, time, ct);
        await response.WriteAsync(": ready\n\n", ct);
        await response.Body.FlushAsync(ct);
        using var heartbeat = new PeriodicTimer(TimeSpan.FromSeconds(15), time);
        var nextBeat = heartbeat.WaitForNextTickAsync(ct).AsTask();
        while (!ct.IsCancellationRequested)
        {
            var nextEvent = subscription.Reader.WaitToReadAsync(ct).AsTask();
            var done = await Task.WhenAny(nextEvent, nextBeat);
            if (done == nextBeat)
            {
                await response.WriteAsync(": keep-alive\n\n", ct);
                // A resync that could not read before (storage was down) is retried with the heartbeat at the latest.
                await ResyncIfOwedAsync();
                await response.Body.FlushAsync(ct);
                nextBeat = heartbeat.WaitForNextTickAsync(ct).AsTask();
                continue;
            }
            if (!await nextEvent)
            {
                if (subscription.Superseded)
                {
                    // A comment: every client ignores it, and a person reading the stream learns why it ended.
                    await response.WriteAsync(": superseded by a newer stream of this device\n\n", ct);
                }
                break;
            }
            while (subscription.Reader.TryRead(out var e))
            {
                if (ReferenceEquals(e, StreamEvent.Resync))
                {
                    continue;
                }
                if (e.Approval is null)
                {
                    shown.Remove(e.ApprovalId);
                    await WriteEventAsync(response, StreamEvents.Settled, e.ApprovalId,
                        JsonSerializer.Serialize(new DecisionResponse(e.ApprovalId, e.Type), ProtocolJson.Default.DecisionResponse), ct);
                }
                else
                {
                    PendingApproval view;
                    try
                    {
                        view = await views.ViewAsync(e.Approval, ct);
                    }
                    catch (Exception fault) when (StorageFaults.IsUnavailable(fault))
                    {
                        // The view needs a read (the agent's name) and storage is down: the stream stays open and the
                        // request, not yet shown, goes out with the resync owed for when storage answers again.
                        subscription.OweResyncLater();
                        continue;
                    }
                    shown.Add(e.ApprovalId);
                    await WriteEventAsync(response, StreamEvents.Approval, e.ApprovalId,
                        JsonSerializer.Serialize(view, ProtocolJson.Default.PendingApproval), ct);
                }
            }
            await ResyncIfOwedAsync();
            await response.Body.FlushAsync(ct);
        }

        async Task ResyncIfOwedAsync()
        {
            if (subscription.TakeResync() && !await ResyncAsync(response, shown, userId, approvals, views, time, ct))
            {
                // The database is unreachable too: the next wake (the notification channel back, a heartbeat) tries again.
                subscription.OweResyncLater();
            }
        }
    }

    /// <summary>One <c>approval</c> event per pending request the stream has not shown yet, oldest first.</summary>
    private static async Task SendPendingAsync(HttpResponse response, HashSet<string> shown, string userId, IApprovalStore approvals, ApprovalViews views,
        TimeProvider time, CancellationToken ct)
    {
        foreach (var a in await approvals.ListPendingAsync(userId, time.GetUtcNow().ToUnixTimeMilliseconds(), ct))
        {
            if (shown.Add(a.Id))
            {
                await WriteEventAsync(response, StreamEvents.Approval, a.Id, JsonSerializer.Serialize(await views.ViewAsync(a, ct), ProtocolJson.Default.PendingApproval), ct);
            }
        }
    }

    /// <summary>
    /// After a gap in this node's news (docs/http-api.md §11): the requests created meanwhile as <c>approval</c> events,
    /// and those shown as pending that settled meanwhile as <c>settled</c>. False when storage cannot be read now.
    /// </summary>
    private static async Task<bool> ResyncAsync(HttpResponse response, HashSet<string> shown, string userId, IApprovalStore approvals, ApprovalViews views,
        TimeProvider time, CancellationToken ct)
    {
        IReadOnlyList<ApprovalRecord> pending;
        List<(string Id, ApprovalState State)> settled = [];
        List<PendingApproval> unseen = [];
        try
        {
            pending = await approvals.ListPendingAsync(userId, time.GetUtcNow().ToUnixTimeMilliseconds(), ct);
            foreach (var a in pending.Where(a => !shown.Contains(a.Id)))
            {
                // Rendered before anything is written: a fault here leaves the whole resync owed.
                unseen.Add(await views.ViewAsync(a, ct));
            }
            var still = pending.Select(a => a.Id).ToHashSet(StringComparer.Ordinal);
            foreach (var id in shown.Where(id => !still.Contains(id)).ToList())
            {
                // Settled, or expired without the sweep having got to it yet: either way it is no longer to be decided.
                var state = (await approvals.FindAsync(id, ct))?.State ?? ApprovalState.Expired;
                settled.Add((id, state is ApprovalState.Pending ? ApprovalState.Expired : state is ApprovalState.Redeemed ? ApprovalState.Approved : state));
            }
        }
        catch (Exception e) when (StorageFaults.IsUnavailable(e))
        {
            return false;
        }
        foreach (var (id, state) in settled)
        {
            shown.Remove(id);
            await WriteEventAsync(response, StreamEvents.Settled, id, JsonSerializer.Serialize(new DecisionResponse(id, StateNames.Of(state)), ProtocolJson.Default.DecisionResponse), ct);
        }
        foreach (var view in unseen)
        {
            shown.Add(view.Id);
            await WriteEventAsync(response, StreamEvents.Approval, view.Id, JsonSerializer.Serialize(view, ProtocolJson.Default.PendingApproval), ct);
        }
        return true;
    }

    private static async Task WriteEventAsync(HttpResponse response, string type, string id, string json, CancellationToken ct)
    {
        var sb = new StringBuilder(json.Length + 64);
        sb.Append("event: ").Append(type).Append('\n').Append("id: ").Append(id).Append('\n').Append("data: ").Append(json).Append("\n\n");
        await response.WriteAsync(sb.ToString(), ct);
    }
}
