using Assent.Server.Hosting;
using Assent.Server.Storage;

namespace Assent.Server.Users;

/// <summary>
/// Users and devices as the hot paths read them: every CIBA request names a user, every device
/// request and decision names a device. Both are cached briefly (see <see cref="TtlCache{T}"/>).
/// Nothing here is the last word on revocation: a decision's own transaction refuses a revoked
/// device, and a device revoked through this node is forgotten at once; another node's cache
/// lets a revoked device read its pending list for at most <see cref="DeviceLifetime"/>.
/// </summary>
internal sealed class IdentityDirectory(IAssentStore store, TimeProvider time)
{
    public static readonly TimeSpan UserLifetime = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DeviceLifetime = TimeSpan.FromSeconds(2);

    private readonly TtlCache<UserRecord> _users = new(time, UserLifetime);
    private readonly TtlCache<UserRecord> _handles = new(time, UserLifetime);
    private readonly TtlCache<DeviceRecord> _devices = new(time, DeviceLifetime);

    public ValueTask<UserRecord?> FindUserAsync(string userId, CancellationToken ct) => _users.GetAsync(userId, store.FindUserAsync, ct);

    public ValueTask<UserRecord?> FindUserByHandleAsync(string handle, CancellationToken ct) => _handles.GetAsync(handle, store.FindUserByHandleAsync, ct);

    /// <summary>A device by id. Its key never changes; its name, revocation and passkey counter may be up to <see cref="DeviceLifetime"/> old.</summary>
    public ValueTask<DeviceRecord?> FindDeviceAsync(string deviceId, CancellationToken ct) => _devices.GetAsync(deviceId, store.FindDeviceAsync, ct);

    /// <summary>Call after renaming or revoking a device here.</summary>
    public void ForgetDevice(string deviceId) => _devices.Forget(deviceId);

    /// <summary>Call after changing a user here (e.g. an invite that makes them an admin).</summary>
    public void ForgetUsers()
    {
        _users.Clear();
        _handles.Clear();
    }
}
