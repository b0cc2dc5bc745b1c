using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Storage.Sqlite;

/// <summary>
/// Syncs the files SQLite has open for a connection: the database file and its write-ahead log. SQLite syncs them only in a
/// commit or a checkpoint; the checkpoint thread syncs them ahead of the writer's own checkpoint, so that the writer then
/// waits only for what was written since (docs/storage.md §4).
/// <para>
/// Written by hand because neither Microsoft.Data.Sqlite nor SQLitePCLRaw exposes <c>sqlite3_file_control</c>: it is bound
/// here from the native library SQLitePCLRaw loads. A file descriptor of our own would not do: on POSIX, closing any
/// descriptor of a file releases every lock the process holds on it, SQLite's own included (sqlite.org/howtocorrupt.html
/// §2.2). <c>SQLITE_FCNTL_FILE_POINTER</c> and <c>SQLITE_FCNTL_JOURNAL_POINTER</c> (sqlite.org/c3ref/c_fcntl_begin_atomic_write.html)
/// give SQLite's own open files, and the sync goes through their VFS's <c>xSync</c> (sqlite.org/c3ref/io_methods.html), as
/// SQLite's own syncs do.
/// </para>
/// </summary>
internal static class SqliteFiles
{
    private const int FilePointer = 7; // SQLITE_FCNTL_FILE_POINTER: the database file
    private const int JournalPointer = 28; // SQLITE_FCNTL_JOURNAL_POINTER: the write-ahead log in WAL mode
    private const int SyncNormal = 0x2; // SQLITE_SYNC_NORMAL

    /// <summary>The schema whose files are meant, NUL-terminated.</summary>
    private static readonly byte[] Main = "main\0"u8.ToArray();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SyncFunction(IntPtr file, int flags);

    [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
    private static extern int sqlite3_file_control(IntPtr db, byte[] name, int op, out IntPtr file);

    /// <summary>
    /// Syncs the database file, then the log, of <paramref name="connection"/>'s main schema. False when either is not open
    /// on this connection (the log opens with its first transaction) or a sync failed: SQLite's own next sync reports an
    /// I/O error. The connection must not be in use on another thread meanwhile.
    /// </summary>
    public static bool TrySync(SqliteConnection connection)
    {
        var db = connection.Handle?.DangerousGetHandle() ?? throw new InvalidOperationException("the connection is not open");
        return TrySync(db, FilePointer) && TrySync(db, JournalPointer);
    }

    private static bool TrySync(IntPtr db, int op)
    {
        if (sqlite3_file_control(db, Main, op, out var file) != 0 || file == IntPtr.Zero)
        {
            return false;
        }
        // struct sqlite3_file { const struct sqlite3_io_methods *pMethods; ... }: no methods while the file is not open.
        var methods = Marshal.ReadIntPtr(file);
        if (methods == IntPtr.Zero)
        {
            return false;
        }
        // struct sqlite3_io_methods { int iVersion; xClose; xRead; xWrite; xTruncate; xSync; ... }: the int is padded to a
        // pointer's alignment, so xSync is the sixth pointer-sized slot on 32-bit and 64-bit machines alike.
        var xSync = Marshal.ReadIntPtr(methods, 5 * IntPtr.Size);
        return Marshal.GetDelegateForFunctionPointer<SyncFunction>(xSync)(file, SyncNormal) == 0;
    }
}
