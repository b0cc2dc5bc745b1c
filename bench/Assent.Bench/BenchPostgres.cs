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
            await RunAsync("chown", "-R", "postgres:postgres", pg._root);
        }
        await pg.RunPgAsync("initdb", "-D", pg.Data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions");
        // Durable settings (fsync on, synchronous_commit on): the comparison with SQLite is fair.
        await pg.RunPgAsync("pg_ctl", "-D", pg.Data, "-l", Path.Combine(pg._root, "log"), "-w", "-t", "60",
            "-o", $"-p {pg.Port} -k {pg._root} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB", "start");
        return pg;
    }

    public async ValueTask DisposeAsync()
    {
        await RunPgAsync("pg_ctl", "-D", Data, "-m", "immediate", "-w", "stop");
        Directory.Delete(_root, recursive: true);
    }

    private Task RunPgAsync(string tool, params string[] args) =>
        Environment.UserName == "root"
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args])
            : RunAsync(Path.Combine(_bin, tool), args);

    private static async Task RunAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var p = Process.Start(info)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} failed ({p.ExitCode}): {await err}{await output}");
        }
    }
}
