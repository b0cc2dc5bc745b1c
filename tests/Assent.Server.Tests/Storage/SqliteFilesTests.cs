using Assent.Server.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Tests.Storage;

public sealed class SqliteFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("assent-files-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private SqliteConnection Open(string name, string journal)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_dir, name), Pooling = false }.ToString());
        c.Open();
        using (var setUp = c.CreateCommand())
        {
            setUp.CommandText = $"PRAGMA journal_mode={journal}; CREATE TABLE t(x INTEGER PRIMARY KEY, y BLOB);";
            setUp.ExecuteNonQuery();
        }
        for (var i = 0; i < 200; i++)
        {
            Exec(c, "INSERT INTO t(y) VALUES(randomblob(1000))");
        }
        return c;
    }

    private static long Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Syncing_a_WAL_databases_files_through_SQLites_own_handles_leaves_both_files_and_every_row_as_they_were()
    {
        using var c = Open("wal.db", "WAL");
        var db = new FileInfo(Path.Combine(_dir, "wal.db"));
        var log = new FileInfo(Path.Combine(_dir, "wal.db-wal"));
        var (dbLength, logLength) = (db.Length, log.Length);
        Assert.True(logLength > 200 * 1000, "the rows are in the log");

        // The sync is reached through a slot of SQLite's method table: another slot (xTruncate, xWrite) would cut or
        // overwrite the files, or crash.
        Assert.True(SqliteFiles.TrySync(c));

        db.Refresh();
        log.Refresh();
        Assert.Equal(dbLength, db.Length);
        Assert.Equal(logLength, log.Length);
        Assert.Equal(200, Exec(c, "SELECT count(*) FROM t"));
        using var other = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db.FullName, Pooling = false }.ToString());
        other.Open();
        Assert.Equal(200, Exec(other, "SELECT count(*) FROM t"));
        using var check = other.CreateCommand();
        check.CommandText = "PRAGMA integrity_check";
        Assert.Equal("ok", check.ExecuteScalar());
    }

    [Fact]
    public void Without_an_open_log_there_is_nothing_to_sync_and_it_says_so()
    {
        // A rollback journal is open only inside a write transaction: the database file syncs, the journal is not there.
        using var c = Open("journal.db", "DELETE");
        Assert.False(SqliteFiles.TrySync(c));
        Assert.Equal(200, Exec(c, "SELECT count(*) FROM t"));
    }

    [Fact]
    public void A_closed_connection_is_refused()
    {
        var c = Open("closed.db", "WAL");
        c.Close();
        Assert.Throws<InvalidOperationException>(() => SqliteFiles.TrySync(c));
    }
}
