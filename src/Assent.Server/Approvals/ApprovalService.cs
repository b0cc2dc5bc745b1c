using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;
using Assent.Server.Audit;
using Assent.Server.Hosting;
using Assent.Server.Passkeys;
using Assent.Server.Storage;
using Assent.Server.Users;

namespace Assent.Server.Approvals;

internal enum DecideStatus
{
    Decided,
    NotFound,
    UnknownDevice,
    RevokedDevice,
    WrongUser,
    InvalidSignature,
    AlreadyDecided,
    Expired,
    Malformed,
    AssertionRefused,
}

internal sealed record DecideOutcome(DecideStatus Status, ApprovalState? State = null, string? Detail = null);

/// <summary>
/// The approval lifecycle shared by every way a request is raised (CIBA, agent registration,
/// CLI login): create with a payload built once, decide with a device signature, redeem once.
/// </summary>
internal sealed class ApprovalService(IAssentStore store, IdentityDirectory directory, ApprovalHub hub, AssentOptions options, TimeProvider time,
    PasskeyCeremonies passkeys)
{
    private readonly string _issuer = options.IssuerString;
    private readonly Uri _issuerUri = options.IssuerUri;

    public sealed record Created(ApprovalRecord Approval, string Handle);

    /// <summary>Stores a new request and its audit event; false when it must not be created after all (e.g. a code already bound).</summary>
    public delegate Task<bool> Persist(ApprovalRecord approval, AuditEvent audit, CancellationToken ct);

    /// <param name="persist">How to store it, atomically with whatever belongs to it (e.g. the device code it is bound to).</param>
    /// <returns>The request and its handle, or null when <paramref name="persist"/> declined.</returns>
    public async Task<Created?> CreateAsync(string kind, string clientId, string clientName, UserRecord user, string scope,
        string? bindingMessage, string? authorizationDetails, string? resource, TimeSpan expiry, Persist persist, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var id = Ids.Ordered("apr", now);
        // The handle given to the client is a bearer-grade secret: only its hash is stored.
        var handle = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var exp = now + expiry;
        var payload = ApprovalPayload.Build(_issuer, id, Protocol.Did.DidWeb.ForUser(_issuerUri, user.Id), clientId, clientName, scope,
            bindingMessage, authorizationDetails is null ? default : System.Text.Encoding.UTF8.GetBytes(authorizationDetails),
            now.ToUnixTimeSeconds(), exp.ToUnixTimeSeconds(), Base64Url.Encode(RandomNumberGenerator.GetBytes(16)));
        var record = new ApprovalRecord(id, Ids.Hash(handle), kind, clientId, user.Id, scope, bindingMessage, authorizationDetails, resource, payload,
            ApprovalState.Pending, now.ToUnixTimeMilliseconds(), exp.ToUnixTimeMilliseconds());
        var audit = new AuditEvent(AuditTypes.ApprovalCreated, user.Id, clientId, id,
            new Dictionary<string, string> { ["kind"] = kind, ["scope"] = scope, ["payload_sha256"] = Base64Url.Encode(SHA256.HashData(payload)) });
        if (!await persist(record, audit, ct))
        {
            return null;
        }
        hub.Created(record);
        return new Created(record, handle);
    }

    public async Task<Created> CreateAsync(string kind, string clientId, string clientName, UserRecord user, string scope,
        string? bindingMessage, string? authorizationDetails, string? resource, TimeSpan expiry, CancellationToken ct) =>
        (await CreateAsync(kind, clientId, clientName, user, scope, bindingMessage, authorizationDetails, resource, expiry, async (a, e, c) =>
        {
            await store.CreateApprovalAsync(a, e, c);
            return true;
        }, ct))!;

    /// <summary>A device decides: its signature over <c>decision ‖ 0x00 ‖ payload</c> is the proof (SPEC §1).</summary>
    public async Task<DecideOutcome> DecideEd25519Async(string approvalId, string deviceId, string decision, byte[] signature, CancellationToken ct)
    {
        if (!Decisions.IsValid(decision))
        {
            return new(DecideStatus.Malformed, Detail: "decision must be 'approve' or 'deny'");
        }
        // A request this node announced is known without a read: user and payload never change,
        // and whether it is still pending and unexpired is checked by the decision's own update.
        var approval = hub.Announced(approvalId) ?? await store.FindApprovalAsync(approvalId, ct);
        if (approval is null)
        {
            return new(DecideStatus.NotFound);
        }
        // Cached: the key is immutable, and the decision's own transaction refuses a device revoked meanwhile.
        var device = await directory.FindDeviceAsync(deviceId, ct);
        if (device is null)
        {
            return new(DecideStatus.UnknownDevice);
        }
        if (!device.Active)
        {
            return new(DecideStatus.RevokedDevice);
        }
        if (device.UserId != approval.UserId)
        {
            return new(DecideStatus.WrongUser);
        }
        if (device.Kind != DeviceKinds.Ed25519)
        {
            return new(DecideStatus.Malformed, Detail: "this device is a passkey: decide with a WebAuthn assertion");
        }
        var jwk = JsonSerializer.Deserialize(device.PublicJwk, JwkJson.Default.Jwk);
        if (jwk is null || !jwk.TryGetEd25519(out var publicKey) ||
            !Ed25519.Verify(publicKey, ApprovalPayload.SigningInput(decision, approval.Payload), signature))
        {
            return new(DecideStatus.InvalidSignature);
        }
        var evidence = Evidence(DeviceKinds.Ed25519, approval.UserId, deviceId, approval.Payload, signature);
        return await CommitDecisionAsync(approval, device, decision, evidence, ct);
    }

    /// <summary>
    /// A passkey decides: a WebAuthn assertion whose challenge is SHA-256(decision ‖ 0x00 ‖ payload)
    /// (SPEC §1), so no server challenge is needed and an assertion made for one request or decision
    /// cannot serve another. The device is named by its id or its credential id.
    /// </summary>
    public async Task<DecideOutcome> DecideWebAuthnAsync(string approvalId, string? deviceId, byte[]? credentialId, string decision,
        byte[] authenticatorData, byte[] clientDataJson, byte[] signature, CancellationToken ct)
    {
        if (!Decisions.IsValid(decision))
        {
            return new(DecideStatus.Malformed, Detail: "decision must be 'approve' or 'deny'");
        }
        var approval = await store.FindApprovalAsync(approvalId, ct);
        if (approval is null)
        {
            return new(DecideStatus.NotFound);
        }
        var device = deviceId is not null ? await store.FindDeviceAsync(deviceId, ct)
            : credentialId is not null ? await store.FindDeviceByCredentialIdAsync(credentialId, ct)
            : null;
        if (device is null || (credentialId is not null && (device.CredentialId is null || !CryptographicOperations.FixedTimeEquals(device.CredentialId, credentialId))))
        {
            return new(DecideStatus.UnknownDevice);
        }
        if (!device.Active)
        {
            return new(DecideStatus.RevokedDevice);
        }
        if (device.UserId != approval.UserId)
        {
            return new(DecideStatus.WrongUser);
        }
        if (device.Kind != DeviceKinds.WebAuthn)
        {
            return new(DecideStatus.Malformed, Detail: "this device holds an Ed25519 key: decide with its signature");
        }
        // A settled request is answered before any verification, so a replayed assertion changes nothing.
        if (approval.State != ApprovalState.Pending)
        {
            return approval.State == ApprovalState.Expired ? new(DecideStatus.Expired, approval.State) : new(DecideStatus.AlreadyDecided, approval.State);
        }
        var challenge = SHA256.HashData(ApprovalPayload.SigningInput(decision, approval.Payload));
        var verified = await passkeys.VerifyAssertionAsync(new StoredPasskey(device.CredentialId ?? [], device.PublicJwk, device.SignCount),
            authenticatorData, clientDataJson, signature, challenge, ct);
        if (!verified.Succeeded)
        {
            if (verified.Error.Code == WebAuthnFailures.InvalidKey)
            {
                return new(DecideStatus.Malformed, Detail: verified.Error.Detail);
            }
            if (verified.Error.Code == WebAuthnFailures.SignCountRegression)
            {
                await AuditSignCountRegressionAsync(device, approval.Id, verified.Error.Detail, ct);
            }
            return new(DecideStatus.AssertionRefused, Detail: $"{verified.Error.Code}: {verified.Error.Detail}");
        }
        var evidence = Evidence(DeviceKinds.WebAuthn, approval.UserId, device.Id, approval.Payload, signature, authenticatorData, clientDataJson);
        // The counter moves forward in the decision's own transaction: one commit, and no decision without it. A 0 was
        // accepted above only while the stored counter is 0 too (WebAuthn L3 §6.1.1), and the store's guard
        // (sign_count < new) cannot pass 0, so a 0 is committed without it.
        var signCount = verified.Value.SignCount;
        return await CommitDecisionAsync(approval, device, decision, evidence, ct, signCount == 0 ? null : signCount);
    }

    /// <summary>
    /// Moves the stored counter forward (WebAuthn L3 §7.2 step 22). A counter that fails to advance
    /// here lost a race with another assertion of the same count: a clone or a replay, so refused and audited.
    /// A 0 goes to the store too: its guard takes 0 only over a stored 0 (§6.1.1), so a 0 racing a
    /// counter that was raised meanwhile is refused as well.
    /// </summary>
    internal async Task<bool> AdvanceSignCountAsync(DeviceRecord device, uint signCount, string? subject, CancellationToken ct)
    {
        if (await store.TryAdvanceSignCountAsync(device.Id, signCount, ct))
        {
            return true;
        }
        await AuditSignCountRegressionAsync(device, subject, $"signature counter {signCount} did not advance", ct);
        return false;
    }

    internal Task AuditSignCountRegressionAsync(DeviceRecord device, string? subject, string detail, CancellationToken ct) =>
        store.AppendAuditAsync(new AuditEvent(AuditTypes.DeviceSignCountRegression, device.UserId, device.Id, subject ?? device.Id,
            new Dictionary<string, string> { ["stored_sign_count"] = device.SignCount.ToString(System.Globalization.CultureInfo.InvariantCulture), ["detail"] = detail }), ct);

    internal async Task<DecideOutcome> CommitDecisionAsync(ApprovalRecord approval, DeviceRecord device, string decision, string evidence, CancellationToken ct,
        long? signCount = null)
    {
        var state = decision == Decisions.Approve ? ApprovalState.Approved : ApprovalState.Denied;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var won = await store.TryDecideAsync(new DecisionRecord(approval.Id, device.Id, state, evidence, now, signCount),
            new AuditEvent(state == ApprovalState.Approved ? AuditTypes.ApprovalApproved : AuditTypes.ApprovalDenied, approval.UserId, device.Id, approval.Id), ct);
        if (!won)
        {
            var current = await store.FindApprovalAsync(approval.Id, ct);
            if (signCount is not null && current is { State: ApprovalState.Pending } && current.ExpiresAt > now)
            {
                // Still pending and unexpired: the counter did not advance. A racing assertion of the same
                // count (a cloned authenticator, or a replay) got there first: refused and audited.
                await AuditSignCountRegressionAsync(device, approval.Id, $"signature counter {signCount} did not advance", ct);
                return new(DecideStatus.AssertionRefused, Detail: $"{WebAuthnFailures.SignCountRegression}: the signature counter did not advance");
            }
            if (current is { State: ApprovalState.Pending } && current.ExpiresAt > now)
            {
                // Still pending and unexpired: the device was revoked after it was last read (the update checks it).
                directory.ForgetDevice(device.Id);
                return new(DecideStatus.RevokedDevice);
            }
            return current is { State: ApprovalState.Pending } || current?.State == ApprovalState.Expired
                ? new(DecideStatus.Expired, current.State)
                : new(DecideStatus.AlreadyDecided, current?.State);
        }
        hub.Settled(approval.Id, approval.UserId, state == ApprovalState.Approved ? "approved" : "denied");
        return new(DecideStatus.Decided, state);
    }

    /// <summary>The evidence object of SPEC §3, stored once and copied verbatim into the token.</summary>
    internal string Evidence(string kind, string userId, string deviceId, byte[] payload, byte[] signature,
        byte[]? authenticatorData = null, byte[]? clientDataJson = null)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind", kind);
            w.WriteString("device", Protocol.Did.DidWeb.ForUser(_issuerUri, userId) + "#" + deviceId);
            w.WriteString("payload", Base64Url.Encode(payload));
            w.WriteString("sig", Base64Url.Encode(signature));
            if (authenticatorData is not null)
            {
                w.WriteString("authenticator_data", Base64Url.Encode(authenticatorData));
            }
            if (clientDataJson is not null)
            {
                w.WriteString("client_data_json", Base64Url.Encode(clientDataJson));
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Expires every overdue pending request and wakes whoever waits on it.</summary>
    public async Task<int> SweepAsync(CancellationToken ct)
    {
        var expired = await store.ExpireDueAsync(time.GetUtcNow().ToUnixTimeMilliseconds(), 500, ct);
        foreach (var a in expired)
        {
            hub.Settled(a.Id, a.UserId, "expired");
        }
        return expired.Count;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Jwk))]
internal sealed partial class JwkJson : System.Text.Json.Serialization.JsonSerializerContext;
