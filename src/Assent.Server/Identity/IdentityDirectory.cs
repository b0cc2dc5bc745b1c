using Assent.Protocol.Did;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Identity;

/// <summary>
/// Users and devices as the hot paths read them: every CIBA request names a user, every device
/// request and decision names a device. Both are cached briefly (see <see cref="TtlCache{T}"/>).
/// Nothing here is the last word on revocation: a decision's own transaction refuses a revoked
/// device, and a device revoked through this node is forgotten at once; another node's cache
/// lets a revoked device read its pending list for at most <see cref="DeviceLifetime"/>.
/// </summary>
internal sealed class IdentityDirectory(IUserStore users, IDeviceStore devices, AssentOptions options, TimeProvider time)
{
    public static readonly TimeSpan UserLifetime = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DeviceLifetime = TimeSpan.FromSeconds(2);

    private readonly TtlCache<UserRecord> _users = new(time, UserLifetime);
    private readonly TtlCache<UserRecord> _handles = new(time, UserLifetime);
    private readonly TtlCache<DeviceRecord> _devices = new(time, DeviceLifetime);

    public ValueTask<UserRecord?> FindUserAsync(string userId, CancellationToken ct) => _users.GetAsync(userId, users.FindAsync, ct);

    public ValueTask<UserRecord?> FindUserByHandleAsync(string handle, CancellationToken ct) => _handles.GetAsync(handle, users.FindByHandleAsync, ct);

    /// <summary>The user a <c>login_hint</c> names: their DID on this server, or their handle (docs/concepts.md §1).</summary>
    public async ValueTask<UserRecord?> FindByHintAsync(string hint, CancellationToken ct)
    {
        if (hint.StartsWith(DidWeb.Prefix, StringComparison.Ordinal))
        {
            return DidWeb.TryGetUserId(hint, out var userId) && DidWeb.ForUser(options.IssuerUri, userId) == hint
                ? await FindUserAsync(userId, ct)
                : null;
        }
        return hint.Length <= Naming.MaxHandleLength ? await FindUserByHandleAsync(hint, ct) : null;
    }

    /// <summary>A device by id. Its key never changes; its name, revocation and passkey counter may be up to <see cref="DeviceLifetime"/> old.</summary>
    public ValueTask<DeviceRecord?> FindDeviceAsync(string deviceId, CancellationToken ct) => _devices.GetAsync(deviceId, devices.FindAsync, ct);

    /// <summary>Call after renaming or revoking a device here.</summary>
    public void ForgetDevice(string deviceId) => _devices.Forget(deviceId);
}
