using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;

namespace Assent.Server.Tests.Processes;

/// <summary>A real <c>assent server</c> process, for tests that kill it with SIGKILL.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private Action<string>? _onLine;

    private ServerProcess(Process process, string url)
    {
        _process = process;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Url { get; }

    public HttpClient Http { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts a node; <paramref name="issuer"/> is shared by every node of one deployment. <paramref name="configure"/>
    /// may add arguments or environment variables.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(string dataDirectory, int port, string issuer, string? database = null,
        Action<ProcessStartInfo>? configure = null, Action<string>? onLine = null)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "assent.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { cli, "server", "--urls", $"http://localhost:{port}", "--data", dataDirectory, "--issuer", issuer })
        {
            start.ArgumentList.Add(a);
        }
        if (database is not null)
        {
            start.ArgumentList.Add("--database");
            start.ArgumentList.Add(database);
        }
        configure?.Invoke(start);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var node = new ServerProcess(process, $"http://localhost:{port}") { _onLine = onLine };
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) => node.Collect(e.Data, listening);
        process.ErrorDataReceived += (_, e) => node.Collect(e.Data, null);
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("assent server exited:\n" + node.Output));
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return node;
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush; whatever was committed must survive.</summary>
    public void KillHard()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    /// <summary>SIGTERM, as a service manager stops it: the server shuts down and flushes its log; returns once all its output is read.</summary>
    public async Task StopAsync()
    {
        if (OperatingSystem.IsWindows())
        {
            KillHard();
            return;
        }
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        // Without a timeout, this also waits until the output handlers have seen the end of both streams.
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        KillHard();
        Http.Dispose();
        _process.Dispose();
        await Task.CompletedTask;
    }

    private void Collect(string? line, TaskCompletionSource? listening)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
        _onLine?.Invoke(line);
        if (line.StartsWith("Assent listening on", StringComparison.Ordinal))
        {
            listening?.TrySetResult();
        }
    }
}

/// <summary>A software authenticator talking to any node by URL.</summary>
public sealed class ProcessDevice(string deviceId, byte[] seed)
{
    public string DeviceId => deviceId;

    public static async Task<ProcessDevice> EnrollAsync(HttpClient http, string code)
    {
        var seed = Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed));
        var body = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["code"] = code,
            ["public_key"] = publicKey,
            ["proof"] = Base64Url.Encode(Ed25519.Sign(seed, DeviceSignatures.EnrollmentSigningInput(code, publicKey))),
        });
        using var response = await http.PostAsync("/authenticator/enroll", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return new ProcessDevice(JsonDocument.Parse(text).RootElement.GetProperty("device_id").GetString()!, seed);
    }

    /// <summary>A request signed with the device key over <paramref name="body"/> (sent as JSON) or over an empty body.</summary>
    public HttpRequestMessage Signed(HttpMethod method, string path, byte[]? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.TryAddWithoutValidation("Authorization", DeviceSignatures.SignRequest(deviceId, seed, method.Method, path, body ?? [], DateTimeOffset.UtcNow));
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        return request;
    }

    public async Task<JsonElement[]> PendingAsync(HttpClient http, CancellationToken ct = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/authenticator/approvals");
        request.Headers.TryAddWithoutValidation("Authorization", DeviceSignatures.SignRequest(deviceId, seed, "GET", "/authenticator/approvals", [], DateTimeOffset.UtcNow));
        using var response = await http.SendAsync(request, ct);
        response.EnsureSuccessStatusCode();
        var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return doc.RootElement.GetProperty("approvals").EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    public async Task<JsonElement> GetAsync(HttpClient http, string approvalId)
    {
        var path = "/authenticator/approvals/" + approvalId;
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("Authorization", DeviceSignatures.SignRequest(deviceId, seed, "GET", path, [], DateTimeOffset.UtcNow));
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    public async Task<HttpResponseMessage> DecideAsync(HttpClient http, JsonElement approval, string decision, CancellationToken ct = default)
    {
        var signature = Ed25519.Sign(seed, ApprovalPayload.SigningInput(decision, Base64Url.Decode(approval.GetProperty("payload").GetString()!)));
        var body = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["device_id"] = deviceId,
            ["decision"] = decision,
            ["signature"] = Base64Url.Encode(signature),
        });
        return await http.PostAsync($"/authenticator/approvals/{approval.GetProperty("id").GetString()}/decision",
            new StringContent(body, Encoding.UTF8, "application/json"), ct);
    }
}

public static class AgentCalls
{
    public static AuthenticationHeaderValue Basic(string id, string secret) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(id)}:{Uri.EscapeDataString(secret)}")));

    public static async Task<string> AskAsync(HttpClient http, string id, string secret, string user, string message, CancellationToken ct = default) =>
        await TryAskAsync(http, id, secret, user, message, ct) ?? throw new Xunit.Sdk.XunitException("the agent's pending requests are at their cap (429)");

    /// <summary>A CIBA request; null when the server refused it only because the agent has too many pending (429), as under load.</summary>
    public static async Task<string?> TryAskAsync(HttpClient http, string id, string secret, string user, string message, CancellationToken ct = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["scope"] = "openid", ["login_hint"] = user, ["binding_message"] = message }),
        };
        request.Headers.Authorization = Basic(id, secret);
        using var response = await http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode == HttpStatusCode.TooManyRequests)
        {
            return null;
        }
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("auth_req_id").GetString()!;
    }

    public static async Task<(int Status, string? Error, string? Token)> TokenAsync(HttpClient http, string id, string secret, string authReqId, int wait, CancellationToken ct = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "urn:openid:params:grant-type:ciba",
                ["auth_req_id"] = authReqId,
            }),
        };
        request.Headers.Authorization = Basic(id, secret);
        if (wait > 0)
        {
            request.Headers.TryAddWithoutValidation("Prefer", $"wait={wait}");
        }
        using var response = await http.SendAsync(request, ct);
        var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement;
        return ((int)response.StatusCode,
            doc.TryGetProperty("error", out var e) ? e.GetString() : null,
            doc.TryGetProperty("access_token", out var t) ? t.GetString() : null);
    }
}
