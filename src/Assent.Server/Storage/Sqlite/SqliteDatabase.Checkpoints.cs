using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Storage.Sqlite;

/// <summary>
/// The embedded engine's checkpoints (docs/storage.md §4): the thread that copies the write-ahead log back into the
/// database file, and the writer's own catch-ups that let the log start over.
/// </summary>
internal sealed partial class SqliteDatabase
{
    /// <summary>
    /// Checkpoints (docs/storage.md §4) run on a thread and a connection of their own, so that no write waits for one. A
    /// checkpoint syncs the log and the database file; while the writer ran them itself, between batches, every write
    /// queued meanwhile waited for those syncs (1.6 ms at the median on a development machine, up to 18 ms, far more on a
    /// busy disk: with <c>synchronous=NORMAL</c> they were the only syncs in the path of a request).
    /// <para>
    /// After commits, the checkpoint thread copies the log back into the database file, at most every
    /// <see cref="CheckpointEvery"/>, passively: it never waits for the writer or a reader. When it has copied everything
    /// and nothing was appended meanwhile, the writer's next commit starts the log over from its beginning. Under steady
    /// writes that moment may not come: a checkpoint from another connection never catches up, and the log would grow by
    /// gigabytes a minute at full load (the kernel writing all of it back). So once the log holds
    /// <see cref="CatchUpFrames"/> frames the writer checkpoints itself between two batches: nothing is appended meanwhile,
    /// it has only what the checkpoint thread has not copied yet to copy, it completes, and the next commit restarts the
    /// log.
    /// </para>
    /// <para>
    /// That catch-up holds the writer for three syncs: the log's, the database file's and, in the next commit, the new log
    /// header's. SQLite syncs the database file only in a checkpoint that reaches the end of the log, which under steady
    /// writes only the writer's does: so its sync had every page the thread's rounds had copied since the last catch-up to
    /// write. The thread therefore prepares it: past the mark it syncs both files itself after its round
    /// (<see cref="SqliteFiles"/>), then runs the next round at once, up to <see cref="PreparingRounds"/> more times while a
    /// round still finds more than <see cref="ShortRemainder"/> frames appended since the one before; then it tells the
    /// writer. The writer's syncs then have only what was written since to write.
    /// </para>
    /// <para>
    /// Where syncs are slow the writer spends at most half its time catching up: it skips catching up until as long as its
    /// last checkpoint took has passed, and whenever the checkpoint thread is in a round (whose syncs it would otherwise wait
    /// out). Once the log holds twice <see cref="CatchUpFrames"/> frames it catches up whether told or not. The writer
    /// counts the log by what SQLite reports after each of its commits (<see cref="SqliteFiles.WatchCommits"/>), so it knows
    /// when the log started over by itself, after a round that copied everything: no catch-up is then due.
    /// </para>
    /// </summary>
    private void CheckpointLoop()
    {
        var last = 0L;
        var preparing = 0;
        var previous = 0L;
        while (true)
        {
            _committed.Wait();
            // Commits of a few milliseconds share one checkpoint; the rounds that prepare a catch-up follow each other at once.
            var since = Stopwatch.GetElapsedTime(last);
            if (preparing == 0 && since < CheckpointEvery && !_stopping)
            {
                // Woken early when the writer's own count says the log has reached the mark: preparing then starts at once.
                _longLog.Wait(CheckpointEvery - since);
            }
            _longLog.Reset();
            if (_stopping)
            {
                return;
            }
            // Reset before checkpointing: a commit from here on sets it again, and is checkpointed in the next round.
            _committed.Reset();
            last = Stopwatch.GetTimestamp();
            try
            {
                lock (_checkpointing)
                {
                    if (CheckpointOn(_checkpointer ??= Open()) is not { } frames)
                    {
                        continue;
                    }
                    Volatile.Write(ref _logFrames, frames);
                    var synced = frames >= CatchUpFrames && SyncFiles(_checkpointer);
                    if (PreparingAfter(frames, previous, preparing, synced) is { } next)
                    {
                        preparing = next;
                    }
                    else
                    {
                        preparing = 0;
                        Volatile.Write(ref _catchUpDue, true);
                    }
                    previous = frames;
                }
            }
            catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
            {
                // I/O error, full disk: the writes it affects report it. Reopened for the next commit's checkpoint.
                _checkpointer?.Dispose();
                _checkpointer = null;
            }
        }
    }

    /// <summary>
    /// After a round that found <paramref name="frames"/> in the log (<paramref name="previous"/> in the round before) and
    /// synced the files or not: how many rounds have prepared the writer's catch-up so far, or null when the writer is to be
    /// told to catch up now.
    /// </summary>
    internal static int? PreparingAfter(long frames, long previous, int preparing, bool synced)
    {
        if (frames < CatchUpFrames)
        {
            return 0;
        }
        // Much was appended during the last round and its sync: copy and sync that too before the writer does. Unsynced
        // (another SQLite library, an I/O error), the writer catches up all the same, syncing everything itself.
        return synced && preparing < PreparingRounds && frames - previous > ShortRemainder ? preparing + 1 : null;
    }

    /// <summary>A passive checkpoint on <paramref name="c"/>: the frames in the log, or null when another checkpoint was running.</summary>
    private static long? CheckpointOn(Db c)
    {
        try
        {
            // One row: busy (1 when another checkpoint held the lock), frames in the log, frames copied back.
            using var r = c.Prepared("PRAGMA wal_checkpoint(PASSIVE)", []).ExecuteReader();
            return r.Read() && r.GetInt64(0) == 0 ? r.GetInt64(1) : null;
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6)
        {
            // SQLITE_BUSY or SQLITE_LOCKED: another checkpoint (the other thread's, another process's) is running.
            return null;
        }
    }

    /// <summary>
    /// After a batch: the writer's own checkpoint, only once the checkpoint thread has prepared it or the log is twice
    /// <see cref="CatchUpFrames"/> long (see <see cref="CheckpointLoop"/>).
    /// </summary>
    private void CatchUpIfLong(Db c)
    {
        // The log's length by the writer's own count: exact when its commits report it (SqliteFiles.WatchCommits). The
        // checkpoint thread's count, after its last round, is late: a round that syncs on a busy disk reports late while the
        // writer kept appending (a CI run saw the log reach 23 MiB), and a round that copied everything reports a log the
        // writer's next commit has started over (catch-ups of 3-134 frames, at 0.7-15 ms each, under the benchmark).
        // Without the hook the writer counts the frames it appended since its own last catch-up, which a log started over
        // meanwhile makes too high (overdue catch-ups of 1,466-1,867 frames that no round had prepared, 5-22 ms each), and
        // which a catch-up stopped short by a reader makes too low: then the larger of the two counts.
        var frames = _logWatched ? _writerLogFrames : Math.Max(_writerLogFrames, Volatile.Read(ref _logFrames));
        if (frames < CatchUpFrames)
        {
            // Short: it started over, or the writer has just caught up. A catch-up prepared for the log before is moot.
            _longLogTold = false;
            if (Volatile.Read(ref _catchUpDue))
            {
                Volatile.Write(ref _catchUpDue, false);
            }
            return;
        }
        if (!_longLogTold)
        {
            _longLogTold = true;
            _longLog.Set();
        }
        var due = Volatile.Read(ref _catchUpDue);
        var overdue = frames >= 2 * CatchUpFrames;
        if (!overdue && (!due || Stopwatch.GetElapsedTime(_lastCatchUpEnded) < _lastCatchUpTook))
        {
            return;
        }
        // Does not wait for the checkpoint thread's round: that one syncs, and a sync on a busy disk took 150-180 ms now
        // and then (strace on a development machine), which every queued write waited out behind the writer. Turned away,
        // the writer tries again after its next batch; the log grows by that batch meanwhile. Only on a disk so slow that
        // the thread's rounds run back to back would it never get its turn: past twice the mark it waits for it.
        if (overdue)
        {
            _checkpointing.Enter();
        }
        else if (!_checkpointing.TryEnter())
        {
            return;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            if (CheckpointOn(c) is not null)
            {
                // Everything is copied back: the next commit starts the log over, and reports its new length.
                Volatile.Write(ref _logFrames, 0);
                Volatile.Write(ref _catchUpDue, false);
                _writerLogFrames = 0;
                _longLogTold = false;
                Volatile.Write(ref _catchUps, _catchUps + 1);
            }
        }
        finally
        {
            _checkpointing.Exit();
        }
        _lastCatchUpEnded = Stopwatch.GetTimestamp();
        _lastCatchUpTook = Stopwatch.GetElapsedTime(started, _lastCatchUpEnded);
    }

    /// <summary>
    /// The checkpoint thread checkpoints at most this often (a commit waits for none of them). Each round costs the same pair of
    /// syncs and copies each page the log holds once, however many commits rewrote it meanwhile: at every 10 ms the rounds took
    /// a twelfth of the server's CPU at 1,000 mandate flows/s. Every 40 ms: 0.87-0.97x the CPU per flow at that rate, and
    /// 0.87-0.92x at saturation with 1.07-1.15x the flows (side by side, one sitting). At saturation, about 4,500 writes/s of
    /// about 3 frames each, 40 ms of log (about 550 frames) stayed under the catch-up mark (then 1,024 frames); 100 ms of it
    /// (about 1,400) passed it, and at 100 ms the saturated p99 grew by a quarter.
    /// </summary>
    private static readonly TimeSpan CheckpointEvery = TimeSpan.FromMilliseconds(40);

    /// <summary>
    /// The log's length (frames of one page each, 8 MiB of 4 KiB pages) from which the checkpoint thread prepares the
    /// writer's catch-up. Once prepared a catch-up costs about the same whatever the log's length, so a longer mark makes
    /// them rarer for nothing: 2,048 frames against 1,024 gave 0.96-0.97x the server CPU per flow at 1,000 mandate flows/s,
    /// and the same flows at saturation. A mark 32 times longer (before catch-ups were prepared) was not worth a log of
    /// 128-256 MiB that a restart after a crash reads back (docs/storage.md §4).
    /// </summary>
    internal const long CatchUpFrames = 2048;

    /// <summary>At most this many rounds, each with its syncs, prepare one catch-up after the first.</summary>
    internal const int PreparingRounds = 3;

    /// <summary>Frames appended between two preparing rounds below which another round would not shorten the catch-up further.</summary>
    internal const long ShortRemainder = 128;

    /// <summary>Set by the checkpoint thread once it has prepared a catch-up; the writer clears it when it has caught up.</summary>
    private bool _catchUpDue;

    private long _catchUps;

    /// <summary>The writer's catch-ups so far.</summary>
    internal long CatchUps => Volatile.Read(ref _catchUps);

    /// <summary>False once binding <see cref="SqliteFiles"/> failed: catch-ups are then not prepared, and the writer counts the log itself.</summary>
    private static bool _nativeBound = true;

    /// <summary>Whether the writer's connection reports the log's length after each commit (set where it opens).</summary>
    private bool _logWatched;

    /// <summary>Makes the writer's commits report the log's length (<see cref="SqliteFiles.WatchCommits"/>); false when it could not.</summary>
    private static bool TryWatchCommits(Db c) => TryNative(() =>
    {
        SqliteFiles.WatchCommits(c.Connection);
        return true;
    });

    /// <summary>Syncs the database file and the log through <paramref name="c"/>'s own open files; false when it could not.</summary>
    private static bool SyncFiles(Db c) => TryNative(() => SqliteFiles.TrySync(c.Connection));

    /// <summary>A call through <see cref="SqliteFiles"/>; false, and no more such calls, once SQLite's library failed to bind.</summary>
    private static bool TryNative(Func<bool> call)
    {
        if (!_nativeBound)
        {
            return false;
        }
        try
        {
            return call();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // A SQLite library other than the bundled one: the writer's catch-ups sync everything themselves, as SQLite does,
            // and the writer counts the log itself.
            _nativeBound = false;
            return false;
        }
    }

    /// <summary>Set by the writer once the log holds <see cref="CatchUpFrames"/> frames by its count: the checkpoint thread's cue not to wait for its next round.</summary>
    private readonly ManualResetEventSlim _longLog = new(false, spinCount: 0);

    /// <summary>Whether the writer has set <see cref="_longLog"/> since its last catch-up (the writer's thread only).</summary>
    private bool _longLogTold;

    /// <summary>Set after every commit; the checkpoint thread waits on it.</summary>
    private readonly ManualResetEventSlim _committed = new(false, spinCount: 0);

    /// <summary>Held by whichever thread checkpoints: the writer does not wait for the checkpoint thread's round unless the log is very long.</summary>
    private readonly Lock _checkpointing = new();

    /// <summary>The checkpoint thread's own connection.</summary>
    private Db? _checkpointer;

    private Thread? _checkpointThread;

    private volatile bool _stopping;

    /// <summary>The log's length in frames at the checkpoint thread's last round.</summary>
    private long _logFrames;

    /// <summary>
    /// The log's length in frames after the writer's last commit, as SQLite reported it; without that report, the frames the
    /// writer appended since its own last catch-up (the writer's thread only).
    /// </summary>
    private long _writerLogFrames;

    /// <summary>
    /// The frames the writer's commits appended to the log since the last call: SQLite's count of pages its connection wrote,
    /// which in WAL mode are the log's frames (<c>SQLITE_DBSTATUS_CACHE_WRITE</c>, read and reset).
    /// </summary>
    private static long FramesAppended(Db c)
    {
        const int cacheWrite = 9; // SQLITE_DBSTATUS_CACHE_WRITE
        return SQLitePCL.raw.sqlite3_db_status(c.Connection.Handle, cacheWrite, out var current, out _, 1) == 0 ? current : 0;
    }

    private long _lastCatchUpEnded;
    private TimeSpan _lastCatchUpTook;

    private void StartCheckpoints()
    {
        _checkpointThread = new Thread(CheckpointLoop) { IsBackground = true, Name = "assent-sqlite-checkpoint" };
        _checkpointThread.Start();
    }

    /// <summary>After each batch, on the writer's thread: wakes the checkpoint thread, takes the log's length, catches up if due.</summary>
    private void Committed(Db writer)
    {
        if (!_committed.IsSet)
        {
            _committed.Set();
        }
        if (!_logWatched)
        {
            _writerLogFrames += FramesAppended(writer);
        }
        else if (SqliteFiles.TakeLogFrames() is { } frames)
        {
            _writerLogFrames = frames;
        }
        CatchUpIfLong(writer);
    }

    /// <summary>Stops the checkpoint thread (after the writer's) and closes its connection.</summary>
    private async Task StopCheckpointsAsync()
    {
        _stopping = true;
        _committed.Set();
        _longLog.Set();
        if (_checkpointThread is { } checkpoints)
        {
            await Task.Run(() => checkpoints.Join());
        }
        _checkpointer?.Dispose();
        _checkpointer = null;
    }
}
