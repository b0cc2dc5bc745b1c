using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests;

/// <summary>The /v1 challenges API with API keys (docs/challenges.md), against a live server.</summary>
public sealed class ChallengeTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private TestServer Server => fixture.Server;

    private async Task<(TestDevice Device, string Key)> OwnerWithKeyAsync(string scopes = "challenges:write challenges:read", bool admin = false)
    {
        var invite = await Server.InviteAsync("c" + Guid.NewGuid().ToString("N")[..10], admin);
        var device = await Server.EnrollAsync(invite.Code);
        var key = await Server.Admin.CreateApiKeyAsync(device.Handle, "backend", scopes, CancellationToken.None);
        return (device, key.Key);
    }

    private HttpRequestMessage Call(HttpMethod method, string path, string key, object? body = null, string? idempotencyKey = null, string? rawBody = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (rawBody is not null)
        {
            request.Content = new StringContent(rawBody, Encoding.UTF8, "application/json");
        }
        else if (body is not null)
        {
            request.Content = TestDevice.JsonBody(body);
        }
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return request;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpRequestMessage request)
    {
        using (request)
        using (var response = await Server.Http.SendAsync(request))
        {
            return await TestServer.ReadAsync(response);
        }
    }

    [Fact]
    public async Task An_approved_challenge_carries_a_verifiable_attestation_and_is_consumed_exactly_once()
    {
        var (device, key) = await OwnerWithKeyAsync();
        var (status, created) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key,
            new { action = "payment.send", userId = device.Handle, amount = 12500, currency = "USD", message = "Pay invoice 42", requiresHuman = false,
                metadata = new { invoice = 42 } }));
        Assert.Equal(HttpStatusCode.Created, status);
        var id = created.GetProperty("challengeId").GetString()!;
        Assert.StartsWith("chl_", id);
        Assert.Equal("pending", created.GetProperty("status").GetString());
        // Exact: 12500 dollars, written with the currency's two decimals, never through a float.
        Assert.Equal("12500.00", created.GetProperty("amount").GetString());
        Assert.Equal(42, created.GetProperty("metadata").GetProperty("invoice").GetInt32());

        var pending = Assert.Single(await device.PendingAsync());
        Assert.Equal("Pay invoice 42", pending.GetProperty("binding_message").GetString());
        var payload = JsonDocument.Parse(Convert.FromBase64String(ToBase64(pending.GetProperty("payload").GetString()!))).RootElement;
        var detail = payload.GetProperty("authorization_details")[0];
        Assert.Equal("challenge", detail.GetProperty("type").GetString());
        Assert.Equal("payment.send", detail.GetProperty("action").GetString());
        Assert.Equal("12500.00", detail.GetProperty("amount").GetString());
        Assert.False(payload.TryGetProperty("metadata", out _), "metadata is echoed, never signed or shown");

        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        var (_, approved) = await SendAsync(Call(HttpMethod.Get, $"/v1/challenges/{id}", key));
        Assert.Equal("approved", approved.GetProperty("status").GetString());
        var attestation = approved.GetProperty("attestation");
        Assert.Equal("ed25519", attestation.GetProperty("kind").GetString());
        Assert.Equal(device.Did + "#" + device.DeviceId, attestation.GetProperty("device").GetString());
        var claims = JwtClaims(attestation.GetProperty("token").GetString()!);
        Assert.Equal(id, claims.GetProperty("txn").GetString());
        Assert.Equal(device.Did, claims.GetProperty("sub").GetString());
        Assert.Equal(detail.GetRawText(), claims.GetProperty("authorization_details")[0].GetRawText());
        Assert.Equal("ed25519", claims.GetProperty("evidence").GetProperty("kind").GetString());

        var (consumed, first) = await SendAsync(Call(HttpMethod.Post, $"/v1/challenges/{id}/consume", key));
        Assert.Equal(HttpStatusCode.OK, consumed);
        Assert.Equal("consumed", first.GetProperty("status").GetString());
        var (again, problem) = await SendAsync(Call(HttpMethod.Post, $"/v1/challenges/{id}/consume", key));
        Assert.Equal(HttpStatusCode.Conflict, again);
        Assert.Contains("already consumed", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_challenge_that_requires_a_human_refuses_a_software_key_and_waits_for_a_passkey()
    {
        var (device, key) = await OwnerWithKeyAsync();
        var (_, created) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, new { action = "deploy", userId = device.Did }));
        Assert.True(created.GetProperty("requiresHuman").GetBoolean());
        using var refused = await device.DecideOnlyPendingAsync(Decisions.Approve);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("passkey", await refused.Content.ReadAsStringAsync());
        var (_, still) = await SendAsync(Call(HttpMethod.Get, $"/v1/challenges/{created.GetProperty("challengeId").GetString()}", key));
        Assert.Equal("pending", still.GetProperty("status").GetString());
    }

    [Fact]
    public async Task The_same_idempotency_key_returns_the_same_challenge_and_a_different_body_is_refused()
    {
        var (device, key) = await OwnerWithKeyAsync();
        var body = JsonSerializer.Serialize(new { action = "refund", userId = device.Handle, amount = "125.00", currency = "USD", requiresHuman = false });
        var (first, a) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, rawBody: body, idempotencyKey: "order-7"));
        var (second, b) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, rawBody: body, idempotencyKey: "order-7"));
        Assert.Equal(HttpStatusCode.Created, first);
        Assert.Equal(HttpStatusCode.Created, second);
        Assert.Equal(a.GetProperty("challengeId").GetString(), b.GetProperty("challengeId").GetString());
        Assert.Single(await device.PendingAsync());

        var (other, problem) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, rawBody: body.Replace("125.00", "126.00"), idempotencyKey: "order-7"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, other);
        Assert.Contains(a.GetProperty("challengeId").GetString()!, problem.GetProperty("detail").GetString());
        Assert.Single(await device.PendingAsync());
    }

    [Theory]
    [InlineData("""{"action":"pay","userId":"@U","amount":"12.5","currency":"XYZ"}""", "not an ISO 4217")]
    [InlineData("""{"action":"pay","userId":"@U","amount":-5,"currency":"USD"}""", "negative")]
    [InlineData("""{"action":"pay","userId":"@U","amount":"1.005","currency":"USD"}""", "2 decimal places")]
    [InlineData("""{"action":"pay","userId":"@U","amount":"500.5","currency":"JPY"}""", "whole number")]
    [InlineData("""{"action":"pay","userId":"@U","amount":1e3,"currency":"USD"}""", "plain decimal")]
    [InlineData("""{"action":"pay","userId":"@U","amount":"10000000000000000","currency":"USD"}""", "too large")]
    [InlineData("""{"action":"pay","userId":"@U","amount":"10"}""", "currency is required")]
    [InlineData("""{"action":"Pay Now","userId":"@U"}""", "action is required")]
    [InlineData("""{"action":"pay"}""", "userId is required")]
    [InlineData("""{"action":"pay","userId":"nobody-here"}""", "no user")]
    [InlineData("""{"action":"pay","userId":"@U","metadata":[1]}""", "metadata must be a JSON object")]
    [InlineData("""{"action":"pay","userId":"@U","expiresIn":99999}""", "expiresIn")]
    [InlineData("""{"action":"pay","userId":"@U","quorum":{"m":2}}""", "quorum")]
    [InlineData("""{"action":"pay","userId":""", "not valid JSON")]
    public async Task Bad_input_gets_a_clear_400_and_creates_nothing(string body, string expected)
    {
        var (device, key) = await OwnerWithKeyAsync();
        var (status, problem) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, rawBody: body.Replace("@U", device.Handle)));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(expected, problem.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task Metadata_over_4_KiB_is_refused()
    {
        var (device, key) = await OwnerWithKeyAsync();
        var (status, problem) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key,
            new { action = "pay", userId = device.Handle, metadata = new { note = new string('x', 4100) } }));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("4096 bytes", problem.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task Wrong_revoked_or_underscoped_keys_are_refused_and_create_nothing()
    {
        var (device, key) = await OwnerWithKeyAsync(scopes: "challenges:read");
        var body = new { action = "pay", userId = device.Handle };
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(Call(HttpMethod.Post, "/v1/challenges", "sk_" + new string('A', 43), body))).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(Call(HttpMethod.Post, "/v1/challenges", "not-a-key", body))).Status);
        var (forbidden, problem) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, body));
        Assert.Equal(HttpStatusCode.Forbidden, forbidden);
        Assert.Contains("challenges:write", problem.GetProperty("detail").GetString());

        var (_, writer) = await OwnerWithKeyAsync();
        var id = (await Server.Store.ApiKeys.FindByHashAsync(Assent.Server.Common.Ids.Hash(writer), default))!;
        Assert.True(await Server.Store.ApiKeys.TryRevokeAsync(id.Id, id.OwnerUserId, Server.Clock.GetUtcNow().ToUnixTimeMilliseconds(),
            new Assent.Server.Storage.AuditEvent(Assent.Server.Storage.AuditTypes.ApiKeyRevoked, id.OwnerUserId, "test", id.Id), default));
        var (revoked, why) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", writer, body));
        Assert.Equal(HttpStatusCode.Unauthorized, revoked);
        Assert.Contains("revoked", why.GetProperty("detail").GetString());
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task A_key_asks_only_its_owner_unless_its_owner_is_an_admin()
    {
        var (_, key) = await OwnerWithKeyAsync();
        var other = await Server.UserWithDeviceAsync();
        var (status, problem) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, new { action = "pay", userId = other.Handle }));
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("only", problem.GetProperty("detail").GetString());
        Assert.Empty(await other.PendingAsync());

        var (_, adminKey) = await OwnerWithKeyAsync(admin: true);
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(Call(HttpMethod.Post, "/v1/challenges", adminKey, new { action = "pay", userId = other.Handle }))).Status);
        Assert.Single(await other.PendingAsync());
    }

    [Fact]
    public async Task Consume_refuses_pending_denied_and_foreign_challenges_and_cancel_works_once()
    {
        var (device, key) = await OwnerWithKeyAsync();
        var (_, created) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, new { action = "pay", userId = device.Handle, requiresHuman = false }));
        var id = created.GetProperty("challengeId").GetString()!;
        var (pending, p) = await SendAsync(Call(HttpMethod.Post, $"/v1/challenges/{id}/consume", key));
        Assert.Equal(HttpStatusCode.Conflict, pending);
        Assert.Contains("is pending", p.GetProperty("detail").GetString());

        var (_, foreignKey) = await OwnerWithKeyAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(Call(HttpMethod.Post, $"/v1/challenges/{id}/consume", foreignKey))).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(Call(HttpMethod.Get, $"/v1/challenges/{id}", foreignKey))).Status);

        using (var denied = await device.DecideOnlyPendingAsync(Decisions.Deny))
        {
            Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        }
        var (deniedConsume, d) = await SendAsync(Call(HttpMethod.Post, $"/v1/challenges/{id}/consume", key));
        Assert.Equal(HttpStatusCode.Conflict, deniedConsume);
        Assert.Contains("is denied", d.GetProperty("detail").GetString());

        var (_, second) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, new { action = "pay", userId = device.Handle }));
        var secondId = second.GetProperty("challengeId").GetString()!;
        var (cancelled, c) = await SendAsync(Call(HttpMethod.Post, $"/v1/challenges/{secondId}/cancel", key));
        Assert.Equal(HttpStatusCode.OK, cancelled);
        Assert.Equal("cancelled", c.GetProperty("status").GetString());
        Assert.Empty(await device.PendingAsync());
        Assert.Equal(HttpStatusCode.Conflict, (await SendAsync(Call(HttpMethod.Post, $"/v1/challenges/{secondId}/cancel", key))).Status);
    }

    [Fact]
    public async Task Get_with_prefer_wait_answers_the_moment_the_challenge_is_decided()
    {
        var (device, key) = await OwnerWithKeyAsync();
        var (_, created) = await SendAsync(Call(HttpMethod.Post, "/v1/challenges", key, new { action = "pay", userId = device.Handle, requiresHuman = false }));
        var request = Call(HttpMethod.Get, $"/v1/challenges/{created.GetProperty("challengeId").GetString()}", key);
        request.Headers.Add("Prefer", "wait=30");
        var waiting = SendAsync(request);
        await Server.WaitForWaitersAsync();
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        var (status, body) = await waiting.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("approved", body.GetProperty("status").GetString());
        Assert.True(body.TryGetProperty("attestation", out _));
    }

    private static string ToBase64(string base64Url)
    {
        var s = base64Url.Replace('-', '+').Replace('_', '/');
        return s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
    }

    private static JsonElement JwtClaims(string jwt) => JsonDocument.Parse(Convert.FromBase64String(ToBase64(jwt.Split('.')[1]))).RootElement;
}
