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

    /// <summary>
    /// The first user's invite, made at start while there are no users: null when another node starting within
    /// <paramref name="window"/> ms made one (nodes starting together print one code; a later start prints a new one).
    /// </summary>
    Task<UserRecord?> TryCreateFirstInviteAsync(UserRecord user, InviteRecord invite, AuditEvent audit, long now, long window, CancellationToken ct);

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

    public Task<UserRecord?> TryCreateFirstInviteAsync(UserRecord user, InviteRecord invite, AuditEvent audit, long now, long window, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            // The claim row holds when it was last claimed, big-endian so that bytes compare as numbers on both engines.
            // A second node's insert waits for the first's transaction (PostgreSQL) and then finds a recent claim.
            var claimed = await w.ExecAsync("INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE meta.value < $3",
                FirstInviteClaim, BigEndian(now), BigEndian(now - window));
            if (claimed == 0 || await w.AnyAsync("SELECT 1 FROM users LIMIT 1"))
            {
                return null;
            }
            await w.ExecAsync("INSERT INTO users(id, handle, is_admin, created_at) VALUES($1, $2, $3, $4)", user.Id, user.Handle, user.IsAdmin, user.CreatedAt);
            await w.ExecAsync("INSERT INTO invites(code_hash, user_id, expires_at, used_at) VALUES($1, $2, $3, NULL)", invite.CodeHash, user.Id, invite.ExpiresAt);
            await w.AuditAsync(audit with { UserId = user.Id, Subject = user.Id });
            return user;
        }, ct);

    /// <summary>The <c>meta</c> row a node claims before it invites the first user (docs/storage.md §3).</summary>
    internal const string FirstInviteClaim = "first_user_invite";

    private static byte[] BigEndian(long value)
    {
        var bytes = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(bytes, value);
        return bytes;
    }

    public Task<UserRecord?> FindInviteUserAsync(byte[] codeHash, long now, CancellationToken ct) =>
        db.ReadAsync(s => s.OneAsync("SELECT u.id, u.handle, u.is_admin, u.created_at FROM invites i JOIN users u ON u.id = i.user_id " +
                                     "WHERE i.code_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2", Read, codeHash, now), ct);

    internal static UserRecord Read(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetInt64(3));
}
