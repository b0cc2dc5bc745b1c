using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Assent.Server.Storage;

/// <summary>
/// Tells an outage of the database (PostgreSQL down or restarting, a connection cut, a full disk, an I/O error) from
/// a fault in the request or in Assent: the first is answered 503 with <c>Retry-After</c> and retried by clients, the
/// second stays a 500 with its stack trace in the log (docs/deployment.md §13).
/// </summary>
internal static class StorageFaults
{
    // SQLite primary result codes (https://sqlite.org/rescode.html): the file is busy or locked past the busy timeout,
    // memory ran out, the file became read-only, an I/O error, the disk is full, the file cannot be opened, a WAL
    // locking race. SQLITE_CORRUPT is left out: it needs an operator, not a retry.
    private const int SqliteBusy = 5, SqliteLocked = 6, SqliteNoMem = 7, SqliteReadOnly = 8, SqliteIoErr = 10, SqliteFull = 13, SqliteCantOpen = 14, SqliteProtocol = 15;

    /// <summary>Whether <paramref name="e"/> (or what it wraps) says the database cannot be reached or cannot write now.</summary>
    public static bool IsUnavailable(Exception? e)
    {
        for (var depth = 0; e is not null && depth < 8; depth++)
        {
            switch (e)
            {
                case PostgresException pg:
                    return IsUnavailableState(pg.SqlState);
                case NpgsqlException:
                    // Raised by the client, not the server: the connection could not be opened, was cut, or timed out
                    // (pool exhausted, server gone quiet). The server never answered, so nothing was refused.
                    return true;
                case SqliteException sqlite:
                    return sqlite.SqliteErrorCode is SqliteBusy or SqliteLocked or SqliteNoMem or SqliteReadOnly or SqliteIoErr or SqliteFull or SqliteCantOpen or SqliteProtocol;
                case SocketException or TimeoutException:
                    return true;
                case AggregateException { InnerExceptions.Count: 1 } aggregate:
                    e = aggregate.InnerExceptions[0];
                    continue;
            }
            e = e.InnerException;
        }
        return false;
    }

    /// <summary>
    /// At start, the same except an SQLite file that cannot be opened or written at all: a wrong path or permission is an
    /// operator's to fix, and waiting would only hide it.
    /// </summary>
    public static bool IsUnavailableAtStart(Exception e) =>
        IsUnavailable(e) && e is not SqliteException { SqliteErrorCode: SqliteCantOpen or SqliteReadOnly };

    /// <summary>
    /// PostgreSQL error codes (Appendix A) that mean "not now" rather than "not this": class 08 connection exception,
    /// class 53 insufficient resources (disk full, out of memory, too many connections), class 58 system error (I/O),
    /// 57P01–57P03 the server shutting down, crashed or still starting up.
    /// </summary>
    internal static bool IsUnavailableState(string state) =>
        state.StartsWith("08", StringComparison.Ordinal) || state.StartsWith("53", StringComparison.Ordinal) || state.StartsWith("58", StringComparison.Ordinal) ||
        state is "57P01" or "57P02" or "57P03";
}
