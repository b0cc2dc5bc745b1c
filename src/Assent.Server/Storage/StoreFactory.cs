using Assent.Server.Common;
using Assent.Server.Storage.Postgres;
using Assent.Server.Storage.Sqlite;

namespace Assent.Server.Storage;

internal static class StoreFactory
{
    public const string SqliteFileName = "assent.db";

    /// <summary>A postgres:// URI or an Npgsql keyword connection string.</summary>
    public static bool IsPostgres(string database) =>
        database.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ||
        database.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) ||
        database.Contains("Host=", StringComparison.OrdinalIgnoreCase);

    /// <summary>Opens the configured engine and applies its migrations.</summary>
    public static async Task<AssentStore> OpenAsync(AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var database = options.Database;
        Database store;
        if (string.IsNullOrWhiteSpace(database))
        {
            SecureFile.EnsurePrivateDirectory(options.DataDirectory);
            store = OpenSqlite(Path.Combine(options.DataDirectory, SqliteFileName), options, time);
        }
        else if (database.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            var path = database["sqlite:".Length..];
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            store = OpenSqlite(path, options, time);
        }
        else if (IsPostgres(database))
        {
            var builder = new Npgsql.NpgsqlDataSourceBuilder(PostgresDatabase.ToConnectionString(database));
            store = new PostgresDatabase(builder.Build(), time);
        }
        else
        {
            throw new NotSupportedException("--database takes postgres://user:pass@host:port/db, an Npgsql connection string (Host=…;Database=…), or sqlite:PATH");
        }
        var opened = new AssentStore(store);
        await opened.MigrateAsync(ct);
        return opened;
    }

    private static SqliteDatabase OpenSqlite(string path, AssentOptions options, TimeProvider time)
    {
        // Files an older version (or a copy) left readable by others are repaired, and said so once (docs/deployment.md §11).
        if (SqliteDatabase.KeepPrivate(path) is [_, ..] tightened)
        {
            Console.Error.WriteLine($"warning: {string.Join(", ", tightened)} could be read by other users; now 0600 (owner only)");
        }
        return new SqliteDatabase(path, time, options.SynchronousFull);
    }
}
