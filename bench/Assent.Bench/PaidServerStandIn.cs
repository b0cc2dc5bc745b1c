using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Assent.Bench;

/// <summary>
/// A paid server on loopback, in the bench process, for timing what the SDK's <c>AssentPaymentHandler</c> adds to a paid
/// request (docs/payments.md §11): <c>GET /paid</c> answers 402 with an x402 v2 <c>PAYMENT-REQUIRED</c> (0.01 USDC on Base
/// Sepolia) until the request carries <c>PAYMENT-SIGNATURE</c>, then 200 with a <c>PAYMENT-RESPONSE</c> receipt. It checks
/// nothing of the payment (the interop tests do that against the reference servers). Each request's own time in the
/// handler is added to <see cref="OwnTime"/> under its <c>X-Bench-Call</c> header, so the bench can take the paid
/// server's time out of the paid request's.
/// </summary>
internal sealed class PaidServerStandIn : IAsyncDisposable
{
    public const string CallHeader = "X-Bench-Call";

    private readonly WebApplication _app;

    private PaidServerStandIn(WebApplication app, Uri uri)
    {
        _app = app;
        Uri = uri;
    }

    public Uri Uri { get; }

    /// <summary>Stopwatch ticks spent answering each call (both the 402 and the paid answer).</summary>
    public ConcurrentDictionary<string, long> OwnTime { get; } = new(StringComparer.Ordinal);

    public static async Task<PaidServerStandIn> StartAsync(CancellationToken ct)
    {
        var uri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(uri.ToString());
        var app = builder.Build();
        var standIn = new PaidServerStandIn(app, uri);
        var required = Convert.ToBase64String(Encoding.UTF8.GetBytes(
            $$$"""{"x402Version":2,"error":"Payment required","resource":{"url":"{{{uri}}}paid","description":"Bench"},"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}}]}"""));
        var receipt = Convert.ToBase64String(Encoding.UTF8.GetBytes(
            """{"success":true,"transaction":"0x0000000000000000000000000000000000000000000000000000000000000001","network":"eip155:84532","payer":"0x0000000000000000000000000000000000000001"}"""));
        app.MapGet("/paid", (HttpContext http) =>
        {
            var started = Stopwatch.GetTimestamp();
            IResult result;
            if (http.Request.Headers.ContainsKey("PAYMENT-SIGNATURE"))
            {
                http.Response.Headers["PAYMENT-RESPONSE"] = receipt;
                result = Results.Text("{\"report\":\"paid\"}", "application/json");
            }
            else
            {
                http.Response.Headers["PAYMENT-REQUIRED"] = required;
                result = Results.Text("{}", "application/json", statusCode: StatusCodes.Status402PaymentRequired);
            }
            if (http.Request.Headers[CallHeader].ToString() is { Length: > 0 } call)
            {
                standIn.OwnTime.AddOrUpdate(call, Stopwatch.GetTimestamp() - started, (_, sum) => sum + Stopwatch.GetTimestamp() - started);
            }
            return result;
        });
        await app.StartAsync(ct);
        return standIn;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
