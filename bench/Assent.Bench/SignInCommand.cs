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
/// a user with a passkey (a software P-256 key) who already consented to the web client, loop through what a browser and the
/// application send: <c>GET /oauth/authorize</c> (the sign-in page, with its first challenge) → <c>POST /webauthn/signin</c>
/// (the assertion signed by the driver, with the authorization request it continues; answered with the client's redirect and
/// the code, §17.2) → <c>POST /oauth/token</c> (PKCE). A sign-in's server time is the sum of its three requests' latencies:
/// the driver's signing is not in it. Against a build from before (<c>--server-dll</c>) the driver makes the requests that
/// build's page made instead (the options, the authorization request again with the new session), each within its step,
/// so that both builds are measured doing what a browser needs of them. Beside it, in the same server and the same run,
/// the peer: a CIBA flow (bc-authorize, the device's signed approval over its stream, the held token request) from as
/// many agents. The two alternate in rounds so drift on a shared machine falls on both. With <c>--oidc-provider</c> a third
/// round each time signs as many users in through a peer from outside the project, node-oidc-provider (<see cref="OidcProviderPeer"/>),
/// which also gets the open loop at the same rate: the ratios to it are what carries over to another machine.
/// <para>
/// Saturation hides latency in queueing: with <c>--clients</c> closed loops the mean is clients / throughput (Little's law),
/// whatever a sign-in costs. So a second phase offers sign-ins at a fixed <c>--rate</c> (open loop), measured after
/// <c>--paced-warmup</c> seconds of the same whose figures are dropped: each is due at its
/// scheduled time, started then whether or not earlier ones finished, and its server time is counted from that time, so that
/// a sign-in that waits behind others counts the wait (no coordinated omission). What the target names is that figure:
/// the time from the scheduled start to the token, less only the driver's own work between the requests (signing the assertion).
/// </para>
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
        var rate = args.Int("rate", 1_000, 0, 100_000);
        var paced = TimeSpan.FromSeconds(args.Int("paced-seconds", 10, 1, 600));
        // The open loop at its rate before the one measured, its figures dropped: the closed loops before it leave the
        // driver's pacing path and the server's paths at that concurrency still compiling (tiered JIT in both processes,
        // seen taking most of a core between them for tenths of a second in the measured window's first seconds;
        // docs/http-api.md §17.4).
        var pacedWarmup = TimeSpan.FromSeconds(args.Int("paced-warmup", 5, 0, 600));
        // Another build to serve with (a side-by-side run against the previous commit), and the schema version it knows.
        var serverDll = args.String("server-dll");
        var serverSchema = args.Int("server-schema", 0, 0, 1000);
        // The outside peer (OidcProviderPeer): node-oidc-provider signing the same number of users in, in the same rounds.
        var withPeer = args.Flag("oidc-provider");

        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        using var http = BenchHttp.Create(baseUri);
        using var browserHttp = new HttpClient(new ServerTimes.Handler(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue, UseCookies = false, UseProxy = false, AllowAutoRedirect = false,
        })) { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            var provisioned = await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, clients, ct);
            var (clientId, passkeys) = await ProvisionSignInAsync(dataDirectory, baseUri, clients, ct);
            if (serverDll is not null && serverSchema > 0)
            {
                ForgetNewerMigrations(dataDirectory, serverSchema);
            }
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct, serverDll: serverDll);
            await using var peer = withPeer ? await OidcProviderPeer.StartAsync(ct) : null;
            Console.WriteLine($"signin: {clients} clients, {rounds} rounds of {round.TotalSeconds:0} s each way after {warmup.TotalSeconds:0} s warm-up, " +
                              $"server pid {server.Id} ({serverDll ?? "this build"}), {Environment.ProcessorCount} cores, SQLite" +
                              (peer is null ? "" : $"; peer node-oidc-provider {peer.Version} (one Node process, in-memory storage)"));

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
                var (ms, _, own, problem) = await SignInOnceAsync(browserHttp, baseUri, clientId, passkeys[i], Steps, ct);
                if (problem is not null && Interlocked.Read(ref errors) < 3)
                {
                    Console.Error.WriteLine($"  sign-in error: {problem}");
                }
                if (problem is null)
                {
                    Own.Add(own);
                }
                return problem is null ? ms : null;
            }
            async Task<double?> Peer(int i, int n)
            {
                var (ms, _, problem) = await peer!.SignInOnceAsync(i, PeerSteps, ct);
                if (problem is not null && Interlocked.Read(ref errors) < 3)
                {
                    Console.Error.WriteLine($"  peer sign-in error: {problem}");
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

            // First the runtime's compilation of both flows (half the clients signing in, half asking), however long it takes.
            var settled = await ServerProcess.SettleAsync([server], clients, (i, n) => i % 2 == 0 ? SignIn(i, n) : Ciba(i, n), MandatesCommand.SettleLimit, ct);
            Console.WriteLine($"  ({settled}, then {warmup.TotalSeconds:0} s of warm-up)");
            if (warmup > TimeSpan.Zero)
            {
                await LoopAsync(SignIn, warmup / 2);
                await LoopAsync(Ciba, warmup / 2);
                if (peer is not null)
                {
                    // Node compiles its hot functions as they run too.
                    await LoopAsync(Peer, warmup);
                }
            }
            errors = 0;
            foreach (var bag in Steps)
            {
                bag.Clear();
            }
            Own.Clear();
            foreach (var bag in PeerSteps)
            {
                bag.Clear();
            }
            var signIns = new List<double>();
            var flows = new List<double>();
            var peerSignIns = new List<double>();
            var cpu = (SignIns: TimeSpan.Zero, Flows: TimeSpan.Zero, Peer: TimeSpan.Zero);
            for (var r = 0; r < rounds; r++)
            {
                var before = server.CpuTime();
                signIns.AddRange(await LoopAsync(SignIn, round));
                var middle = server.CpuTime();
                flows.AddRange(await LoopAsync(Ciba, round));
                cpu = (cpu.SignIns + (middle - before), cpu.Flows + (server.CpuTime() - middle), cpu.Peer);
                if (peer is not null)
                {
                    var peerBefore = peer.CpuTime();
                    peerSignIns.AddRange(await LoopAsync(Peer, round));
                    cpu.Peer += peer.CpuTime() - peerBefore;
                }
            }
            await streamsDone.CancelAsync();
            await Task.WhenAll(streams);
            Task<PacedRun> Paced(TimeSpan length) => PacedAsync(rate, length, StepNames, server.CpuTime,
                (k, steps) => SignInOnceAsync(browserHttp, baseUri, clientId, passkeys[(int)(k % passkeys.Count)], steps, ct), ct);
            Task<PacedRun> PeerPaced(TimeSpan length) => PacedAsync(rate, length, OidcProviderPeer.StepNames, peer!.CpuTime, async (k, steps) =>
            {
                var (ms, started, problem) = await peer.SignInOnceAsync((int)(k % clients), steps, ct);
                return (ms, started, double.NaN, problem);
            }, ct);
            // The warm-up's figures are dropped; none of it when there is no open loop (--rate 0).
            async Task<PacedRun?> WarmedAsync(Func<TimeSpan, Task<PacedRun>> run)
            {
                if (rate == 0)
                {
                    return null;
                }
                if (pacedWarmup > TimeSpan.Zero)
                {
                    await run(pacedWarmup);
                }
                return await run(paced);
            }
            var open = await WarmedAsync(Paced);
            var peerOpen = peer is null ? null : await WarmedAsync(PeerPaced);
            signIns.Sort();
            flows.Sort();
            peerSignIns.Sort();
            var seconds = round.TotalSeconds * rounds;
            var (signInRate, flowRate) = (signIns.Count / seconds, flows.Count / seconds);
            Console.WriteLine($"  sign-in (page, assertion, token) {Stats.F(signInRate, 0)}/s, server time p50 {Stats.F(Stats.Percentile(signIns, 0.5))} ms, " +
                              $"p99 {Stats.F(Stats.Percentile(signIns, 0.99))} ms, server CPU {Stats.F(cpu.SignIns.TotalMilliseconds / signIns.Count, 3)} ms each " +
                              $"(target >= 1000/s, p99 <= 10 ms), load average {LoadAverage()}");
            var parts = StepNames.Select((name, i) =>
            {
                var sorted = Steps[i].Order().ToList();
                return $"{name} p50 {Stats.F(Stats.Percentile(sorted, 0.5))} ms";
            });
            Console.WriteLine($"    steps: {string.Join(", ", parts)}");
            List<double> own = [.. Own.Order()];
            // What the server itself measured (Server-Timing, docs/deployment.md §12), summed over the three requests: the
            // figures above also hold the driver's and the kernel's share of each request.
            Console.WriteLine($"    server's own time: p50 {Stats.F(ServerTimes.Percentile(own, 0.5))} ms, p99 {Stats.F(ServerTimes.Percentile(own, 0.99))} ms");
            Console.WriteLine($"  CIBA flow (ask, device approves, token)        {Stats.F(flowRate, 0)}/s, p50 {Stats.F(Stats.Percentile(flows, 0.5))} ms, " +
                              $"p99 {Stats.F(Stats.Percentile(flows, 0.99))} ms, server CPU {Stats.F(cpu.Flows.TotalMilliseconds / flows.Count, 3)} ms each (peer)");
            Console.WriteLine($"  ratio sign-ins / CIBA flows: {Stats.F(signInRate / flowRate)} (errors {errors})");
            var peerRate = peerSignIns.Count / seconds;
            var (signInCpu, peerCpu) = (cpu.SignIns.TotalMilliseconds / signIns.Count, cpu.Peer.TotalMilliseconds / peerSignIns.Count);
            if (peer is not null)
            {
                Console.WriteLine($"  peer node-oidc-provider sign-in (authorize, page, assertion, resume, token) {Stats.F(peerRate, 0)}/s, " +
                                  $"server time p50 {Stats.F(Stats.Percentile(peerSignIns, 0.5))} ms, p99 {Stats.F(Stats.Percentile(peerSignIns, 0.99))} ms, " +
                                  $"CPU {Stats.F(peerCpu, 3)} ms each");
                Console.WriteLine($"    steps: {string.Join(", ", OidcProviderPeer.StepNames.Select((name, i) => $"{name} p50 {Stats.F(Stats.Percentile([.. PeerSteps[i].Order()], 0.5))} ms"))}");
                Console.WriteLine($"  ratio Assent / peer: sign-ins {Stats.F(signInRate / peerRate)}x, CPU per sign-in {Stats.F(signInCpu / peerCpu)}x, " +
                                  $"p99 {Stats.F(Stats.Percentile(signIns, 0.99) / Stats.Percentile(peerSignIns, 0.99))}x");
            }
            if (open is not null)
            {
                Console.WriteLine($"  sign-in offered at {rate}/s for {paced.TotalSeconds:0} s (open loop, from the scheduled time): {Stats.F(open.Rate, 0)}/s done, " +
                                  $"server time p50 {Stats.F(Stats.Percentile(open.Latencies, 0.5))} ms, p99 {Stats.F(Stats.Percentile(open.Latencies, 0.99))} ms, " +
                                  $"server CPU {Stats.F(open.CpuMs, 3)} ms each (target p99 <= 10 ms; errors {open.Errors})");
                // The driver's own lateness (due → first request sent): when it is high, the driver was starved (it shares the cores), not the server slow.
                Console.WriteLine($"    driver started them late by p50 {Stats.F(Stats.Percentile(open.Late, 0.5))} / p99 {Stats.F(Stats.Percentile(open.Late, 0.99))} ms; " +
                                  $"load average {LoadAverage()}, {open.Machine}");
                var parts2 = StepNames.Select((name, i) =>
                    $"{name} p50 {Stats.F(Stats.Percentile(open.Steps[i], 0.5))} / p99 {Stats.F(Stats.Percentile(open.Steps[i], 0.99))} ms");
                Console.WriteLine($"    steps: {string.Join(", ", parts2)}");
                Console.WriteLine($"    server's own time (Server-Timing, the three requests, not the wait before the first): p50 {Stats.F(ServerTimes.Percentile(open.Own, 0.5))} ms, " +
                                  $"p99 {Stats.F(ServerTimes.Percentile(open.Own, 0.99))} ms; {open.OwnTail}");
            }
            if (peerOpen is not null)
            {
                Console.WriteLine($"  peer sign-in offered at {rate}/s for {paced.TotalSeconds:0} s (open loop): {Stats.F(peerOpen.Rate, 0)}/s done, " +
                                  $"server time p50 {Stats.F(Stats.Percentile(peerOpen.Latencies, 0.5))} ms, p99 {Stats.F(Stats.Percentile(peerOpen.Latencies, 0.99))} ms, " +
                                  $"CPU {Stats.F(peerOpen.CpuMs, 3)} ms each (errors {peerOpen.Errors}); driver late p99 {Stats.F(Stats.Percentile(peerOpen.Late, 0.99))} ms, {peerOpen.Machine}");
            }
            Stats.Result("signin",
                ("clients", clients.ToString(CultureInfo.InvariantCulture)),
                ("signins_per_s", Stats.F(signInRate, 0)),
                ("signin_p99_ms", Stats.F(Stats.Percentile(signIns, 0.99))),
                ("signin_cpu_ms", Stats.F(cpu.SignIns.TotalMilliseconds / signIns.Count, 3)),
                ("signin_own_p99_ms", Stats.F(ServerTimes.Percentile(own, 0.99))),
                ("ciba_flows_per_s", Stats.F(flowRate, 0)),
                ("ratio", Stats.F(signInRate / flowRate)),
                ("paced_rate", rate.ToString(CultureInfo.InvariantCulture)),
                ("paced_done_per_s", open is null ? "-" : Stats.F(open.Rate, 0)),
                ("paced_p50_ms", open is null ? "-" : Stats.F(Stats.Percentile(open.Latencies, 0.5))),
                ("paced_p99_ms", open is null ? "-" : Stats.F(Stats.Percentile(open.Latencies, 0.99))),
                ("paced_cpu_ms", open is null ? "-" : Stats.F(open.CpuMs, 3)),
                ("paced_own_p50_ms", open is null ? "-" : Stats.F(ServerTimes.Percentile(open.Own, 0.5))),
                ("paced_own_p99_ms", open is null ? "-" : Stats.F(ServerTimes.Percentile(open.Own, 0.99))),
                ("paced_late_p50_ms", open is null ? "-" : Stats.F(Stats.Percentile(open.Late, 0.5))),
                ("paced_late_p99_ms", open is null ? "-" : Stats.F(Stats.Percentile(open.Late, 0.99))),
                ("peer_signins_per_s", peer is null ? "-" : Stats.F(peerRate, 0)),
                ("peer_p99_ms", peer is null ? "-" : Stats.F(Stats.Percentile(peerSignIns, 0.99))),
                ("peer_cpu_ms", peer is null ? "-" : Stats.F(peerCpu, 3)),
                ("peer_paced_p99_ms", peerOpen is null ? "-" : Stats.F(Stats.Percentile(peerOpen.Latencies, 0.99))),
                ("peer_paced_done_per_s", peerOpen is null ? "-" : Stats.F(peerOpen.Rate, 0)),
                ("ratio_peer_signins", peer is null ? "-" : Stats.F(signInRate / peerRate)),
                ("ratio_peer_cpu", peer is null ? "-" : Stats.F(signInCpu / peerCpu)),
                ("errors", (errors + (open?.Errors ?? 0) + (peerOpen?.Errors ?? 0)).ToString(CultureInfo.InvariantCulture)),
                ("load", LoadAverage()));
            return errors == 0 && open?.Errors is null or 0 && peerOpen?.Errors is null or 0 ? 0 : 1;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }

    /// <summary>The 1-minute load average (Linux), beside the figures: the machine may be shared.</summary>
    private static string LoadAverage()
    {
        const string path = "/proc/loadavg";
        return File.Exists(path) ? File.ReadAllText(path).Split(' ')[0] : "n/a";
    }

    /// <summary>
    /// The database was provisioned by this build, so its schema is this build's; an older build refuses a newer schema. Its
    /// version rows above <paramref name="version"/> go (the newer tables stay, unused by that build): for a bench only.
    /// </summary>
    private static void ForgetNewerMigrations(string dataDirectory, int version)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dataDirectory, StoreFactory.SqliteFileName)};Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "DELETE FROM schema_version WHERE version > $v";
        cmd.Parameters.AddWithValue("$v", version);
        cmd.ExecuteNonQuery();
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

    /// <summary>The steps of a sign-in, as a browser and the application take them.</summary>
    private static readonly string[] StepNames = ["page", "assertion", "token"];

    /// <summary>Each step's latencies (ms) in the measured rounds (<see cref="StepNames"/>).</summary>
    private static readonly ConcurrentBag<double>[] Steps = [.. StepNames.Select(_ => new ConcurrentBag<double>())];

    /// <summary>The same for the peer's sign-ins (<see cref="OidcProviderPeer.StepNames"/>).</summary>
    private static readonly ConcurrentBag<double>[] PeerSteps = [.. OidcProviderPeer.StepNames.Select(_ => new ConcurrentBag<double>())];

    /// <summary>An attribute <c>data-NAME</c> of the sign-in page, HTML-decoded; null when absent.</summary>
    private static string? Attribute(string html, string name)
    {
        var match = System.Text.RegularExpressions.Regex.Match(html, $"data-{name}=\"([^\"]*)\"");
        return match.Success ? WebUtility.HtmlDecode(match.Groups[1].Value) : null;
    }

    /// <summary>Each sign-in's server time as the server measured it (<see cref="ServerTimes"/>) in the measured rounds.</summary>
    private static readonly ConcurrentBag<double> Own = [];

    /// <summary>The open-loop phase's figures: server times from the scheduled starts (sorted), how late the driver started them, CPU per
    /// sign-in, and the server's own times (sorted).</summary>
    private sealed record PacedRun(List<double> Latencies, List<double> Late, List<double>[] Steps, double Rate, double CpuMs, long Errors, List<double> Own,
        string Machine, string OwnTail);

    /// <summary>
    /// Sign-ins due every 1/<paramref name="rate"/> s for <paramref name="length"/>, each started at its time whatever the
    /// earlier ones do (open loop), the users taken in turn. A sign-in's server time counts from its scheduled start: the
    /// wait before its first request (the driver behind schedule, or connections busy) and its three requests' latencies;
    /// only the driver's own work between requests is left out, as in the closed loop.
    /// </summary>
    private static async Task<PacedRun> PacedAsync(int rate, TimeSpan length, string[] stepNames, Func<TimeSpan> cpuTime,
        Func<long, ConcurrentBag<double>[], Task<(double Ms, long Started, double Own, string? Problem)>> signIn, CancellationToken ct)
    {
        var count = (int)(rate * length.TotalSeconds);
        var runs = new Task<(double Ms, double Late, double Own, long At, string? Problem)>[count];
        ConcurrentBag<double>[] steps = [.. stepNames.Select(_ => new ConcurrentBag<double>())];
        var (cpuBefore, machineBefore) = (cpuTime(), Stats.MachineTicks());
        var start = Stopwatch.GetTimestamp();
        await Pacer.RunAsync(start, rate, long.MaxValue, count, (k, due) =>
        {
            runs[k] = Task.Run(async () =>
            {
                var (ms, started, own, problem) = await signIn(k, steps);
                return (ms, Stats.Milliseconds(started - due), own, Stopwatch.GetTimestamp(), problem);
            }, ct);
        }, ct);
        var done = await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(120), ct);
        var (cpu, machine) = (cpuTime() - cpuBefore, Stats.Machine(machineBefore, Stats.MachineTicks()));
        var ok = done.Where(d => d.Problem is null).ToList();
        foreach (var problem in done.Select(d => d.Problem).OfType<string>().Take(3))
        {
            Console.Error.WriteLine($"  paced sign-in error: {problem}");
        }
        // Finished ones per second of the schedule and the tail that drained after it.
        var drained = Stopwatch.GetElapsedTime(start);
        return new PacedRun(
            [.. ok.Select(d => d.Late + d.Ms).Order()],
            [.. ok.Select(d => d.Late).Order()],
            [.. steps.Select(b => b.Order().ToList())],
            ok.Count / drained.TotalSeconds,
            ok.Count == 0 ? double.NaN : cpu.TotalMilliseconds / ok.Count,
            done.Length - ok.Count,
            [.. ok.Select(d => d.Own).Order()],
            machine,
            ServerTimes.Tail([.. ok.Select(d => (d.At, d.Own))]));
    }

    /// <summary>
    /// One sign-in; the server time (ms, the three requests' latencies), when its first request went and the server's own time
    /// (<see cref="ServerTimes"/>), or what went wrong.
    /// </summary>
    private static async Task<(double Ms, long Started, double Own, string? Problem)> SignInOnceAsync(HttpClient http, Uri issuer, string clientId, Passkey passkey,
        ConcurrentBag<double>[] steps, CancellationToken ct)
    {
        var tally = ServerTimes.Begin();
        var timed = new TimedSteps(http, Steps.Length, ct);
        Task<HttpResponseMessage> TimedAsync(int step, HttpRequestMessage request) => timed.SendAsync(step, request);

        // The application sends the browser to the authorization endpoint; with no session, the sign-in page answers, its first
        // passkey request's options (the challenge) and the authorization request to continue within it (docs/http-api.md §17.2).
        var verifier = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var codeChallenge = Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        using var page = await TimedAsync(0, new HttpRequestMessage(HttpMethod.Get,
            $"/oauth/authorize?response_type=code&client_id={clientId}&redirect_uri={Uri.EscapeDataString(RedirectUri)}&scope=openid&state=s&nonce=n" +
            $"&code_challenge={codeChallenge}&code_challenge_method=S256"));
        var html = await page.Content.ReadAsStringAsync(ct);
        if (page.StatusCode != HttpStatusCode.OK || Attribute(html, "continue") is not { } continuation)
        {
            return (0, timed.Started, 0, $"authorize answered {(int)page.StatusCode}, not the sign-in page");
        }
        var (challenge, rpId) = (Attribute(html, "challenge"), Attribute(html, "rp-id"));
        if (challenge is null || rpId is null)
        {
            // A build from before the page came with its options (--server-dll): the page's script fetches them, and so does the
            // driver, within the page's step.
            using var options = await TimedAsync(0, new HttpRequestMessage(HttpMethod.Post, "/webauthn/signin/options")
            {
                Content = new StringContent("{}", Encoding.UTF8, "application/json"),
            });
            if (options.StatusCode != HttpStatusCode.OK)
            {
                return (0, timed.Started, 0, $"options answered {(int)options.StatusCode}");
            }
            using var optionsBody = JsonDocument.Parse(await options.Content.ReadAsStringAsync(ct));
            (challenge, rpId) = (optionsBody.RootElement.GetProperty("challenge").GetString()!, optionsBody.RootElement.GetProperty("rpId").GetString()!);
        }

        // The prepared assertion: what the authenticator signs (WebAuthn L3 §6.1, §7.2), user present and verified, counter 0.
        byte[] authData = [.. SHA256.HashData(Encoding.UTF8.GetBytes(rpId)), 0x05, 0, 0, 0, 0];
        var clientData = Encoding.UTF8.GetBytes(
            $"{{\"type\":\"webauthn.get\",\"challenge\":\"{challenge}\",\"origin\":\"{issuer.GetLeftPart(UriPartial.Authority)}\",\"crossOrigin\":false}}");
        var signature = passkey.Key.SignData([.. authData, .. SHA256.HashData(clientData)], HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        var assertion = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["credential_id"] = Base64Url.Encode(passkey.CredentialId), ["authenticator_data"] = Base64Url.Encode(authData),
            ["client_data_json"] = Base64Url.Encode(clientData), ["signature"] = Base64Url.Encode(signature), ["continue"] = continuation,
        });
        // The sign-in opens the session and, the user having consented before, answers the client's redirect with the code.
        using var signedIn = await TimedAsync(1, new HttpRequestMessage(HttpMethod.Post, "/webauthn/signin") { Content = new StringContent(assertion, Encoding.UTF8, "application/json") });
        var answer = await signedIn.Content.ReadAsStringAsync(ct);
        if (signedIn.StatusCode != HttpStatusCode.OK)
        {
            return (0, timed.Started, 0, $"signin answered {(int)signedIn.StatusCode}: {answer}");
        }
        using var signedInBody = JsonDocument.Parse(answer);
        var location = signedInBody.RootElement.TryGetProperty("redirect_to", out var to) ? to.GetString() ?? "" : "";
        if (location.Length == 0)
        {
            // A build from before the sign-in answered the code (--server-dll): the page goes on to the authorization request with
            // the new session, as the browser does, within the assertion's step.
            var authorize = new HttpRequestMessage(HttpMethod.Get, continuation);
            authorize.Headers.Add("Cookie", string.Join("; ", signedIn.Headers.GetValues("Set-Cookie").Select(c => c[..c.IndexOf(';', StringComparison.Ordinal)])));
            using var redirected = await TimedAsync(1, authorize);
            location = redirected.StatusCode == HttpStatusCode.Redirect ? redirected.Headers.Location?.ToString() ?? "" : "";
        }
        var codeAt = location.IndexOf("code=", StringComparison.Ordinal);
        if (!location.StartsWith(RedirectUri + "?", StringComparison.Ordinal) || codeAt < 0)
        {
            return (0, timed.Started, 0, $"signin answered no redirect with a code: {answer} ({location})");
        }
        var code = Uri.UnescapeDataString(location[(codeAt + 5)..].Split('&')[0]);

        using var token = await TimedAsync(2, new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "authorization_code"), new("code", code), new("redirect_uri", RedirectUri),
                new("client_id", clientId), new("code_verifier", verifier)]),
        });
        if (token.StatusCode != HttpStatusCode.OK)
        {
            return (0, timed.Started, 0, $"token answered {(int)token.StatusCode}: {await token.Content.ReadAsStringAsync(ct)}");
        }
        timed.AddTo(steps);
        return (timed.Total, timed.Started, tally.Ms, null);
    }
}
