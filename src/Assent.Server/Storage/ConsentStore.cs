using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>
/// Users' consents that agents owned by others may ask them (docs/concepts.md §3.1): granted only by redeeming the
/// user's own approved <see cref="ApprovalKinds.AgentConsent"/> request, listed and revoked by that user.
/// </summary>
internal interface IConsentStore
{
    /// <summary>Whether the user has an active consent for the agent: one lookup in the index of active consents, never cached.</summary>
    Task<bool> IsGrantedAsync(string userId, string clientId, CancellationToken ct);

    /// <summary>The user's consents, revoked ones included, oldest first.</summary>
    Task<IReadOnlyList<ConsentRecord>> ListAsync(string userId, CancellationToken ct);

    /// <summary>
    /// An approved agent_consent request → redeemed, and the consent stored, in one step; false when already redeemed.
    /// A user who already consents to the agent keeps that consent (the request is redeemed all the same).
    /// </summary>
    Task<bool> TryGrantFromApprovalAsync(ConsentRecord consent, long now, AuditEvent audit, CancellationToken ct);

    /// <summary>Ends the user's active consent for the agent at once; false when there is none.</summary>
    Task<bool> TryRevokeAsync(string userId, string clientId, long now, AuditEvent audit, CancellationToken ct);
}

internal sealed class ConsentStore(Database db) : IConsentStore
{
    private const string Columns = "approval_id, user_id, client_id, created_at, revoked_at";

    public Task<bool> IsGrantedAsync(string userId, string clientId, CancellationToken ct) =>
        db.ReadAsync(s => s.AnyAsync("SELECT 1 FROM agent_consents WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL", userId, clientId), ct);

    public Task<IReadOnlyList<ConsentRecord>> ListAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.AllAsync($"SELECT {Columns} FROM agent_consents WHERE user_id = $1 ORDER BY created_at, approval_id", Read, userId), ct);

    public Task<bool> TryGrantFromApprovalAsync(ConsentRecord consent, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // The state guard makes this the one winner: the consent exists iff the approval was redeemed here.
            if (await w.ExecAsync(ApprovalSql.Redeem + " AND kind = $3 AND user_id = $4", consent.ApprovalId, now, ApprovalKinds.AgentConsent,
                    consent.UserId) != 1)
            {
                return false;
            }
            // The unique index of active consents leaves an existing one in place.
            var granted = await w.ExecAsync($"INSERT INTO agent_consents({Columns}) VALUES($1, $2, $3, $4, NULL) ON CONFLICT DO NOTHING",
                consent.ApprovalId, consent.UserId, consent.ClientId, consent.CreatedAt) == 1;
            await w.AuditAsync(new AuditEvent(AuditTypes.ApprovalRedeemed, audit.UserId, audit.Actor, consent.ApprovalId));
            if (granted)
            {
                await w.AuditAsync(audit);
            }
            return true;
        }, ct);

    public Task<bool> TryRevokeAsync(string userId, string clientId, long now, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
            await w.ExecAsync("UPDATE agent_consents SET revoked_at = $3 WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL", userId, clientId, now) == 1 &&
            await w.AuditedAsync(audit), ct);

    private static ConsentRecord Read(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), Rows.NullableLong(r, 4));
}

/// <summary>Schema steps of the consents table both engines run alike.</summary>
internal static class ConsentSchema
{
    /// <summary>At most one active consent per user and agent, which is also how bc-authorize looks one up; a user's list by time.</summary>
    public const string Indexes = """
        CREATE UNIQUE INDEX agent_consents_active ON agent_consents(user_id, client_id) WHERE revoked_at IS NULL;
        CREATE INDEX agent_consents_user ON agent_consents(user_id, created_at);
        """;
}
