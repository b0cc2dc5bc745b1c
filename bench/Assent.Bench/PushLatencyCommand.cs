using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Threading.Channels;
using Assent.Protocol;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Assent.Bench;

/// <summary>
/// Web Push on loopback against a server process: the time from a new request to its push request reaching a local
/// receiver that stands in for the push service (docs/concepts.md, "Web Push"). One request at a time. The request is
/// created somewhere inside the bc-authorize round trip, so two figures bound the latency: from bc-authorize sent
/// (an upper bound, which includes the client's authentication) and from its answer received (a lower bound, negative
/// when the push arrives first).
/// </summary>
internal static class PushLatencyCommand
{
    private const int Warmup = 20;

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var count = args.Int("count", 300, 10, 10_000);
        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        var arrivals = Channel.CreateUnbounded<long>();
        await using var receiver = await StartReceiverAsync(arrivals.Writer, ct);
        var endpoint = receiver.Urls.First() + "/push/bench";
        try
        {
            var who = (await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, 1, ct))[0];
            using var http = BenchHttp.Create(baseUri);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            var device = await BenchDevice.EnrollAsync(http, who.InviteCode, ct);
            await SubscribeAsync(http, dataDirectory, baseUri, who, device, endpoint, ct);
            var agent = new BenchAgent(http, who);
            Console.WriteLine($"push-latency: {count} requests, one at a time, server pid {server.Id}, receiver {endpoint}");

            var fromSent = new List<double>(count);
            var fromAnswered = new List<double>(count);
            for (var i = 0; i < count + Warmup; i++)
            {
                var sent = Stopwatch.GetTimestamp();
                await agent.AskAsync($"Bench push {i}", null, ct);
                var answered = Stopwatch.GetTimestamp();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var arrived = await arrivals.Reader.ReadAsync(timeout.Token);
                if (i >= Warmup)
                {
                    fromSent.Add(Stats.Milliseconds(arrived - sent));
                    fromAnswered.Add(Stats.Milliseconds(arrived - answered));
                }
            }
            fromSent.Sort();
            fromAnswered.Sort();
            var (p50, p99) = (Stats.Percentile(fromSent, 0.50), Stats.Percentile(fromSent, 0.99));
            Console.WriteLine($"  bc-authorize sent -> push received: p50 {Stats.F(p50)} ms, p99 {Stats.F(p99)} ms, max {Stats.F(fromSent[^1])} ms (target p99 <= 25 ms)");
            Console.WriteLine($"  bc-authorize answered -> push received: p50 {Stats.F(Stats.Percentile(fromAnswered, 0.50))} ms, " +
                              $"p99 {Stats.F(Stats.Percentile(fromAnswered, 0.99))} ms");
            Stats.Result("push-latency", ("count", count.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("p50_ms", Stats.F(p50)), ("p99_ms", Stats.F(p99)));
            return 0;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }

    /// <summary>The push service stand-in: notes when each push request arrives and answers 201 (RFC 8030 §5).</summary>
    private static async Task<WebApplication> StartReceiverAsync(ChannelWriter<long> arrivals, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapPost("/push/{name}", async (HttpRequest request) =>
        {
            arrivals.TryWrite(Stopwatch.GetTimestamp());
            await request.Body.CopyToAsync(Stream.Null);
            return Results.StatusCode(StatusCodes.Status201Created);
        });
        await app.StartAsync(ct);
        return app;
    }

    /// <summary>
    /// Registers the receiver as the user's push subscription through the server's API, with a web session written into
    /// the database as a passkey sign-in would (the bench's device is a software key, which opens no web session).
    /// </summary>
    private static async Task SubscribeAsync(HttpClient http, string dataDirectory, Uri baseUri, Provisioned who, BenchDevice device, string endpoint,
        CancellationToken ct)
    {
        var options = new AssentOptions { Issuer = baseUri.ToString().TrimEnd('/'), DataDirectory = dataDirectory };
        var token = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        await using (var store = await StoreFactory.OpenAsync(options, TimeProvider.System, ct))
        {
            var user = (await store.Users.FindByHandleAsync(who.Handle, ct))!;
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await store.Sessions.CreateWebSessionAsync(new WebSessionRecord(Ids.Hash(token), user.Id, device.DeviceId, now, now + 3_600_000), now,
                new AuditEvent(AuditTypes.SessionCreated, user.Id, device.DeviceId, user.Id), ct);
        }
        using var ecdh = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var q = ecdh.ExportParameters(false).Q;
        var body = System.Text.Json.JsonSerializer.Serialize(new
        {
            endpoint,
            keys = new { p256dh = Base64Url.Encode([0x04, .. q.X!, .. q.Y!]), auth = Base64Url.Encode(RandomNumberGenerator.GetBytes(16)) },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webauthn/push/subscriptions")
        {
            Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Cookie", $"{options.SessionCookieName}={token}");
        using var response = await http.SendAsync(request, ct);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"subscribing answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
        }
    }
}
