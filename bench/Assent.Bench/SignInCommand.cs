using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Jose;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Bench;

/// <summary>
/// Passkey sign-in for other applications (docs/http-api.md §17) at saturation: <c>--clients</c> concurrent browsers, each
/// a user with a passkey (a software P-256 key) who already consented to the web client, loop through
/// <c>POST /webauthn/signin/options</c> → <c>POST /webauthn/signin</c> (the assertion signed by the driver) →
/// <c>GET /oauth/authorize</c> (302 with the code) → <c>POST /oauth/token</c> (PKCE). A sign-in's server time is the sum
/// of its four requests' latencies: the driver's signing is not in it. Beside it, in the same server and the same run,
/// the peer: a CIBA flow (bc-authorize, the device's signed approval over its stream, the held token request) from as
/// many agents. The two alternate in rounds so drift on a shared machine falls on both.
/// </summary>
internal static class SignInCommand
{
    private const string RedirectUri = "http://127.0.0.1:9/callback";

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var clients = args.Int("clients", 16, 1, 1024);
        var round = TimeSpan.FromSeconds(args.Int("seconds", 10, 1, 600));
        var rounds = args.Int("rounds", 2, 1, 20);
        var warmup = TimeSpan.FromSeconds(args.Int("warmup", 5, 0, 600));

        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        using var http = BenchHttp.Create(baseUri);
        using var browserHttp = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue, UseCookies = false, UseProxy = false, AllowAutoRedirect = false,
        }) { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, clients, ct);
            var (clientId, passkeys) = await ProvisionSignInAsync(dataDirectory, baseUri, clients, ct);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            Console.WriteLine($"signin: {clients} clients, {rounds} rounds of {round.TotalSeconds:0} s each way after {warmup.TotalSeconds:0} s warm-up, " +
                              $"server pid {server.Id}, {Environment.ProcessorCount} cores, SQLite");

            // The CIBA peer's devices approve every request they hear of, as FlowsCommand's do.
            using var streamsDone = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var devices = await Task.WhenAll(provisioned.Select(p => BenchDevice.EnrollAsync(http, p.InviteCode, ct)));
            var ready = devices.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
            var streams = devices.Select((device, i) => Task.Run(async () =>
            {
                try
                {
                    await device.StreamAsync(async (id, payload, token) => await device.PostDecisionAsync(id, device.Decision(Decisions.Approve, payload), token),
                        ready[i], streamsDone.Token);
                }
                catch (OperationCanceledException) when (streamsDone.IsCancellationRequested)
                {
                }
            }, ct)).ToArray();
            await Task.WhenAll(ready.Select(r => r.Task)).WaitAsync(TimeSpan.FromSeconds(30), ct);
            var agents = provisioned.Select(p => new BenchAgent(http, p)).ToList();

            long errors = 0;
            async Task<List<double>> LoopAsync(Func<int, int, Task<double?>> call, TimeSpan length)
            {
                var end = Stopwatch.GetTimestamp() + (long)(length.TotalSeconds * Stopwatch.Frequency);
                var all = await Task.WhenAll(Enumerable.Range(0, clients).Select(i => Task.Run(async () =>
                {
                    var mine = new List<double>();
                    for (var n = 0; Stopwatch.GetTimestamp() < end; n++)
                    {
                        if (await call(i, n) is { } ms)
                        {
                            mine.Add(ms);
                        }
                        else if (Interlocked.Increment(ref errors) > 100)
                        {
                            throw new InvalidOperationException("more than 100 errors");
                        }
                    }
                    return mine;
                }, ct)));
                return [.. all.SelectMany(l => l)];
            }

            async Task<double?> SignIn(int i, int n)
            {
                var (ms, problem) = await SignInOnceAsync(browserHttp, baseUri, clientId, passkeys[i], ct);
                if (problem is not null && Interlocked.Read(ref errors) < 3)
                {
                    Console.Error.WriteLine($"  sign-in error: {problem}");
                }
                return problem is null ? ms : null;
            }
            async Task<double?> Ciba(int i, int n)
            {
                var sent = Stopwatch.GetTimestamp();
                var id = await agents[i].AskAsync($"Bench sign-in peer {i}.{n}", null, ct);
                var (status, body) = await agents[i].TokenAsync(id, 30, ct);
                if (status != HttpStatusCode.OK && Interlocked.Read(ref errors) < 3)
                {
                    Console.Error.WriteLine($"  CIBA token answered {(int)status}: {body}");
                }
                return status == HttpStatusCode.OK ? Stats.Milliseconds(Stopwatch.GetTimestamp() - sent) : null;
            }

            if (warmup > TimeSpan.Zero)
            {
                await LoopAsync(SignIn, warmup / 2);
                await LoopAsync(Ciba, warmup / 2);
            }
            errors = 0;
            foreach (var bag in Steps)
            {
                bag.Clear();
            }
            var signIns = new List<double>();
            var flows = new List<double>();
            var cpu = (SignIns: TimeSpan.Zero, Flows: TimeSpan.Zero);
            for (var r = 0; r < rounds; r++)
            {
                var before = server.CpuTime();
                signIns.AddRange(await LoopAsync(SignIn, round));
                var middle = server.CpuTime();
                flows.AddRange(await LoopAsync(Ciba, round));
                cpu = (cpu.SignIns + (middle - before), cpu.Flows + (server.CpuTime() - middle));
            }
            await streamsDone.CancelAsync();
            await Task.WhenAll(streams);
            signIns.Sort();
            flows.Sort();
            var seconds = round.TotalSeconds * rounds;
            var (signInRate, flowRate) = (signIns.Count / seconds, flows.Count / seconds);
            Console.WriteLine($"  sign-in (options, assertion, authorize, token) {Stats.F(signInRate, 0)}/s, server time p50 {Stats.F(Stats.Percentile(signIns, 0.5))} ms, " +
                              $"p99 {Stats.F(Stats.Percentile(signIns, 0.99))} ms, server CPU {Stats.F(cpu.SignIns.TotalMilliseconds / signIns.Count, 3)} ms each " +
                              "(target >= 1000/s, p99 <= 10 ms)");
            var parts = new[] { "options", "assertion", "authorize", "token" }.Select((name, i) =>
            {
                var sorted = Steps[i].Order().ToList();
                return $"{name} p50 {Stats.F(Stats.Percentile(sorted, 0.5))} ms";
            });
            Console.WriteLine($"    steps: {string.Join(", ", parts)}");
            Console.WriteLine($"  CIBA flow (ask, device approves, token)        {Stats.F(flowRate, 0)}/s, p50 {Stats.F(Stats.Percentile(flows, 0.5))} ms, " +
                              $"p99 {Stats.F(Stats.Percentile(flows, 0.99))} ms, server CPU {Stats.F(cpu.Flows.TotalMilliseconds / flows.Count, 3)} ms each (peer)");
            Console.WriteLine($"  ratio sign-ins / CIBA flows: {Stats.F(signInRate / flowRate)} (errors {errors})");
            Stats.Result("signin",
                ("clients", clients.ToString(CultureInfo.InvariantCulture)),
                ("signins_per_s", Stats.F(signInRate, 0)),
                ("signin_p99_ms", Stats.F(Stats.Percentile(signIns, 0.99))),
                ("ciba_flows_per_s", Stats.F(flowRate, 0)),
                ("ratio", Stats.F(signInRate / flowRate)),
                ("errors", errors.ToString(CultureInfo.InvariantCulture)));
            return errors == 0 ? 0 : 1;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }

    /// <summary>A passkey of one bench user: the credential and its P-256 key.</summary>
    private sealed record Passkey(byte[] CredentialId, ECDsa Key);

    /// <summary>A public web client, and per user a passkey and a consent to the client, written before the server starts.</summary>
    private static async Task<(string ClientId, IReadOnlyList<Passkey> Passkeys)> ProvisionSignInAsync(string dataDirectory, Uri issuer, int count,
        CancellationToken ct)
    {
        var options = new AssentOptions { Issuer = issuer.ToString().TrimEnd('/'), DataDirectory = dataDirectory };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, ct);
        var admin = new AdminOperations(store, options, TimeProvider.System);
        var client = await admin.CreateWebClientAsync("Bench wiki", [RedirectUri], [], isPublic: true, null, ct);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var passkeys = new List<Passkey>(count);
        for (var i = 0; i < count; i++)
        {
            var invite = await admin.InviteAsync($"signin{i:D5}", admin: false, ct);
            var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var p = key.ExportParameters(false);
            var jwk = JsonSerializer.Serialize(new Jwk("EC", "P-256", Base64Url.Encode(p.Q.X), Base64Url.Encode(p.Q.Y)), JwkJson.Default.Jwk);
            var credentialId = RandomNumberGenerator.GetBytes(16);
            var deviceId = $"dev_signin{i:D5}";
            await store.Devices.AddAsync(new DeviceRecord(deviceId, invite.UserId, DeviceKinds.WebAuthn, "bench passkey", jwk, credentialId, 0, now, null),
                new AuditEvent(AuditTypes.DeviceEnrolled, invite.UserId, deviceId, deviceId), ct);
            await store.WebClients.GrantConsentAsync(invite.UserId, client.ClientId, "openid", now,
                new AuditEvent(AuditTypes.WebConsentGranted, invite.UserId, deviceId, client.ClientId), ct);
            passkeys.Add(new Passkey(credentialId, key));
        }
        return (client.ClientId, passkeys);
    }

    /// <summary>Each step's latencies (ms) in the measured rounds: options, assertion, authorize, token.</summary>
    private static readonly ConcurrentBag<double>[] Steps = [new(), new(), new(), new()];

    /// <summary>One sign-in; the server time (ms, the four requests' latencies) or what went wrong.</summary>
    private static async Task<(double Ms, string? Problem)> SignInOnceAsync(HttpClient http, Uri issuer, string clientId, Passkey passkey, CancellationToken ct)
    {
        double total = 0;
        var step = 0;
        var times = new double[4];
        async Task<HttpResponseMessage> TimedAsync(HttpRequestMessage request)
        {
            var sent = Stopwatch.GetTimestamp();
            var response = await http.SendAsync(request, ct);
            await response.Content.LoadIntoBufferAsync(ct);
            times[step++] = Stats.Milliseconds(Stopwatch.GetTimestamp() - sent);
            total += times[step - 1];
            return response;
        }

        using var options = await TimedAsync(new HttpRequestMessage(HttpMethod.Post, "/webauthn/signin/options")
        {
            Content = new StringContent("{}", Encoding.UTF8, "application/json"),
        });
        if (options.StatusCode != HttpStatusCode.OK)
        {
            return (0, $"options answered {(int)options.StatusCode}");
        }
        using var optionsBody = JsonDocument.Parse(await options.Content.ReadAsStringAsync(ct));
        var challenge = optionsBody.RootElement.GetProperty("challenge").GetString()!;
        var rpId = optionsBody.RootElement.GetProperty("rpId").GetString()!;

        // The prepared assertion: what the authenticator signs (WebAuthn L3 §6.1, §7.2), user present and verified, counter 0.
        byte[] authData = [.. SHA256.HashData(Encoding.UTF8.GetBytes(rpId)), 0x05, 0, 0, 0, 0];
        var clientData = Encoding.UTF8.GetBytes(
            $"{{\"type\":\"webauthn.get\",\"challenge\":\"{challenge}\",\"origin\":\"{issuer.GetLeftPart(UriPartial.Authority)}\",\"crossOrigin\":false}}");
        var signature = passkey.Key.SignData([.. authData, .. SHA256.HashData(clientData)], HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        var assertion = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["credential_id"] = Base64Url.Encode(passkey.CredentialId), ["authenticator_data"] = Base64Url.Encode(authData),
            ["client_data_json"] = Base64Url.Encode(clientData), ["signature"] = Base64Url.Encode(signature),
        });
        using var signedIn = await TimedAsync(new HttpRequestMessage(HttpMethod.Post, "/webauthn/signin") { Content = new StringContent(assertion, Encoding.UTF8, "application/json") });
        if (signedIn.StatusCode != HttpStatusCode.OK)
        {
            return (0, $"signin answered {(int)signedIn.StatusCode}: {await signedIn.Content.ReadAsStringAsync(ct)}");
        }
        var cookie = string.Join("; ", signedIn.Headers.GetValues("Set-Cookie").Select(c => c[..c.IndexOf(';', StringComparison.Ordinal)]));

        var verifier = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var codeChallenge = Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var authorize = new HttpRequestMessage(HttpMethod.Get,
            $"/oauth/authorize?response_type=code&client_id={clientId}&redirect_uri={Uri.EscapeDataString(RedirectUri)}&scope=openid&state=s&nonce=n" +
            $"&code_challenge={codeChallenge}&code_challenge_method=S256");
        authorize.Headers.Add("Cookie", cookie);
        using var redirected = await TimedAsync(authorize);
        var location = redirected.Headers.Location?.ToString() ?? "";
        var codeAt = location.IndexOf("code=", StringComparison.Ordinal);
        if (redirected.StatusCode != HttpStatusCode.Redirect || codeAt < 0)
        {
            return (0, $"authorize answered {(int)redirected.StatusCode} to {location}");
        }
        var code = Uri.UnescapeDataString(location[(codeAt + 5)..].Split('&')[0]);

        using var token = await TimedAsync(new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "authorization_code"), new("code", code), new("redirect_uri", RedirectUri),
                new("client_id", clientId), new("code_verifier", verifier)]),
        });
        if (token.StatusCode != HttpStatusCode.OK)
        {
            return (0, $"token answered {(int)token.StatusCode}: {await token.Content.ReadAsStringAsync(ct)}");
        }
        for (var i = 0; i < times.Length; i++)
        {
            Steps[i].Add(times[i]);
        }
        return (total, null);
    }
}
