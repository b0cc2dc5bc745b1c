using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>What the mandate tests share: an agent asks for a mandate, its owner's device signs it, payments are asked against it.</summary>
internal static class Mandating
{
    public static async Task<(HttpStatusCode Status, JsonElement Body)> RequestAsync(TestServer s, TestAgent agent, object limits)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/mandates") { Content = JsonContent.Create(limits) };
        request.Headers.Authorization = TestServer.Basic(agent);
        using var response = await s.Http.SendAsync(request);
        return await TestServer.ReadAsync(response);
    }

    /// <summary>Asks for a mandate, approves it on <paramref name="owner"/>'s device, collects the mandate's own token; returns the mandate id.</summary>
    public static async Task<string> ApprovedAsync(TestServer s, TestAgent agent, TestDevice owner, string perPayment, string total, string period,
        string[]? payees = null, string? expiresAt = null)
    {
        var (status, body) = await RequestAsync(s, agent, new
        {
            user = owner.Handle, currency = "USD", per_payment = perPayment, total, period, payees,
            expires_at = expiresAt ?? s.Clock.GetUtcNow().AddDays(30).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"),
        });
        Assert.True(status == HttpStatusCode.Created, body.ToString());
        using (var decided = await owner.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var token = await s.TokenAsync(agent, body.GetProperty("auth_req_id").GetString()!);
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
        return body.GetProperty("id").GetString()!;
    }

    public static string Payment(string amount, string payee = "api.example.com", string currency = "USD") =>
        $$"""[{"type":"payment","amount":"{{amount}}","currency":"{{currency}}","payee":"{{payee}}"}]""";

    /// <summary>Asks for a payment and redeems at once: the access token's claims when a mandate approved it, null when it waits for a human.</summary>
    public static async Task<JsonElement?> PayAsync(TestServer s, TestAgent agent, string amount, string payee = "api.example.com")
    {
        using var asked = await s.BcAuthorizeAsync(agent, new Dictionary<string, string>
        {
            ["scope"] = "openid payments:write", ["login_hint"] = agent.Owner, ["binding_message"] = $"Pay {amount} USD",
            ["authorization_details"] = Payment(amount, payee),
        });
        var (status, body) = await TestServer.ReadAsync(asked);
        if (status == HttpStatusCode.TooManyRequests)
        {
            return null;
        }
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        using var token = await s.TokenAsync(agent, body.GetProperty("auth_req_id").GetString()!);
        var (tokenStatus, tokenBody) = await TestServer.ReadAsync(token);
        if (tokenStatus != HttpStatusCode.OK)
        {
            Assert.Equal("authorization_pending", tokenBody.GetProperty("error").GetString());
            return null;
        }
        return Claims(tokenBody.GetProperty("access_token").GetString()!);
    }

    public static JsonElement Claims(string jwt) => JsonDocument.Parse(Base64Url.Decode(jwt.Split('.')[1])).RootElement.Clone();
}

/// <summary>Spending mandates (docs/policies.md §6) against a live server: limits checked, covered payments approved with no human.</summary>
public sealed class MandateTests(SharedServer fixture) : IClassFixture<SharedServer>
{
    private TestServer Server => fixture.Server;

    [Theory]
    [InlineData("-1.00", "5.00", "day", "must not be negative")]
    [InlineData("1.00", "0", "day", "more than zero")]
    [InlineData("0.00", "5.00", "day", "more than zero")]
    [InlineData("1.001", "5.00", "day", "decimal places")]
    [InlineData("6.00", "5.00", "day", "more than total")]
    [InlineData("1.00", "5.00", "fortnight", "period")]
    public async Task A_mandate_with_bad_limits_is_refused_and_nothing_is_asked(string perPayment, string total, string period, string why)
    {
        var owner = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(owner.Handle);

        var (status, problem) = await Mandating.RequestAsync(Server, agent, new
        {
            user = owner.Handle, currency = "USD", per_payment = perPayment, total, period, expires_at = DateTimeOffset.UtcNow.AddDays(1).ToString("O"),
        });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(why, problem.GetProperty("detail").GetString());
        Assert.Empty(await owner.PendingAsync());
    }

    [Fact]
    public async Task A_limit_in_another_currency_or_an_expiry_in_the_past_is_refused_through_CIBA_too()
    {
        var owner = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(owner.Handle);
        var expires = DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        string[] refused =
        [
            $$"""[{"type":"mandate","currency":"USD","per_payment":{"amount":"1.00","currency":"EUR"},"total":"5.00","period":"day","expires_at":"{{expires}}"}]""",
            """[{"type":"mandate","currency":"USD","per_payment":"1.00","total":"5.00","period":"day","expires_at":"2001-01-01T00:00:00Z"}]""",
            $$"""[{"type":"mandate","currency":"XYZ","per_payment":"1.00","total":"5.00","period":"day","expires_at":"{{expires}}"}]""",
            $$"""[{"type":"mandate","currency":"USD","per_payment":1e2,"total":"500.00","period":"day","expires_at":"{{expires}}"}]""",
            $$"""[{"type":"mandate","currency":"USD","per_payment":"1.00","total":"5.00","period":"day","expires_at":"{{expires}}"},{"type":"payment"}]""",
        ];
        foreach (var details in refused)
        {
            using var response = await Server.BcAuthorizeAsync(agent, new Dictionary<string, string>
            {
                ["scope"] = "openid", ["login_hint"] = owner.Handle, ["authorization_details"] = details,
            });
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("invalid_authorization_details", await TestServer.ErrorOf(response));
        }
        Assert.Empty(await owner.PendingAsync());
    }

    [Fact]
    public async Task A_payment_inside_an_approved_mandate_is_approved_at_once_with_the_devices_signature_over_the_mandate()
    {
        var owner = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(owner.Handle);
        var id = await Mandating.ApprovedAsync(Server, agent, owner, "1.00", "5.00", "day", ["api.example.com"]);

        var claims = Assert.NotNull(await Mandating.PayAsync(Server, agent, "0.75"));

        Assert.Equal(AuthenticationMethods.Mandate, Assert.Single(claims.GetProperty("amr").EnumerateArray()).GetString());
        Assert.Equal(id, claims.GetProperty("mandate").GetProperty("id").GetString());
        Assert.Equal("4.25", claims.GetProperty("mandate").GetProperty("remaining").GetString());
        Assert.Equal(owner.Did, claims.GetProperty("sub").GetString());
        // The evidence is the owner's device signature over the mandate's payload, which states the limits exactly.
        var evidence = claims.GetProperty("evidence");
        Assert.StartsWith(owner.Did + "#", evidence.GetProperty("device").GetString());
        Assert.True(ApprovalPayload.TryParse(Base64Url.Decode(evidence.GetProperty("payload").GetString()!), out var signed));
        var limits = MandateDetails.Single(signed!.AuthorizationDetails, MandateDetails.MandateType)!.Value;
        Assert.Equal("1.00", limits.GetProperty("per_payment").GetString());
        Assert.Equal("5.00", limits.GetProperty("total").GetString());
        Assert.Equal(id, MandateBook.IdFor(signed.Req));
        Assert.Empty(await owner.PendingAsync());

        // Over the per-payment limit, to an unlisted payee, or in another currency: an ordinary request for the human.
        Assert.Null(await Mandating.PayAsync(Server, agent, "1.50"));
        Assert.Null(await Mandating.PayAsync(Server, agent, "0.50", payee: "elsewhere.example"));
        Assert.Equal(2, (await owner.PendingAsync()).Length);

        var shown = await Server.Service<MandateBook>().ShowAsync(id, owner.UserId, CancellationToken.None);
        Assert.Equal(1, shown!.Value.Row.Mandate.Payments);
        Assert.Equal("0.75", Assert.Single(shown.Value.Payments).Amount);
    }

    [Fact]
    public async Task A_revoked_mandate_approves_nothing_more_and_its_revocation_is_audited()
    {
        var owner = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(owner.Handle);
        var id = await Mandating.ApprovedAsync(Server, agent, owner, "1.00", "5.00", "none");
        Assert.NotNull(await Mandating.PayAsync(Server, agent, "1.00"));

        Assert.False(await Server.Service<MandateBook>().RevokeAsync(id, "usr_someone_else", "test", CancellationToken.None));
        Assert.True(await Server.Service<MandateBook>().RevokeAsync(id, owner.UserId, owner.DeviceId, CancellationToken.None));

        Assert.Null(await Mandating.PayAsync(Server, agent, "1.00"));
        Assert.Single(await owner.PendingAsync());
        Assert.False(await Server.Service<MandateBook>().RevokeAsync(id, owner.UserId, owner.DeviceId, CancellationToken.None));
        await Server.Store.Database.SettleAuditAsync(CancellationToken.None);
        var audit = await Server.Store.Audit.ReadAsync(0, 10_000, owner.UserId, CancellationToken.None);
        Assert.Contains(audit, e => System.Text.Encoding.UTF8.GetString(e.Entry).Contains(AuditTypes.MandateRevoked, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_mandate_the_human_denied_covers_nothing()
    {
        var owner = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(owner.Handle);
        var (status, body) = await Mandating.RequestAsync(Server, agent, new
        {
            user = owner.Handle, currency = "USD", per_payment = "1.00", total = "5.00", period = "day",
            expires_at = DateTimeOffset.UtcNow.AddDays(1).ToString("O"),
        });
        Assert.True(status == HttpStatusCode.Created, body.ToString());
        using (var denied = await owner.DecideOnlyPendingAsync(Decisions.Deny))
        {
            Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        }
        Assert.Null(await Mandating.PayAsync(Server, agent, "1.00"));
    }
}

/// <summary>A mandate's period on the server's (fake) clock: the total renews at the UTC boundary and not a tick before.</summary>
public sealed class MandatePeriodTests
{
    [Fact]
    public async Task A_daily_total_renews_at_UTC_midnight_and_not_before()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 3, 9, 23, 59, 58, TimeSpan.Zero));
        await using var server = await TestServer.StartAsync(clock: clock);
        var owner = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(owner.Handle);
        await Mandating.ApprovedAsync(server, agent, owner, "3.00", "5.00", "day");

        Assert.Equal("2.00", (await Mandating.PayAsync(server, agent, "3.00"))!.Value.GetProperty("mandate").GetProperty("remaining").GetString());
        clock.Advance(TimeSpan.FromMilliseconds(1999));
        // 23:59:59.999: still the same day, and 3.00 more would exceed 5.00.
        Assert.Null(await Mandating.PayAsync(server, agent, "3.00"));
        Assert.Equal("0.00", (await Mandating.PayAsync(server, agent, "2.00"))!.Value.GetProperty("mandate").GetProperty("remaining").GetString());

        clock.Advance(TimeSpan.FromMilliseconds(1));
        // 00:00:00.000 of the next day: a new window.
        Assert.Equal("2.00", (await Mandating.PayAsync(server, agent, "3.00"))!.Value.GetProperty("mandate").GetProperty("remaining").GetString());
    }

    [Theory]
    [InlineData("week", "2026-03-15T23:59:59Z", "2026-03-16T00:00:00Z")]
    [InlineData("month", "2026-03-31T23:59:59Z", "2026-04-01T00:00:00Z")]
    public void Weekly_and_monthly_windows_start_on_the_UTC_Monday_and_the_first(string period, string last, string next)
    {
        var before = MandatePeriods.WindowStart(period, DateTimeOffset.Parse(last, System.Globalization.CultureInfo.InvariantCulture));
        var after = MandatePeriods.WindowStart(period, DateTimeOffset.Parse(next, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(DateTimeOffset.Parse(next, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(), after);
        Assert.True(before < after);
        Assert.Equal(0, MandatePeriods.WindowStart(MandatePeriods.None, DateTimeOffset.UtcNow));
    }
}
