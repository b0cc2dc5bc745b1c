using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>
/// Every token the server can issue verifies: authorization_details are capped in entries, depth and
/// bytes, and the settings are refused at start when they could let a token outgrow what verifiers accept.
/// </summary>
[Collection(SharedServerCollection.Name)]
public sealed class TokenSizeTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    /// <summary>'€' is written \u20AC by the default JSON encoder: 6 bytes for one UTF-16 unit, the most any unit costs.</summary>
    private const char Worst = '€';

    private async Task<(TestDevice Device, TestAgent Agent)> SetupAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        return (device, await Server.AgentAsync(device.Handle));
    }

    private async Task<(HttpStatusCode Status, string Error, string Description)> AskAsync(TestAgent agent, string details)
    {
        using var response = await Server.BcAuthorizeAsync(agent, new()
        {
            ["scope"] = "openid approve:action", ["login_hint"] = agent.Owner, ["binding_message"] = "Pay", ["authorization_details"] = details,
        });
        var (status, body) = await TestServer.ReadAsync(response);
        return status == HttpStatusCode.OK ? (status, "", "") : (status, body.GetProperty("error").GetString()!, body.GetProperty("error_description").GetString()!);
    }

    /// <summary>RFC 9396 details as the server normalizes them (System.Text.Json, default encoder).</summary>
    private static string Normalized(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// <paramref name="entries"/> payment entries nested <c>[{"memo":{"lines":["…"]}}]</c> (depth 4), the last string
    /// padded with <see cref="Worst"/> characters (and ASCII for the remainder) to exactly <paramref name="bytes"/> bytes.
    /// </summary>
    private static string Details(int entries, int bytes)
    {
        string Build(string last) => Normalized(w =>
        {
            w.WriteStartArray();
            for (var i = 0; i < entries; i++)
            {
                w.WriteStartObject();
                w.WriteString("type", "payment");
                w.WriteStartObject("memo");
                w.WriteStartArray("lines");
                w.WriteStringValue(i == entries - 1 ? last : new string(Worst, 8));
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
        var room = bytes - Encoding.UTF8.GetByteCount(Build(""));
        var details = Build(new string(Worst, room / 6) + new string('a', room % 6));
        Assert.Equal(bytes, Encoding.UTF8.GetByteCount(details));
        return details;
    }

    [Fact]
    public async Task Authorization_details_over_the_entries_depth_or_bytes_caps_are_refused_naming_the_limit_and_at_the_caps_are_accepted()
    {
        var (device, agent) = await SetupAsync();
        var options = Server.Options;

        var entries = string.Join(',', Enumerable.Repeat("""{"type":"payment"}""", options.MaxAuthorizationDetailsEntries + 1));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_authorization_details", "authorization_details has 9 entries; at most 8 are allowed"),
            await AskAsync(agent, "[" + entries + "]"));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_authorization_details",
                "authorization_details nests 5 levels deep; at most 4 are allowed (the outer array is level 1)"),
            await AskAsync(agent, """[{"type":"payment","memo":{"lines":[["too deep"]]}}]"""));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_authorization_details", "authorization_details is 2049 bytes once normalized; at most 2048 are allowed"),
            await AskAsync(agent, Details(8, options.MaxAuthorizationDetailsBytes + 1)));
        // Bytes count once normalized: the same text with JSON escapes, spaces and raw characters is the same size.
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_authorization_details", "authorization_details is 2049 bytes once normalized; at most 2048 are allowed"),
            await AskAsync(agent, Details(8, options.MaxAuthorizationDetailsBytes + 1).Replace("\\u20AC", "€", StringComparison.Ordinal).Replace(",", " , ", StringComparison.Ordinal)));
        Assert.Empty(await device.PendingAsync());

        Assert.Equal(HttpStatusCode.OK, (await AskAsync(agent, Details(8, options.MaxAuthorizationDetailsBytes))).Status);
        Assert.Single(await device.PendingAsync());
    }

    [Fact]
    public async Task A_40_kb_string_in_a_detail_is_refused_with_400_and_creates_nothing()
    {
        var (device, agent) = await SetupAsync();

        var (status, error, description) = await AskAsync(agent, "[{\"type\":\"payment\",\"memo\":\"" + new string('x', 40 * 1024) + "\"}]");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_authorization_details", error);
        Assert.Equal($"authorization_details is {40 * 1024 + 30} bytes once normalized; at most 2048 are allowed", description);
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task A_scope_or_resource_longer_than_a_token_can_carry_is_refused()
    {
        var (device, _) = await SetupAsync();
        var scopes = Enumerable.Range(0, 3).Select(i => $"payments:{i}{new string('s', 50)}").ToArray();
        var agent = await Server.AgentAsync(device.Handle, string.Join(' ', scopes));

        using (var response = await Server.BcAuthorizeAsync(agent, new() { ["scope"] = "openid " + string.Join(' ', scopes), ["login_hint"] = agent.Owner }))
        {
            Assert.Equal("invalid_scope", await TestServer.ErrorOf(response));
        }
        using (var response = await Server.BcAuthorizeAsync(agent, new()
               {
                   ["scope"] = "openid " + scopes[0], ["login_hint"] = agent.Owner, ["resource"] = "https://api.example/" + new string('r', 109),
               }))
        {
            Assert.Equal("invalid_target", await TestServer.ErrorOf(response));
        }
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task The_largest_request_the_limits_allow_approved_with_a_passkey_gives_a_token_verifiers_accept_with_its_evidence()
    {
        var options = Server.Options;
        var invite = await Server.InviteAsync("big-" + Guid.NewGuid().ToString("N")[..8]);
        var admin = Server.Admin;
        // Every limit at its worst: names, message and details of characters the JSON encoder writes as \uXXXX,
        // a scope and a resource as long as allowed, a passkey assertion as large as kept.
        var agentName = new string(Worst, AccessTokenBudget.MaxAgentNameLength);
        var scopes = new[] { "payments:" + new string('a', 51), "payments:" + new string('b', 51) };
        var scope = "openid " + string.Join(' ', scopes);
        Assert.Equal(AccessTokenBudget.MaxScopeLength, scope.Length);
        var resource = "https://pay.example/?" + new string('&', AccessTokenBudget.MaxResourceLength - 21);
        Assert.Equal(AccessTokenBudget.MaxResourceLength, resource.Length);
        var message = string.Concat(Enumerable.Repeat(Worst + "😀", 85)) + Worst;
        Assert.Equal(AccessTokenBudget.MaxBindingMessageLength, message.Length);
        var details = Details(options.MaxAuthorizationDetailsEntries, options.MaxAuthorizationDetailsBytes);
        var created = await admin.CreateAgentAsync(invite.Handle, agentName, string.Join(' ', scopes), CancellationToken.None);
        var agent = new TestAgent(created.ClientId, created.ClientSecret, invite.Handle);

        // A passkey (EdDSA) of this user, stored as registration would store it.
        var seed = Ed25519.NewSeed();
        var deviceId = "dev_" + Base64Url.Encode(RandomNumberGenerator.GetBytes(12));
        var now = Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await Server.Store.Devices.AddAsync(new DeviceRecord(deviceId, invite.UserId, DeviceKinds.WebAuthn, "passkey",
                JsonSerializer.Serialize(new { kty = "OKP", crv = "Ed25519", x = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed)) }),
                RandomNumberGenerator.GetBytes(32), 0, now, null),
            new AuditEvent(AuditTypes.DeviceEnrolled, invite.UserId, deviceId, deviceId), default);

        string authReqId;
        using (var response = await Server.BcAuthorizeAsync(agent, new()
               {
                   ["scope"] = scope, ["login_hint"] = agent.Owner, ["binding_message"] = message, ["authorization_details"] = details, ["resource"] = resource,
               }))
        {
            var (status, body) = await TestServer.ReadAsync(response);
            Assert.True(status == HttpStatusCode.OK, body.ToString());
            authReqId = body.GetProperty("auth_req_id").GetString()!;
        }
        var approval = Assert.Single(await Server.Store.Approvals.ListPendingAsync(invite.UserId, now, default));

        // The assertion WebAuthn L3 §7.2 expects, its client data padded so that all three parts are exactly the cap.
        var authenticatorData = new byte[37];
        SHA256.HashData(Encoding.UTF8.GetBytes(options.RpId), authenticatorData);
        authenticatorData[32] = 0x05; // UP | UV
        BinaryPrimitives.WriteUInt32BigEndian(authenticatorData.AsSpan(33), 1);
        byte[] ClientData(int length)
        {
            var challenge = Base64Url.Encode(SHA256.HashData(ApprovalPayload.SigningInput(Decisions.Approve, approval.Payload)));
            var head = "{\"type\":\"webauthn.get\",\"challenge\":\"" + challenge + "\",\"origin\":\"" + options.Origins[0] +
                       "\",\"crossOrigin\":false,\"other_keys_can_be_added_here\":\"";
            return Encoding.UTF8.GetBytes(head + new string('x', length - head.Length - 2) + "\"}");
        }
        Task<HttpResponseMessage> DecideAsync(byte[] clientData) =>
            Server.Http.PostAsync($"/authenticator/approvals/{approval.Id}/decision", TestDevice.JsonBody(new Dictionary<string, string>
            {
                ["device_id"] = deviceId, ["decision"] = Decisions.Approve, ["authenticator_data"] = Base64Url.Encode(authenticatorData),
                ["client_data_json"] = Base64Url.Encode(clientData),
                ["signature"] = Base64Url.Encode(Ed25519.Sign(seed, [.. authenticatorData, .. SHA256.HashData(clientData)])),
            }));
        var room = options.MaxWebAuthnEvidenceBytes - authenticatorData.Length - Ed25519.SignatureSize;
        using (var tooLarge = await DecideAsync(ClientData(room + 1)))
        {
            var (status, body) = await TestServer.ReadAsync(tooLarge);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.StartsWith($"the passkey assertion is {options.MaxWebAuthnEvidenceBytes + 1} bytes", body.GetProperty("detail").GetString());
        }
        using (var decided = await DecideAsync(ClientData(room)))
        {
            Assert.True(decided.StatusCode == HttpStatusCode.OK, await decided.Content.ReadAsStringAsync());
        }

        using var tokenResponse = await Server.TokenAsync(agent, authReqId);
        var (tokenStatus, tokenBody) = await TestServer.ReadAsync(tokenResponse);
        Assert.True(tokenStatus == HttpStatusCode.OK, tokenBody.ToString());
        var token = tokenBody.GetProperty("access_token").GetString()!;

        // The budget bounds the real token, closely: what it assumes beyond this request is longer ids
        // (agt_ of a registered agent: 12 more bytes), 11-digit times and a resource made only of escaped characters.
        var worst = AccessTokenBudget.WorstCase(options);
        Assert.InRange(token.Length, worst - 300, worst);
        Assert.True(token.Length <= Jws.DefaultMaxLength, $"{token.Length} characters");
        using var verifier = new TokenVerifier(options.IssuerString);
        var verified = await verifier.VerifyAsync(token, new VerifyOptions
        {
            Audience = resource, Scope = scopes[1], CheckEvidence = true, ExpectedBindingMessage = message, ExpectedAuthorizationDetails = details,
        }, CancellationToken.None);
        Assert.Equal(message, verified.BindingMessage);
        Assert.Equal(DeviceKinds.WebAuthn, verified.Claims.GetProperty("evidence").GetProperty("kind").GetString());
    }

    [Theory]
    [InlineData("http://localhost:8400", 2048, 640, null)]
    [InlineData("https://approvals.engineering.corp.example.com", 2048, 640, null)]
    [InlineData("http://localhost:8400", 4096, 640, "Assent:MaxAuthorizationDetailsBytes (4096) and Assent:MaxWebAuthnEvidenceBytes (640) with this issuer let an access token reach")]
    [InlineData("http://localhost:8400", 2048, 2048, "Assent:MaxAuthorizationDetailsBytes (2048) and Assent:MaxWebAuthnEvidenceBytes (2048) with this issuer let an access token reach")]
    [InlineData("https://approvals.a-very-long-subdomain-name-for-no-reason.engineering.corp.example.com", 2048, 640,
        "Assent:MaxAuthorizationDetailsBytes (2048) and Assent:MaxWebAuthnEvidenceBytes (640) with this issuer let an access token reach")]
    [InlineData("https://approvals.a-very-long-subdomain-name-for-no-reason.engineering.corp.example.com", 1536, 640, null)]
    public void Settings_that_could_let_a_token_outgrow_what_verifiers_accept_are_refused_at_start(string issuer, int detailsBytes, int evidenceBytes, string? problem)
    {
        var options = new AssentOptions { Issuer = issuer, MaxAuthorizationDetailsBytes = detailsBytes, MaxWebAuthnEvidenceBytes = evidenceBytes };

        var validated = options.Validate() ?? AccessTokenBudget.Problem(options);

        if (problem is null)
        {
            Assert.Null(validated);
            Assert.InRange(AccessTokenBudget.WorstCase(options), 0, Jws.DefaultMaxLength);
        }
        else
        {
            Assert.StartsWith(problem, validated);
            Assert.EndsWith($"characters, more than the {Jws.DefaultMaxLength} verifiers accept; lower them", validated);
        }
    }
}
