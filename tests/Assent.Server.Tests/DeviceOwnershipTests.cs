using System.Net;
using Assent.Protocol;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>A user manages only their own devices, through the device API and the web app alike (docs/http-api.md §10.5).</summary>
[Collection(SharedServerCollection.Name)]
public sealed class DeviceOwnershipTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    /// <summary>A web app session for the device's user, as a passkey sign-in would open it.</summary>
    private async Task<string> WebSessionCookieAsync(TestDevice device)
    {
        var token = Ids.OrderedHandle(Server.Clock.GetUtcNow());
        var now = Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await Server.Store.Sessions.CreateWebSessionAsync(new WebSessionRecord(Ids.HandleKey(token), device.UserId, device.DeviceId, now, now + 600_000), now,
            new AuditEvent(AuditTypes.SessionCreated, device.UserId, device.DeviceId, device.UserId), default);
        return $"{Server.Options.SessionCookieName}={token}";
    }

    private HttpRequestMessage WithCookie(HttpMethod method, string path, string cookie, object? body = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = body is null ? null : TestDevice.JsonBody(body) };
        request.Headers.Add("Cookie", cookie);
        return request;
    }

    private async Task AssertUntouchedAsync(TestDevice victim)
    {
        var stored = (await Server.Store.Devices.FindAsync(victim.DeviceId, default))!;
        Assert.True(stored.Active);
        Assert.Equal("test device", stored.Name);
        await victim.PendingAsync(); // still signs in: asserts 200 itself
        var entries = await Server.Store.Audit.ReadAsync(0, 10_000, null, default);
        Assert.DoesNotContain(entries, r => System.Text.Encoding.UTF8.GetString(r.Entry) is var e &&
            e.Contains($"\"subject\":\"{victim.DeviceId}\"", StringComparison.Ordinal) &&
            (e.Contains(AuditTypes.DeviceRevoked, StringComparison.Ordinal) || e.Contains(AuditTypes.DeviceRenamed, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_signed_device_request_cannot_revoke_or_rename_another_users_device()
    {
        var alice = await Server.UserWithDeviceAsync();
        var bob = await Server.UserWithDeviceAsync();

        var body = System.Text.Encoding.UTF8.GetBytes("{\"name\":\"taken\"}");
        using (var rename = await Server.Http.SendAsync(alice.Signed(HttpMethod.Patch, $"/authenticator/devices/{bob.DeviceId}", body)))
        {
            Assert.Equal(HttpStatusCode.NotFound, rename.StatusCode);
        }
        using (var revoke = await Server.Http.SendAsync(alice.Signed(HttpMethod.Delete, $"/authenticator/devices/{bob.DeviceId}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, revoke.StatusCode);
        }

        await AssertUntouchedAsync(bob);
    }

    [Fact]
    public async Task A_web_app_session_cannot_revoke_or_rename_another_users_device()
    {
        var alice = await Server.UserWithDeviceAsync();
        var bob = await Server.UserWithDeviceAsync();
        var cookie = await WebSessionCookieAsync(alice);
        using (var own = await Server.Http.SendAsync(WithCookie(HttpMethod.Get, "/webauthn/devices", cookie)))
        {
            Assert.Equal(HttpStatusCode.OK, own.StatusCode); // the session is good: what follows is refused for ownership alone
        }

        using (var rename = await Server.Http.SendAsync(WithCookie(HttpMethod.Patch, $"/webauthn/devices/{bob.DeviceId}", cookie, new { name = "taken" })))
        {
            Assert.Equal(HttpStatusCode.NotFound, rename.StatusCode);
        }
        using (var revoke = await Server.Http.SendAsync(WithCookie(HttpMethod.Delete, $"/webauthn/devices/{bob.DeviceId}", cookie)))
        {
            Assert.Equal(HttpStatusCode.NotFound, revoke.StatusCode);
        }

        await AssertUntouchedAsync(bob);
    }
}
