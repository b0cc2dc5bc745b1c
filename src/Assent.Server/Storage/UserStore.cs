using System.Data.Common;

namespace Assent.Server.Storage;

/// <summary>Users and their one-time invites.</summary>
internal interface IUserStore
{
    Task<bool> AnyAsync(CancellationToken ct);

    Task<UserRecord?> FindAsync(string userId, CancellationToken ct);

    Task<UserRecord?> FindByHandleAsync(string handle, CancellationToken ct);

    /// <summary>Creates the user when the handle is new (or makes an existing one admin when asked), and a one-time invite for them.</summary>
    Task<UserRecord> CreateInviteAsync(UserRecord userIfNew, InviteRecord invite, AuditEvent audit, CancellationToken ct);

    /// <summary>The user an unused, unexpired invite is for; the invite stays unused.</summary>
    Task<UserRecord?> FindInviteUserAsync(byte[] codeHash, long now, CancellationToken ct);
}

internal sealed class UserStore(Database db) : IUserStore
{
    internal const string Columns = "id, handle, is_admin, created_at";

    public Task<bool> AnyAsync(CancellationToken ct) =>
        db.ReadAsync(s => s.AnyAsync("SELECT 1 FROM users LIMIT 1"), ct);

    public Task<UserRecord?> FindAsync(string userId, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {Columns} FROM users WHERE id = $1", Read, userId), ct);

    public Task<UserRecord?> FindByHandleAsync(string handle, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync($"SELECT {Columns} FROM users WHERE handle = $1", Read, handle), ct);

    public Task<UserRecord> CreateInviteAsync(UserRecord userIfNew, InviteRecord invite, AuditEvent audit, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            await w.ExecAsync("INSERT INTO users(id, handle, is_admin, created_at) VALUES($1, $2, $3, $4) ON CONFLICT (handle) DO NOTHING",
                userIfNew.Id, userIfNew.Handle, userIfNew.IsAdmin, userIfNew.CreatedAt);
            if (userIfNew.IsAdmin)
            {
                await w.ExecAsync("UPDATE users SET is_admin = TRUE WHERE handle = $1", userIfNew.Handle);
            }
            var user = (await w.OneAsync($"SELECT {Columns} FROM users WHERE handle = $1", Read, userIfNew.Handle))!;
            await w.ExecAsync("INSERT INTO invites(code_hash, user_id, expires_at, used_at) VALUES($1, $2, $3, NULL)", invite.CodeHash, user.Id, invite.ExpiresAt);
            await w.AuditAsync(audit with { UserId = user.Id, Subject = user.Id });
            return user;
        }, ct);

    public Task<UserRecord?> FindInviteUserAsync(byte[] codeHash, long now, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT u.id, u.handle, u.is_admin, u.created_at FROM invites i JOIN users u ON u.id = i.user_id " +
                                     "WHERE i.code_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2", Read, codeHash, now), ct);

    internal static UserRecord Read(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetInt64(3));
}
