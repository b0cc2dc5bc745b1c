using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Tests;

namespace Assent.Server.Tests;

/// <summary>
/// Spending mandates of API keys (docs/policies.md §6, docs/challenges.md §2.3): a challenge asks the user for one, and a
/// later challenge asking an amount inside it is approved at once; every step announces a <c>mandate.*</c> webhook event.
/// </summary>
public sealed class ChallengeMandateTests(WebhookServer fixture) : IClassFixture<WebhookServer>
{
    private TestServer Server => fixture.Server;

    private async Task<(TestDevice Device, string Key)> OwnerAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        var key = await Server.Admin.CreateApiKeyAsync(device.Handle, "backend", "challenges:write challenges:read webhooks:manage", CancellationToken.None);
        return (device, key.Key);
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> CallAsync(HttpMethod method, string path, string key, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null)
        {
            request.Content = TestDevice.JsonBody(body);
        }
        using var response = await Server.Http.SendAsync(request);
        return await TestServer.ReadAsync(response);
    }

    /// <summary>Asks for a mandate through a challenge and approves it on the device; the mandate's id.</summary>
    private async Task<string> MandateAsync(string key, TestDevice device, string perPayment, string total, string[]? payees = null)
    {
        var (status, created) = await CallAsync(HttpMethod.Post, "/v1/challenges", key, new
        {
            action = "mandate.request", userId = device.Handle, requiresHuman = false, message = "Small payments without asking",
            mandate = new
            {
                currency = "USD", per_payment = perPayment, total, period = "none", payees,
                expires_at = Server.Clock.GetUtcNow().AddDays(30).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"),
            },
        });
        Assert.True(status == HttpStatusCode.Created, created.ToString());
        Assert.Equal("pending", created.GetProperty("status").GetString());
        // The device shows and signs the limits, canonical.
        var pending = Assert.Single(await device.PendingAsync());
        Assert.True(ApprovalPayload.TryParse(Base64Url.Decode(pending.GetProperty("payload").GetString()!), out var payload));
        Assert.Equal(perPayment, MandateDetails.Single(payload!.AuthorizationDetails, MandateDetails.MandateType)!.Value.GetProperty("per_payment").GetString());
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        return MandateBook.IdFor(created.GetProperty("challengeId").GetString()!);
    }

    private Task<(HttpStatusCode Status, JsonElement Body)> PayAsync(string key, TestDevice device, string amount, string? payee = "acme", bool requiresHuman = false) =>
        CallAsync(HttpMethod.Post, "/v1/challenges", key, new { action = "payment.send", userId = device.Handle, amount, currency = "USD", payee, requiresHuman });

    [Fact]
    public async Task A_challenge_inside_the_API_keys_mandate_is_approved_at_once_with_a_mandate_attestation()
    {
        var (device, key) = await OwnerAsync();
        var id = await MandateAsync(key, device, "1.00", "5.00", ["acme"]);

        var (status, paid) = await PayAsync(key, device, "0.75");

        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("approved", paid.GetProperty("status").GetString());
        Assert.Empty(await device.PendingAsync());
        var claims = Mandating.Claims(paid.GetProperty("attestation").GetProperty("token").GetString()!);
        Assert.Equal(AuthenticationMethods.Mandate, Assert.Single(claims.GetProperty("amr").EnumerateArray()).GetString());
        Assert.Equal(id, claims.GetProperty("mandate").GetProperty("id").GetString());
        Assert.Equal("4.25", claims.GetProperty("mandate").GetProperty("remaining").GetString());
        Assert.Equal("acme", claims.GetProperty("authorization_details")[0].GetProperty("payee").GetString());
        // The evidence is the device's signature over the mandate, which the API key asked for.
        Assert.True(ApprovalPayload.TryParse(Base64Url.Decode(claims.GetProperty("evidence").GetProperty("payload").GetString()!), out var signed));
        Assert.Equal(id, MandateBook.IdFor(signed!.Req));
        // Any relying party checks it with the SDK: the signature over the mandate, and the challenge's amount within its limits.
        using (var verifier = new TokenVerifier(Server.Options.IssuerString))
        {
            var verified = await verifier.VerifyAsync(paid.GetProperty("attestation").GetProperty("token").GetString()!,
                new VerifyOptions { Scope = "challenge", CheckEvidence = true, CheckReplay = false }, CancellationToken.None);
            Assert.StartsWith(device.Did + "#", verified.EvidenceDevice);
        }
        // Single use like any approved challenge.
        var (consumed, _) = await CallAsync(HttpMethod.Post, $"/v1/challenges/{paid.GetProperty("challengeId").GetString()}/consume", key);
        Assert.Equal(HttpStatusCode.OK, consumed);

        // Over per_payment, another payee, no payee, or demanding a passkey the mandate was not signed with: the human decides.
        Assert.Equal("pending", (await PayAsync(key, device, "1.01")).Body.GetProperty("status").GetString());
        Assert.Equal("pending", (await PayAsync(key, device, "0.10", payee: "elsewhere")).Body.GetProperty("status").GetString());
        Assert.Equal("pending", (await PayAsync(key, device, "0.10", payee: null)).Body.GetProperty("status").GetString());
        Assert.Equal("pending", (await PayAsync(key, device, "0.10", requiresHuman: true)).Body.GetProperty("status").GetString());
        Assert.Equal(4, (await device.PendingAsync()).Length);
    }

    [Fact]
    public async Task A_bad_mandate_or_a_mandate_with_an_amount_is_refused_and_nothing_is_asked()
    {
        var (device, key) = await OwnerAsync();
        var expires = Server.Clock.GetUtcNow().AddDays(1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        object[] refused =
        [
            new { action = "mandate.request", userId = device.Handle, mandate = new { currency = "USD", per_payment = "-1", total = "5", period = "day", expires_at = expires } },
            new { action = "mandate.request", userId = device.Handle, mandate = new { currency = "USD", per_payment = "1", total = "5", period = "fortnight", expires_at = expires } },
            new { action = "mandate.request", userId = device.Handle, mandate = new { currency = "USD", per_payment = "1", total = "5", period = "day", expires_at = expires, extra = 1 } },
            new { action = "mandate.request", userId = device.Handle, amount = "1", currency = "USD",
                mandate = new { currency = "USD", per_payment = "1", total = "5", period = "day", expires_at = expires } },
            new { action = "mandate.request", userId = device.Handle, mandate = "USD 5" },
            new { action = "payment.send", userId = device.Handle, payee = "acme" },
        ];
        foreach (var body in refused)
        {
            var (status, problem) = await CallAsync(HttpMethod.Post, "/v1/challenges", key, body);
            Assert.True(status == HttpStatusCode.BadRequest, problem.ToString());
        }
        Assert.Empty(await device.PendingAsync());
    }

    [Fact]
    public async Task Mandate_events_reach_the_webhook_when_it_is_approved_spent_exhausted_and_revoked()
    {
        var (device, key) = await OwnerAsync();
        var port = Ports.Reserve();
        var (status, hook) = await CallAsync(HttpMethod.Post, "/v1/webhooks", key, new { url = $"http://127.0.0.1:{port}/ok", events = new[] { "mandate.*" } });
        Assert.Equal(HttpStatusCode.Created, status);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var receiver = await NodeScript.StartAsync("webhook-receiver.mjs", [port.ToString(), hook.GetProperty("secret").GetString()!], cts.Token);
        await receiver.ExpectAsync("LISTENING", cts.Token);

        var id = await MandateAsync(key, device, "1.00", "1.50");
        var first = (await PayAsync(key, device, "1.00")).Body.GetProperty("challengeId").GetString()!;
        var second = (await PayAsync(key, device, "0.50")).Body.GetProperty("challengeId").GetString()!;
        Assert.True(await Server.Service<MandateBook>().RevokeAsync(id, device.UserId, device.DeviceId, CancellationToken.None));

        var events = new List<JsonElement>();
        while (events.Count < 5)
        {
            events.Add(JsonDocument.Parse(await receiver.ExpectAsync("EVENT ", cts.Token)).RootElement.Clone());
        }
        JsonElement Data(string type, string? payment = null) => events.Single(e => e.GetProperty("type").GetString() == type &&
            (payment is null || e.GetProperty("data").GetProperty("payment").GetProperty("approvalId").GetString() == payment)).GetProperty("data");
        Assert.All(events, e => Assert.Equal(id, e.GetProperty("data").GetProperty("mandateId").GetString()));
        Assert.Equal("1.50", Data("mandate.approved").GetProperty("total").GetString());
        Assert.Equal("0.50", Data("mandate.spent", first).GetProperty("payment").GetProperty("remaining").GetString());
        Assert.Equal("0.00", Data("mandate.spent", second).GetProperty("payment").GetProperty("remaining").GetString());
        Assert.Equal("exhausted", Data("mandate.exhausted").GetProperty("status").GetString());
        Assert.Equal("revoked", Data("mandate.revoked").GetProperty("status").GetString());
    }
}
