using Assent.Server.Storage;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Assent.Server.Tests.Storage;

public sealed class StorageFaultsTests
{
    [Theory]
    [InlineData("08006", true)]  // connection_failure
    [InlineData("57P01", true)]  // admin_shutdown: pg_ctl stop -m fast
    [InlineData("57P03", true)]  // cannot_connect_now: starting up
    [InlineData("53100", true)]  // disk_full
    [InlineData("58030", true)]  // io_error
    [InlineData("23505", false)] // unique_violation: a request's fault or a bug, never a retry
    [InlineData("42P01", false)] // undefined_table
    public void PostgreSQL_errors_are_unavailable_only_when_the_server_cannot_answer_now(string state, bool unavailable) =>
        Assert.Equal(unavailable, StorageFaults.IsUnavailable(new PostgresException("m", "ERROR", "ERROR", state)));

    [Theory]
    [InlineData(13, true)]  // SQLITE_FULL
    [InlineData(10, true)]  // SQLITE_IOERR
    [InlineData(5, true)]   // SQLITE_BUSY
    [InlineData(19, false)] // SQLITE_CONSTRAINT
    [InlineData(11, false)] // SQLITE_CORRUPT: an operator's, not a retry
    public void SQLite_errors_are_unavailable_for_a_full_disk_io_and_locking_only(int code, bool unavailable) =>
        Assert.Equal(unavailable, StorageFaults.IsUnavailable(new SqliteException("m", code)));

    [Fact]
    public void A_connection_the_client_could_not_open_is_unavailable_even_when_wrapped() =>
        Assert.True(StorageFaults.IsUnavailable(new InvalidOperationException("outer", new NpgsqlException("Failed to connect", new System.Net.Sockets.SocketException(111)))));

    [Fact]
    public void Other_exceptions_are_not_unavailable()
    {
        Assert.False(StorageFaults.IsUnavailable(new InvalidOperationException("a bug")));
        Assert.False(StorageFaults.IsUnavailable(new OperationCanceledException()));
    }

    [Fact]
    public void At_start_an_sqlite_file_that_cannot_be_opened_is_not_waited_for()
    {
        Assert.False(StorageFaults.IsUnavailableAtStart(new SqliteException("unable to open database file", 14)));
        Assert.True(StorageFaults.IsUnavailableAtStart(new SqliteException("database or disk is full", 13)));
    }
}
