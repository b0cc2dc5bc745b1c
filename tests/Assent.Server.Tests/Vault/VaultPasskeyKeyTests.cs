using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Vault;
using Assent.Protocol.WebAuthn;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Assent.Server.Tests.Passkeys;
using Assent.Server.Vault;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Tests.Vault;

/// <summary>
/// The web app registers its WebCrypto key with a passkey assertion whose challenge is SHA-256 of the key proof (docs/vault.md §1,
/// §6). The handler is called as the web session scheme hands it the caller.
/// </summary>
public sealed class VaultPasskeyKeyTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private readonly TestAuthenticator _passkey = TestAuthenticator.Create("ES256");
    private Approver _approver = null!;
    private const string DeviceId = "dev_passkey";

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(configure: o =>
        {
            o.WebAuthnOrigins = [TestAuthenticator.Origin];
            o.WebAuthnRpId = TestAuthenticator.RpId;
        });
        var invite = await _server.InviteAsync("webby");
        var now = _server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await _server.Store.Devices.AddAsync(new DeviceRecord(DeviceId, invite.UserId, DeviceKinds.WebAuthn, "laptop", _passkey.PublicJwk, _passkey.CredentialId, 0, now, null),
            new AuditEvent(AuditTypes.DeviceEnrolled, invite.UserId, DeviceId, DeviceId), default);
        var user = (await _server.Store.Users.FindAsync(invite.UserId, default))!;
        _approver = new Approver(user, DeviceId, new WebSessionRecord([1], user.Id, DeviceId, now, now + 60_000));
    }

    public async Task DisposeAsync()
    {
        _passkey.Dispose();
        await _server.DisposeAsync();
    }

    private async Task<int?> RegisterAsync(object body)
    {
        var http = new DefaultHttpContext();
        http.Request.ContentType = "application/json";
        http.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(body)));
        var result = await VaultEndpoints.RegisterKeyAsync(http.Request, _approver, _server.Service<IVaultStore>(), _server.Service<IDeviceStore>(),
            _server.Service<IdentityDirectory>(), _server.Service<PasskeyCeremonies>(), _server.Service<ApprovalService>(), _server.Options, _server.Clock, default);
        return (result as Microsoft.AspNetCore.Http.IStatusCodeHttpResult)?.StatusCode;
    }

    private Dictionary<string, string> Assertion(byte[] publicKey, string proofDevice, uint signCount,
        AuthenticatorFlags flags = AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified)
    {
        var challenge = SHA256.HashData(VaultFormat.KeyProofMessage(_approver.User.Id, proofDevice, publicKey));
        var authenticatorData = _passkey.AuthenticatorData(flags, signCount);
        var clientData = TestAuthenticator.ClientDataJson("webauthn.get", challenge);
        return new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(publicKey),
            ["credential_id"] = Base64Url.Encode(_passkey.CredentialId),
            ["authenticator_data"] = Base64Url.Encode(authenticatorData),
            ["client_data_json"] = Base64Url.Encode(clientData),
            ["signature"] = Base64Url.Encode(_passkey.SignCeremony(authenticatorData, clientData)),
        };
    }

    [Fact]
    public async Task A_passkey_assertion_over_the_proofs_hash_registers_the_key_and_is_served_as_its_proof()
    {
        var publicKey = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var body = Assertion(publicKey, DeviceId, 1);
        Assert.Equal(StatusCodes.Status201Created, await RegisterAsync(body));
        var key = Assert.Single(await _server.Service<IVaultStore>().ListKeysAsync(_approver.User.Id, default));
        Assert.Equal((VaultFormat.KeyId(publicKey), DeviceId, DeviceId), (key.Kid, key.DeviceId, key.SignerDeviceId));
        Assert.Equal(body["authenticator_data"], Base64Url.Encode(key.AuthenticatorData!));
        Assert.Equal(body["client_data_json"], Base64Url.Encode(key.ClientDataJson!));
        Assert.Equal(1, (await _server.Store.Devices.FindAsync(DeviceId, default))!.SignCount);
    }

    [Fact]
    public async Task An_assertion_over_another_proof_without_user_verification_replayed_or_a_bare_signature_registers_nothing()
    {
        var publicKey = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        // Over a proof naming another device, or another key.
        Assert.Equal(StatusCodes.Status401Unauthorized, await RegisterAsync(Assertion(publicKey, "dev_other", 1)));
        var other = Assertion(X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey()), DeviceId, 2);
        other["public_key"] = Base64Url.Encode(publicKey);
        Assert.Equal(StatusCodes.Status401Unauthorized, await RegisterAsync(other));
        Assert.Equal(StatusCodes.Status401Unauthorized, await RegisterAsync(Assertion(publicKey, DeviceId, 3, AuthenticatorFlags.UserPresent)));
        // A web session cannot prove a key with a device signature.
        Assert.Equal(StatusCodes.Status400BadRequest, await RegisterAsync(new Dictionary<string, string>
        {
            ["public_key"] = Base64Url.Encode(publicKey), ["signature"] = Base64Url.Encode(new byte[64]),
        }));
        Assert.Empty(await _server.Service<IVaultStore>().ListKeysAsync(_approver.User.Id, default));

        var good = Assertion(publicKey, DeviceId, 5);
        Assert.Equal(StatusCodes.Status201Created, await RegisterAsync(good));
        // The same assertion again: its counter does not advance.
        var next = X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey());
        var replay = Assertion(next, DeviceId, 5);
        Assert.Equal(StatusCodes.Status401Unauthorized, await RegisterAsync(replay));
        Assert.Single(await _server.Service<IVaultStore>().ListKeysAsync(_approver.User.Id, default));
    }
}
