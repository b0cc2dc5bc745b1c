using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.WebAuthn;
using Assent.Server.Approvals;
using Assent.Server.Storage;
using Assent.Server.Tests.Passkeys;

namespace Assent.Server.Tests;

/// <summary>
/// The passkey decision path against one real decision recorded from Chromium's virtual
/// authenticator (Ed25519 passkey, UP+UV, sign count 2) by the web suite
/// (ASSENT_RECORD_FIXTURE=path dotnet test tests/Assent.Web.Tests).
/// </summary>
public sealed class PasskeyDecisionTests
{
    private static class Recorded
    {
        public const string Origin = "http://localhost:36087";
        public const string ApprovalId = "apr_cGw6a53ZT4uuxwJ2";
        public const string CredentialId = "pv-lwoXsNnWfe7edvKoAQ6Vpagg31tRwzmgwnVFH9ps";
        public const string PublicJwk = """{"kty":"OKP","crv":"Ed25519","x":"8-b61zbAscJSI7UK8OuDobThOsXb498N1aQ4oYpCizU"}""";
        public const string Payload = "eyJ2IjoxLCJpc3MiOiJodHRwOi8vbG9jYWxob3N0OjM2MDg3IiwicmVxIjoiYXByX2NHdzZhNTNaVDR1dXh3SjIiLCJzdWIiOiJkaWQ6d2ViOmxvY2FsaG9zdCUzQTM2MDg3OnVzZXJzOnVzcl8xUEZ0SURqbFkteFZLZEJvIiwiY2xpZW50X2lkIjoiYWd0XzlMclhiN0ctX0NyVTJzMjIiLCJjbGllbnRfbmFtZSI6IlRlc3QgYWdlbnQiLCJzY29wZSI6Im9wZW5pZCBwYXltZW50czp3cml0ZSIsImJpbmRpbmdfbWVzc2FnZSI6IlBheSBBQ01FIEdtYkggXHUwMDNDYlx1MDAzRWludm9pY2VcdTAwM0MvYlx1MDAzRSA0MiIsImF1dGhvcml6YXRpb25fZGV0YWlscyI6W3sidHlwZSI6InBheW1lbnQiLCJhbW91bnQiOiIxMjUuMDAiLCJjdXJyZW5jeSI6IlVTRCIsInJlY2lwaWVudCI6IkFDTUUgR21iSCJ9XSwiaWF0IjoxNzk1MzIyOTU1LCJleHAiOjE3OTUzMjMyNTUsIm5vbmNlIjoiRGgxZF9DVy1tQ2VqVU1vUnRSUzZvQSJ9";
        public const string Signature = "eIigRIVNk1rT3DHShkFavsiO06Kg8JFiTE-qZM-ZVL3SCIsa2BK0gE4aMBlBvKE9LJkJ9_cAeY9GEPicMbg6Dw";
        public const string AuthenticatorData = "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAg";
        public const string ClientDataJson = "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiNUJKcTZfdmpHWGItTWJjMUJqUzV0clEwYVR5NzhOMWxNeE5rellTNXZlRSIsIm9yaWdpbiI6Imh0dHA6Ly9sb2NhbGhvc3Q6MzYwODciLCJjcm9zc09yaWdpbiI6ZmFsc2V9";
    }

    private sealed record Setup(TestServer Server, string UserId, string DeviceId);

    /// <summary>A server that accepts the recorded origin, holding the recorded passkey and request.</summary>
    private static async Task<Setup> RecordedAsync(long storedSignCount = 1, string? origin = Recorded.Origin)
    {
        var server = await TestServer.StartAsync(configure: o => o.WebAuthnOrigins = origin is null ? null : [origin]);
        var invite = await server.InviteAsync("fixture");
        var now = server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var deviceId = "dev_recorded";
        await server.Store.Devices.AddAsync(new DeviceRecord(deviceId, invite.UserId, DeviceKinds.WebAuthn, "recorded", Recorded.PublicJwk,
            Base64Url.Decode(Recorded.CredentialId), storedSignCount, now, null), new AuditEvent(AuditTypes.DeviceEnrolled, invite.UserId, deviceId, deviceId), default);
        await server.Store.Approvals.CreateAsync(new ApprovalRecord(Recorded.ApprovalId, [1, 2, 3], ApprovalKinds.Ciba, "agt_9LrXb7G-_CrU2s22", invite.UserId,
            "openid payments:write", "Pay ACME GmbH <b>invoice</b> 42", null, null, Base64Url.Decode(Recorded.Payload), ApprovalState.Pending, now, now + 300_000),
            new AuditEvent(AuditTypes.ApprovalCreated, invite.UserId, "test", Recorded.ApprovalId), default);
        return new Setup(server, invite.UserId, deviceId);
    }

    private static Task<DecideOutcome> DecideAsync(TestServer server, string decision = "approve", string authenticatorData = Recorded.AuthenticatorData,
        string clientDataJson = Recorded.ClientDataJson, string signature = Recorded.Signature) =>
        server.Service<ApprovalService>().DecideAsync(Recorded.ApprovalId, new AssertionProof(null, Base64Url.Decode(Recorded.CredentialId), decision,
            Base64Url.Decode(authenticatorData), Base64Url.Decode(clientDataJson), Base64Url.Decode(signature)), default);

    private static async Task AssertPendingAsync(TestServer server)
    {
        var approval = await server.Store.Approvals.FindAsync(Recorded.ApprovalId, default);
        Assert.Equal(ApprovalState.Pending, approval!.State);
        Assert.Empty(await server.Store.Approvals.ListDecisionsAsync(Recorded.ApprovalId, default));
    }

    [Fact]
    public async Task A_recorded_passkey_assertion_approves_and_becomes_webauthn_evidence()
    {
        var (server, _, deviceId) = await RecordedAsync();
        await using var _ = server;
        var outcome = await DecideAsync(server);
        Assert.Equal(DecideStatus.Decided, outcome.Status);
        var approval = await server.Store.Approvals.FindAsync(Recorded.ApprovalId, default);
        Assert.Equal(ApprovalState.Approved, approval!.State);
        var evidence = JsonDocument.Parse(Assert.Single(await server.Store.Approvals.ListDecisionsAsync(Recorded.ApprovalId, default)).Evidence).RootElement;
        Assert.Equal("webauthn", evidence.GetProperty("kind").GetString());
        Assert.Equal(Recorded.AuthenticatorData, evidence.GetProperty("authenticator_data").GetString());
        Assert.Equal(Recorded.ClientDataJson, evidence.GetProperty("client_data_json").GetString());
        Assert.Equal(Recorded.Signature, evidence.GetProperty("sig").GetString());
        Assert.Equal(Recorded.Payload, evidence.GetProperty("payload").GetString());
        Assert.Equal(2, (await server.Store.Devices.FindAsync(deviceId, default))!.SignCount);
        // Posted again: already decided, nothing verified, nothing changed.
        Assert.Equal(DecideStatus.AlreadyDecided, (await DecideAsync(server)).Status);
    }

    [Fact]
    public async Task The_recorded_approve_assertion_cannot_deny()
    {
        var (server, _, _) = await RecordedAsync();
        await using var _ = server;
        var outcome = await DecideAsync(server, decision: "deny");
        Assert.Equal(DecideStatus.AssertionRefused, outcome.Status);
        Assert.StartsWith("challenge_mismatch", outcome.Detail);
        await AssertPendingAsync(server);
    }

    [Fact]
    public async Task An_assertion_from_an_origin_not_allowed_is_refused()
    {
        var (server, _, _) = await RecordedAsync(origin: null);
        await using var _ = server;
        var outcome = await DecideAsync(server);
        Assert.StartsWith("origin_not_allowed", outcome.Detail);
        await AssertPendingAsync(server);
    }

    [Fact]
    public async Task A_tampered_authenticator_data_or_signature_is_refused()
    {
        var (server, _, _) = await RecordedAsync();
        await using var _ = server;
        var data = Base64Url.Decode(Recorded.AuthenticatorData);
        data[32] &= 0xFB; // clear UV
        Assert.StartsWith("user_not_verified", (await DecideAsync(server, authenticatorData: Base64Url.Encode(data))).Detail);
        var sig = Base64Url.Decode(Recorded.Signature);
        sig[5] ^= 1;
        Assert.StartsWith("invalid_signature", (await DecideAsync(server, signature: Base64Url.Encode(sig))).Detail);
        await AssertPendingAsync(server);
    }

    [Fact]
    public async Task A_signature_counter_that_does_not_advance_is_refused_and_audited()
    {
        var (server, userId, deviceId) = await RecordedAsync(storedSignCount: 2);
        await using var _ = server;
        var outcome = await DecideAsync(server);
        Assert.Equal(DecideStatus.AssertionRefused, outcome.Status);
        Assert.StartsWith("sign_count_regression", outcome.Detail);
        await AssertPendingAsync(server);
        var audit = await server.Store.Audit.ReadAsync(0, 100, userId, default);
        var last = JsonDocument.Parse(audit[^1].Entry).RootElement;
        Assert.Contains(AuditTypes.DeviceSignCountRegression, last.GetRawText());
        Assert.Contains(deviceId, last.GetRawText());
    }

    [Fact]
    public async Task A_revoked_passkey_decides_nothing()
    {
        var (server, userId, deviceId) = await RecordedAsync();
        await using var _ = server;
        await server.Store.Devices.TryRevokeAsync(deviceId, userId, server.Clock.GetUtcNow().ToUnixTimeMilliseconds(),
            new AuditEvent(AuditTypes.DeviceRevoked, userId, deviceId, deviceId), default);
        Assert.Equal(DecideStatus.RevokedDevice, (await DecideAsync(server)).Status);
        await AssertPendingAsync(server);
    }

    [Fact]
    public async Task The_authenticator_decision_endpoint_takes_a_passkey_assertion_too()
    {
        var (server, _, deviceId) = await RecordedAsync();
        await using var _ = server;
        using var bad = await server.Http.PostAsync($"/webauthn/approvals/{Recorded.ApprovalId}/decision", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["decision"] = "approve", ["credential_id"] = Recorded.CredentialId, ["authenticator_data"] = "not base64url!",
            ["client_data_json"] = Recorded.ClientDataJson, ["signature"] = Recorded.Signature,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using var response = await server.Http.PostAsync($"/authenticator/approvals/{Recorded.ApprovalId}/decision", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["device_id"] = deviceId, ["decision"] = "approve", ["signature"] = Recorded.Signature,
            ["authenticator_data"] = Recorded.AuthenticatorData, ["client_data_json"] = Recorded.ClientDataJson,
        }));
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("approved", body.GetProperty("state").GetString());
    }
}

/// <summary>
/// The signature counter (WebAuthn L3 §6.1.1) at the server: when the stored or the new counter is
/// nonzero and the new one is not greater, the assertion is refused and audited as
/// sign_count_regression, for decisions and for sign-in alike; a passkey that always reports 0 keeps working.
/// </summary>
public sealed class PasskeySignCountTests
{
    private sealed record Setup(TestServer Server, TestAuthenticator Passkey, string UserId, string DeviceId) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Passkey.Dispose();
            await Server.DisposeAsync();
        }
    }

    private static async Task<Setup> PasskeyAsync()
    {
        var server = await TestServer.StartAsync();
        var passkey = TestAuthenticator.Create("ES256");
        var invite = await server.InviteAsync("counter" + Guid.NewGuid().ToString("N")[..8]);
        var deviceId = "dev_" + Guid.NewGuid().ToString("N")[..12];
        await server.Store.Devices.AddAsync(new DeviceRecord(deviceId, invite.UserId, DeviceKinds.WebAuthn, "key", passkey.PublicJwk, passkey.CredentialId, 0,
            server.Clock.GetUtcNow().ToUnixTimeMilliseconds(), null), new AuditEvent(AuditTypes.DeviceEnrolled, invite.UserId, deviceId, deviceId), default);
        return new Setup(server, passkey, invite.UserId, deviceId);
    }

    /// <summary>A pending request, and the passkey's approval of it signed with <paramref name="signCount"/>, posted to the web app's endpoint.</summary>
    private static async Task<HttpResponseMessage> ApproveAsync(Setup s, uint signCount, (string Id, byte[] Payload)? pending = null)
    {
        var (id, payload) = pending ?? await PendingAsync(s);
        var challenge = SHA256.HashData(ApprovalPayload.SigningInput(Decisions.Approve, payload));
        return await s.Server.Http.PostAsync($"/webauthn/approvals/{id}/decision", TestDevice.JsonBody(Assertion(s, signCount, challenge, Decisions.Approve)));
    }

    private static async Task<(string Id, byte[] Payload)> PendingAsync(Setup s)
    {
        var now = s.Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var id = "apr_" + Guid.NewGuid().ToString("N")[..16];
        var payload = RandomNumberGenerator.GetBytes(48);
        await s.Server.Store.Approvals.CreateAsync(new ApprovalRecord(id, RandomNumberGenerator.GetBytes(32), ApprovalKinds.Ciba, "agt_test", s.UserId,
            "openid", "counter test", null, null, payload, ApprovalState.Pending, now, now + 300_000),
            new AuditEvent(AuditTypes.ApprovalCreated, s.UserId, "test", id), default);
        return (id, payload);
    }

    private static async Task<HttpResponseMessage> SignInAsync(Setup s, uint signCount)
    {
        using var options = await s.Server.Http.PostAsync("/webauthn/signin/options", TestDevice.JsonBody(new { }));
        var (_, body) = await TestServer.ReadAsync(options);
        var challenge = Base64Url.Decode(body.GetProperty("challenge").GetString()!);
        return await s.Server.Http.PostAsync("/webauthn/signin", TestDevice.JsonBody(Assertion(s, signCount, challenge)));
    }

    private static Dictionary<string, string> Assertion(Setup s, uint signCount, byte[] challenge, string? decision = null)
    {
        var authData = s.Passkey.AuthenticatorData(signCount: signCount, rpId: s.Server.Options.RpId);
        var clientData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, challenge, s.Server.BaseUri.GetLeftPart(UriPartial.Authority));
        var body = new Dictionary<string, string>
        {
            ["credential_id"] = Base64Url.Encode(s.Passkey.CredentialId), ["authenticator_data"] = Base64Url.Encode(authData),
            ["client_data_json"] = Base64Url.Encode(clientData), ["signature"] = Base64Url.Encode(s.Passkey.SignCeremony(authData, clientData)),
        };
        if (decision is not null)
        {
            body["decision"] = decision;
        }
        return body;
    }

    private static async Task<long> StoredCountAsync(Setup s) => (await s.Server.Store.Devices.FindAsync(s.DeviceId, default))!.SignCount;

    private static async Task<int> RegressionsAuditedAsync(Setup s) =>
        (await s.Server.Store.Audit.ReadAsync(0, 1000, s.UserId, default)).Count(r => System.Text.Encoding.UTF8.GetString(r.Entry).Contains(AuditTypes.DeviceSignCountRegression, StringComparison.Ordinal));

    [Fact]
    public async Task A_decision_whose_counter_falls_back_to_zero_after_five_is_refused_and_audited()
    {
        await using var s = await PasskeyAsync();

        using var five = await ApproveAsync(s, 5);
        using var zero = await ApproveAsync(s, 0);

        Assert.Equal(HttpStatusCode.OK, five.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, zero.StatusCode);
        Assert.Contains(WebAuthnFailures.SignCountRegression, await zero.Content.ReadAsStringAsync());
        Assert.Equal(5, await StoredCountAsync(s));
        Assert.Equal(1, await RegressionsAuditedAsync(s));
    }

    [Fact]
    public async Task A_passkey_that_always_reports_zero_decides_twice()
    {
        await using var s = await PasskeyAsync();

        using var first = await ApproveAsync(s, 0);
        using var second = await ApproveAsync(s, 0);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(0, await StoredCountAsync(s));
        Assert.Equal(0, await RegressionsAuditedAsync(s));
    }

    [Fact]
    public async Task A_sign_in_whose_counter_falls_back_to_zero_after_five_is_refused_and_audited()
    {
        await using var s = await PasskeyAsync();

        using var five = await SignInAsync(s, 5);
        using var zero = await SignInAsync(s, 0);
        using var same = await SignInAsync(s, 5);

        Assert.Equal(HttpStatusCode.OK, five.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, zero.StatusCode);
        Assert.Contains(WebAuthnFailures.SignCountRegression, await zero.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, same.StatusCode);
        Assert.Equal(5, await StoredCountAsync(s));
        Assert.Equal(2, await RegressionsAuditedAsync(s));
    }

    [Fact]
    public async Task Garbage_posted_to_the_passkey_endpoints_gets_a_4xx_never_a_500()
    {
        await using var s = await PasskeyAsync();
        var random = new Random(7);
        byte[] Bytes(int max)
        {
            var bytes = new byte[random.Next(1, max)];
            random.NextBytes(bytes);
            return bytes;
        }
        var invite = await s.Server.InviteAsync("garbage");
        var pending = await PendingAsync(s);
        for (var i = 0; i < 20; i++)
        {
            using var options = await s.Server.Http.PostAsync("/webauthn/register/options", TestDevice.JsonBody(new { code = invite.Code }));
            var (_, body) = await TestServer.ReadAsync(options);
            var challenge = Base64Url.Decode(body.GetProperty("challenge").GetString()!);
            var createData = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, challenge, s.Server.BaseUri.GetLeftPart(UriPartial.Authority));
            using var register = await s.Server.Http.PostAsync("/webauthn/register", TestDevice.JsonBody(new Dictionary<string, string>
            {
                ["client_data_json"] = Base64Url.Encode(createData), ["attestation_object"] = Base64Url.Encode(Bytes(400)),
            }));
            Assert.Equal(HttpStatusCode.BadRequest, register.StatusCode);

            var assertion = Assertion(s, 1, Bytes(40));
            assertion["authenticator_data"] = Base64Url.Encode(Bytes(80));
            assertion["signature"] = Base64Url.Encode(Bytes(80));
            using var signIn = await s.Server.Http.PostAsync("/webauthn/signin", TestDevice.JsonBody(assertion));
            Assert.Equal(HttpStatusCode.Unauthorized, signIn.StatusCode);
            assertion["decision"] = Decisions.Approve;
            assertion["client_data_json"] = Base64Url.Encode(Bytes(200));
            using var decide = await s.Server.Http.PostAsync($"/webauthn/approvals/{pending.Id}/decision", TestDevice.JsonBody(assertion));
            Assert.InRange((int)decide.StatusCode, 400, 499);
        }
        // Nothing was decided or counted: the real approval still goes through.
        using var approve = await ApproveAsync(s, 1, pending);
        Assert.Equal(HttpStatusCode.OK, approve.StatusCode);
    }

    [Fact]
    public async Task A_passkey_that_always_reports_zero_signs_in_twice()
    {
        await using var s = await PasskeyAsync();

        using var first = await SignInAsync(s, 0);
        using var second = await SignInAsync(s, 0);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(0, await RegressionsAuditedAsync(s));
    }
}

public sealed class PasskeyOptionsTests
{
    [Theory]
    [InlineData("https://assent.example.com", null, null, null)]
    [InlineData("https://assent.example.com", "example.com", "https://assent.example.com", null)]
    [InlineData("https://assent.example.com", "other.com", null, "WebAuthnRpId")]
    [InlineData("https://assent.example.com", null, "http://assent.example.com", "https")]
    [InlineData("http://localhost:8400", null, "http://localhost:9000", null)]
    public void Relying_party_settings_derive_from_the_issuer_and_are_validated(string issuer, string? rpId, string? origin, string? problem)
    {
        var options = new Common.AssentOptions { Issuer = issuer, WebAuthnRpId = rpId, WebAuthnOrigins = origin is null ? null : [origin] };
        var error = options.Validate();
        if (problem is null)
        {
            Assert.Null(error);
        }
        else
        {
            Assert.Contains(problem, error);
        }
    }

    [Fact]
    public void Defaults_are_the_issuer_host_and_origin()
    {
        var options = new Common.AssentOptions { Issuer = "https://assent.example.com:8443/base" };
        Assert.Equal("assent.example.com", options.RpId);
        Assert.Equal(["https://assent.example.com:8443"], options.Origins);
        Assert.Equal("__Host-assent_session", options.SessionCookieName);
    }
}
