using System.Diagnostics;

namespace Assent.Bench;

/// <summary>
/// A throwaway PostgreSQL cluster for one benchmark run (initdb into a temp directory, loopback
/// port, removed afterwards). As root it runs as the <c>postgres</c> user, since initdb refuses root.
/// </summary>
internal sealed class BenchPostgres : IAsyncDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("assent-bench-pg-").FullName;
    private readonly string _bin;

    private BenchPostgres(string bin, int port)
    {
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Maximum Pool Size=64";

    private string Data => Path.Combine(_root, "data");

    public static async Task<BenchPostgres> StartAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl"))).Max(StringComparer.Ordinal)
            : null;
        var pg = new BenchPostgres(bin ?? throw new InvalidOperationException("PostgreSQL binaries not found under /usr/lib/postgresql (apt-get install postgresql)"),
            ServerProcess.FreePort());
        if (Environment.UserName == "root")
        {
            await BenchProcess.RunAsync("chown", ["-R", "postgres:postgres", pg._root], "/");
        }
        await pg.RunPgAsync("initdb", "-D", pg.Data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions");
        // Durable settings (fsync on, synchronous_commit on): the comparison with SQLite is fair.
        await pg.RunPgAsync("pg_ctl", "-D", pg.Data, "-l", Path.Combine(pg._root, "log"), "-w", "-t", "60",
            "-o", $"-p {pg.Port} -k {pg._root} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB", "start");
        return pg;
    }

    /// <summary>
    /// CPU time so far of the cluster: the postmaster and its children (backends, WAL writer,
    /// checkpointer, autovacuum). A backend that has exited no longer counts; the nodes' pooled ones stay.
    /// </summary>
    public TimeSpan CpuTime()
    {
        var postmaster = int.Parse(File.ReadLines(Path.Combine(Data, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        var total = ServerProcess.Stat(postmaster)?.Cpu ?? TimeSpan.Zero;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && ServerProcess.Stat(pid) is { } stat && stat.Parent == postmaster)
            {
                total += stat.Cpu;
            }
        }
        return total;
    }

    /// <summary>
    /// A checkpoint, so the WAL segments written so far can be recycled. A fresh cluster creates
    /// each new 16 MB segment (zero-filled and synced while commits wait: a stall of tens of ms
    /// about every second at this load); a cluster that has run for a while renames old ones.
    /// </summary>
    public Task CheckpointAsync(CancellationToken ct) => ScalarAsync("CHECKPOINT", ct);

    /// <summary>Bytes of write-ahead log written since the cluster started.</summary>
    public async Task<long> WalBytesAsync(CancellationToken ct) =>
        (long)(await ScalarAsync("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint", ct))!;

    private async Task<object?> ScalarAsync(string sql, CancellationToken ct)
    {
        await using var connection = new Npgsql.NpgsqlConnection(ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        await RunPgAsync("pg_ctl", "-D", Data, "-m", "immediate", "-w", "stop");
        Directory.Delete(_root, recursive: true);
    }

    private Task RunPgAsync(string tool, params string[] args) =>
        Environment.UserName == "root"
            ? BenchProcess.RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args], "/")
            : BenchProcess.RunAsync(Path.Combine(_bin, tool), args, "/");
}
