using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Protocol.Messages;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Devices;

/// <summary>
/// Devices (docs/http-api.md §10.1, §10.5): an Ed25519 device enrols with a one-time code; then a user's devices are listed,
/// renamed and revoked through the device API (signed requests) or the web app (passkey session) alike.
/// </summary>
internal static class DeviceEndpoints
{
    public static IEndpointRouteBuilder MapDevices(this IEndpointRouteBuilder app)
    {
        var device = app.MapGroup(EndpointPaths.Authenticator).WithTags("Authenticator").DisableAntiforgery();
        device.MapPost("/enroll", EnrollAsync).WithSummary("Enrol an Ed25519 device with a one-time invite code");
        MapManagement(device.MapGroup("").RequireAuthorization(AssentSchemes.Device), "signed request");
        MapManagement(app.MapGroup(EndpointPaths.WebAuthn).WithTags("Passkeys").DisableAntiforgery().RequireAuthorization(AssentSchemes.WebSession),
            "session cookie");
        return app;
    }

    private static void MapManagement(RouteGroupBuilder group, string how)
    {
        group.MapGet("/devices", ListAsync).WithSummary($"The user's devices ({how})");
        group.MapPatch("/devices/{id}", RenameAsync).WithSummary($"Rename a device ({how})");
        group.MapDelete("/devices/{id}", RevokeAsync).WithSummary($"Revoke a device ({how})");
    }

    internal static async Task<IResult> EnrollAsync(HttpRequest request, IDeviceStore devices, AttemptLimiter limiter, AssentOptions options, TimeProvider time,
        CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, ProtocolJson.Default.EnrollRequest, ct);
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
        // The user is shown the name when choosing a device to revoke: nothing in it may hide or reorder text.
        if (Naming.NameProblem("name", name) is { } refused)
        {
            return Problem.BadRequest(refused);
        }
        var code = Ids.NormalizeInviteCode(body.Code);
        if (!Base64Url.TryDecode(body.Proof, out var proof) ||
            !Ed25519.Verify(publicKey, DeviceSignatures.EnrollmentSigningInput(code, body.PublicKey), proof))
        {
            return Problem.BadRequest("proof must be the device's signature over the enrolment input (code and public key)");
        }
        // Wrong invite codes are limited per address (docs/deployment.md §10), shared with passkey registration.
        var policy = AttemptPolicy.ForEnrolmentCodes(options.Limits);
        var byAddress = new AttemptKey(policy.Key("address", ClientAddress.Of(request.HttpContext)), null);
        if (limiter.Refused(byAddress) is { } limited)
        {
            return Problem.TooManyRequests("too many wrong enrolment codes from here; try again later", limited.RetryAfter);
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var jwk = JsonSerializer.Serialize(Jwk.ForEd25519(publicKey, use: null), JwkJson.Default.Jwk);
        var deviceId = Ids.New("dev");
        var user = await devices.TryEnrollAsync(Ids.Hash(code), now,
            u => new DeviceRecord(deviceId, u.Id, DeviceKinds.Ed25519, name, jwk, null, 0, now, null),
            (u, d) => new AuditEvent(AuditTypes.DeviceEnrolled, u.Id, d.Id, d.Id, new Dictionary<string, string> { ["kind"] = d.Kind, ["name"] = d.Name }),
            ct);
        if (user is null)
        {
            await limiter.FailedAsync(policy, [byAddress], ct);
            return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
        }
        return TypedResults.Created($"{EndpointPaths.Authenticator}/devices/{deviceId}",
            new EnrollResponse(deviceId, user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle, options.IssuerString));
    }

    internal static async Task<IResult> ListAsync(Approver approver, IDeviceStore devices, AssentOptions options, CancellationToken ct)
    {
        var user = approver.User;
        var list = await devices.ListAsync(user.Id, ct);
        return TypedResults.Json(new DeviceList(user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle,
            list.Select(d => new DeviceView(d.Id, d.Kind, d.Name, d.CreatedAt, d.RevokedAt, d.Active)).ToList()), ProtocolJson.Default.DeviceList);
    }

    internal static async Task<IResult> RenameAsync(string id, Approver approver, HttpRequest request, IDeviceStore devices, IdentityDirectory directory,
        CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, ProtocolJson.Default.RenameRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var name = read.Value!.Name?.Trim() ?? "";
        if (Naming.NameProblem("name", name) is { } refused)
        {
            return Problem.BadRequest(refused);
        }
        // As for revoking: the device must be this user's own, checked where the caller is known and again by the store's update.
        if (!await OwnsActiveAsync(id, approver, devices, ct))
        {
            return Problem.NotFound("no such active device for this user");
        }
        var ok = await devices.TryRenameAsync(id, approver.User.Id, name, new AuditEvent(AuditTypes.DeviceRenamed, approver.User.Id, approver.DeviceId, id,
            new Dictionary<string, string> { ["name"] = name }), ct);
        directory.ForgetDevice(id);
        return ok ? TypedResults.NoContent() : Problem.NotFound("no such active device for this user");
    }

    internal static async Task<IResult> RevokeAsync(string id, Approver approver, IDeviceStore devices, IdentityDirectory directory, TimeProvider time,
        CancellationToken ct)
    {
        // The device must be this user's own: checked here, where the caller is known, and again by the store's update.
        if (!await OwnsActiveAsync(id, approver, devices, ct))
        {
            return Problem.NotFound("no such active device for this user");
        }
        var ok = await devices.TryRevokeAsync(id, approver.User.Id, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.DeviceRevoked, approver.User.Id, approver.DeviceId, id), ct);
        directory.ForgetDevice(id);
        return ok ? TypedResults.NoContent() : Problem.NotFound("no such active device for this user");
    }

    private static async Task<bool> OwnsActiveAsync(string id, Approver approver, IDeviceStore devices, CancellationToken ct) =>
        id.Length <= 64 && await devices.FindAsync(id, ct) is { } target && target.UserId == approver.User.Id && target.Active;
}
