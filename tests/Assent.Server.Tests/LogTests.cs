using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Assent.Protocol.Devices;
using Assent.Server.Common;
using Assent.Server.Hosting;
using Assent.Server.Tests.Processes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Tests;

/// <summary>What the server writes to its log for requests nobody authenticated (docs/deployment.md §12).</summary>
public sealed partial class LogTests
{
    private const string StackFrame = "   at ";

    [Theory]
    [InlineData(null)] // the level `assent server` runs at unless told otherwise
    [InlineData("Information")]
    public async Task Each_bad_unauthenticated_request_writes_at_most_one_line_and_no_stack_trace(string? level)
    {
        var dir = Directory.CreateTempSubdirectory("assent-logs-").FullName;
        var port = Ports.Reserve();
        await using var node = await ServerProcess.StartAsync(dir, port, $"http://localhost:{port}",
            configure: level is null ? null : s => s.Environment["Logging__LogLevel__Default"] = level);
        var device = await ProcessDevice.EnrollAsync(node.Http, InviteCode().Match(node.Output).Groups[1].Value);
        var before = await QuietOutputAsync(node);

        var statuses = new List<int?>();
        foreach (var request in BadRequests(device))
        {
            using (request)
            {
                statuses.Add(await SendAsync(node.Http, request));
            }
        }
        foreach (var raw in BadRawRequests(device))
        {
            statuses.Add(await SendRawAsync(port, raw));
        }
        await node.StopAsync();

        // Start-up and shutdown lines of the host are not the requests' doing.
        var written = node.Output[before.Length..].Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.Contains("Microsoft.Hosting.Lifetime", StringComparison.Ordinal)).ToList();
        Assert.DoesNotContain(StackFrame, string.Join('\n', written));
        if (level is null)
        {
            Assert.Empty(written);
        }
        else
        {
            Assert.True(written.Count <= statuses.Count, $"{written.Count} lines for {statuses.Count} requests:\n{string.Join('\n', written)}");
        }
        Assert.All(statuses, s => Assert.True(s is null or >= 400 and < 500, $"status {s}: {string.Join(", ", statuses)}"));
    }

    [Fact]
    public async Task A_server_error_still_logs_its_stack_trace_once()
    {
        var port = Ports.Reserve();
        var options = new AssentOptions { Issuer = $"http://localhost:{port}", DataDirectory = Directory.CreateTempSubdirectory("assent-logs-").FullName };
        var log = new CapturedLog();
        await using var app = await AssentServer.BuildAsync(options, $"http://localhost:{port}", TextWriter.Null);
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(log);
        app.MapGet("/test/fault", string () => throw new InvalidOperationException("a bug"));
        await app.StartAsync();

        using var http = new HttpClient();
        using var response = await http.GetAsync($"http://localhost:{port}/test/fault");
        await app.StopAsync();

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var logged = Assert.Single(log.Entries, e => e.Exception is not null);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.IsType<InvalidOperationException>(logged.Exception);
        Assert.Contains(StackFrame, logged.Exception.ToString());
    }

    [Fact]
    public async Task A_refused_device_signed_request_is_one_information_line_naming_the_endpoint_and_the_reason()
    {
        var port = Ports.Reserve();
        var options = new AssentOptions { Issuer = $"http://localhost:{port}", DataDirectory = Directory.CreateTempSubdirectory("assent-logs-").FullName };
        var log = new CapturedLog();
        await using var app = await AssentServer.BuildAsync(options, $"http://localhost:{port}", TextWriter.Null, logLevel: LogLevel.Information);
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(log);
        await app.StartAsync();

        using var http = new HttpClient();
        using var response = await http.GetAsync($"http://localhost:{port}/authenticator/approvals");
        await app.StopAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var refused = Assert.Single(log.Entries, e => e.Category.EndsWith(".DeviceSignatureHandler", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, refused.Level);
        Assert.StartsWith("refused a device-signed request to ", refused.Message);
        Assert.Contains("/authenticator/approvals", refused.Message);
        Assert.EndsWith(": sign the request with the device key: Authorization: AssentDevice id=…, ts=…, nonce=…, sig=…", refused.Message);
        Assert.Null(refused.Exception);
    }

    /// <summary>Oversized bodies to endpoints of every kind, malformed JSON and forms, bad signatures.</summary>
    private static IEnumerable<HttpRequestMessage> BadRequests(ProcessDevice device)
    {
        var large = new byte[20 * 1024]; // over a signed body's 16 KiB
        Array.Fill(large, (byte)'a');
        var huge = new byte[100 * 1024]; // over any body's 64 KiB
        Array.Fill(huge, (byte)'a');
        const string login = "/authenticator/device-login";

        yield return device.Signed(HttpMethod.Post, login, large);
        var chunked = device.Signed(HttpMethod.Post, login, large);
        chunked.Content = Chunked(large, "application/json");
        yield return chunked;
        var chunkedHuge = device.Signed(HttpMethod.Post, login, huge);
        chunkedHuge.Content = Chunked(huge, "application/json");
        yield return chunkedHuge;
        var forged = device.Signed(HttpMethod.Post, login, """{"user_code":"ABCD-EFGH"}"""u8.ToArray());
        forged.Content = Json("""{"user_code":"WXYZ-WXYZ"}""");
        yield return forged;
        yield return new HttpRequestMessage(HttpMethod.Post, login) { Content = new ByteArrayContent(huge) };
        var garbage = new HttpRequestMessage(HttpMethod.Get, "/authenticator/approvals");
        garbage.Headers.TryAddWithoutValidation("Authorization", "AssentDevice id=dev_nobody, ts=1, nonce=x, sig=y");
        yield return garbage;

        foreach (var path in new[] { "/authenticator/enroll", "/agents", "/webauthn/register", "/webauthn/signin", "/authenticator/approvals/apr_x/decision" })
        {
            yield return new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(Encoding.ASCII.GetString(huge)) };
            yield return new HttpRequestMessage(HttpMethod.Post, path) { Content = Chunked(huge, "application/json") };
            yield return new HttpRequestMessage(HttpMethod.Post, path) { Content = Json("""{"code": [1, 2""") };
        }
        foreach (var path in new[] { "/oauth/token", "/oauth/bc-authorize", "/oauth/device/code", "/oauth/revoke" })
        {
            yield return new HttpRequestMessage(HttpMethod.Post, path) { Content = Form("a=" + Encoding.ASCII.GetString(huge)) };
            yield return new HttpRequestMessage(HttpMethod.Post, path) { Content = Chunked(huge, "application/x-www-form-urlencoded") };
            yield return new HttpRequestMessage(HttpMethod.Post, path) { Content = Form("%%%&&&=%zz&a=1&a=2") };
            var multipart = new ByteArrayContent("--x\r\ngarbage"u8.ToArray());
            multipart.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=x");
            yield return new HttpRequestMessage(HttpMethod.Post, path) { Content = multipart };
        }
    }

    /// <summary>What no HTTP client library sends: broken chunked encoding, a body shorter than announced, a bad request line.</summary>
    private static IEnumerable<byte[]> BadRawRequests(ProcessDevice device)
    {
        const string badChunks = "zz\r\nabc\r\n0\r\n\r\n";
        foreach (var path in new[] { "/authenticator/enroll", "/oauth/token", "/webauthn/register" })
        {
            var type = path == "/oauth/token" ? "application/x-www-form-urlencoded" : "application/json";
            yield return Encoding.ASCII.GetBytes($"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {type}\r\nTransfer-Encoding: chunked\r\n\r\n{badChunks}");
        }
        using (var signed = device.Signed(HttpMethod.Post, "/authenticator/device-login", []))
        {
            var authorization = signed.Headers.GetValues("Authorization").Single();
            yield return Encoding.ASCII.GetBytes(
                $"POST /authenticator/device-login HTTP/1.1\r\nHost: localhost\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{badChunks}");
        }
        yield return Encoding.ASCII.GetBytes("POST /authenticator/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"code\":");
        yield return Encoding.ASCII.GetBytes("GET /\u0001 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    }

    /// <summary>The status the server answered, or null when it closed the connection first (refusing a body it would not read).</summary>
    private static async Task<int?> SendAsync(HttpClient http, HttpRequestMessage request)
    {
        try
        {
            using var response = await http.SendAsync(request);
            return (int)response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>Sends the bytes, half-closes, and returns the status the server answered, or null when it closed without one.</summary>
    private static async Task<int?> SendRawAsync(int port, byte[] request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        try
        {
            await stream.WriteAsync(request);
            tcp.Client.Shutdown(SocketShutdown.Send);
            using var reader = new StreamReader(stream, Encoding.ASCII);
            var status = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            return status is null ? null : int.Parse(status.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The output once the server has written nothing for a second (its log is written in the background).</summary>
    private static async Task<string> QuietOutputAsync(ServerProcess node)
    {
        var output = node.Output;
        for (var waited = 0; waited < 30; waited++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            if (node.Output == output)
            {
                return output;
            }
            output = node.Output;
        }
        return output;
    }

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    private static StringContent Form(string text) => new(text, Encoding.ASCII, "application/x-www-form-urlencoded");

    /// <summary>A body of unknown length: sent with Transfer-Encoding: chunked, so only reading it finds how large it is.</summary>
    private static StreamContent Chunked(byte[] body, string type)
    {
        var content = new StreamContent(new UnknownLength(body));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        return content;
    }

    [GeneratedRegex(@"code: (\S+)")]
    private static partial Regex InviteCode();

    private sealed class UnknownLength(byte[] body) : MemoryStream(body)
    {
        public override bool CanSeek => false;
    }

    private sealed record Entry(string Category, LogLevel Level, string Message, Exception? Exception);

    private sealed class CapturedLog : ILoggerProvider
    {
        public ConcurrentQueue<Entry> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                log.Entries.Enqueue(new Entry(category, logLevel, formatter(state, exception), exception));
        }
    }
}
