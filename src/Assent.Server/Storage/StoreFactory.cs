using Assent.Server.Hosting;

namespace Assent.Server.Storage;

internal static class StoreFactory
{
    public const string SqliteFileName = "assent.db";

    /// <summary>Opens the configured engine and applies its migrations.</summary>
    public static async Task<IAssentStore> OpenAsync(AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var database = options.Database;
        IAssentStore store;
        if (string.IsNullOrWhiteSpace(database))
        {
            SecureFile.EnsurePrivateDirectory(options.DataDirectory);
            store = new SqliteStore(Path.Combine(options.DataDirectory, SqliteFileName), time, options.SynchronousFull);
        }
        else if (database.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            var path = database["sqlite:".Length..];
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            store = new SqliteStore(path, time, options.SynchronousFull);
        }
        else
        {
            throw new NotSupportedException("only the embedded SQLite engine is available in this build; leave --database empty or use sqlite:PATH");
        }
        await store.MigrateAsync(ct);
        return store;
    }
}
