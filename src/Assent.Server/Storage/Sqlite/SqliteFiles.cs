using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Storage.Sqlite;

/// <summary>
/// The write-ahead log's files as SQLite has them open for a connection (docs/storage.md §4). <see cref="TrySync"/> syncs
/// the database file and the log: SQLite syncs them only in a commit or a checkpoint; the checkpoint thread syncs them
/// ahead of the writer's own checkpoint, so that the writer then waits only for what was written since.
/// <see cref="WatchCommits"/> makes each commit report the log's length, so that the writer knows when it started over.
/// <para>
/// Written by hand because neither Microsoft.Data.Sqlite nor SQLitePCLRaw exposes <c>sqlite3_file_control</c> or
/// <c>sqlite3_wal_hook</c>: they are bound here from the native library SQLitePCLRaw loads. A file descriptor of our
/// own would not do: on POSIX, closing any descriptor of a file releases every lock the process holds on it, SQLite's
/// own included (sqlite.org/howtocorrupt.html §2.2). <c>SQLITE_FCNTL_FILE_POINTER</c> and
/// <c>SQLITE_FCNTL_JOURNAL_POINTER</c> (sqlite.org/c3ref/c_fcntl_begin_atomic_write.html) give SQLite's own open files,
/// and the sync goes through their VFS's <c>xSync</c> (sqlite.org/c3ref/io_methods.html), as SQLite's own syncs do.
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

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int WalHook(IntPtr argument, IntPtr db, IntPtr schema, int frames);

    [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
    private static extern IntPtr sqlite3_wal_hook(IntPtr db, IntPtr hook, IntPtr argument);

    /// <summary>The log's length after the last commit on this thread of a watched connection, plus one; 0 when none since the last take.</summary>
    [ThreadStatic]
    private static long t_logFramesPlusOne;

    // Held in a static field: the native side keeps only the pointer, and a collected delegate would leave it dangling.
    private static readonly WalHook OnCommit = (_, _, _, frames) =>
    {
        t_logFramesPlusOne = frames + 1L;
        return 0; // SQLITE_OK
    };

    private static readonly IntPtr OnCommitPointer = Marshal.GetFunctionPointerForDelegate(OnCommit);

    /// <summary>
    /// From now on each commit on <paramref name="connection"/> reports the frames in the log after it, to
    /// <see cref="TakeLogFrames"/> on the committing thread. SQLite calls the hook (sqlite.org/c3ref/wal_hook.html) on that
    /// thread, within the commit, after the write lock is released. It replaces the hook <c>wal_autocheckpoint</c> sets, so
    /// call it after that pragma and set no such pragma afterwards.
    /// </summary>
    public static void WatchCommits(SqliteConnection connection)
    {
        var db = connection.Handle?.DangerousGetHandle() ?? throw new InvalidOperationException("the connection is not open");
        sqlite3_wal_hook(db, OnCommitPointer, IntPtr.Zero);
    }

    /// <summary>The log's length in frames after the last commit on this thread of a watched connection since the last call; null when none.</summary>
    public static long? TakeLogFrames()
    {
        var plusOne = t_logFramesPlusOne;
        t_logFramesPlusOne = 0;
        return plusOne == 0 ? null : plusOne - 1;
    }

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
