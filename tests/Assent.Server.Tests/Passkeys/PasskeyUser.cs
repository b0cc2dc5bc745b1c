using Assent.Server.Storage;

namespace Assent.Server.Tests.Passkeys;

/// <summary>A server of its own with one user whose only device is an ES256 passkey, stored directly (no ceremony).</summary>
internal sealed record PasskeyUser(TestServer Server, TestAuthenticator Passkey, string UserId, string DeviceId) : IAsyncDisposable
{
    public static async Task<PasskeyUser> StartAsync(string handlePrefix)
    {
        var server = await TestServer.StartAsync();
        var passkey = TestAuthenticator.Create("ES256");
        var invite = await server.InviteAsync(handlePrefix + Guid.NewGuid().ToString("N")[..8]);
        var deviceId = "dev_" + Guid.NewGuid().ToString("N")[..12];
        await server.Store.Devices.AddAsync(new DeviceRecord(deviceId, invite.UserId, DeviceKinds.WebAuthn, "key", passkey.PublicJwk, passkey.CredentialId, 0,
            server.Clock.GetUtcNow().ToUnixTimeMilliseconds(), null), new AuditEvent(AuditTypes.DeviceEnrolled, invite.UserId, deviceId, deviceId), default);
        return new PasskeyUser(server, passkey, invite.UserId, deviceId);
    }

    public async ValueTask DisposeAsync()
    {
        Passkey.Dispose();
        await Server.DisposeAsync();
    }
}
