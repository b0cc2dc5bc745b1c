using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;

namespace Assent.Bench;

/// <summary>HTTP plumbing shared by the modes: one pooled client, unlimited connections that live for the run.</summary>
internal static class BenchHttp
{
    public static HttpClient Create(Uri baseUri, Action? onConnect = null)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
        };
        if (onConnect is not null)
        {
            handler.ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
                onConnect();
                return new NetworkStream(socket, ownsSocket: true);
            };
        }
        return new HttpClient(new ServerTimes.Handler(handler)) { BaseAddress = baseUri, Timeout = Timeout.InfiniteTimeSpan };
    }
}

/// <summary>An agent: a confidential client asking for approvals with CIBA.</summary>
internal sealed class BenchAgent(HttpClient http, Provisioned who)
{
    private readonly AuthenticationHeaderValue _basic = new("Basic",
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(who.ClientId)}:{Uri.EscapeDataString(who.ClientSecret)}")));

    public Provisioned Who => who;

    /// <summary>POST /oauth/bc-authorize; returns the auth_req_id.</summary>
    public async Task<string> AskAsync(string message, int? expirySeconds, CancellationToken ct, string? details = null)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("scope", "openid " + Provisioning.Scopes),
            new("login_hint", who.Handle),
            new("binding_message", message),
        };
        if (details is not null)
        {
            form.Add(new("authorization_details", details));
        }
        if (expirySeconds is { } expiry)
        {
            form.Add(new("requested_expiry", expiry.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = _basic;
        using var response = await http.SendAsync(request, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"bc-authorize answered {(int)response.StatusCode}: {body}");
        }
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("auth_req_id").GetString()!;
    }

    /// <summary>POST /v1/payments with an HTTP 402 as JSON (docs/payments.md §6); returns status and body.</summary>
    public async Task<(HttpStatusCode Status, string Body)> PayAsync(string body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/payments") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = _basic;
        using var response = await http.SendAsync(request, ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(ct));
    }

    /// <summary>POST /oauth/token for a CIBA request, optionally held with <c>Prefer: wait</c>; returns status and body.</summary>
    public async Task<(HttpStatusCode Status, string Body)> TokenAsync(string authReqId, int? waitSeconds, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "urn:openid:params:grant-type:ciba"), new("auth_req_id", authReqId)]),
        };
        request.Headers.Authorization = _basic;
        if (waitSeconds is { } wait)
        {
            request.Headers.TryAddWithoutValidation("Prefer", $"wait={wait}");
        }
        using var response = await http.SendAsync(request, ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(ct));
    }

    /// <summary>The approval id (<c>txn</c>) inside an access token, read without verifying: the driver trusts its own server.</summary>
    public static string TransactionOf(string tokenResponse) => Claim(tokenResponse, "txn", c => c.GetString()!);

    /// <summary>How many users approved (the <c>approvers</c> claim of a quorum's token; 1 without it), read without verifying.</summary>
    public static int ApproversOf(string tokenResponse) =>
        Claim(tokenResponse, "approvers", c => c.ValueKind == JsonValueKind.Array ? c.GetArrayLength() : 1, 1);

    private static T Claim<T>(string tokenResponse, string name, Func<JsonElement, T> read, T? absent = default)
    {
        using var response = JsonDocument.Parse(tokenResponse);
        var jwt = response.RootElement.GetProperty("access_token").GetString()!;
        var first = jwt.IndexOf('.');
        var payload = Base64Url.Decode(jwt.AsSpan(first + 1, jwt.IndexOf('.', first + 1) - first - 1));
        using var claims = JsonDocument.Parse(payload);
        return claims.RootElement.TryGetProperty(name, out var claim) ? read(claim) : absent!;
    }
}

/// <summary>A software authenticator: an Ed25519 key, enrolled over HTTP, that signs every call and every decision.</summary>
internal sealed class BenchDevice(HttpClient http, string deviceId, byte[] seed)
{
    // Imported once: the driver shares the machine with the server, so its own signing should cost it little.
    private readonly Ed25519Signer _signer = new(seed);

    public string DeviceId => deviceId;

    public static async Task<BenchDevice> EnrollAsync(HttpClient http, string code, CancellationToken ct)
    {
        var seed = Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed));
        var proof = Ed25519.Sign(seed, DeviceSignatures.EnrollmentSigningInput(code, publicKey));
        var body = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["code"] = code,
            ["public_key"] = publicKey,
            ["name"] = "bench device",
            ["proof"] = Base64Url.Encode(proof),
        });
        using var response = await http.PostAsync("/authenticator/enroll", new StringContent(body, Encoding.UTF8, "application/json"), ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"enrolment answered {(int)response.StatusCode}: {text}");
        }
        using var doc = JsonDocument.Parse(text);
        return new BenchDevice(http, doc.RootElement.GetProperty("device_id").GetString()!, seed);
    }

    /// <summary>
    /// Opens the signed SSE stream and hands every pending <c>approval</c> event (id, payload bytes)
    /// to <paramref name="onApproval"/>, one at a time, until the stream ends or <paramref name="ct"/> fires.
    /// </summary>
    public async Task StreamAsync(Func<string, byte[], CancellationToken, Task> onApproval, TaskCompletionSource ready, CancellationToken ct)
    {
        const string path = "/authenticator/stream";
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("Authorization", DeviceSignatures.SignRequest(deviceId, seed, "GET", path, [], DateTimeOffset.UtcNow));
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct), Encoding.UTF8);
        string? type = null;
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0)
            {
                if (type == "approval" && data.Length > 0)
                {
                    using var doc = JsonDocument.Parse(data.ToString());
                    var root = doc.RootElement;
                    if (root.GetProperty("state").GetString() == "pending")
                    {
                        await onApproval(root.GetProperty("id").GetString()!, Base64Url.Decode(root.GetProperty("payload").GetString()!), ct);
                    }
                }
                type = null;
                data.Clear();
            }
            else if (line.StartsWith(": ready", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data.Append(line.AsSpan("data: ".Length));
            }
        }
    }

    /// <summary>Signs <c>decision ‖ 0x00 ‖ payload</c>.</summary>
    public HttpContent Decision(string decision, byte[] payload) => new StringContent(JsonSerializer.Serialize(new Dictionary<string, string>
    {
        ["device_id"] = deviceId,
        ["decision"] = decision,
        ["signature"] = Base64Url.Encode(_signer.Sign(ApprovalPayload.SigningInput(decision, payload))),
    }), Encoding.UTF8, "application/json");

    public async Task<HttpStatusCode> PostDecisionAsync(string approvalId, HttpContent decision, CancellationToken ct)
    {
        using var response = await http.PostAsync($"/authenticator/approvals/{approvalId}/decision", decision, ct);
        return response.StatusCode;
    }
}
