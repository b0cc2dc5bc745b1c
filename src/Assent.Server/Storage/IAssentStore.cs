namespace Assent.Server.Storage;

/// <summary>
/// Everything Assent persists. Methods are named after what the protocol does; every
/// transition is atomic and appends its audit event in the same transaction, so a state
/// change and its audit entry exist together or not at all. Times are Unix milliseconds.
/// </summary>
internal interface IAssentStore : IAsyncDisposable
{
    Task MigrateAsync(CancellationToken ct);

    Task<bool> AnyUserAsync(CancellationToken ct);

    Task<UserRecord?> FindUserAsync(string userId, CancellationToken ct);

    Task<UserRecord?> FindUserByHandleAsync(string handle, CancellationToken ct);

    /// <summary>Creates the user when the handle is new, and a one-time invite for them.</summary>
    Task<UserRecord> CreateInviteAsync(UserRecord userIfNew, InviteRecord invite, AuditEvent audit, CancellationToken ct);

    /// <summary>Consumes an unused, unexpired invite and enrols the device in one step; null when the code is not usable.</summary>
    Task<UserRecord?> TryEnrollAsync(byte[] codeHash, long now, Func<UserRecord, DeviceRecord> device, Func<UserRecord, DeviceRecord, AuditEvent> audit, CancellationToken ct);

    /// <summary>The user an unused, unexpired invite is for; the invite stays unused.</summary>
    Task<UserRecord?> FindInviteUserAsync(byte[] codeHash, long now, CancellationToken ct);

    /// <summary>Adds a device to an existing user (a signed-in user registering another passkey).</summary>
    Task AddDeviceAsync(DeviceRecord device, AuditEvent audit, CancellationToken ct);

    /// <summary>Stores a WebAuthn challenge; expired ones are purged on the way.</summary>
    Task CreateWebAuthnChallengeAsync(WebAuthnChallengeRecord challenge, long now, CancellationToken ct);

    /// <summary>Removes and returns an unexpired challenge: each one is usable exactly once.</summary>
    Task<WebAuthnChallengeRecord?> TryTakeWebAuthnChallengeAsync(byte[] challengeHash, long now, CancellationToken ct);

    /// <summary>Opens a web session; expired ones are purged on the way.</summary>
    Task CreateWebSessionAsync(WebSessionRecord session, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>An unexpired session whose device is still active; null otherwise.</summary>
    Task<WebSessionRecord?> FindWebSessionAsync(byte[] tokenHash, long now, CancellationToken ct);

    Task DeleteWebSessionAsync(byte[] tokenHash, CancellationToken ct);

    /// <summary>Records an event that changes no other state (e.g. a refused, suspicious assertion).</summary>
    Task AppendAuditAsync(AuditEvent audit, CancellationToken ct);

    Task<DeviceRecord?> FindDeviceAsync(string deviceId, CancellationToken ct);

    Task<DeviceRecord?> FindDeviceByCredentialIdAsync(byte[] credentialId, CancellationToken ct);

    Task<IReadOnlyList<DeviceRecord>> ListDevicesAsync(string userId, CancellationToken ct);

    Task<bool> TryRenameDeviceAsync(string deviceId, string userId, string name, AuditEvent audit, CancellationToken ct);

    Task<bool> TryRevokeDeviceAsync(string deviceId, string userId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>Raises the stored WebAuthn sign count only forward; false when it would regress.</summary>
    Task<bool> TryAdvanceSignCountAsync(string deviceId, long signCount, CancellationToken ct);

    /// <summary>
    /// Records a signed device request's nonce until <paramref name="expiresAt"/>; false when the
    /// device has used it before. Stored, so every node (and the next start) refuses a replay.
    /// </summary>
    Task<bool> TryUseDeviceNonceAsync(string deviceId, string nonce, long expiresAt, CancellationToken ct);

    Task<ClientRecord?> FindClientAsync(string clientId, CancellationToken ct);

    Task CreateClientAsync(ClientRecord client, AuditEvent audit, CancellationToken ct);

    Task CreateApprovalAsync(ApprovalRecord approval, AuditEvent audit, CancellationToken ct);

    Task<ApprovalRecord?> FindApprovalAsync(string approvalId, CancellationToken ct);

    Task<ApprovalRecord?> FindApprovalByHandleAsync(byte[] handleHash, CancellationToken ct);

    Task<IReadOnlyList<ApprovalRecord>> ListPendingAsync(string userId, long now, CancellationToken ct);

    Task<IReadOnlyList<ApprovalRecord>> ListHistoryAsync(string userId, int limit, CancellationToken ct);

    /// <summary>pending → approved|denied, only while pending and unexpired and the deciding device active. False when another decision won (or the device was revoked).</summary>
    Task<bool> TryDecideAsync(DecisionRecord decision, AuditEvent audit, CancellationToken ct);

    /// <summary>approved → redeemed exactly once; returns the redeemed row (with its decision's evidence), null when not approved or already redeemed.</summary>
    Task<ApprovalRecord?> TryRedeemAsync(string approvalId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>Moves every pending request whose expiry has passed to expired; returns those moved.</summary>
    Task<IReadOnlyList<ApprovalRecord>> ExpireDueAsync(long now, int max, CancellationToken ct);

    /// <summary>approved agent_registration → redeemed, and the agent's client created, in one step; false when already redeemed.</summary>
    Task<bool> TryRedeemAgentRegistrationAsync(string approvalId, long now, ClientRecord client, AuditEvent audit, CancellationToken ct);

    /// <summary>RFC 8628 §3.2: stores a new device authorization, with its approval when the login is pushed to a known user.</summary>
    Task CreateDeviceAuthorizationAsync(DeviceAuthorizationRecord authorization, ApprovalRecord? approval, AuditEvent? approvalAudit, CancellationToken ct);

    Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationAsync(byte[] deviceCodeHash, CancellationToken ct);

    Task<DeviceAuthorizationRecord?> FindDeviceAuthorizationByUserCodeAsync(byte[] userCodeHash, CancellationToken ct);

    /// <summary>Binds an unbound, unexpired user code to a new approval request (created here); false when already bound or expired.</summary>
    Task<bool> TryBindUserCodeAsync(string authorizationId, long now, ApprovalRecord approval, AuditEvent approvalAudit, CancellationToken ct);

    /// <summary>approved → redeemed exactly once, and the session's first refresh token stored with it.</summary>
    Task<bool> TryStartSessionAsync(string approvalId, long now, RefreshTokenRecord first, AuditEvent audit, CancellationToken ct);

    /// <summary>
    /// Consumes a refresh token and stores its successor (built from the consumed one) atomically. A token
    /// already consumed revokes its whole family (RFC 9700 §4.14.2). Returns the consumed record when rotated.
    /// </summary>
    Task<(RefreshOutcome Outcome, RefreshTokenRecord? Consumed)> TryRotateRefreshTokenAsync(byte[] tokenHash, long now,
        Func<RefreshTokenRecord, RefreshTokenRecord> next, CancellationToken ct);

    /// <summary>RFC 7009: revokes the family of a refresh token issued to the client; false when there is no such live token.</summary>
    Task<bool> RevokeRefreshTokenFamilyAsync(byte[] tokenHash, string clientId, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>RFC 7009: denies an access token by its jti until it expires; expired entries are dropped.</summary>
    Task RevokeAccessTokenAsync(string jti, long expiresAt, long now, AuditEvent audit, CancellationToken ct);

    Task<bool> IsAccessTokenRevokedAsync(string jti, CancellationToken ct);

    /// <summary>
    /// Deletes rows that can no longer be used: device authorizations, refresh tokens, web sessions,
    /// passkey challenges and device request nonces past their expiry, and denylisted token ids whose
    /// tokens have expired. Returns how many.
    /// </summary>
    Task<int> PruneExpiredAsync(long now, CancellationToken ct);

    Task<IReadOnlyList<SigningKeyRecord>> ListSigningKeysAsync(CancellationToken ct);

    /// <summary>Adds a key as current and retires the previous current key (sets its RetiredAt).</summary>
    Task AddSigningKeyAsync(SigningKeyRecord key, long now, AuditEvent? audit, CancellationToken ct);

    Task<IReadOnlyList<AuditRow>> ReadAuditAsync(long afterSeq, int limit, string? userId, CancellationToken ct);

    Task<(long Size, byte[] Head)> ReadAuditHeadAsync(CancellationToken ct);

    Task<byte[]?> GetMetaAsync(string key, CancellationToken ct);

    /// <summary>Sets a value only if the key is absent; returns the value that is stored afterwards.</summary>
    Task<byte[]> GetOrAddMetaAsync(string key, byte[] value, CancellationToken ct);
}
