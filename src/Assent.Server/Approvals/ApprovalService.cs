using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;

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

    /// <summary>The request demands user verification (a challenge with requiresHuman) and this device cannot prove it.</summary>
    UserVerificationRequired,
}

internal sealed record DecideOutcome(DecideStatus Status, ApprovalState? State = null, string? Detail = null);

/// <summary>What a device sends to decide: the decision word and its proof over <c>decision ‖ 0x00 ‖ payload</c> (docs/concepts.md §5.1).</summary>
internal abstract record DecisionProof(string Decision);

/// <summary>An Ed25519 device's signature over the signing input itself.</summary>
internal sealed record Ed25519Proof(string DeviceId, string Decision, byte[] Signature) : DecisionProof(Decision);

/// <summary>
/// A passkey's WebAuthn assertion whose challenge is SHA-256 of the signing input, so no server challenge is needed
/// and an assertion made for one request or decision cannot serve another. The device is named by id or credential id.
/// </summary>
internal sealed record AssertionProof(string? DeviceId, byte[]? CredentialId, string Decision, byte[] AuthenticatorData, byte[] ClientDataJson,
    byte[] Signature) : DecisionProof(Decision);

/// <summary>
/// The approval lifecycle shared by every way a request is raised (CIBA, agent registration, CLI login): create
/// with a payload built once, decide with a device's proof (one path for every kind of approver), redeem once.
/// </summary>
internal sealed class ApprovalService(IApprovalStore approvals, IDeviceStore devices, IAuditStore audit, IRateCounterStore counters,
    IChallengeStore challenges, IdentityDirectory directory, ApprovalHub hub, PasskeyCeremonies passkeys, PolicyBook policies, MandateBook mandates, AssentOptions options,
    TimeProvider time, IEnumerable<INewRequestListener> listeners)
{
    /// <summary>A refused request over the pending cap is audited once per client, user and this long (docs/deployment.md §10).</summary>
    internal static readonly TimeSpan RefusalAuditWindow = TimeSpan.FromMinutes(10);

    private readonly string _issuer = options.IssuerString;
    private readonly Uri _issuerUri = options.IssuerUri;

    public sealed record Created(ApprovalRecord Approval, string Handle);

    /// <summary><see cref="Required"/> distinct users of <see cref="UserIds"/> (checked, distinct) must approve.</summary>
    public sealed record RequestedQuorum(int Required, IReadOnlyList<string> UserIds);

    /// <summary>A request that counts against its client's cap: created, or refused with when to ask again.</summary>
    public sealed record CappedCreation(Created? Created, TimeSpan RetryAfter);

    /// <summary>
    /// Stores a new request and its audit event; false when it must not be created after all (e.g. a code already bound).
    /// <paramref name="handle"/> is the request's handle, for what must be stored with it (a CIBA notification).
    /// </summary>
    public delegate Task<bool> Persist(ApprovalRecord approval, string handle, AuditEvent audit, CancellationToken ct);

    /// <param name="persist">How to store it, atomically with whatever belongs to it (e.g. the device code it is bound to).</param>
    /// <returns>The request and its handle, or null when <paramref name="persist"/> declined.</returns>
    /// <exception cref="PolicyDeniedException">A deny policy matched (docs/policies.md §1): audited, nothing created.</exception>
    public Task<Created?> CreateAsync(string kind, string clientId, string clientName, UserRecord user, string scope,
        string? bindingMessage, string? authorizationDetails, string? resource, TimeSpan expiry, Persist persist, CancellationToken ct) =>
        CreateAsync(kind, clientId, clientName, user, scope, bindingMessage, authorizationDetails, resource, expiry, null, persist, ct);

    /// <param name="quorum">
    /// Approvers the caller names (a challenge's <c>quorum</c>, docs/challenges.md §2.1), user ids already checked; a
    /// matching policy's quorum or refusal takes precedence (docs/policies.md §3).
    /// </param>
    /// <param name="persist">How to store it, atomically with whatever belongs to it.</param>
    public Task<Created?> CreateAsync(string kind, string clientId, string clientName, UserRecord user, string scope,
        string? bindingMessage, string? authorizationDetails, string? resource, TimeSpan expiry, RequestedQuorum? quorum, Persist persist, CancellationToken ct) =>
        CreateAsync(kind, clientId, clientName, user, scope, bindingMessage, authorizationDetails, resource, expiry, quorum, null, persist, ct);

    /// <summary>
    /// A payment a spending mandate may cover (docs/policies.md §6, docs/payments.md §1): what it asks of a budget, and
    /// its payment row, built from the request and stored in the transaction that spends the budget and approves it.
    /// </summary>
    /// <param name="RequiresUserVerification">
    /// Covered only by a mandate a passkey signed with user verification (a challenge's <c>requiresHuman</c>, docs/challenges.md §2.1).
    /// </param>
    public sealed record CoverablePayment(PaymentAsk Ask, CoveredRowWriter Row, bool RequiresUserVerification = false);

    /// <summary>
    /// A payment request (kind <c>payment</c>): approved at once, with no human, when an active mandate of its agent and user
    /// covers <paramref name="coverable"/> (the budget spent, the request, its decision and <c>Row</c> stored in one
    /// transaction); otherwise stored by <paramref name="persist"/> for the human, as any request.
    /// </summary>
    public Task<Created?> CreatePaymentAsync(string clientId, string clientName, UserRecord user, string scope, string? bindingMessage,
        string authorizationDetails, TimeSpan expiry, CoverablePayment? coverable, Persist persist, CancellationToken ct) =>
        CreateAsync(ApprovalKinds.Payment, clientId, clientName, user, scope, bindingMessage, authorizationDetails, null, expiry, null, null, persist, ct,
            coverable);

    /// <summary>
    /// A challenge (docs/challenges.md §2): like any request, except that one asking an amount is approved at once when an
    /// active mandate of its API key and user covers <paramref name="coverable"/> (docs/policies.md §6).
    /// </summary>
    public Task<Created?> CreateChallengeAsync(string apiKeyId, string apiKeyName, UserRecord user, string scope, string? bindingMessage,
        string authorizationDetails, TimeSpan expiry, RequestedQuorum? quorum, CoverablePayment? coverable, Persist persist, CancellationToken ct) =>
        CreateAsync(ApprovalKinds.Challenge, apiKeyId, apiKeyName, user, scope, bindingMessage, authorizationDetails, null, expiry, quorum, null, persist, ct,
            coverable);

    /// <param name="notification">For a CIBA ping or push request: what its notification needs, stored with it also when a mandate approves it at once.</param>
    /// <exception cref="MandateProblemException">A mandate request with limits refused as asked (docs/policies.md §6): nothing created.</exception>
    private async Task<Created?> CreateAsync(string kind, string clientId, string clientName, UserRecord user, string scope,
        string? bindingMessage, string? authorizationDetails, string? resource, TimeSpan expiry, RequestedQuorum? quorum,
        Func<ApprovalRecord, string, byte[]>? notification, Persist persist, CancellationToken ct, CoverablePayment? coverable = null)
    {
        // docs/policies.md §6: an agent's mandate request is checked, and its limits written canonically, before the payload is built from them.
        MandateTerms? mandate = null;
        if (kind is ApprovalKinds.Ciba or ApprovalKinds.Challenge && MandateBook.ParseRequest(authorizationDetails, time.GetUtcNow()) is { } asked)
        {
            (mandate, authorizationDetails) = asked;
        }
        // docs/policies.md §1: what an agent or a backend asks is governed by the first matching policy; what a
        // human asks for themself (an agent, a key, a login, a consent) is approved by that human alone.
        var policy = kind is ApprovalKinds.Ciba or ApprovalKinds.Challenge or ApprovalKinds.Payment ? await policies.MatchAsync(clientId, scope, authorizationDetails, ct) : null;
        if (policy?.Requires == PolicyRequirements.Deny)
        {
            await audit.AppendAsync(new AuditEvent(AuditTypes.ApprovalRefusedByPolicy, user.Id, clientId, policy.Label,
                new Dictionary<string, string> { ["kind"] = kind, ["scope"] = scope }), ct);
            throw new PolicyDeniedException(policy);
        }
        var now = time.GetUtcNow();
        var id = Ids.Ordered(kind switch { ApprovalKinds.Challenge => "chl", ApprovalKinds.Payment => "pay", _ => "apr" }, now);
        // The handle given to the client is a bearer-grade secret: only its key (creation time and hash) is stored.
        var handle = Ids.OrderedHandle(now);
        var exp = now + expiry;
        var payload = ApprovalPayload.Build(_issuer, id, Protocol.Did.DidWeb.ForUser(_issuerUri, user.Id), clientId, clientName, scope,
            bindingMessage, authorizationDetails is null ? default : System.Text.Encoding.UTF8.GetBytes(authorizationDetails),
            now.ToUnixTimeSeconds(), exp.ToUnixTimeSeconds(), Base64Url.Encode(RandomNumberGenerator.GetBytes(16)));
        var record = new ApprovalRecord(id, Ids.HandleKey(handle), kind, clientId, user.Id, scope, bindingMessage, authorizationDetails, resource, payload,
            ApprovalState.Pending, now.ToUnixTimeMilliseconds(), exp.ToUnixTimeMilliseconds(), Policy: policy?.Label);
        var createdData = new Dictionary<string, string> { ["kind"] = kind, ["scope"] = scope, ["payload_sha256"] = Base64Url.Encode(SHA256.HashData(payload)) };
        if (policy is not null)
        {
            createdData["policy"] = policy.Label;
        }
        if (policy?.Requires == PolicyRequirements.Quorum)
        {
            // docs/policies.md §3: M of the named users decide, each from their own devices; the requested user stays the subject.
            var eligible = policy.ApproverIds;
            record = record with { Quorum = policy.Quorum, Approvers = eligible.Count, EligibleUsers = eligible };
            createdData["quorum"] = $"{policy.Quorum} of {eligible.Count}";
        }
        else if (quorum is not null)
        {
            record = record with { Quorum = quorum.Required, Approvers = quorum.UserIds.Count, EligibleUsers = quorum.UserIds };
            createdData["quorum"] = $"{quorum.Required} of {quorum.UserIds.Count}";
        }
        // docs/policies.md §6: a payment inside an active mandate of this agent and user is approved at once, its budget spent
        // in the same transaction (with the payment's own row, for /v1/payments); a quorum or a caller's approvers always go to humans.
        var ask = kind switch
        {
            ApprovalKinds.Ciba when mandate is null => MandateBook.PaymentOf(authorizationDetails),
            ApprovalKinds.Payment or ApprovalKinds.Challenge when mandate is null => coverable?.Ask,
            _ => null,
        };
        if (ask is not null && quorum is null && policy is null or { Requires: PolicyRequirements.One } &&
            await mandates.TryCoverAsync(record, ask, notification?.Invoke(record, handle), coverable?.Row, coverable?.RequiresUserVerification ?? false, ct)
                is { } covered)
        {
            return new Created(covered, handle);
        }
        if (mandate is not null)
        {
            // Stored first; it approves nothing until this request is approved (a request never stored leaves a row nothing reaches).
            await mandates.AddAsync(record, mandate, ct);
        }
        var created = new AuditEvent(AuditTypes.ApprovalCreated, user.Id, clientId, id, createdData);
        if (!await persist(record, handle, created, ct))
        {
            return null;
        }
        hub.Created(record);
        foreach (var listener in listeners)
        {
            listener.Created(record, clientName);
        }
        return new Created(record, handle);
    }

    public async Task<Created> CreateAsync(string kind, string clientId, string clientName, UserRecord user, string scope,
        string? bindingMessage, string? authorizationDetails, string? resource, TimeSpan expiry, CancellationToken ct) =>
        (await CreateAsync(kind, clientId, clientName, user, scope, bindingMessage, authorizationDetails, resource, expiry, async (a, _, e, c) =>
        {
            await approvals.CreateAsync(a, e, c);
            return true;
        }, ct))!;

    /// <summary>
    /// An agent's request, refused while the agent already has <paramref name="maxPending"/> requests waiting for
    /// this user (counted in the insert's own statement, so every node shares the cap). A refusal says when to ask
    /// again: when the first of those requests expires, at most a minute, since a decision may free a place sooner.
    /// </summary>
    /// <param name="notification">For a CIBA ping or push request: seals what the agent's notification needs (request, handle), stored with it.</param>
    public async Task<CappedCreation> CreateUnderCapAsync(string kind, string clientId, string clientName, UserRecord user, string scope,
        string? bindingMessage, string? authorizationDetails, string? resource, TimeSpan expiry, int maxPending, Func<ApprovalRecord, string, byte[]>? notification,
        CancellationToken ct)
    {
        var created = await CreateAsync(kind, clientId, clientName, user, scope, bindingMessage, authorizationDetails, resource, expiry, null, notification,
            (a, h, e, c) => approvals.TryCreateAsync(a, maxPending, notification?.Invoke(a, h), e, c), ct);
        if (created is not null)
        {
            return new(created, TimeSpan.Zero);
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var freesAt = await approvals.NextPendingExpiryAsync(clientId, user.Id, now, ct) ?? now;
        // Audited once per window, not per refusal: an agent hammering at its cap must not flood the audit log.
        var window = (long)RefusalAuditWindow.TotalMilliseconds;
        var windowStart = now - now % window;
        var key = $"{LimitNames.PendingRequests}:{clientId}:{user.Id}";
        if ((await counters.CountAsync([key], windowStart, windowStart + window, ct))[0].Count == 1)
        {
            await audit.AppendAsync(new AuditEvent(AuditTypes.LimitRefused, user.Id, clientId, key, new Dictionary<string, string>
            {
                ["limit"] = LimitNames.PendingRequests, ["max"] = maxPending.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }), ct);
        }
        return new(null, TimeSpan.FromMilliseconds(Math.Clamp(freesAt - now, 1000, 60_000)));
    }

    /// <summary>A device decides. Every kind of approver takes this path; only the check of its proof differs.</summary>
    public Task<DecideOutcome> DecideAsync(string approvalId, DecisionProof proof, CancellationToken ct) => DecideAsync(approvalId, proof, null, ct);

    /// <param name="vaultRelease">
    /// The item key re-wrapped to the agent (docs/vault.md §4): an approve of a vault_release request must carry it, any other
    /// decision must not; stored with the decision.
    /// </param>
    public async Task<DecideOutcome> DecideAsync(string approvalId, DecisionProof proof, byte[]? vaultRelease, CancellationToken ct)
    {
        if (!Decisions.IsValid(proof.Decision))
        {
            return new(DecideStatus.Malformed, Detail: "decision must be 'approve' or 'deny'");
        }
        // A request this node announced is known without a read: user and payload never change,
        // and whether it is still pending and unexpired is checked by the decision's own update.
        var approval = hub.Announced(approvalId) ?? await approvals.FindAsync(approvalId, ct);
        if (approval is null)
        {
            return new(DecideStatus.NotFound);
        }
        VaultReleaseRecord? release = null;
        if (Vault.VaultReleases.DetailOf(approval.AuthorizationDetails) is { } releasing && approval.Kind == ApprovalKinds.Ciba)
        {
            if ((proof.Decision == Decisions.Approve) != (vaultRelease is not null))
            {
                return new(DecideStatus.Malformed, Detail: proof.Decision == Decisions.Approve
                    ? "approving a vault_release needs vault_release: the item key wrapped to the agent's recipient_key (docs/vault.md §4)"
                    : "a denial carries no vault_release");
            }
            release = vaultRelease is null ? null : new VaultReleaseRecord(approval.Id, releasing.ItemId, releasing.Version, vaultRelease);
        }
        else if (vaultRelease is not null)
        {
            return new(DecideStatus.Malformed, Detail: "vault_release is only for approving a vault_release request");
        }
        var device = proof switch
        {
            // Cached: the key is immutable, and the decision's own transaction refuses a device revoked meanwhile.
            Ed25519Proof p => await directory.FindDeviceAsync(p.DeviceId, ct),
            // Read fresh: the passkey's signature counter is checked against the stored one.
            AssertionProof { DeviceId: { } id } => await devices.FindAsync(id, ct),
            AssertionProof { CredentialId: { } credentialId } => await devices.FindByCredentialIdAsync(credentialId, ct),
            _ => null,
        };
        if (device is null || (proof is AssertionProof { CredentialId: { } presented } &&
                               (device.CredentialId is null || !CryptographicOperations.FixedTimeEquals(device.CredentialId, presented))))
        {
            return new(DecideStatus.UnknownDevice);
        }
        if (!device.Active)
        {
            return new(DecideStatus.RevokedDevice);
        }
        if (!await MayDecideAsync(approval, device.UserId, ct))
        {
            return new(DecideStatus.WrongUser);
        }
        // docs/challenges.md §2.1: requiresHuman accepts only a decision made with user verification, which only a passkey proves.
        if (approval.Kind == ApprovalKinds.Challenge && device.Kind != DeviceKinds.WebAuthn && await challenges.RequiresHumanAsync(approval.Id, ct))
        {
            return new(DecideStatus.UserVerificationRequired);
        }
        var signingInput = ApprovalPayload.SigningInput(proof.Decision, approval.Payload);
        string evidence;
        long? signCount = null;
        switch (proof)
        {
            case Ed25519Proof ed25519 when device.Kind == DeviceKinds.Ed25519:
                var jwk = JsonSerializer.Deserialize(device.PublicJwk, JwkJson.Default.Jwk);
                if (jwk is null || !jwk.TryGetEd25519(out var publicKey) || !Ed25519.Verify(publicKey, signingInput, ed25519.Signature))
                {
                    return new(DecideStatus.InvalidSignature);
                }
                evidence = Evidence(DeviceKinds.Ed25519, device.UserId, device.Id, approval.Payload, ed25519.Signature);
                break;
            case AssertionProof assertion when device.Kind == DeviceKinds.WebAuthn:
                // A settled request is answered before any verification, so a replayed assertion changes nothing.
                if (approval.State != ApprovalState.Pending)
                {
                    return approval.State == ApprovalState.Expired ? new(DecideStatus.Expired, approval.State) : new(DecideStatus.AlreadyDecided, approval.State);
                }
                var refused = await VerifyAssertionAsync(device, assertion, SHA256.HashData(signingInput), approval.Id, ct);
                if (refused.Outcome is not null)
                {
                    return refused.Outcome;
                }
                signCount = refused.SignCount;
                evidence = Evidence(DeviceKinds.WebAuthn, device.UserId, device.Id, approval.Payload, assertion.Signature, assertion.AuthenticatorData,
                    assertion.ClientDataJson);
                break;
            case Ed25519Proof:
                return new(DecideStatus.Malformed, Detail: "this device is a passkey: decide with a WebAuthn assertion");
            default:
                return new(DecideStatus.Malformed, Detail: "this device holds an Ed25519 key: decide with its signature");
        }
        return await CommitAsync(approval, device, proof.Decision, evidence, signCount, release, ct);
    }

    /// <summary>
    /// The request's own user decides it, unless a quorum policy named its approvers: then exactly those users do
    /// (docs/policies.md §3). A request announced on this node carries its approvers; others are read.
    /// </summary>
    private async Task<bool> MayDecideAsync(ApprovalRecord approval, string userId, CancellationToken ct)
    {
        if (!Shared(approval))
        {
            return userId == approval.UserId;
        }
        var eligible = approval.EligibleUsers ?? await approvals.ListEligibleAsync(approval.Id, ct);
        return eligible.Count == 0 ? userId == approval.UserId : eligible.Contains(userId);
    }

    /// <summary>
    /// Whether others than the request's own user may decide it: a policy applied, or it names several approvers (a
    /// challenge's quorum names two or more, docs/challenges.md §2.1).
    /// </summary>
    private static bool Shared(ApprovalRecord a) => ApprovalNotice.IsShared(a);

    /// <summary>Checks a passkey's assertion over <paramref name="challenge"/>; on success, the counter to store with the decision.</summary>
    private async Task<(DecideOutcome? Outcome, long SignCount)> VerifyAssertionAsync(DeviceRecord device, AssertionProof assertion, byte[] challenge,
        string approvalId, CancellationToken ct)
    {
        var verified = await passkeys.VerifyAssertionAsync(new StoredPasskey(device.CredentialId ?? [], device.PublicJwk, device.SignCount),
            assertion.AuthenticatorData, assertion.ClientDataJson, assertion.Signature, challenge, ct);
        if (!verified.Succeeded)
        {
            if (verified.Error.Code == WebAuthnFailures.InvalidKey)
            {
                return (new(DecideStatus.Malformed, Detail: verified.Error.Detail), 0);
            }
            if (verified.Error.Code == WebAuthnFailures.SignCountRegression)
            {
                await AuditSignCountRegressionAsync(device, approvalId, verified.Error.Detail, ct);
            }
            return (new(DecideStatus.AssertionRefused, Detail: $"{verified.Error.Code}: {verified.Error.Detail}"), 0);
        }
        return (null, verified.Value.SignCount);
    }

    /// <summary>
    /// Moves the stored counter forward (WebAuthn L3 §6.1.1). A counter that fails to advance here lost a race
    /// with another assertion of the same count, or went back: a clone or a replay, so refused and audited.
    /// A 0 goes to the store too: its guard takes 0 only over a stored 0, so a 0 racing a counter raised
    /// meanwhile is refused as well.
    /// </summary>
    internal async Task<bool> AdvanceSignCountAsync(DeviceRecord device, uint signCount, string? subject, CancellationToken ct)
    {
        if (await devices.TryAdvanceSignCountAsync(device.Id, signCount, ct))
        {
            return true;
        }
        await AuditSignCountRegressionAsync(device, subject, $"signature counter {signCount} did not advance", ct);
        return false;
    }

    internal Task AuditSignCountRegressionAsync(DeviceRecord device, string? subject, string detail, CancellationToken ct) =>
        audit.AppendAsync(new AuditEvent(AuditTypes.DeviceSignCountRegression, device.UserId, device.Id, subject ?? device.Id,
            new Dictionary<string, string> { ["stored_sign_count"] = device.SignCount.ToString(System.Globalization.CultureInfo.InvariantCulture), ["detail"] = detail }), ct);

    private async Task<DecideOutcome> CommitAsync(ApprovalRecord approval, DeviceRecord device, string decision, string evidence, long? signCount,
        VaultReleaseRecord? release, CancellationToken ct)
    {
        var state = decision == Decisions.Approve ? ApprovalState.Approved : ApprovalState.Denied;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // A vote may leave the quorum open, or settle a shared request: its announcement (here and in the other nodes'
        // notice) goes to every approver.
        approval = await approvals.WithApproversAsync(approval, ct);
        // The counter moves forward in the decision's own transaction: one commit, and no decision without it.
        var decided = new DecisionRecord(approval.Id, device.UserId, device.Id, state, evidence, now);
        var audited = new AuditEvent(state == ApprovalState.Approved ? AuditTypes.ApprovalApproved : AuditTypes.ApprovalDenied, approval.UserId, device.Id, approval.Id);
        var after = release is null
            ? await approvals.TryDecideAsync(approval, decided, signCount, audited, ct)
            : await approvals.TryDecideAsync(approval, decided, signCount, audited, release, ct);
        if (after is null)
        {
            var current = await approvals.FindAsync(approval.Id, ct);
            var stillOpen = current is { State: ApprovalState.Pending } && current.ExpiresAt > now;
            if (signCount is not null && stillOpen)
            {
                // Still pending and unexpired: the counter did not advance. A racing assertion of the same count
                // (a cloned authenticator, or a replay) got there first: refused and audited.
                await AuditSignCountRegressionAsync(device, approval.Id, $"signature counter {signCount} did not advance", ct);
                return new(DecideStatus.AssertionRefused, Detail: $"{WebAuthnFailures.SignCountRegression}: the signature counter did not advance");
            }
            if (stillOpen && current!.Quorum == 1)
            {
                // Still pending and unexpired: the device was revoked after it was last read (the update checks it).
                directory.ForgetDevice(device.Id);
                return new(DecideStatus.RevokedDevice);
            }
            return current is { State: ApprovalState.Pending or ApprovalState.Expired } && !stillOpen
                ? new(DecideStatus.Expired, ApprovalState.Expired)
                : new(DecideStatus.AlreadyDecided, current?.State);
        }
        if (after == ApprovalState.Pending)
        {
            // A vote that leaves a quorum open: every approver's open card and `device watch` hear where it stands now
            // (docs/policies.md §3), without a reload. The stream reads the votes afresh for each announcement.
            hub.Created(approval);
        }
        else
        {
            hub.Settled(approval, StateNames.Of(after.Value));
        }
        return new(DecideStatus.Decided, after);
    }

    /// <summary>
    /// Withdraws a request nobody has decided yet (its agent revoked the auth_req_id, docs/http-api.md §8.1): the
    /// state becomes cancelled atomically, and every approver's open stream and every held token request hears of it
    /// at once, so no device keeps showing it. False when it was already decided, expired or cancelled.
    /// </summary>
    public async Task<bool> CancelAsync(ApprovalRecord approval, string actor, CancellationToken ct)
    {
        // Approvers read before: the other nodes' notice names them too.
        approval = await approvals.WithApproversAsync(approval, ct);
        if (!await approvals.TryCancelAsync(approval, time.GetUtcNow().ToUnixTimeMilliseconds(),
                new AuditEvent(AuditTypes.ApprovalCancelled, approval.UserId, actor, approval.Id), ct))
        {
            return false;
        }
        hub.Settled(approval, StateNames.Cancelled);
        return true;
    }

    /// <summary>The evidence object (docs/tokens.md §4), stored once and copied verbatim into tokens.</summary>
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
        var expired = await approvals.ExpireDueAsync(time.GetUtcNow().ToUnixTimeMilliseconds(), 500, ct);
        foreach (var a in expired)
        {
            // A shared request's approvers hear its expiry too (the store read them with it).
            hub.Settled(a, StateNames.Expired);
        }
        return expired.Count;
    }
}
