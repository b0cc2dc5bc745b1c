using System.Diagnostics;
using System.Globalization;
using System.Net;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests;

/// <summary><c>Assent:ServerTiming</c>: the server's own time on each response (docs/deployment.md §12).</summary>
public sealed class ServerTimingTests
{
    [Fact]
    public async Task Off_by_default_no_response_tells_how_long_the_server_took()
    {
        await using var server = await TestServer.StartAsync();
        using var health = await server.Http.GetAsync("/healthz");
        using var missing = await server.Http.GetAsync("/no-such-path");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.False(health.Headers.Contains("Server-Timing"));
        Assert.False(missing.Headers.Contains("Server-Timing"));
    }

    [Fact]
    public async Task When_on_every_response_carries_the_time_from_arrival_to_its_start_including_a_held_wait()
    {
        await using var server = await TestServer.StartAsync(configure: o => o.ServerTiming = true);
        using (var health = await server.Http.GetAsync("/healthz"))
        using (var refused = await server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "nope" })))
        {
            Assert.InRange(Duration(health), 0, 10_000);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.InRange(Duration(refused), 0, 10_000);
        }

        // A token request held until the device decides: its time must span at least the hold from when the server
        // registered it to the decision, which the test measures from outside.
        var device = await server.UserWithDeviceAsync();
        var agent = await server.AgentAsync(device.Handle);
        var authReqId = await server.AskAsync(agent);
        var held = server.TokenAsync(agent, authReqId, wait: 30);
        await server.WaitForWaitersAsync();
        var holding = Stopwatch.StartNew();
        await Task.Delay(400);
        var heldAtLeast = holding.Elapsed.TotalMilliseconds;
        using (await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
        }
        using var response = await held;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.InRange(Duration(response), heldAtLeast, 30_000);
    }

    /// <summary>The <c>dur</c> of the one <c>app</c> metric (W3C Server Timing: <c>app;dur=12.5</c>, milliseconds).</summary>
    private static double Duration(HttpResponseMessage response)
    {
        var value = Assert.Single(response.Headers.GetValues("Server-Timing"));
        Assert.StartsWith("app;dur=", value);
        return double.Parse(value["app;dur=".Length..], CultureInfo.InvariantCulture);
    }
}
