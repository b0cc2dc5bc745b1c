using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>What became of creating an agent from an approved registration.</summary>
internal enum AgentCreation
{
    Created,

    /// <summary>Redeemed before (by another fetch); nothing changed.</summary>
    AlreadyRedeemed,

    /// <summary>The owner has an active agent of that name (docs/concepts.md §3); nothing changed, the request stays approved.</summary>
    NameTaken,
}

/// <summary>Agents: OAuth confidential clients with an owner. An owner's active agents have distinct names, compared without case.</summary>
internal interface IClientStore
{
    Task<ClientRecord?> FindAsync(string clientId, CancellationToken ct);

    /// <summary>The owner's active agent called <paramref name="name"/>, compared without case; null when the name is free.</summary>
    Task<ClientRecord?> FindActiveByNameAsync(string ownerUserId, string name, CancellationToken ct);

    /// <summary>Creates the agent; false (nothing created) when its owner already has an active agent of that name.</summary>
    Task<bool> TryCreateAsync(ClientRecord client, AuditEvent audit, CancellationToken ct);

    /// <summary>An approved agent_registration request → redeemed, and the agent created, in one step.</summary>
    Task<AgentCreation> TryCreateFromRegistrationAsync(string approvalId, long now, ClientRecord client, AuditEvent audit, CancellationToken ct);
}

internal sealed class ClientStore(Database db) : IClientStore
{
    private const string Columns = "id, secret_hash, name, owner_user_id, scopes, created_at, revoked_at";
    private const string Insert = "INSERT INTO clients(id, secret_hash, name, owner_user_id, scopes, created_at) VALUES($1, $2, $3, $4, $5, $6)";

    /// <summary>$1 = owner, $2 = name. lower() is the expression of the unique index clients_owner_name, so this check and the index agree on each engine.</summary>
    private const string ActiveByName = $"SELECT {Columns} FROM clients WHERE owner_user_id = $1 AND lower(name) = lower($2) AND revoked_at IS NULL";

    public Task<ClientRecord?> FindAsync(string clientId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {Columns} FROM clients WHERE id = $1", Read, clientId), ct);

    public Task<ClientRecord?> FindActiveByNameAsync(string ownerUserId, string name, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync(ActiveByName, Read, ownerUserId, name), ct);

    public Task<bool> TryCreateAsync(ClientRecord client, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            if (await w.AnyAsync(ActiveByName, client.OwnerUserId, client.Name))
            {
                return false;
            }
            await w.ExecAsync(Insert, client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes, client.CreatedAt);
            return await w.AuditedAsync(audit);
        }, ct);

    public async Task<AgentCreation> TryCreateFromRegistrationAsync(string approvalId, long now, ClientRecord client, AuditEvent audit, CancellationToken ct)
    {
        try
        {
            return await db.WriteAsync(async w =>
            {
                if (await w.AnyAsync(ActiveByName, client.OwnerUserId, client.Name))
                {
                    return AgentCreation.NameTaken;
                }
                // The state guard makes this the one winner: the client exists iff the approval was redeemed here.
                if (await w.ExecAsync(ApprovalSql.Redeem + " AND kind = $3", approvalId, now, ApprovalKinds.AgentRegistration) != 1)
                {
                    return AgentCreation.AlreadyRedeemed;
                }
                // A registration of the same name committed since the check (PostgreSQL, another node): the unique
                // index leaves this insert undone, and throwing undoes the redemption with it.
                if (await w.ExecAsync(Insert + " ON CONFLICT DO NOTHING", client.Id, client.SecretHash, client.Name, client.OwnerUserId, client.Scopes,
                        client.CreatedAt) != 1)
                {
                    throw new NameTakenException();
                }
                await w.AuditAsync(new AuditEvent(AuditTypes.ApprovalRedeemed, audit.UserId, audit.Actor, approvalId));
                await w.AuditAsync(audit);
                return AgentCreation.Created;
            }, ct);
        }
        catch (NameTakenException)
        {
            return AgentCreation.NameTaken;
        }
    }

    private static ClientRecord Read(DbDataReader r) =>
        new(r.GetString(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), Rows.NullableLong(r, 6));

    /// <summary>Rolls back a registration's write when its name was taken while it ran.</summary>
    private sealed class NameTakenException() : Exception("an active agent of this owner has this name");
}

/// <summary>Schema steps of the clients table both engines run alike (each must end in a semicolon).</summary>
internal static class ClientSchema
{
    /// <summary>
    /// Before names became unique, an owner could have several active agents of one name. The oldest keeps it;
    /// each later one gets its client id appended, <c>deploy-bot (agt_…)</c>, which approvers can tell apart; the name is
    /// shortened to keep within 64 characters, what tokens are sized for (AccessTokenBudget).
    /// </summary>
    public const string RenameDuplicateNames = """
        UPDATE clients SET name = substr(name, 1, 61 - length(id)) || ' (' || id || ')'
        WHERE revoked_at IS NULL AND EXISTS (
            SELECT 1 FROM clients older
            WHERE older.owner_user_id = clients.owner_user_id AND older.revoked_at IS NULL AND lower(older.name) = lower(clients.name)
              AND (older.created_at < clients.created_at OR (older.created_at = clients.created_at AND older.id < clients.id)));

        """;

    /// <summary>The store's name check (<see cref="IClientStore.FindActiveByNameAsync"/>) reads this index.</summary>
    public const string UniqueNames = """
        CREATE UNIQUE INDEX clients_owner_name ON clients(owner_user_id, lower(name)) WHERE revoked_at IS NULL;

        """;
}
