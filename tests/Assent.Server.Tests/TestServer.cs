using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Hosting;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Assent.Server.Tests;

/// <summary>A clock tests move by hand; timers still run on real time.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

public sealed record TestAgent(string ClientId, string ClientSecret, string Owner);

/// <summary>A software authenticator: an Ed25519 key enrolled for one user.</summary>
public sealed class TestDevice(TestServer server, string deviceId, byte[] seed, string userId, string did, string handle)
{
    public string DeviceId => deviceId;
    public string UserId => userId;
    public string Did => did;
    public string Handle => handle;
    public byte[] Seed => seed;

    /// <summary>The same device talking to another node of the deployment.</summary>
    public TestDevice On(TestServer other) => new(other, deviceId, seed, userId, did, handle);

    /// <summary>This device's event stream (docs/http-api.md §11), open until disposed.</summary>
    public async Task<DeviceStream> OpenStreamAsync(CancellationToken ct)
    {
        var response = await server.Http.SendAsync(Signed(HttpMethod.Get, "/authenticator/stream"), HttpCompletionOption.ResponseHeadersRead, ct);
        return new DeviceStream(response, new StreamReader(await response.Content.ReadAsStreamAsync(ct)));
    }

    public HttpRequestMessage Signed(HttpMethod method, string pathAndQuery, byte[]? body = null)
    {
        var request = new HttpRequestMessage(method, pathAndQuery);
        request.Headers.TryAddWithoutValidation("Authorization",
            DeviceSignatures.SignRequest(deviceId, seed, method.Method, pathAndQuery, body ?? [], server.Clock.GetUtcNow()));
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        return request;
    }

    public async Task<JsonElement[]> PendingAsync()
    {
        using var response = await server.Http.SendAsync(Signed(HttpMethod.Get, "/authenticator/approvals"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("approvals").EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    public byte[] SignDecision(string decision, string payloadB64) =>
        Ed25519.Sign(seed, ApprovalPayload.SigningInput(decision, Base64Url.Decode(payloadB64)));

    public Task<HttpResponseMessage> PostDecisionAsync(string approvalId, string decision, byte[] signature) =>
        server.Http.PostAsync($"/authenticator/approvals/{approvalId}/decision", JsonBody(new Dictionary<string, string>
        {
            ["device_id"] = deviceId,
            ["decision"] = decision,
            ["signature"] = Base64Url.Encode(signature),
        }));

    /// <summary>Finds the one pending request and decides it; returns the HTTP response.</summary>
    public async Task<HttpResponseMessage> DecideOnlyPendingAsync(string decision)
    {
        var pending = await PendingAsync();
        var one = Assert.Single(pending);
        return await PostDecisionAsync(one.GetProperty("id").GetString()!, decision, SignDecision(decision, one.GetProperty("payload").GetString()!));
    }

    public static StringContent JsonBody(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");
}

/// <summary>A real Assent server on Kestrel, on a free localhost port, with its own data directory.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private WebApplication _app = null!;
    private int _agents;

    public ManualClock Clock { get; }
    public string DataDirectory { get; }
    public int Port { get; }
    public Uri BaseUri => new($"http://localhost:{Port}");
    public HttpClient Http { get; private set; } = null!;
    public AssentOptions Options { get; private set; } = null!;
    internal AssentStore Store => _app.Services.GetRequiredService<AssentStore>();
    internal T Service<T>() where T : notnull => _app.Services.GetRequiredService<T>();
    public string Banner { get; private set; } = "";

    private TestServer(ManualClock clock, string dataDirectory, int port)
    {
        Clock = clock;
        DataDirectory = dataDirectory;
        Port = port;
    }

    public static async Task<TestServer> StartAsync(string? dataDirectory = null, int? port = null, ManualClock? clock = null, Action<AssentOptions>? configure = null)
    {
        var server = new TestServer(clock ?? new ManualClock(DateTimeOffset.UtcNow),
            dataDirectory ?? Directory.CreateTempSubdirectory("assent-test-").FullName, port ?? Ports.Reserve());
        await server.BootAsync(configure);
        return server;
    }

    private async Task BootAsync(Action<AssentOptions>? configure)
    {
        Options = new AssentOptions { Issuer = BaseUri.ToString().TrimEnd('/'), DataDirectory = DataDirectory };
        configure?.Invoke(Options);
        var banner = new StringWriter();
        _app = await AssentServer.BuildAsync(Options, BaseUri.ToString(), banner, Clock);
        Banner = banner.ToString();
        await _app.StartAsync();
        Http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(90) };
    }

    /// <summary>Stops this process's server and starts a new one on the same data and port.</summary>
    public async Task RestartAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await BootAsync(null);
    }

    /// <summary>
    /// Waits until this node's hub holds at least <paramref name="count"/> waiters: a held (<c>Prefer: wait</c>) request is
    /// then registered, so a decision, a wake or a clock move that follows cannot come before it.
    /// </summary>
    internal async Task WaitForWaitersAsync(int count = 1)
    {
        var hub = Service<Approvals.ApprovalHub>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (hub.WaiterCount < count)
        {
            Assert.False(deadline.IsCancellationRequested, $"the hold never started waiting ({hub.WaiterCount} of {count} waiters)");
            await Task.Delay(5, CancellationToken.None);
        }
    }

    /// <summary>Operator actions on this server's store, as <c>assent admin</c> runs them.</summary>
    internal AdminOperations Admin => new(Store, Options, Clock);

    internal Task<Invite> InviteAsync(string handle, bool admin = false) => Admin.InviteAsync(handle, admin, CancellationToken.None);

    public async Task<TestDevice> EnrollAsync(string code, string name = "test device")
    {
        var seed = Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed));
        var proof = Ed25519.Sign(seed, DeviceSignatures.EnrollmentSigningInput(code, publicKey));
        using var response = await Http.PostAsync("/authenticator/enroll", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["code"] = code,
            ["public_key"] = publicKey,
            ["name"] = name,
            ["proof"] = Base64Url.Encode(proof),
        }));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        var doc = JsonDocument.Parse(text).RootElement;
        return new TestDevice(this, doc.GetProperty("device_id").GetString()!, seed, doc.GetProperty("user_id").GetString()!,
            doc.GetProperty("user_did").GetString()!, doc.GetProperty("handle").GetString()!);
    }

    public async Task<TestDevice> UserWithDeviceAsync(string? handle = null)
    {
        var invite = await InviteAsync(handle ?? "u" + Guid.NewGuid().ToString("N")[..10]);
        return await EnrollAsync(invite.Code);
    }

    /// <summary>An agent of the owner; an owner's agents need distinct names, so by default each is numbered.</summary>
    public async Task<TestAgent> AgentAsync(string ownerHandle, string scopes = "approve:action payments:write", string? name = null)
    {
        var created = await Admin.CreateAgentAsync(ownerHandle, name ?? $"Test agent {Interlocked.Increment(ref _agents)}", scopes, CancellationToken.None);
        return new TestAgent(created.ClientId, created.ClientSecret, ownerHandle);
    }

    public static AuthenticationHeaderValue Basic(TestAgent agent) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(agent.ClientId)}:{Uri.EscapeDataString(agent.ClientSecret)}")));

    public Task<HttpResponseMessage> BcAuthorizeAsync(TestAgent agent, Dictionary<string, string> form)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = Basic(agent);
        return Http.SendAsync(request);
    }

    /// <summary>A CIBA request for the agent's owner; returns auth_req_id.</summary>
    public async Task<string> AskAsync(TestAgent agent, string message = "Delete user alice@corp", string? details = null, string scope = "openid approve:action")
    {
        var form = new Dictionary<string, string> { ["scope"] = scope, ["login_hint"] = agent.Owner, ["binding_message"] = message };
        if (details is not null)
        {
            form["authorization_details"] = details;
        }
        using var response = await BcAuthorizeAsync(agent, form);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("auth_req_id").GetString()!;
    }

    public Task<HttpResponseMessage> TokenAsync(TestAgent agent, string authReqId, int? wait = null, CancellationToken ct = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "urn:openid:params:grant-type:ciba",
                ["auth_req_id"] = authReqId,
            }),
        };
        request.Headers.Authorization = Basic(agent);
        if (wait is not null)
        {
            request.Headers.TryAddWithoutValidation("Prefer", $"wait={wait}");
        }
        return Http.SendAsync(request, ct);
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body)> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public static async Task<string> ErrorOf(HttpResponseMessage response)
    {
        var (_, body) = await ReadAsync(response);
        return body.GetProperty("error").GetString()!;
    }

    /// <summary>Stops the server but leaves its data directory for the test to inspect or reuse.</summary>
    public async Task StopKeepingDataAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopKeepingDataAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>One shared server for the tests that do not need their own clock or restarts.</summary>
public sealed class SharedServer : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class SharedServerCollection : ICollectionFixture<SharedServer>
{
    public const string Name = "shared server";
}

/// <summary>A device's open event stream: the response and a reader over its body, both released on dispose.</summary>
public sealed class DeviceStream(HttpResponseMessage response, StreamReader reader) : IDisposable
{
    public StreamReader Reader => reader;

    public void Dispose()
    {
        reader.Dispose();
        response.Dispose();
    }
}
