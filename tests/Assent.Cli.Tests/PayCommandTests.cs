using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Assent.Cli.Tests;

/// <summary><c>assent pay</c> as a real process against a real server and a paid server answering x402 v2 402s (docs/cli.md §18).</summary>
public sealed class PayCommandTests
{
    private const string BaseSepoliaUsdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

    private static string Offer(string amount, string network) => Convert.ToBase64String(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
    {
        x402Version = 2,
        resource = new { url = "http://localhost/report", description = "A report" },
        accepts = new[]
        {
            new
            {
                scheme = "exact", network, amount, asset = BaseSepoliaUsdc, payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", maxTimeoutSeconds = 60,
                extra = new { name = "USDC", version = "2" },
            },
        },
    })));

    /// <summary>A paid server: /dear asks 2.00 USDC on Base Sepolia, /mainnet-only 0.01 on Ethereum, /free answers at once.</summary>
    private static async Task<WebApplication> PaidServerAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapGet("/dear", (HttpContext http) =>
        {
            http.Response.Headers["PAYMENT-REQUIRED"] = Offer("2000000", "eip155:84532");
            return Results.StatusCode(402);
        });
        app.MapGet("/mainnet-only", (HttpContext http) =>
        {
            http.Response.Headers["PAYMENT-REQUIRED"] = Offer("10000", "eip155:1");
            return Results.StatusCode(402);
        });
        app.MapGet("/free", () => Results.Text("free report"));
        await app.StartAsync();
        return app;
    }

    [Fact]
    public async Task Pay_prints_a_free_body_refuses_over_max_and_unpayable_offers_without_asking_and_exits_69_when_unreachable()
    {
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, await Steps.InviteAsync(box, "alice"));
        var agent = Steps.SingleJsonObject(await box.RunAsync("admin", "agent", "create", "--owner", "alice", "--name", "shopper",
            "--scopes", "payments:write", "--data", box.Data, "--json"));
        await using var paid = await PaidServerAsync();
        var url = paid.Urls.Single();
        string[] As(params string[] args) =>
            ["pay", .. args, "--server", box.Url, "--client-id", agent.GetProperty("client_id").GetString()!, "--client-secret", agent.GetProperty("client_secret").GetString()!];

        var free = await box.RunAsync(As($"{url}/free"));
        Assert.True(free.ExitCode == 0, free.ToString());
        Assert.Equal("free report", free.Stdout);

        var dear = await box.RunAsync(As($"{url}/dear", "--max", "1.50"));
        Assert.True(dear.ExitCode == 1, dear.ToString());
        Assert.Contains("2.00 USDC", dear.Stderr);
        Assert.Contains("1.50", dear.Stderr);

        var unpayable = await box.RunAsync(As($"{url}/mainnet-only", "--json"));
        Assert.True(unpayable.ExitCode == 1, unpayable.ToString());
        var json = JsonDocument.Parse(unpayable.Stdout.Trim()).RootElement;
        Assert.False(json.GetProperty("paid").GetBoolean());
        Assert.Equal("refused", json.GetProperty("outcome").GetString());
        Assert.Contains("network 'eip155:1'", json.GetProperty("error").GetString());

        // Nobody was asked: alice's device has nothing pending.
        var pending = await box.RunAsync("device", "approve", "--all", "--yes");
        Assert.DoesNotContain("Pay ", pending.Stdout + pending.Stderr);

        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var unreachable = await box.RunAsync(As($"http://127.0.0.1:{port}/report"));
        Assert.True(unreachable.ExitCode == 69, unreachable.ToString());
    }
}
