using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Server.Approvals;
using Assent.Server.Audit;
using Assent.Server.Clients;
using Assent.Server.Hosting;
using Assent.Server.Http;
using Assent.Server.Storage;
using Assent.Server.Users;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Devices;

/// <summary>
/// The authenticator API (SPEC §2): enrol with a one-time code, then every call is signed with
/// the device key. Decisions carry their own signature over the exact payload.
/// </summary>
internal static class DeviceEndpoints
{
    public const string Prefix = "/authenticator";
    private const int MaxSignedBody = 16 * 1024;

    public static IEndpointRouteBuilder MapDevices(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Prefix).WithTags("Authenticator").DisableAntiforgery();
        group.MapPost("/enroll", EnrollAsync).WithSummary("Enrol an Ed25519 device with a one-time invite code");
        group.MapGet("/approvals", PendingAsync).WithSummary("Pending approval requests of the device's user (signed request)");
        group.MapGet("/approvals/{id}", ApprovalAsync).WithSummary("One approval request of the device's user (signed request)");
        group.MapPost("/approvals/{id}/decision", DecideAsync).WithSummary("Approve or deny with a signature over decision ‖ 0x00 ‖ payload");
        group.MapGet("/stream", StreamAsync).WithSummary("Server-Sent Events: new and settled requests (signed request)");
        group.MapGet("/devices", ListDevicesAsync).WithSummary("The user's devices (signed request)");
        group.MapPatch("/devices/{id}", RenameDeviceAsync).WithSummary("Rename a device (signed request)");
        group.MapDelete("/devices/{id}", RevokeDeviceAsync).WithSummary("Revoke a device (signed request)");
        return app;
    }

    internal static async Task<IResult> EnrollAsync(HttpRequest request, IAssentStore store, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, ServerJson.Default.EnrollRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (string.IsNullOrWhiteSpace(body.Code) || string.IsNullOrEmpty(body.PublicKey) || string.IsNullOrEmpty(body.Proof))
        {
            return Problem.BadRequest("code, public_key and proof are required");
        }
        if (!Base64Url.TryDecode(body.PublicKey, out var publicKey) || publicKey.Length != Ed25519.PublicKeySize)
        {
            return Problem.BadRequest("public_key must be a base64url Ed25519 public key (32 bytes)");
        }
        var name = string.IsNullOrWhiteSpace(body.Name) ? "device" : body.Name.Trim();
        if (name.Length > 64)
        {
            return Problem.BadRequest("name must be at most 64 characters");
        }
        // The user is shown the name when choosing a device to revoke: nothing in it may hide or reorder text.
        if (DisplayText.Problem("name", name) is { } hidden)
        {
            return Problem.BadRequest(hidden);
        }
        var code = Ids.NormalizeInviteCode(body.Code);
        if (!Base64Url.TryDecode(body.Proof, out var proof) ||
            !Ed25519.Verify(publicKey, DeviceSignatures.EnrollmentSigningInput(code, body.PublicKey), proof))
        {
            return Problem.BadRequest("proof must be the device's signature over the enrolment input (code and public key)");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var jwk = JsonSerializer.Serialize(Jwk.ForEd25519(publicKey, use: null), JwkJson.Default.Jwk);
        var deviceId = Ids.New("dev");
        var user = await store.TryEnrollAsync(Ids.Hash(code), now,
            u => new DeviceRecord(deviceId, u.Id, DeviceKinds.Ed25519, name, jwk, null, 0, now, null),
            (u, d) => new AuditEvent(AuditTypes.DeviceEnrolled, u.Id, d.Id, d.Id, new Dictionary<string, string> { ["kind"] = d.Kind, ["name"] = d.Name }),
            ct);
        if (user is null)
        {
            return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
        }
        return TypedResults.Created($"{Prefix}/devices/{deviceId}",
            new EnrollResponse(deviceId, user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle, options.IssuerString));
    }

    internal static async Task<IResult> PendingAsync(HttpRequest request, DeviceAuthenticator auth, IAssentStore store, ClientDirectory clients, TimeProvider time, CancellationToken ct)
    {
        var (device, user, error) = await auth.AuthenticateAsync(request, [], ct);
        if (error is not null)
        {
            return error;
        }
        var pending = await store.ListPendingAsync(user!.Id, time.GetUtcNow().ToUnixTimeMilliseconds(), ct);
        var views = new List<PendingApproval>(pending.Count);
        foreach (var a in pending)
        {
            views.Add(await ViewAsync(a, clients, ct));
        }
        return TypedResults.Json(new PendingList(views), ServerJson.Default.PendingList);
    }

    internal static async Task<IResult> ApprovalAsync(string id, HttpRequest request, DeviceAuthenticator auth, IAssentStore store, ClientDirectory clients, CancellationToken ct)
    {
        var (_, user, error) = await auth.AuthenticateAsync(request, [], ct);
        if (error is not null)
        {
            return error;
        }
        var approval = await store.FindApprovalAsync(id, ct);
        if (approval is null || approval.UserId != user!.Id)
        {
            return Problem.NotFound("no such approval request for this user");
        }
        return TypedResults.Json(await ViewAsync(approval, clients, ct), ServerJson.Default.PendingApproval);
    }

    internal static async Task<IResult> DecideAsync(string id, HttpRequest request, ApprovalService approvals, AssentOptions options, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, ServerJson.Default.DecisionRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (string.IsNullOrEmpty(body.DeviceId) || string.IsNullOrEmpty(body.Decision) || string.IsNullOrEmpty(body.Signature))
        {
            return Problem.BadRequest("device_id, decision and signature are required");
        }
        if (body.AuthenticatorData is not null || body.ClientDataJson is not null)
        {
            // A passkey's decision: a WebAuthn assertion over the same signing input (SPEC §1).
            if (!Base64Url.TryDecode(body.Signature, out var assertionSignature) ||
                !Base64Url.TryDecode(body.AuthenticatorData ?? "", out var authenticatorData) ||
                !Base64Url.TryDecode(body.ClientDataJson ?? "", out var clientDataJson))
            {
                return Problem.BadRequest("signature, authenticator_data and client_data_json must all be base64url");
            }
            if (EvidenceTooLarge(options, authenticatorData, clientDataJson, assertionSignature) is { } tooLarge)
            {
                return tooLarge;
            }
            return Answer(id, await approvals.DecideWebAuthnAsync(id, body.DeviceId, null, body.Decision, authenticatorData, clientDataJson, assertionSignature, ct));
        }
        if (!Base64Url.TryDecode(body.Signature, out var signature) || signature.Length != Ed25519.SignatureSize)
        {
            return Problem.Unauthorized("signature must be a base64url Ed25519 signature (64 bytes) over decision ‖ 0x00 ‖ payload");
        }
        var outcome = await approvals.DecideEd25519Async(id, body.DeviceId, body.Decision, signature, ct);
        return Answer(id, outcome);
    }

    /// <summary>
    /// A passkey's assertion becomes the access token's evidence: one too large for any token verifiers
    /// accept is refused before it decides anything (AccessTokenBudget).
    /// </summary>
    internal static IResult? EvidenceTooLarge(AssentOptions options, byte[] authenticatorData, byte[] clientDataJson, byte[] signature) =>
        authenticatorData.Length + clientDataJson.Length + signature.Length is var bytes && bytes > options.MaxWebAuthnEvidenceBytes
            ? Problem.BadRequest($"the passkey assertion is {bytes} bytes (authenticator data, client data and signature); this server keeps at most " +
                                 $"{options.MaxWebAuthnEvidenceBytes} as a token's evidence (Assent:MaxWebAuthnEvidenceBytes)")
            : null;

    internal static IResult Answer(string id, DecideOutcome outcome) => outcome.Status switch
    {
        DecideStatus.Decided => TypedResults.Ok(new DecisionResponse(id, StateName(outcome.State!.Value))),
        DecideStatus.NotFound => Problem.NotFound("no such approval request"),
        DecideStatus.UnknownDevice => Problem.Unauthorized("unknown device"),
        DecideStatus.RevokedDevice => Problem.Forbidden("this device has been revoked and can decide nothing"),
        DecideStatus.WrongUser => Problem.Forbidden("this request belongs to another user"),
        DecideStatus.InvalidSignature => Problem.Unauthorized("the signature does not verify against this device's key for this request and decision"),
        DecideStatus.AlreadyDecided => Problem.Conflict($"the request was already decided ({StateName(outcome.State ?? ApprovalState.Approved)})"),
        DecideStatus.Expired => Problem.Gone("the request has expired"),
        DecideStatus.AssertionRefused => Problem.Unauthorized("the passkey assertion was refused: " + outcome.Detail),
        _ => Problem.BadRequest(outcome.Detail ?? "malformed decision"),
    };

    internal static async Task StreamAsync(HttpContext http, DeviceAuthenticator auth, ApprovalHub hub, IAssentStore store, ClientDirectory clients, TimeProvider time, CancellationToken ct)
    {
        var (_, user, error) = await auth.AuthenticateAsync(http.Request, [], ct);
        if (error is not null)
        {
            await error.ExecuteAsync(http);
            return;
        }
        await WriteStreamAsync(http, user!.Id, hub, store, clients, time, ct);
    }

    /// <summary>The SSE body shared by the device stream and the web app's cookie-authenticated stream.</summary>
    internal static async Task WriteStreamAsync(HttpContext http, string userId, ApprovalHub hub, IAssentStore store, ClientDirectory clients, TimeProvider time, CancellationToken ct)
    {
        // Subscribe before listing, so nothing created in between is missed (a duplicate is harmless: ids are stable).
        using var subscription = hub.Subscribe(userId);
        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        foreach (var a in await store.ListPendingAsync(userId, time.GetUtcNow().ToUnixTimeMilliseconds(), ct))
        {
            await WriteEventAsync(response, "approval", a.Id, JsonSerializer.Serialize(await ViewAsync(a, clients, ct), ServerJson.Default.PendingApproval), ct);
        }
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
                await response.Body.FlushAsync(ct);
                nextBeat = heartbeat.WaitForNextTickAsync(ct).AsTask();
                continue;
            }
            if (!await nextEvent)
            {
                break;
            }
            while (subscription.Reader.TryRead(out var e))
            {
                var data = e.Approval is null
                    ? JsonSerializer.Serialize(new DecisionResponse(e.ApprovalId, e.Type), ServerJson.Default.DecisionResponse)
                    : JsonSerializer.Serialize(await ViewAsync(e.Approval, clients, ct), ServerJson.Default.PendingApproval);
                await WriteEventAsync(response, e.Approval is null ? "settled" : "approval", e.ApprovalId, data, ct);
            }
            await response.Body.FlushAsync(ct);
        }
    }

    internal static async Task<IResult> ListDevicesAsync(HttpRequest request, DeviceAuthenticator auth, IAssentStore store, AssentOptions options, CancellationToken ct)
    {
        var (_, user, error) = await auth.AuthenticateAsync(request, [], ct);
        if (error is not null)
        {
            return error;
        }
        var devices = await store.ListDevicesAsync(user!.Id, ct);
        return TypedResults.Json(new DeviceList(user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle,
            devices.Select(d => new DeviceView(d.Id, d.Kind, d.Name, d.CreatedAt, d.RevokedAt, d.Active)).ToList()), ServerJson.Default.DeviceList);
    }

    internal static async Task<IResult> RenameDeviceAsync(string id, HttpRequest request, DeviceAuthenticator auth, IAssentStore store, IdentityDirectory directory, CancellationToken ct)
    {
        var body = await ReadSignedBodyAsync(request, ct);
        if (body is null)
        {
            return Problem.Make(StatusCodes.Status413PayloadTooLarge, "Payload too large", "the body is larger than allowed");
        }
        var (device, user, error) = await auth.AuthenticateAsync(request, body, ct);
        if (error is not null)
        {
            return error;
        }
        RenameRequest? rename;
        try
        {
            rename = JsonSerializer.Deserialize(body, ServerJson.Default.RenameRequest);
        }
        catch (JsonException)
        {
            return Problem.BadRequest("the body must be JSON {\"name\": \"…\"}");
        }
        var name = rename?.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 64)
        {
            return Problem.BadRequest("name must be 1 to 64 characters");
        }
        if (DisplayText.Problem("name", name) is { } hidden)
        {
            return Problem.BadRequest(hidden);
        }
        var ok = await store.TryRenameDeviceAsync(id, user!.Id, name, new AuditEvent(AuditTypes.DeviceRenamed, user.Id, device!.Id, id,
            new Dictionary<string, string> { ["name"] = name }), ct);
        directory.ForgetDevice(id);
        return ok ? TypedResults.NoContent() : Problem.NotFound("no such active device for this user");
    }

    internal static async Task<IResult> RevokeDeviceAsync(string id, HttpRequest request, DeviceAuthenticator auth, IAssentStore store, TimeProvider time, IdentityDirectory directory, CancellationToken ct)
    {
        var (device, user, error) = await auth.AuthenticateAsync(request, [], ct);
        if (error is not null)
        {
            return error;
        }
        var ok = await store.TryRevokeDeviceAsync(id, user!.Id, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.DeviceRevoked, user.Id, device!.Id, id), ct);
        directory.ForgetDevice(id);
        return ok ? TypedResults.NoContent() : Problem.NotFound("no such active device for this user");
    }

    internal static async Task<PendingApproval> ViewAsync(ApprovalRecord a, ClientDirectory clients, CancellationToken ct)
    {
        var client = await clients.FindAsync(a.ClientId, ct);
        JsonElement? details = a.AuthorizationDetails is null ? null : JsonDocument.Parse(a.AuthorizationDetails).RootElement.Clone();
        return new PendingApproval(a.Id, a.Kind, a.ClientId, client?.Name ?? a.ClientId, a.Scope, a.BindingMessage, details,
            a.CreatedAt / 1000, a.ExpiresAt / 1000, Base64Url.Encode(a.Payload), StateName(a.State), a.Resource, a.DecidedAt / 1000);
    }

    internal static string StateName(ApprovalState state) => state switch
    {
        ApprovalState.Pending => "pending",
        ApprovalState.Approved => "approved",
        ApprovalState.Denied => "denied",
        ApprovalState.Expired => "expired",
        ApprovalState.Cancelled => "cancelled",
        _ => "redeemed",
    };

    internal static async Task<byte[]?> ReadSignedBodyAsync(HttpRequest request, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int n;
        while ((n = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > MaxSignedBody)
            {
                return null;
            }
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private static async Task WriteEventAsync(HttpResponse response, string type, string id, string json, CancellationToken ct)
    {
        var sb = new StringBuilder(json.Length + 64);
        sb.Append("event: ").Append(type).Append('\n').Append("id: ").Append(id).Append('\n').Append("data: ").Append(json).Append("\n\n");
        await response.WriteAsync(sb.ToString(), ct);
    }
}
