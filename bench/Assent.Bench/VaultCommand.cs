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
/// </summary>
internal static class VaultCommand
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var count = args.Int("count", 200, 10, 10_000);
        var items = args.Int("items", 10_000, 100, 100_000);
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
            Console.WriteLine($"vault: {count} releases and approvals, {count} puts of each size, list of {items} items; server pid {server.Id}, SQLite");

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
            for (var i = 0; i < count + 20; i++)
            {
                var started = Stopwatch.GetTimestamp();
                var released = await agent.GetSecretAsync("bench/secret", ct);
                var releasedAt = Stopwatch.GetTimestamp();
                if (!released.Released || !released.Value!.AsSpan().SequenceEqual(secret))
                {
                    throw new InvalidOperationException($"release {i} came back {released.Status} or not the secret");
                }
                var asked = Stopwatch.GetTimestamp();
                var approval = await agent.ApproveAsync($"Bench approval {i}", new ApproveOptions { Scope = Provisioning.Scopes }, ct);
                var approvedAt = Stopwatch.GetTimestamp();
                if (!approval.Approved)
                {
                    throw new InvalidOperationException($"approval {i} came back {approval.Status}");
                }
                if (i >= 20)
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

            var big = RandomNumberGenerator.GetBytes(1024 * 1024);
            var small = RandomNumberGenerator.GetBytes(16);
            var bigPuts = new List<double>(count);
            var smallPuts = new List<double>(count);
            for (var i = 0; i < count + 5; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await vault.PutAsync("bench/big", big, ct);
                var middle = Stopwatch.GetTimestamp();
                await vault.PutAsync("bench/small", small, ct);
                var ended = Stopwatch.GetTimestamp();
                if (i >= 5)
                {
                    bigPuts.Add(Stats.Milliseconds(middle - started));
                    smallPuts.Add(Stats.Milliseconds(ended - middle));
                }
            }

            // 10,000 items written straight into the database (what a list reads: names, versions, sizes, times).
            FillItems(Path.Combine(dataDirectory, "assent.db"), enrolled.UserId, items);
            var lists = new List<double>(50);
            var deviceLists = new List<double>(50);
            for (var i = 0; i < 55; i++)
            {
                var started = Stopwatch.GetTimestamp();
                var list = await device.ListVaultItemsAsync(ct);
                var middle = Stopwatch.GetTimestamp();
                await device.ListDevicesAsync(ct);
                var ended = Stopwatch.GetTimestamp();
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

            Report("release 4 KiB (request -> device re-wrap -> agent opened)", releases, "approval (request -> device approve -> token)", approvals, 15);
            Report("put 1 MiB", bigPuts, "put 16 B", smallPuts, 50);
            Report($"list {items} items", lists, "list devices", deviceLists, 50);
            Stats.Result("vault", ("count", count.ToString(CultureInfo.InvariantCulture)),
                ("release_p99_ms", Stats.F(Stats.Percentile(Sorted(releases), 0.99))), ("approval_p99_ms", Stats.F(Stats.Percentile(Sorted(approvals), 0.99))),
                ("put_1mib_p99_ms", Stats.F(Stats.Percentile(Sorted(bigPuts), 0.99))), ("put_16b_p99_ms", Stats.F(Stats.Percentile(Sorted(smallPuts), 0.99))),
                ("list_items_p99_ms", Stats.F(Stats.Percentile(Sorted(lists), 0.99))), ("list_devices_p99_ms", Stats.F(Stats.Percentile(Sorted(deviceLists), 0.99))));
            CryptographicOperations.ZeroMemory(privateKey);
            return 0;
        }
        finally
        {
            Provisioning.Delete(dataDirectory);
        }
    }

    private static List<double> Sorted(List<double> values)
    {
        values.Sort();
        return values;
    }

    private static void Report(string what, List<double> values, string baseline, List<double> reference, double target)
    {
        var (p50, p99) = (Stats.Percentile(Sorted(values), 0.5), Stats.Percentile(values, 0.99));
        var (b50, b99) = (Stats.Percentile(Sorted(reference), 0.5), Stats.Percentile(reference, 0.99));
        Console.WriteLine($"  {what}: p50 {Stats.F(p50)} ms, p99 {Stats.F(p99)} ms (target p99 <= {target} ms)");
        Console.WriteLine($"    baseline {baseline}: p50 {Stats.F(b50)} ms, p99 {Stats.F(b99)} ms; ratio p50 {Stats.F(p50 / b50)}x, p99 {Stats.F(p99 / b99)}x");
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
