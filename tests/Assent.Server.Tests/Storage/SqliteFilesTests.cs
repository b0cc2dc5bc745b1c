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
    public void A_watched_connections_commits_report_the_logs_length_on_their_thread_and_a_log_started_over_is_short()
    {
        using var c = Open("watched.db", "WAL");
        var log = new FileInfo(Path.Combine(_dir, "watched.db-wal"));
        SqliteFiles.TakeLogFrames(); // this thread may have run another test's watched commits
        SqliteFiles.WatchCommits(c);
        Assert.Null(SqliteFiles.TakeLogFrames());

        Exec(c, "INSERT INTO t(y) VALUES(randomblob(1000))");
        var frames = SqliteFiles.TakeLogFrames();
        // The log has not started over since it was created: its file is a 32-byte header and the frames, each a 24-byte
        // header and a page (sqlite.org/fileformat2.html §4.1).
        log.Refresh();
        Assert.Equal((log.Length - 32) / (Exec(c, "PRAGMA page_size") + 24), frames);
        Assert.True(frames > 200, $"{frames} frames for 201 commits");
        Assert.Null(SqliteFiles.TakeLogFrames());

        Assert.Equal(201, Exec(c, "SELECT count(*) FROM t"));
        Assert.Null(SqliteFiles.TakeLogFrames()); // a read commits nothing

        Exec(c, "INSERT INTO t(y) VALUES(randomblob(1000))");
        long? elsewhere = -1;
        var other = new Thread(() => elsewhere = SqliteFiles.TakeLogFrames());
        other.Start();
        other.Join();
        Assert.Null(elsewhere);
        Assert.InRange(SqliteFiles.TakeLogFrames() ?? -1, frames!.Value + 1, frames.Value + 3); // the row's page, maybe its parents

        // Everything copied back and no reader in the log: the next commit writes the log from its beginning again.
        Exec(c, "PRAGMA wal_checkpoint(PASSIVE)");
        Exec(c, "INSERT INTO t(y) VALUES(randomblob(1000))");
        Assert.InRange(SqliteFiles.TakeLogFrames() ?? -1, 1, 3);
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
