using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Client.Authenticator;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Jose;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Hosting;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Assent.Client.Tests;

/// <summary>A clock a verifier reads; tests shift it instead of sleeping.</summary>
public sealed class ShiftedClock : TimeProvider
{
    private long _offsetTicks;

    public void Shift(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow().AddTicks(Interlocked.Read(ref _offsetTicks));

    public override long GetTimestamp() =>
        Stopwatch.GetTimestamp() + (long)(Interlocked.Read(ref _offsetTicks) * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));
}

/// <summary>A user with one enrolled Ed25519 device and an agent that may ask them.</summary>
public sealed record TestUser(string Handle, string Did, AuthenticatorClient Device, string DeviceId, string ClientId, string ClientSecret);

/// <summary>A real Assent server on Kestrel on a free localhost port, with its own data directory.</summary>
public sealed class IssuerServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _data;

    private IssuerServer(WebApplication app, string data, Uri baseUri)
    {
        _app = app;
        _data = data;
        BaseUri = baseUri;
    }

    public Uri BaseUri { get; }

    public string Issuer => BaseUri.AbsoluteUri.TrimEnd('/');

    internal T Service<T>() where T : notnull => _app.Services.GetRequiredService<T>();

    public static async Task<IssuerServer> StartAsync()
    {
        var data = Directory.CreateTempSubdirectory("assent-client-test-").FullName;
        var baseUri = new Uri($"http://localhost:{Ports.Reserve()}");
        var options = new AssentOptions { Issuer = baseUri.AbsoluteUri.TrimEnd('/'), DataDirectory = data };
        var app = await AssentServer.BuildAsync(options, baseUri.AbsoluteUri, TextWriter.Null);
        await app.StartAsync();
        return new IssuerServer(app, data, baseUri);
    }

    public async Task<TestUser> UserAsync(string scopes = "approve:action payments:write")
    {
        var admin = new AdminOperations(_app.Services.GetRequiredService<AssentStore>(), _app.Services.GetRequiredService<AssentOptions>(), TimeProvider.System);
        var handle = "u" + Guid.NewGuid().ToString("N")[..10];
        var invite = await admin.InviteAsync(handle, false, CancellationToken.None);
        using var enrolling = new AuthenticatorClient(BaseUri);
        var enrolled = await enrolling.EnrollAsync(invite.Code, "test device", CancellationToken.None);
        var agent = await admin.CreateAgentAsync(handle, "test agent", scopes, CancellationToken.None);
        return new TestUser(handle, enrolled.UserDid, new AuthenticatorClient(BaseUri, enrolled.Key), enrolled.Key.DeviceId, agent.ClientId, agent.ClientSecret);
    }

    public AssentClient ClientFor(TestUser user, HttpClient? http = null) => new(new AssentClientOptions
    {
        Server = BaseUri,
        ClientId = user.ClientId,
        ClientSecret = user.ClientSecret,
        UserDid = user.Did,
        HttpClient = http,
    });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Two real issuers shared by every test in the collection; users are made per test.</summary>
public sealed class Issuers : IAsyncLifetime
{
    public IssuerServer A { get; private set; } = null!;

    public IssuerServer B { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        A = await IssuerServer.StartAsync();
        B = await IssuerServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class IssuersCollection : ICollectionFixture<Issuers>
{
    public const string Name = "issuers";
}

/// <summary>The human: waits for the one pending request and decides it with the device key.</summary>
public static class Human
{
    public static async Task<PendingRequest> DecideAsync(TestUser user, string decision, TimeSpan? delay = null)
    {
        if (delay is { } d)
        {
            await Task.Delay(d);
        }
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < until)
        {
            var pending = await user.Device.ListPendingAsync(CancellationToken.None);
            if (pending.Count > 0)
            {
                var request = Assert.Single(pending);
                await user.Device.DecideAsync(request, decision, CancellationToken.None);
                return request;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException("no pending request appeared");
    }
}

/// <summary>
/// An issuer the test controls: serves discovery and a JWKS for <see cref="Issuer"/> with its own key,
/// and passes every other request to the network, so DID documents still come from the real server.
/// </summary>
public sealed class ForgedIssuer : DelegatingHandler
{
    public const string Issuer = "https://forge.test";

    public ForgedIssuer() : base(new SocketsHttpHandler())
    {
        Seed = Ed25519.NewSeed();
        Kid = "forge-key";
    }

    public byte[] Seed { get; }

    public string Kid { get; }

    public HttpClient Http() => new(this, disposeHandler: false);

    public string Sign(object claims, string typ = Jws.AccessTokenType, string? kid = null) =>
        Jws.Sign(Jws.EncodeHeader(kid ?? Kid, typ), JsonSerializer.SerializeToUtf8Bytes(claims), Seed);

    public string Sign(JsonElement claims, string? kid = null) =>
        Jws.Sign(Jws.EncodeHeader(kid ?? Kid, Jws.AccessTokenType), Encoding.UTF8.GetBytes(claims.GetRawText()), Seed);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri!.Host != "forge.test")
        {
            return base.SendAsync(request, cancellationToken);
        }
        var body = request.RequestUri.AbsolutePath switch
        {
            "/.well-known/openid-configuration" => JsonSerializer.Serialize(new Dictionary<string, string> { ["issuer"] = Issuer, ["jwks_uri"] = Issuer + "/jwks" }),
            "/jwks" => $$"""{"keys":[{"kty":"OKP","crv":"Ed25519","x":"{{Base64Url.Encode(Ed25519.PublicKeyFromSeed(Seed))}}","kid":"{{Kid}}","use":"sig"}]}""",
            _ => null,
        };
        return Task.FromResult(body is null
            ? new HttpResponseMessage(HttpStatusCode.NotFound)
            : new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, Encoding.UTF8, "application/json") });
    }

    /// <summary>The claims of an approval (a human's DID, <c>txn</c>, <c>act</c>) without evidence; a null drops the claim.</summary>
    public static Dictionary<string, object?> Claims(string? iss = Issuer, string? aud = "agent", string scope = "openid approve:action",
        long? exp = null, long? nbf = null, long? iat = null, string? sub = "did:web:forge.test:users:usr_1", string? txn = "apr_forged",
        object? act = null, bool noAct = false)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new Dictionary<string, object?>
        {
            ["iss"] = iss,
            ["sub"] = sub,
            ["aud"] = aud,
            ["client_id"] = "agent",
            ["act"] = noAct ? null : act ?? new Dictionary<string, string> { ["sub"] = "agent" },
            ["txn"] = txn,
            ["scope"] = scope,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["iat"] = iat ?? now,
            ["nbf"] = nbf ?? now,
            ["exp"] = exp ?? now + 300,
        };
        foreach (var key in claims.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            claims.Remove(key);
        }
        return claims;
    }
}
