using System.Net;
using Assent.Protocol;
using Assent.Protocol.WebAuthn;
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

    /// <summary>A new challenge from <c>POST /webauthn/signin/options</c> (docs/http-api.md §12.3).</summary>
    public async Task<byte[]> SignInChallengeAsync()
    {
        using var options = await Server.Http.PostAsync("/webauthn/signin/options", TestDevice.JsonBody(new { }));
        var (status, json) = await TestServer.ReadAsync(options);
        Assert.Equal(HttpStatusCode.OK, status);
        return Base64Url.Decode(json.GetProperty("challenge").GetString()!);
    }

    /// <summary>The body of <c>POST /webauthn/signin</c>: this passkey's assertion over <paramref name="challenge"/>, at this server's RP ID and origin.</summary>
    public Dictionary<string, string> Assertion(byte[] challenge, uint signCount = 0, bool corrupt = false)
    {
        var authData = Passkey.AuthenticatorData(signCount: signCount, rpId: Server.Options.RpId);
        var clientData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, challenge, Server.BaseUri.GetLeftPart(UriPartial.Authority));
        var signature = Passkey.SignCeremony(authData, clientData);
        if (corrupt)
        {
            signature[^1] ^= 1;
        }
        return new Dictionary<string, string>
        {
            ["credential_id"] = Base64Url.Encode(Passkey.CredentialId), ["authenticator_data"] = Base64Url.Encode(authData),
            ["client_data_json"] = Base64Url.Encode(clientData), ["signature"] = Base64Url.Encode(signature),
        };
    }

    public async ValueTask DisposeAsync()
    {
        Passkey.Dispose();
        await Server.DisposeAsync();
    }
}
