using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;

namespace Assent.Bench;

/// <summary>
/// The signin and mandates benches' outside peer (<c>--oidc-provider</c>): node-oidc-provider, an OpenID Connect provider that self-hosted
/// deployments run, serving the authorization code flow with PKCE from <c>bench/peers/oidc-provider/server.mjs</c> as a child
/// process (installed from its lockfile with <c>npm ci</c> on first use). The driver signs users in through it as a browser
/// would: the authorization request, its sign-in page, the signed assertion (a P-256 signature over what an authenticator
/// signs, which the peer verifies), the authorization request resumed with the session, and the token request. Its users
/// consented before, as Assent's bench users did. What it leaves out, the figures beside it say: it keeps its state in
/// memory (Assent commits every session and code to SQLite), signs one token per sign-in (Assent two: the ID token and a JWT
/// access token), and runs in one Node process, whose JavaScript runs on one thread (with its helper threads it used 1.1-1.2
/// cores at saturation on two). The mandates bench uses it too
/// (<see cref="ClientCredentialsAsync"/>): one agent's client credentials grant, a JWT access token with no human.
/// </summary>
internal sealed class OidcProviderPeer : IAsyncDisposable
{
    private const string ClientId = "bench-wiki";

    private const string RedirectUri = "http://127.0.0.1:9/callback";

    /// <summary>The steps of a sign-in through the peer, as a browser and the application take them.</summary>
    public static readonly string[] StepNames = ["authorize", "page", "assertion", "resume", "token"];

    private readonly Process _process;
    private readonly ECDsa _passkey;
    private readonly HttpClient _http;

    private OidcProviderPeer(Process process, ECDsa passkey, Uri baseUri, string version)
    {
        (_process, _passkey, BaseUri, Version) = (process, passkey, baseUri, version);
        _http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue, PooledConnectionLifetime = Timeout.InfiniteTimeSpan, UseCookies = false, UseProxy = false,
            AllowAutoRedirect = false,
        }) { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri BaseUri { get; }

    /// <summary>The version of node-oidc-provider installed (its lockfile's).</summary>
    public string Version { get; }

    /// <summary>The peer's CPU time so far (user + system).</summary>
    public TimeSpan CpuTime() => ServerProcess.Stat(_process.Id)?.Cpu ?? TimeSpan.Zero;

    /// <summary>Installs the peer if needed, starts it on a free port and waits until it listens.</summary>
    public static async Task<OidcProviderPeer> StartAsync(CancellationToken ct)
    {
        var directory = Directory() ?? throw new UsageException("--oidc-provider: bench/peers/oidc-provider/server.mjs not found above the bench's directory");
        if (!File.Exists(Path.Combine(directory, "node_modules", "oidc-provider", "package.json")))
        {
            Console.WriteLine("  (installing the peer: npm ci in bench/peers/oidc-provider)");
            try
            {
                await BenchProcess.RunAsync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], directory, ct);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw NotInstalled("npm", e);
            }
        }
        using var installed = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(directory, "node_modules", "oidc-provider", "package.json"), ct));
        var version = installed.RootElement.GetProperty("version").GetString() ?? "?";
        var passkey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = passkey.ExportParameters(false).Q;
        var jwk = JsonSerializer.Serialize(new Dictionary<string, string> { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64Url.Encode(q.X!), ["y"] = Base64Url.Encode(q.Y!) });
        var uri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        var info = new ProcessStartInfo("node")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = directory,
        };
        foreach (var arg in new[] { "server.mjs", uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), jwk })
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["NODE_ENV"] = "production";
        var process = Start(info);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data == "listening")
            {
                listening.TrySetResult();
            }
        };
        // Its start-up warnings (the in-memory adapter, the Node version) and any error, prefixed like the server's.
        process.ErrorDataReceived += (_, e) =>
        {
            if (!string.IsNullOrEmpty(e.Data))
            {
                Console.Error.WriteLine("[peer] " + e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var peer = new OidcProviderPeer(process, passkey, uri, version);
        try
        {
            await Task.WhenAny(listening.Task, process.WaitForExitAsync(ct)).WaitAsync(TimeSpan.FromSeconds(30), ct);
            if (!listening.Task.IsCompleted)
            {
                throw new InvalidOperationException($"the peer exited ({process.ExitCode}) before it listened");
            }
            return peer;
        }
        catch
        {
            await peer.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// One sign-in of user <paramref name="user"/>: the server time (ms, the requests' latencies summed; the driver's signing is
    /// not in it), when its first request went, or what went wrong. Each sign-in is a new browser (its own cookies).
    /// </summary>
    public async Task<(double Ms, long Started, string? Problem)> SignInOnceAsync(int user, ConcurrentBag<double>[] steps, CancellationToken ct)
    {
        var jar = new CookieContainer();
        var timed = new TimedSteps(_http, StepNames.Length, ct);
        // A browser's cookies: the provider keeps the interaction, and then the session, in them.
        async Task<HttpResponseMessage> TimedAsync(int step, HttpRequestMessage request)
        {
            var uri = new Uri(BaseUri, request.RequestUri!);
            if (jar.GetCookieHeader(uri) is { Length: > 0 } cookies)
            {
                request.Headers.Add("Cookie", cookies);
            }
            var response = await timed.SendAsync(step, request);
            if (response.Headers.TryGetValues("Set-Cookie", out var set))
            {
                foreach (var cookie in set)
                {
                    jar.SetCookies(uri, cookie);
                }
            }
            return response;
        }
        string? Redirect(HttpResponseMessage r) => (int)r.StatusCode is 302 or 303 ? r.Headers.Location?.ToString() : null;

        var verifier = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var codeChallenge = Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        using var authorize = await TimedAsync(0, new HttpRequestMessage(HttpMethod.Get,
            $"/auth?response_type=code&client_id={ClientId}&redirect_uri={Uri.EscapeDataString(RedirectUri)}&scope=openid&state=s&nonce=n" +
            $"&code_challenge={codeChallenge}&code_challenge_method=S256"));
        if (Redirect(authorize) is not { } interaction)
        {
            return (0, timed.Started, $"authorize answered {(int)authorize.StatusCode}: {await authorize.Content.ReadAsStringAsync(ct)}");
        }
        using var page = await TimedAsync(1, new HttpRequestMessage(HttpMethod.Get, interaction));
        var html = await page.Content.ReadAsStringAsync(ct);
        var match = System.Text.RegularExpressions.Regex.Match(html, "data-challenge=\"([^\"]*)\"");
        if (page.StatusCode != HttpStatusCode.OK || !match.Success)
        {
            return (0, timed.Started, $"the sign-in page answered {(int)page.StatusCode}: {html}");
        }

        // The prepared assertion, as for Assent (WebAuthn L3 §6.1, §7.2): user present and verified, counter 0.
        byte[] authData = [.. SHA256.HashData(Encoding.UTF8.GetBytes(BaseUri.Host)), 0x05, 0, 0, 0, 0];
        var clientData = Encoding.UTF8.GetBytes(
            $"{{\"type\":\"webauthn.get\",\"challenge\":\"{match.Groups[1].Value}\",\"origin\":\"{BaseUri.GetLeftPart(UriPartial.Authority)}\",\"crossOrigin\":false}}");
        var signature = _passkey.SignData([.. authData, .. SHA256.HashData(clientData)], HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        using var signedIn = await TimedAsync(2, new HttpRequestMessage(HttpMethod.Post, interaction + "/login")
        {
            Content = new FormUrlEncodedContent([new("user", $"user{user:D5}"), new("authenticator_data", Base64Url.Encode(authData)),
                new("client_data_json", Base64Url.Encode(clientData)), new("signature", Base64Url.Encode(signature))]),
        });
        if (Redirect(signedIn) is not { } resume)
        {
            return (0, timed.Started, $"the sign-in answered {(int)signedIn.StatusCode}: {await signedIn.Content.ReadAsStringAsync(ct)}");
        }
        using var resumed = await TimedAsync(3, new HttpRequestMessage(HttpMethod.Get, resume));
        var location = Redirect(resumed) ?? "";
        var codeAt = location.IndexOf("code=", StringComparison.Ordinal);
        if (!location.StartsWith(RedirectUri + "?", StringComparison.Ordinal) || codeAt < 0)
        {
            return (0, timed.Started, $"the resumed authorization answered {(int)resumed.StatusCode} without a code ({location})");
        }
        var code = Uri.UnescapeDataString(location[(codeAt + 5)..].Split('&')[0]);
        using var token = await TimedAsync(4, new HttpRequestMessage(HttpMethod.Post, "/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "authorization_code"), new("code", code), new("redirect_uri", RedirectUri),
                new("client_id", ClientId), new("code_verifier", verifier)]),
        });
        var body = await token.Content.ReadAsStringAsync(ct);
        if (token.StatusCode != HttpStatusCode.OK || !body.Contains("\"id_token\"", StringComparison.Ordinal))
        {
            return (0, timed.Started, $"token answered {(int)token.StatusCode}: {body}");
        }
        timed.AddTo(steps);
        return (timed.Total, timed.Started, null);
    }

    /// <summary>
    /// One token of the client credentials grant (RFC 6749 §4.4) for the peer's agent, a JWT access token it signs: when it
    /// came and how long it took (ms), or null when it was refused.
    /// </summary>
    public async Task<(long At, double Ms)?> ClientCredentialsAsync(CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "client_credentials"), new("scope", "pay")]),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", AgentCredentials);
        var sent = Stopwatch.GetTimestamp();
        using var response = await _http.SendAsync(request, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        var at = Stopwatch.GetTimestamp();
        return response.StatusCode == HttpStatusCode.OK && body.Contains("\"access_token\":\"ey", StringComparison.Ordinal)
            ? (at, Stats.Milliseconds(at - sent))
            : null;
    }

    /// <summary>The agent's id and secret as server.mjs registers them, for HTTP Basic (RFC 6749 §2.3.1).</summary>
    private static readonly string AgentCredentials = Convert.ToBase64String(Encoding.ASCII.GetBytes("bench-agent:bench-agent-secret"));

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _passkey.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
        }
        _process.Dispose();
    }

    /// <summary>bench/peers/oidc-provider, found by walking up from the driver's own directory (bin/Release/… inside the repository).</summary>
    private static string? Directory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "bench", "peers", "oidc-provider");
            if (File.Exists(Path.Combine(candidate, "server.mjs")))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Starts node, or says that --oidc-provider needs it.</summary>
    private static Process Start(ProcessStartInfo info)
    {
        try
        {
            return Process.Start(info) ?? throw new InvalidOperationException($"{info.FileName} did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw NotInstalled(info.FileName, e);
        }
    }

    private static UsageException NotInstalled(string file, System.ComponentModel.Win32Exception e) =>
        new($"--oidc-provider runs the peer with Node.js: '{file}' could not be started ({e.Message}); install node and npm, or leave the flag out");
}
