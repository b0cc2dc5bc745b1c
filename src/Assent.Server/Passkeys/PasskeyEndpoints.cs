using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;
using Assent.Server.Approvals;
using Assent.Server.Audit;
using Assent.Server.Clients;
using Assent.Server.Devices;
using Assent.Server.Hosting;
using Assent.Server.Http;
using Assent.Server.Sessions;
using Assent.Server.Storage;
using Assent.Server.Users;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Passkeys;

/// <summary>
/// Passkeys (SPEC §2 <c>/webauthn/...</c>): registration with an invite or from a signed-in
/// session, sign-in to the web app, and decisions by assertion. Registration and sign-in use
/// single-use server challenges kept in the store; a decision's challenge is
/// SHA-256(decision ‖ 0x00 ‖ payload) and needs none (SPEC §1).
/// </summary>
internal static class PasskeyEndpoints
{
    public const string Prefix = "/webauthn";

    public static IEndpointRouteBuilder MapPasskeys(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Prefix).WithTags("Passkeys").DisableAntiforgery();
        group.MapPost("/register/options", RegistrationOptionsAsync).WithSummary("Options for navigator.credentials.create: with an invite code, or for the signed-in user");
        group.MapPost("/register", RegisterAsync).WithSummary("Finish a passkey registration (attestation as Assent:WebAuthnAttestation allows); opens a session");
        group.MapPost("/signin/options", SignInOptionsAsync).WithSummary("Options for navigator.credentials.get to sign in to the web app");
        group.MapPost("/signin", SignInAsync).WithSummary("Sign in with a passkey assertion; sets the session cookie");
        group.MapPost("/signout", SignOutAsync).WithSummary("End the web session");
        group.MapGet("/session", SessionAsync).WithSummary("The signed-in user and their passkeys (session cookie)");
        group.MapGet("/approvals", PendingAsync).WithSummary("Pending approval requests (session cookie)");
        group.MapGet("/history", HistoryAsync).WithSummary("Decided, expired and redeemed requests, newest first (session cookie)");
        group.MapGet("/stream", StreamAsync).WithSummary("Server-Sent Events: new and settled requests (session cookie)");
        group.MapPost("/approvals/{id}/decision", DecideAsync).WithSummary("Approve or deny with a passkey assertion over SHA-256(decision ‖ 0x00 ‖ payload)");
        group.MapGet("/devices", ListDevicesAsync).WithSummary("The user's devices (session cookie)");
        group.MapPatch("/devices/{id}", RenameDeviceAsync).WithSummary("Rename a device (session cookie)");
        group.MapDelete("/devices/{id}", RevokeDeviceAsync).WithSummary("Revoke a device (session cookie)");
        group.MapPost("/device-login", DeviceLoginAsync).WithSummary("Bind an RFC 8628 user code: raises a device_login approval request (session cookie)");
        return app;
    }

    internal static async Task<IResult> RegistrationOptionsAsync(HttpRequest request, IAssentStore store, WebSessions sessions, AssentOptions options,
        PasskeyCeremonies passkeys, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, PasskeyJson.Default.RegistrationOptionsRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        UserRecord? user;
        byte[]? inviteHash = null;
        if (!string.IsNullOrWhiteSpace(read.Value!.Code))
        {
            if (read.Value.Code.Length > 64)
            {
                return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
            }
            inviteHash = Ids.Hash(Ids.NormalizeInviteCode(read.Value.Code));
            user = await store.FindInviteUserAsync(inviteHash, now, ct);
            if (user is null)
            {
                return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
            }
        }
        else
        {
            if (!sessions.FromOwnOrigin(request))
            {
                return Problem.Forbidden("cross-origin request refused");
            }
            user = (await sessions.GetAsync(request, ct))?.User;
            if (user is null)
            {
                return Problem.Unauthorized("sign in with a passkey, or give an invite code");
            }
        }
        // WebAuthn L3 §5.4.3: excludeCredentials keeps one authenticator from registering twice.
        var exclude = (await store.ListDevicesAsync(user.Id, ct))
            .Where(d => d.Active && d.CredentialId is not null)
            .Select(d => d.CredentialId!);
        var creation = passkeys.RegistrationOptions(user.Id, user.Handle, exclude);
        await store.CreateWebAuthnChallengeAsync(new WebAuthnChallengeRecord(SHA256.HashData(creation.Challenge), ChallengePurposes.Register, user.Id, inviteHash,
            now + (long)options.WebAuthnChallengeLifetime.TotalMilliseconds), now, ct);
        return TypedResults.Json(creation.Options, WebAuthnOptionsJson.Default.CreationOptions);
    }

    internal static async Task<IResult> RegisterAsync(HttpContext http, IAssentStore store, WebSessions sessions, AssentOptions options,
        PasskeyCeremonies passkeys, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(http.Request, PasskeyJson.Default.RegistrationRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (!Base64Url.TryDecode(body.ClientDataJson ?? "", out var clientDataJson) || clientDataJson.Length == 0 ||
            !Base64Url.TryDecode(body.AttestationObject ?? "", out var attestationObject) || attestationObject.Length == 0)
        {
            return Problem.BadRequest("client_data_json and attestation_object are required, base64url");
        }
        var name = string.IsNullOrWhiteSpace(body.Name) ? "passkey" : body.Name.Trim();
        if (name.Length > 64 || name.Any(char.IsControl))
        {
            return Problem.BadRequest("name must be at most 64 printable characters");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var challenge = await TakeChallengeAsync(store, clientDataJson, ChallengePurposes.Register, now, ct);
        if (challenge is null)
        {
            return Problem.BadRequest("the registration challenge is unknown, already used or expired; start again");
        }
        var verified = await passkeys.VerifyRegistrationAsync(challenge.Value.Record.UserId ?? "", attestationObject, clientDataJson, challenge.Value.Challenge, ct);
        if (!verified.Succeeded)
        {
            return Problem.BadRequest($"the passkey registration was refused: {verified.Error.Code}: {verified.Error.Detail}");
        }
        var credential = verified.Value;
        if (await store.FindDeviceByCredentialIdAsync(credential.CredentialId, ct) is not null)
        {
            return Problem.Conflict("this passkey is already registered");
        }
        var jwk = JsonSerializer.Serialize(credential.PublicKey, JwkJson.Default.Jwk);
        var deviceId = Ids.New("dev");
        DeviceRecord Device(string userId) => new(deviceId, userId, DeviceKinds.WebAuthn, name, jwk, credential.CredentialId, credential.SignCount, now, null);
        AuditEvent Audit(string userId) => new(AuditTypes.DeviceEnrolled, userId, deviceId, deviceId, new Dictionary<string, string>
        {
            ["kind"] = DeviceKinds.WebAuthn, ["name"] = name, ["alg"] = credential.Algorithm.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["attestation"] = credential.AttestationFormat, ["aaguid"] = credential.Aaguid.ToString(),
            ["attestation_trusted"] = credential.AttestationTrusted ? "true" : "false",
        });
        UserRecord? user;
        DeviceRecord device;
        if (challenge.Value.Record.InviteHash is { } inviteHash)
        {
            // The invite is spent in the same transaction that stores the passkey, as for an Ed25519 enrolment.
            device = Device(challenge.Value.Record.UserId!);
            user = await store.TryEnrollAsync(inviteHash, now, u => Device(u.Id), (u, _) => Audit(u.Id), ct);
            if (user is null)
            {
                return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
            }
        }
        else
        {
            var current = await sessions.GetAsync(http.Request, ct);
            if (current is null || current.User.Id != challenge.Value.Record.UserId || !sessions.FromOwnOrigin(http.Request))
            {
                return Problem.Unauthorized("adding a passkey needs the session that asked for the options");
            }
            user = current.User;
            device = Device(user.Id);
            await store.AddDeviceAsync(device, Audit(user.Id), ct);
        }
        if (challenge.Value.Record.InviteHash is not null)
        {
            await sessions.OpenAsync(http.Response, device, ct);
        }
        return TypedResults.Created($"{Prefix}/devices/{deviceId}",
            new RegistrationResponse(deviceId, user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle));
    }

    internal static async Task<IResult> SignInOptionsAsync(IAssentStore store, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var challenge = RandomNumberGenerator.GetBytes(32);
        await store.CreateWebAuthnChallengeAsync(new WebAuthnChallengeRecord(SHA256.HashData(challenge), ChallengePurposes.SignIn, null, null,
            now + (long)options.WebAuthnChallengeLifetime.TotalMilliseconds), now, ct);
        // Empty allowCredentials: a discoverable credential names its user (WebAuthn L3 §5.4.3, usernameless sign-in).
        return TypedResults.Json(new RequestOptions(Base64Url.Encode(challenge), (long)PasskeyCeremonies.CeremonyTimeout.TotalMilliseconds, options.RpId, [], "required"),
            WebAuthnOptionsJson.Default.RequestOptions);
    }

    internal static async Task<IResult> SignInAsync(HttpContext http, IAssentStore store, WebSessions sessions, ApprovalService approvals,
        AssentOptions options, PasskeyCeremonies passkeys, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(http.Request, PasskeyJson.Default.AssertionRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        if (!TryDecodeAssertion(read.Value!, out var credentialId, out var authenticatorData, out var clientDataJson, out var signature))
        {
            return Problem.BadRequest("credential_id, authenticator_data, client_data_json and signature are required, base64url");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var challenge = await TakeChallengeAsync(store, clientDataJson, ChallengePurposes.SignIn, now, ct);
        if (challenge is null)
        {
            return Problem.Unauthorized("the sign-in challenge is unknown, already used or expired; start again");
        }
        var device = await store.FindDeviceByCredentialIdAsync(credentialId, ct);
        if (device is null || !device.Active || device.Kind != DeviceKinds.WebAuthn)
        {
            return Problem.Unauthorized("this passkey is not registered here, or it was revoked");
        }
        var verified = await passkeys.VerifyAssertionAsync(new StoredPasskey(credentialId, device.PublicJwk, device.SignCount),
            authenticatorData, clientDataJson, signature, challenge.Value.Challenge, ct);
        if (!verified.Succeeded)
        {
            if (verified.Error.Code == WebAuthnFailures.SignCountRegression)
            {
                await approvals.AuditSignCountRegressionAsync(device, null, verified.Error.Detail, ct);
            }
            return Problem.Unauthorized($"the passkey assertion was refused: {verified.Error.Code}: {verified.Error.Detail}");
        }
        if (!await approvals.AdvanceSignCountAsync(device, verified.Value.SignCount, null, ct))
        {
            return Problem.Unauthorized($"the passkey assertion was refused: {WebAuthnFailures.SignCountRegression}");
        }
        var user = await store.FindUserAsync(device.UserId, ct);
        if (user is null)
        {
            return Problem.Unauthorized("the passkey's user no longer exists");
        }
        var session = await sessions.OpenAsync(http.Response, device, ct);
        return TypedResults.Json(await SessionViewAsync(store, options, user, session, ct), PasskeyJson.Default.SessionView);
    }

    internal static async Task<IResult> SignOutAsync(HttpRequest request, HttpResponse response, WebSessions sessions, CancellationToken ct)
    {
        if (!sessions.FromOwnOrigin(request))
        {
            return Problem.Forbidden("cross-origin request refused");
        }
        await sessions.CloseAsync(request, response, ct);
        return TypedResults.NoContent();
    }

    internal static async Task<IResult> SessionAsync(HttpRequest request, HttpResponse response, WebSessions sessions, IAssentStore store,
        AssentOptions options, CancellationToken ct)
    {
        var current = await sessions.GetAsync(request, ct);
        response.Headers.CacheControl = "no-store";
        return current is null
            ? Problem.Unauthorized("not signed in")
            : TypedResults.Json(await SessionViewAsync(store, options, current.User, current.Session, ct), PasskeyJson.Default.SessionView);
    }

    internal static async Task<IResult> PendingAsync(HttpRequest request, WebSessions sessions, IAssentStore store, ClientDirectory clients,
        TimeProvider time, CancellationToken ct)
    {
        var current = await sessions.GetAsync(request, ct);
        if (current is null)
        {
            return Problem.Unauthorized("not signed in");
        }
        var pending = await store.ListPendingAsync(current.User.Id, time.GetUtcNow().ToUnixTimeMilliseconds(), ct);
        var views = new List<PendingApproval>(pending.Count);
        foreach (var a in pending)
        {
            views.Add(await DeviceEndpoints.ViewAsync(a, clients, ct));
        }
        return TypedResults.Json(new PendingList(views), ServerJson.Default.PendingList);
    }

    internal static async Task<IResult> HistoryAsync(HttpRequest request, WebSessions sessions, IAssentStore store, ClientDirectory clients, CancellationToken ct)
    {
        var current = await sessions.GetAsync(request, ct);
        if (current is null)
        {
            return Problem.Unauthorized("not signed in");
        }
        var history = await store.ListHistoryAsync(current.User.Id, 50, ct);
        var views = new List<PendingApproval>(history.Count);
        foreach (var a in history)
        {
            views.Add(await DeviceEndpoints.ViewAsync(a, clients, ct));
        }
        return TypedResults.Json(new HistoryList(views), PasskeyJson.Default.HistoryList);
    }

    internal static async Task StreamAsync(HttpContext http, WebSessions sessions, ApprovalHub hub, IAssentStore store, ClientDirectory clients,
        TimeProvider time, CancellationToken ct)
    {
        var current = await sessions.GetAsync(http.Request, ct);
        if (current is null)
        {
            await Problem.Unauthorized("not signed in").ExecuteAsync(http);
            return;
        }
        await DeviceEndpoints.WriteStreamAsync(http, current.User.Id, hub, store, clients, time, ct);
    }

    /// <summary>
    /// The assertion is the whole proof, as an Ed25519 device's signature is: no session needed,
    /// and a session alone decides nothing.
    /// </summary>
    internal static async Task<IResult> DecideAsync(string id, HttpRequest request, ApprovalService approvals, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(request, PasskeyJson.Default.AssertionRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (string.IsNullOrEmpty(body.Decision))
        {
            return Problem.BadRequest("decision is required: 'approve' or 'deny'");
        }
        if (!TryDecodeAssertion(body, out var credentialId, out var authenticatorData, out var clientDataJson, out var signature))
        {
            return Problem.BadRequest("credential_id, authenticator_data, client_data_json and signature are required, base64url");
        }
        var outcome = await approvals.DecideWebAuthnAsync(id, null, credentialId, body.Decision, authenticatorData, clientDataJson, signature, ct);
        return DeviceEndpoints.Answer(id, outcome);
    }

    internal static async Task<IResult> ListDevicesAsync(HttpRequest request, WebSessions sessions, IAssentStore store, AssentOptions options, CancellationToken ct)
    {
        var current = await sessions.GetAsync(request, ct);
        if (current is null)
        {
            return Problem.Unauthorized("not signed in");
        }
        var user = current.User;
        var devices = await store.ListDevicesAsync(user.Id, ct);
        return TypedResults.Json(new DeviceList(user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle,
            devices.Select(d => new DeviceView(d.Id, d.Kind, d.Name, d.CreatedAt, d.RevokedAt, d.Active)).ToList()), ServerJson.Default.DeviceList);
    }

    internal static async Task<IResult> RenameDeviceAsync(string id, HttpRequest request, WebSessions sessions, IAssentStore store, IdentityDirectory directory, CancellationToken ct)
    {
        var current = await sessions.GetAsync(request, ct);
        if (current is null)
        {
            return Problem.Unauthorized("not signed in");
        }
        if (!sessions.FromOwnOrigin(request))
        {
            return Problem.Forbidden("cross-origin request refused");
        }
        var read = await RequestBodies.ReadJsonAsync(request, ServerJson.Default.RenameRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var name = read.Value!.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 64 || name.Any(char.IsControl))
        {
            return Problem.BadRequest("name must be 1 to 64 printable characters");
        }
        var ok = await store.TryRenameDeviceAsync(id, current.User.Id, name, new AuditEvent(AuditTypes.DeviceRenamed, current.User.Id, current.Session.DeviceId, id,
            new Dictionary<string, string> { ["name"] = name }), ct);
        directory.ForgetDevice(id);
        return ok ? TypedResults.NoContent() : Problem.NotFound("no such active device for this user");
    }

    internal static async Task<IResult> RevokeDeviceAsync(string id, HttpRequest request, WebSessions sessions, IAssentStore store, TimeProvider time, IdentityDirectory directory, CancellationToken ct)
    {
        var current = await sessions.GetAsync(request, ct);
        if (current is null)
        {
            return Problem.Unauthorized("not signed in");
        }
        if (!sessions.FromOwnOrigin(request))
        {
            return Problem.Forbidden("cross-origin request refused");
        }
        var ok = await store.TryRevokeDeviceAsync(id, current.User.Id, time.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.DeviceRevoked, current.User.Id, current.Session.DeviceId, id), ct);
        directory.ForgetDevice(id);
        return ok ? TypedResults.NoContent() : Problem.NotFound("no such active device for this user");
    }

    /// <summary>
    /// RFC 8628 §3.3: the signed-in user enters the code shown by the CLI; binding it raises a
    /// device_login approval request that the user then approves with a passkey like any other.
    /// </summary>
    internal static async Task<IResult> DeviceLoginAsync(HttpRequest request, WebSessions sessions, IAssentStore store, ApprovalService approvals,
        ApprovalHub hub, ClientDirectory clients, TimeProvider time, CancellationToken ct)
    {
        var current = await sessions.GetAsync(request, ct);
        if (current is null)
        {
            return Problem.Unauthorized("not signed in");
        }
        if (!sessions.FromOwnOrigin(request))
        {
            return Problem.Forbidden("cross-origin request refused");
        }
        var read = await RequestBodies.ReadJsonAsync(request, PasskeyJson.Default.DeviceLoginRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        // The sign-in request then appears in the pending list and is approved with a passkey like any other.
        return await SessionEndpoints.BindUserCodeAsync(current.User, read.Value!.UserCode, store, approvals, hub, clients, time, ct);
    }

    private static async Task<SessionView> SessionViewAsync(IAssentStore store, AssentOptions options, UserRecord user, WebSessionRecord session, CancellationToken ct)
    {
        var credentials = (await store.ListDevicesAsync(user.Id, ct))
            .Where(d => d.Active && d.Kind == DeviceKinds.WebAuthn && d.CredentialId is not null)
            .Select(d => Base64Url.Encode(d.CredentialId!))
            .ToList();
        return new SessionView(user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle, session.DeviceId, session.ExpiresAt / 1000, options.RpId, credentials);
    }

    /// <summary>Reads the challenge out of the client data and spends it; null when unknown, spent, expired or for another ceremony.</summary>
    private static async Task<(WebAuthnChallengeRecord Record, byte[] Challenge)?> TakeChallengeAsync(IAssentStore store, byte[] clientDataJson, string purpose,
        long now, CancellationToken ct)
    {
        if (!ClientData.TryParse(clientDataJson, out var clientData, out _) || clientData.Challenge.Length is 0 or > 64)
        {
            return null;
        }
        var record = await store.TryTakeWebAuthnChallengeAsync(SHA256.HashData(clientData.Challenge), now, ct);
        return record is null || record.Purpose != purpose ? null : (record, clientData.Challenge);
    }

    private static bool TryDecodeAssertion(AssertionRequest body, out byte[] credentialId, out byte[] authenticatorData, out byte[] clientDataJson, out byte[] signature)
    {
        authenticatorData = clientDataJson = signature = [];
        return Base64Url.TryDecode(body.CredentialId ?? "", out credentialId) && credentialId.Length is > 0 and <= WebAuthnVerifier.MaxCredentialIdLength &&
               Base64Url.TryDecode(body.AuthenticatorData ?? "", out authenticatorData) && authenticatorData.Length > 0 &&
               Base64Url.TryDecode(body.ClientDataJson ?? "", out clientDataJson) && clientDataJson.Length > 0 &&
               Base64Url.TryDecode(body.Signature ?? "", out signature) && signature.Length > 0;
    }
}
