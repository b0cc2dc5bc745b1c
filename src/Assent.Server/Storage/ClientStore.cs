using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>Agents: OAuth confidential clients with an owner.</summary>
internal interface IClientStore
{
    Task<ClientRecord?> FindAsync(string clientId, CancellationToken ct);

    Task CreateAsync(ClientRecord client, AuditEvent audit, CancellationToken ct);

    /// <summary>An approved agent_registration request → redeemed, and the agent created, in one step; false when already redeemed.</summary>
    Task<bool> TryCreateFromRegistrationAsync(string approvalId, long now, ClientRecord client, AuditEvent audit, CancellationToken ct);
}

internal sealed class ClientStore(Database db) : IClientStore
{
    private const string Columns = "id, secret_hash, name, owner_user_id, scopes, created_at, revoked_at";
    private const string Insert = "INSERT INTO clients(id, secret_hash, name, owner_user_id, scopes, created_at) VALUES($1, $2, $3, $4, $5, $6)";

    public Task<ClientRecord?> FindAsync(string clientId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {Columns} FROM clients WHERE id = $1", Read, clientId), ct);

    public Task CreateAsync(ClientRecord client, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync(Insert, client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes, client.CreatedAt);
            return await w.AuditedAsync(audit);
        }, ct);

    public Task<bool> TryCreateFromRegistrationAsync(string approvalId, long now, ClientRecord client, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // The state guard makes this the one winner: the client exists iff the approval was redeemed here.
            if (await w.ExecAsync(ApprovalSql.Redeem + " AND kind = $3", approvalId, now, ApprovalKinds.AgentRegistration) != 1)
            {
                return false;
            }
            await w.ExecAsync(Insert, client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes, client.CreatedAt);
            await w.AuditAsync(new AuditEvent(AuditTypes.ApprovalRedeemed, audit.UserId, audit.Actor, approvalId));
            return await w.AuditedAsync(audit);
        }, ct);

    private static ClientRecord Read(DbDataReader r) =>
        new(r.GetString(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), Rows.NullableLong(r, 6));
}
