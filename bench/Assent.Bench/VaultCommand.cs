using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Assent.Client;
using Assent.Client.Authenticator;
using Assent.Client.Vault;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Vault;
using Microsoft.Data.Sqlite;

namespace Assent.Bench;

/// <summary>
/// The vault on loopback against a server process on SQLite (docs/vault.md), each figure beside a baseline from the same run:
/// <list type="bullet">
/// <item>release round trip without the human: <c>GetSecretAsync</c> of a 4 KiB item, the device re-wrapping and approving as soon
/// as the request reaches it, until the agent holds the opened secret; baseline: <c>ApproveAsync</c> decided the same way.</item>
/// <item><c>put</c> of a 1 MiB item by the device (look-up, recipient keys and their proofs, seal, wrap, upload); baseline: 16 bytes.</item>
/// <item>listing 10,000 items of one owner (signed request to parsed list); baseline: the user's device list.</item>
/// </list>
/// Beside each figure, the CPU this process (agent and device) and the server spent per operation; <c>--only</c> runs one phase.
/// </summary>
internal static class VaultCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var count = args.Int("count", 200, 10, 10_000);
        var items = args.Int("items", 10_000, 100, 100_000);
        // Release/approval pairs run before the measured ones: 20 by default (as before, so runs compare); more lets the JIT's
        // tier-1 code (after some 30 calls of each method, compiled in the background) be in place before measuring.
        var warmup = args.Int("warmup", 20, 0, 10_000);
        // --only release|put|list: one phase alone (to profile it, or to repeat it); all three by default.
        var only = args.String("only");
        if (only is not (null or "release" or "put" or "list"))
        {
            throw new UsageException("--only is release, put or list");
        }
        bool Runs(string phase) => only is null || only == phase;
        var dataDirectory = Provisioning.NewDataDirectory();
        var baseUri = new Uri($"http://127.0.0.1:{ServerProcess.FreePort()}");
        try
        {
            var who = (await Provisioning.UsersWithAgentsAsync(dataDirectory, baseUri, 1, ct))[0];
            using var http = BenchHttp.Create(baseUri);
            await using var server = await ServerProcess.StartAsync(dataDirectory, baseUri, http, ct);
            using var enrolling = new AuthenticatorClient(baseUri);
            var enrolled = await enrolling.EnrollAsync(who.InviteCode, "bench device", ct);
            using var device = new AuthenticatorClient(baseUri, enrolled.Key, http);
            var owner = new VaultOwner(enrolled.UserId, enrolled.UserDid, enrolled.Key.DeviceId, enrolled.Key.Seed);
            var privateKey = VaultFormat.NewPrivateKey();
            var vault = new VaultDevice(device, owner, privateKey, http);
            await device.RegisterVaultKeyAsync(VaultDevice.DeviceRegistration(owner, vault.PublicKey), ct);
            using var agent = new AssentClient(new AssentClientOptions
            {
                Server = baseUri, ClientId = who.ClientId, ClientSecret = who.ClientSecret, UserDid = enrolled.UserDid, HttpClient = http,
            });
            Console.WriteLine($"vault: {count} releases and approvals, {count} puts of each size, list of {items} items; server pid {server.Id}, SQLite" +
                              (only is null ? "" : $"; only {only}"));
            var reports = new List<string>();
            var figures = new List<(string, string)> { ("count", count.ToString(CultureInfo.InvariantCulture)) };

            if (Runs("release"))
            {
                await ReleasesAsync(count, warmup, device, vault, agent, reports, figures, server, ct);
            }
            if (Runs("put"))
            {
                await PutsAsync(count, vault, reports, figures, server, ct);
            }
            if (Runs("list"))
            {
                // 10,000 items written straight into the database (what a list reads: names, versions, sizes, times).
                FillItems(Path.Combine(dataDirectory, "assent.db"), enrolled.UserId, items);
                await ListsAsync(items, device, reports, figures, server, ct);
            }
            foreach (var line in reports)
            {
                Console.WriteLine(line);
            }
            Stats.Result("vault", [.. figures]);
            CryptographicOperations.ZeroMemory(privateKey);
            return 0;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }

    private static async Task ReleasesAsync(int count, int warmup, AuthenticatorClient device, VaultDevice vault, AssentClient agent, List<string> reports,
        List<(string, string)> figures, ServerProcess server, CancellationToken ct)
    {
        // The device: every request that reaches it is approved at once, a release re-wrapped first.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var deciding = Task.Run(async () =>
        {
            await foreach (var e in device.StreamAsync(stop.Token))
            {
                if (e.Request is { Payload: { } payload } request)
                {
                    var wrapped = VaultDevice.Has(payload.AuthorizationDetails, Protocol.Messages.VaultRelease.Type)
                        ? await vault.ReleaseAsync(payload, stop.Token)
                        : null;
                    await device.DecideAsync(request, Decisions.Approve, wrapped, stop.Token);
                }
            }
        }, stop.Token);

        var secret = RandomNumberGenerator.GetBytes(4096);
        await vault.PutAsync("bench/secret", secret, ct);
        var releases = new List<double>(count);
        var approvals = new List<double>(count);
        var releaseCpu = new CpuMeter(server);
        var approvalCpu = new CpuMeter(server);
        for (var i = 0; i < count + warmup; i++)
        {
            releaseCpu.Start(i >= warmup);
            var started = Stopwatch.GetTimestamp();
            var released = await agent.GetSecretAsync("bench/secret", ct);
            var releasedAt = Stopwatch.GetTimestamp();
            releaseCpu.Stop();
            if (!released.Released || !released.Value!.AsSpan().SequenceEqual(secret))
            {
                throw new InvalidOperationException($"release {i} came back {released.Status} or not the secret");
            }
            approvalCpu.Start(i >= warmup);
            var asked = Stopwatch.GetTimestamp();
            var approval = await agent.ApproveAsync($"Bench approval {i}", new ApproveOptions { Scope = Provisioning.Scopes }, ct);
            var approvedAt = Stopwatch.GetTimestamp();
            approvalCpu.Stop();
            if (!approval.Approved)
            {
                throw new InvalidOperationException($"approval {i} came back {approval.Status}");
            }
            if (i >= warmup)
            {
                releases.Add(Stats.Milliseconds(releasedAt - started));
                approvals.Add(Stats.Milliseconds(approvedAt - asked));
            }
        }
        await stop.CancelAsync();
        try
        {
            await deciding;
        }
        catch (OperationCanceledException)
        {
        }
        // Where the tail sits in the run: slow ones early are warm-up (tier-0 code, the JIT busy), spread out they are pauses or load.
        var slowest = releases.Select((ms, at) => (ms, at)).OrderByDescending(r => r.ms).Take(3)
            .Select(r => $"#{r.at + 1} {Stats.F(r.ms)} ms").ToList();
        reports.AddRange(Report("release 4 KiB (request -> device re-wrap -> agent opened)", releases, releaseCpu, "approval (request -> device approve -> token)",
            approvals, approvalCpu, 15));
        reports.Add($"    slowest releases (in the order measured, after {warmup} warm-up pairs): {string.Join(", ", slowest)}");
        figures.Add(("release_p99_ms", Stats.F(Stats.Percentile(Sorted(releases), 0.99))));
        figures.Add(("approval_p99_ms", Stats.F(Stats.Percentile(Sorted(approvals), 0.99))));
    }

    private static async Task PutsAsync(int count, VaultDevice vault, List<string> reports, List<(string, string)> figures, ServerProcess server, CancellationToken ct)
    {
        var big = RandomNumberGenerator.GetBytes(1024 * 1024);
        var small = RandomNumberGenerator.GetBytes(16);
        var bigPuts = new List<double>(count);
        var smallPuts = new List<double>(count);
        var bigCpu = new CpuMeter(server);
        var smallCpu = new CpuMeter(server);
        for (var i = 0; i < count + 5; i++)
        {
            bigCpu.Start(i >= 5);
            var started = Stopwatch.GetTimestamp();
            await vault.PutAsync("bench/big", big, ct);
            var middle = Stopwatch.GetTimestamp();
            bigCpu.Stop();
            smallCpu.Start(i >= 5);
            await vault.PutAsync("bench/small", small, ct);
            var ended = Stopwatch.GetTimestamp();
            smallCpu.Stop();
            if (i >= 5)
            {
                bigPuts.Add(Stats.Milliseconds(middle - started));
                smallPuts.Add(Stats.Milliseconds(ended - middle));
            }
        }

        reports.AddRange(Report("put 1 MiB", bigPuts, bigCpu, "put 16 B", smallPuts, smallCpu, 50));
        figures.Add(("put_1mib_p99_ms", Stats.F(Stats.Percentile(Sorted(bigPuts), 0.99))));
        figures.Add(("put_16b_p99_ms", Stats.F(Stats.Percentile(Sorted(smallPuts), 0.99))));
    }

    private static async Task ListsAsync(int items, AuthenticatorClient device, List<string> reports, List<(string, string)> figures, ServerProcess server,
        CancellationToken ct)
    {
        var lists = new List<double>(50);
        var deviceLists = new List<double>(50);
        var listCpu = new CpuMeter(server);
        var devicesCpu = new CpuMeter(server);
        for (var i = 0; i < 55; i++)
        {
            listCpu.Start(i >= 5);
            var started = Stopwatch.GetTimestamp();
            var list = await device.ListVaultItemsAsync(ct);
            var middle = Stopwatch.GetTimestamp();
            listCpu.Stop();
            devicesCpu.Start(i >= 5);
            await device.ListDevicesAsync(ct);
            var ended = Stopwatch.GetTimestamp();
            devicesCpu.Stop();
            if (list.Items.Count < items)
            {
                throw new InvalidOperationException($"listed {list.Items.Count} items, not {items}");
            }
            if (i >= 5)
            {
                lists.Add(Stats.Milliseconds(middle - started));
                deviceLists.Add(Stats.Milliseconds(ended - middle));
            }
        }

        reports.AddRange(Report($"list {items} items", lists, listCpu, "list devices", deviceLists, devicesCpu, 50));
        figures.Add(("list_items_p99_ms", Stats.F(Stats.Percentile(Sorted(lists), 0.99))));
        figures.Add(("list_devices_p99_ms", Stats.F(Stats.Percentile(Sorted(deviceLists), 0.99))));
    }

    private static List<double> Sorted(List<double> values)
    {
        values.Sort();
        return values;
    }

    private static string[] Report(string what, List<double> values, CpuMeter cpu, string baseline, List<double> reference, CpuMeter referenceCpu, double target)
    {
        var (p50, p99) = (Stats.Percentile(Sorted(values), 0.5), Stats.Percentile(values, 0.99));
        var (b50, b99) = (Stats.Percentile(Sorted(reference), 0.5), Stats.Percentile(reference, 0.99));
        return
        [
            $"  {what}: p50 {Stats.F(p50)} ms, p99 {Stats.F(p99)} ms (target p99 <= {target} ms); CPU per op: {cpu}",
            $"    baseline {baseline}: p50 {Stats.F(b50)} ms, p99 {Stats.F(b99)} ms; CPU per op: {referenceCpu}; ratio p50 {Stats.F(p50 / b50)}x, p99 {Stats.F(p99 / b99)}x",
        ];
    }

    /// <summary>
    /// CPU spent per measured operation, by this process (agent and device) and by the server, summed over the measured
    /// iterations: on a shared machine CPU per operation moves less than wall time.
    /// </summary>
    private sealed class CpuMeter(ServerProcess server)
    {
        private TimeSpan _client;
        private TimeSpan _server;
        private TimeSpan _clientAt;
        private TimeSpan _serverAt;
        private long _allocated;
        private long _allocatedAt;
        private int _collections;
        private int _collectionsAt;
        private bool _measuring;
        private int _count;

        public void Start(bool measured)
        {
            _measuring = measured;
            if (measured)
            {
                _clientAt = Process.GetCurrentProcess().TotalProcessorTime;
                _serverAt = server.CpuTime();
                _allocatedAt = GC.GetTotalAllocatedBytes(true);
                _collectionsAt = GC.CollectionCount(0);
            }
        }

        public void Stop()
        {
            if (_measuring)
            {
                _client += Process.GetCurrentProcess().TotalProcessorTime - _clientAt;
                _server += server.CpuTime() - _serverAt;
                _allocated += GC.GetTotalAllocatedBytes(true) - _allocatedAt;
                _collections += GC.CollectionCount(0) - _collectionsAt;
                _count++;
                _measuring = false;
            }
        }

        // The client's allocations (agent and device, this process) per operation, and its collections in all the measured ones:
        // a collection during an operation is one way its time reaches the tail.
        public override string ToString() => _count == 0
            ? "n/a"
            : $"client {Stats.F(_client.TotalMilliseconds / _count)} ms, server {Stats.F(_server.TotalMilliseconds / _count)} ms; " +
              $"client allocated {Stats.F(_allocated / 1024.0 / _count)} KiB per op, {_collections} GCs";
    }

    private static void FillItems(string database, string userId, int count)
    {
        using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        connection.Open();
        using (var wait = connection.CreateCommand())
        {
            wait.CommandText = "PRAGMA busy_timeout = 10000";
            wait.ExecuteNonQuery();
        }
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO vault_items(id, user_id, name, version, size, created_at, updated_at) VALUES ($id, $user, $name, 1, 4096, $now, $now)";
        var id = command.Parameters.Add("$id", SqliteType.Text);
        var name = command.Parameters.Add("$name", SqliteType.Text);
        command.Parameters.AddWithValue("$user", userId);
        command.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        for (var i = 0; i < count; i++)
        {
            id.Value = Base64Url.Encode(RandomNumberGenerator.GetBytes(16));
            name.Value = $"fill/{i:D6}";
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    }
}
