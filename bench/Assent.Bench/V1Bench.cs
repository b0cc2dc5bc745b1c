using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Assent.Bench;

/// <summary>
/// The /v1 side (docs/challenges.md, docs/webhooks.md) as a backend drives it: an administrator's API key, which may
/// challenge any user, creates challenges and registers a webhook endpoint on the driver's own receiver.
/// </summary>
internal sealed class V1Backend(HttpClient http, string key)
{
    public const string Scopes = "challenges:write challenges:read webhooks:manage";

    private readonly AuthenticationHeaderValue _bearer = new("Bearer", key);

    /// <summary>An administrator and its API key, written into the database before the server starts (as <c>assent admin apikey create</c>).</summary>
    public static async Task<string> ProvisionKeyAsync(string dataDirectory, Uri issuer, CancellationToken ct)
    {
        var options = new AssentOptions { Issuer = issuer.ToString().TrimEnd('/'), DataDirectory = dataDirectory };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, ct);
        var admin = new AdminOperations(store, options, TimeProvider.System);
        var invite = await admin.InviteAsync("benchadmin", admin: true, ct);
        return (await admin.CreateApiKeyAsync(invite.Handle, "bench backend", Scopes, ct)).Key;
    }

    /// <summary>POST /v1/challenges a software device may approve; returns the status and the challenge id (null unless 201).</summary>
    public async Task<(HttpStatusCode Status, string? Id)> CreateChallengeAsync(string userHandle, int n, CancellationToken ct)
    {
        var body = $$$"""{"action":"payment.send","userId":"{{{userHandle}}}","amount":"12.50","currency":"USD","message":"Bench payment {{{n}}}","requiresHuman":false,"metadata":{"order":{{{n}}}}}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/challenges") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = _bearer;
        using var response = await http.SendAsync(request, ct);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            return (response.StatusCode, null);
        }
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(ct));
        return (response.StatusCode, doc.RootElement.GetProperty("challengeId").GetString());
    }

    /// <summary>POST /v1/webhooks for every challenge event; returns the endpoint id.</summary>
    public async Task<string> AddWebhookAsync(Uri url, CancellationToken ct)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object> { ["url"] = url.ToString(), ["events"] = new[] { "challenge.*" } });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = _bearer;
        using var response = await http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"POST /v1/webhooks answered {(int)response.StatusCode}: {text}");
        }
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.GetProperty("id").GetString()!;
    }
}

/// <summary>
/// A minimal webhook receiver in the driver's process (Kestrel on loopback): notes when each challenge's event was
/// read, by <c>data.challengeId</c>, and answers 204. Stopping it refuses connections, as a receiver that is down does.
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, long> _received = new(StringComparer.Ordinal);
    private readonly int _port = ServerProcess.FreePort();
    private WebApplication? _app;
    private long _posts;

    public Uri Url => new($"http://127.0.0.1:{_port}/hook");

    /// <summary>POSTs read, repeats included (at-least-once may repeat one).</summary>
    public long Posts => Interlocked.Read(ref _posts);

    /// <summary>Distinct challenges heard of.</summary>
    public int Distinct => _received.Count;

    public bool TryGet(string challengeId, out long at) => _received.TryGetValue(challengeId, out at);

    public async Task StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{_port}");
        var app = builder.Build();
        app.MapPost("/hook", async (HttpContext context) =>
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            var at = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _posts);
            if (body.RootElement.GetProperty("data").TryGetProperty("challengeId", out var id))
            {
                _received.TryAdd(id.GetString()!, at);
            }
            return Results.NoContent();
        });
        await app.StartAsync(ct);
        _app = app;
    }

    public async Task StopAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}

/// <summary>Pending challenges as the users' devices hear them on their streams, ready to be decided.</summary>
internal sealed record HeardChallenge(BenchDevice Device, string Id, byte[] Payload);

internal static class Paced
{
    /// <summary>
    /// Starts <paramref name="one"/> <paramref name="total"/> times at <paramref name="perSecond"/> (open loop: a slow
    /// answer does not slow the schedule), at most <paramref name="maxInFlight"/> at once.
    /// </summary>
    public static async Task RunAsync(int total, double perSecond, int maxInFlight, Func<int, Task> one, CancellationToken ct)
    {
        using var gate = new SemaphoreSlim(maxInFlight, maxInFlight);
        var running = new List<Task>(total);
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < total; i++)
        {
            var due = start + (long)(i / perSecond * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() < due)
            {
                await Task.Delay(1, ct);
            }
            await gate.WaitAsync(ct);
            var n = i;
            running.Add(Task.Run(async () =>
            {
                try
                {
                    await one(n);
                }
                finally
                {
                    gate.Release();
                }
            }, CancellationToken.None));
        }
        await Task.WhenAll(running);
    }
}
