using System.Net;
using Assent.Protocol;
using Assent.Protocol.WebAuthn;
using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Tests.Passkeys;

namespace Assent.Server.Tests;

/// <summary>
/// A passkey whose authenticator did not verify the user (UV flag off) can neither be registered nor sign in,
/// whatever attestation the server accepts (docs/concepts.md: every approval needs user verification).
/// </summary>
public sealed class PasskeyUserVerificationTests
{
    private static async Task<TestServer> StartAsync(string attestation)
    {
        if (attestation == WebAuthnAttestationModes.None)
        {
            return await TestServer.StartAsync();
        }
        using var ca = new TestAttestationCa();
        var root = ca.WriteRoot();
        return await TestServer.StartAsync(configure: o =>
        {
            o.WebAuthnAttestation = WebAuthnAttestationModes.Trusted;
            o.WebAuthnTrustedRoots = [root];
        });
    }

    private static byte[] ClientDataFor(TestServer server, string type, byte[] challenge) =>
        TestAuthenticator.ClientDataJson(type, challenge, server.BaseUri.GetLeftPart(UriPartial.Authority));

    private static async Task<byte[]> ChallengeAsync(TestServer server, string path, object body)
    {
        using var options = await server.Http.PostAsync(path, TestDevice.JsonBody(body));
        var (status, json) = await TestServer.ReadAsync(options);
        Assert.True(status == HttpStatusCode.OK, json.ToString());
        return Base64Url.Decode(json.GetProperty("challenge").GetString()!);
    }

    private static async Task<HttpResponseMessage> RegisterAsync(TestServer server, TestAuthenticator passkey, string code, AuthenticatorFlags flags)
    {
        var challenge = await ChallengeAsync(server, "/webauthn/register/options", new { code });
        var authData = passkey.AuthenticatorData(flags, signCount: 0, attested: true, rpId: server.Options.RpId);
        return await server.Http.PostAsync("/webauthn/register", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["client_data_json"] = Base64Url.Encode(ClientDataFor(server, ClientData.TypeCreate, challenge)),
            ["attestation_object"] = Base64Url.Encode(TestAuthenticator.NoneAttestation(authData)),
            ["name"] = "key",
        }));
    }

    [Theory]
    [InlineData(WebAuthnAttestationModes.None)]
    [InlineData(WebAuthnAttestationModes.Trusted)]
    public async Task Registering_a_passkey_without_user_verification_is_refused_whatever_attestation_is_accepted(string attestation)
    {
        await using var server = await StartAsync(attestation);
        using var passkey = TestAuthenticator.Create("ES256");
        var invite = await server.InviteAsync("uvreg");

        using var response = await RegisterAsync(server, passkey, invite.Code, AuthenticatorFlags.UserPresent);

        var (status, body) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(WebAuthnFailures.UserNotVerified, body.GetProperty("detail").GetString());
        Assert.False(response.Headers.Contains("Set-Cookie"));
        Assert.Null(await server.Store.Devices.FindByCredentialIdAsync(passkey.CredentialId, default));
    }

    [Fact]
    public async Task Signing_in_with_a_passkey_without_user_verification_is_refused()
    {
        await using var server = await TestServer.StartAsync();
        using var passkey = TestAuthenticator.Create("EdDSA");
        var invite = await server.InviteAsync("uvsignin");
        using (var registered = await RegisterAsync(server, passkey, invite.Code, AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified))
        {
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        }

        async Task<HttpResponseMessage> SignInAsync(AuthenticatorFlags flags, uint signCount)
        {
            var challenge = await ChallengeAsync(server, "/webauthn/signin/options", new { });
            var authData = passkey.AuthenticatorData(flags, signCount: signCount, rpId: server.Options.RpId);
            var clientData = ClientDataFor(server, ClientData.TypeGet, challenge);
            return await server.Http.PostAsync("/webauthn/signin", TestDevice.JsonBody(new Dictionary<string, string>
            {
                ["credential_id"] = Base64Url.Encode(passkey.CredentialId), ["authenticator_data"] = Base64Url.Encode(authData),
                ["client_data_json"] = Base64Url.Encode(clientData), ["signature"] = Base64Url.Encode(passkey.SignCeremony(authData, clientData)),
            }));
        }

        using (var unverified = await SignInAsync(AuthenticatorFlags.UserPresent, 1))
        {
            var (status, body) = await TestServer.ReadAsync(unverified);
            Assert.Equal(HttpStatusCode.Unauthorized, status);
            Assert.Contains(WebAuthnFailures.UserNotVerified, body.GetProperty("detail").GetString());
            Assert.False(unverified.Headers.Contains("Set-Cookie"));
        }
        // The same passkey, verifying its user, signs in: only the flag was wrong.
        using var verified = await SignInAsync(AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified, 2);
        Assert.Equal(HttpStatusCode.OK, verified.StatusCode);
        Assert.True(verified.Headers.Contains("Set-Cookie"));
    }
}
