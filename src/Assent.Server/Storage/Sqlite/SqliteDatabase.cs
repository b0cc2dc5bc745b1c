using System.Collections.Concurrent;
using System.Data.Common;
using Assent.Server.Common;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Storage.Sqlite;

/// <summary>
/// The embedded engine: one SQLite file in WAL mode (docs/storage.md §4). Writes go through one connection owned by
/// one thread (SQLite has one writer anyway; queuing in-process avoids busy-wait sleeps), group-committed in
/// <c>BEGIN IMMEDIATE</c> transactions that also append the audit entries. Reads use a small pool of connections
/// and never block the writer (WAL).
/// </summary>
internal sealed partial class SqliteDatabase : Database
{
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly System.Threading.Channels.Channel<IWriteItem> _queue =
        System.Threading.Channels.Channel.CreateUnbounded<IWriteItem>(new() { SingleReader = true });
    private Thread? _writerThread;

    /// <summary>
    /// Set after every queued write; the writer waits on it without spinning when the queue is empty. Blocking on the
    /// channel's own wait (a task) spins first, and that spin cost a seventh of the server's CPU at saturation.
    /// </summary>
    private readonly ManualResetEventSlim _queued = new(false, spinCount: 0);
    private readonly ConcurrentBag<Db> _readers = new();
    private Db? _writer;

    public SqliteDatabase(string path, TimeProvider time, bool synchronousFull = false)
    {
        _time = time;
        Path = path;
        SynchronousFull = synchronousFull;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
    }

    public string Path { get; }

    /// <summary>
    /// Keeps the database and the -wal, -shm and -journal files beside it the owner's only, 0600 (docs/deployment.md §11):
    /// creates the database file 0600 if absent, before SQLite does so 0644 less the umask. SQLite gives each of the
    /// others, when it creates them (the -wal and -shm at the switch to WAL or the first transaction after an open),
    /// the database's own mode. Returns the files that group or others could read, now tightened.
    /// </summary>
    public static IReadOnlyList<string> KeepPrivate(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return [];
        }
        SecureFile.TryCreateNew(path, []);
        var tightened = new List<string>();
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            if (SecureFile.TryTighten(file))
            {
                tightened.Add(file);
            }
        }
        return tightened;
    }

    private bool SynchronousFull { get; }

    public override string Engine => "sqlite";

    // One writer: nothing to lock against.
    public override string ForUpdate => "";

    public override string ForUpdateSkipLocked => "";

    public override async Task MigrateAsync(CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            SqliteSchema.Migrate(Writer().Connection);
            // The -wal and -shm files exist from here on; they took the database's mode, and this makes sure of it.
            KeepPrivate(Path);
            if (_writerThread is null)
            {
                _writerThread = new Thread(WriterLoop) { IsBackground = true, Name = "assent-sqlite-writer" };
                _writerThread.Start();
                StartCheckpoints();
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public override Task<T> ReadAsync<T>(Func<ISqlSession, ValueTask<T>> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (!_readers.TryTake(out var c))
        {
            c = Open();
        }
        try
        {
            var result = Finish(work(c));
            if (_readers.Count < 16)
            {
                _readers.Add(c);
                c = null;
            }
            return Task.FromResult(result);
        }
        finally
        {
            c?.Dispose();
        }
    }

    public override Task<T> WriteAsync<T>(Func<IWriteSession, ValueTask<T>> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var item = new WriteItem<T>(work);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(SqliteDatabase));
        }
        // Set takes the event's lock while the writer is still counted as a waiter, which lasts until the woken writer gets
        // that lock back: under load many handlers queued in that window and queued behind each other on the lock. A set
        // event needs no second Set. Safe because the writer resets the event before it looks at the queue once more (both
        // sides fenced: the channel's enqueue and Reset are interlocked operations).
        if (!_queued.IsSet)
        {
            _queued.Set();
        }
        // Once queued the write happens even if this caller stops waiting: state stays consistent.
        return item.Completion.WaitAsync(ct);
    }

    public override Task<T> StatementAsync<T>(string sql, object?[] args, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken ct) =>
        WriteAsync(async w =>
        {
            using var r = ((Db)w).Prepared(sql, args).ExecuteReader();
            return await read(r, CancellationToken.None);
        }, ct);

    /// <summary>Every SQLite call is synchronous, so the work has finished when it returns.</summary>
    private static T Finish<T>(ValueTask<T> pending) => pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();

    public override async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        _queued.Set();
        if (_writerThread is { } thread)
        {
            await Task.Run(() => thread.Join());
        }
        // After the writer: its last commits are what remains to copy back, and closing the last connection does that.
        await StopCheckpointsAsync();
        await _writeLock.WaitAsync();
        try
        {
            _writer?.Dispose();
            _writer = null;
            while (_readers.TryTake(out var r))
            {
                r.Dispose();
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    // ---- plumbing ----------------------------------------------------------------------

    private Db Writer() => _writer ??= OpenWriter();

    /// <summary>The writer's connection, set up afresh whenever it is opened (again after an I/O error).</summary>
    private Db OpenWriter()
    {
        var c = Open();
        using (var pragma = c.Connection.CreateCommand())
        {
            // WAL: readers never block the writer (the mode is the file's, kept across opens). NORMAL keeps every commit
            // across a process crash (kill -9); FULL adds an fsync per commit for power loss. wal_autocheckpoint=0: a
            // thread of its own checkpoints instead (see CheckpointLoop). The last two are the connection's own.
            pragma.CommandText = $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(SynchronousFull ? "FULL" : "NORMAL")}; PRAGMA wal_autocheckpoint=0;";
            pragma.ExecuteNonQuery();
        }
        // After wal_autocheckpoint, which sets the same hook: the writer then knows the log's length after each commit.
        _logWatched = TryWatchCommits(c);
        return c;
    }

    private Db Open()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA cache_size=-8192; PRAGMA temp_store=MEMORY;";
        cmd.ExecuteNonQuery();
        return new Db(c, _time);
    }

    /// <summary>
    /// A connection with its prepared statements kept (Microsoft.Data.Sqlite prepares a new command on every
    /// execution, so reusing one command per SQL text saves the parse each time), and the session over it.
    /// </summary>
    private sealed class Db(SqliteConnection connection, TimeProvider time) : IWriteSession, IDisposable
    {
        private static readonly string[] Names = Enumerable.Range(1, 32).Select(i => "$" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

        // The statements that may change whether anyone listens (OutboxSql.DecidesListening).
        private readonly HashSet<SqliteCommand> _decidesListening = new(ReferenceEqualityComparer.Instance);

        public SqliteConnection Connection => connection;

        public SqliteTransaction? Transaction { get; set; }

        /// <summary>The chain head as of this transaction's last append; null outside a write transaction.</summary>
        public AuditHead? AuditHead { get; set; }

        /// <summary>
        /// Whether this write transaction's events may have deliveries (<see cref="ListeningAsync"/>): read once per
        /// transaction, and again after one of its statements wrote a table that decides it; null outside a write transaction.
        /// </summary>
        public bool? Listening { get; set; }

        public SqliteCommand Prepared(string sql, object?[] args)
        {
            if (!_commands.TryGetValue(sql, out var cmd))
            {
                cmd = connection.CreateCommand();
                cmd.CommandText = sql;
                for (var i = 0; i < args.Length; i++)
                {
                    cmd.Parameters.Add(new SqliteParameter(Names[i], DBNull.Value));
                }
                _commands[sql] = cmd;
                if (OutboxSql.DecidesListening(sql))
                {
                    _decidesListening.Add(cmd);
                }
            }
            if (Listening is not null && _decidesListening.Contains(cmd))
            {
                Listening = null;
            }
            cmd.Transaction = Transaction;
            for (var i = 0; i < args.Length; i++)
            {
                cmd.Parameters[i].Value = args[i] ?? DBNull.Value;
            }
            return cmd;
        }

        public ValueTask<int> ExecAsync(string sql, params object?[] args) => new(Prepared(sql, args).ExecuteNonQuery());

        public ValueTask<T?> OneAsync<T>(string sql, Func<DbDataReader, T> read, params object?[] args) where T : class
        {
            using var r = Prepared(sql, args).ExecuteReader();
            return new(r.Read() ? read(r) : null);
        }

        public ValueTask<IReadOnlyList<T>> AllAsync<T>(string sql, Func<DbDataReader, T> read, params object?[] args)
        {
            using var r = Prepared(sql, args).ExecuteReader();
            var list = new List<T>();
            while (r.Read())
            {
                list.Add(read(r));
            }
            return new(list);
        }

        public ValueTask<bool> AnyAsync(string sql, params object?[] args)
        {
            using var r = Prepared(sql, args).ExecuteReader();
            return new(r.Read());
        }

        /// <summary>Seals the event into the chain at once. Runs inside the write transaction, so the head read here is the real head even when another process wrote last.</summary>
        public ValueTask AuditAsync(AuditEvent e)
        {
            // The head is read once per transaction (BEGIN IMMEDIATE holds the write lock, so nobody else appends meanwhile).
            var head = AuditHead ??= Finish(OneAsync(AuditChain.HeadSql, AuditChain.ReadHead)) ?? new AuditHead(0, AuditChain.Genesis);
            var seq = head.Seq + 1;
            var entry = AuditChain.Canonical(seq, time.GetUtcNow().ToUnixTimeMilliseconds(), e);
            var hash = AuditChain.Link(head.Hash, entry);
            Prepared("INSERT INTO audit(seq, entry, hash, user_id) VALUES($1, $2, $3, $4)", [seq, entry, hash, e.UserId]).ExecuteNonQuery();
            AuditHead = new AuditHead(seq, hash);
            return ValueTask.CompletedTask;
        }

        /// <summary>One process owns the file: its hub hears of every transition directly.</summary>
        public ValueTask NotifyAsync(ApprovalNotice notice) => ValueTask.CompletedTask;

        /// <summary>
        /// <c>BEGIN IMMEDIATE</c> holds the file's write lock, so no other connection or process changes the endpoints or
        /// the agents' delivery modes during the transaction; only its own statements do, and those clear the answer.
        /// </summary>
        public ValueTask<bool> ListeningAsync()
        {
            if (Transaction is null)
            {
                return ValueTask.FromResult(true);
            }
            Listening ??= Finish(AnyAsync(OutboxSql.ListeningSql));
            return ValueTask.FromResult(Listening.Value);
        }

        public void Dispose()
        {
            foreach (var cmd in _commands.Values)
            {
                cmd.Dispose();
            }
            _commands.Clear();
            connection.Dispose();
        }
    }

    /// <summary>
    /// Group commit: one thread owns the write connection and commits whatever is queued as one
    /// transaction. Under load many transitions share one commit; when idle a single write commits
    /// at once. If an item throws, the batch is replayed item by item so only that one fails.
    /// </summary>
    private void WriterLoop()
    {
        var batch = new List<IWriteItem>(MaxBatch);
        var reader = _queue.Reader;
        while (true)
        {
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }
            if (batch.Count == 0)
            {
                if (reader.Completion.IsCompleted)
                {
                    return;
                }
                _queued.Reset();
                // A write queued since the last TryRead set the event before Reset cleared it: look again before sleeping.
                if (!reader.TryPeek(out _) && !reader.Completion.IsCompleted)
                {
                    _queued.Wait();
                }
                continue;
            }
            try
            {
                var c = Writer();
                if (!TryCommitTogether(c, batch))
                {
                    // An item threw (a constraint, a bug): nothing of the batch committed. Replay each
                    // item in a transaction of its own, so only the failing one fails.
                    foreach (var item in batch)
                    {
                        if (!TryCommitTogether(c, [item], out var error))
                        {
                            item.Failed(error!);
                        }
                    }
                }
                foreach (var item in batch)
                {
                    item.Publish();
                }
                Committed(c);
            }
            catch (Exception e)
            {
                // I/O error, full disk, corrupt file: nothing of the batch committed. Reopen next time.
                _writer?.Dispose();
                _writer = null;
                foreach (var item in batch)
                {
                    item.Abort(e);
                }
            }
        }
    }

    private static bool TryCommitTogether(Db c, List<IWriteItem> items) => TryCommitTogether(c, items, out _);

    /// <summary>Runs the items in one <c>BEGIN IMMEDIATE</c> transaction; false (rolled back) when one throws. I/O and corruption errors propagate.</summary>
    private static bool TryCommitTogether(Db c, List<IWriteItem> items, out Exception? error)
    {
        using var tx = c.Connection.BeginTransaction(deferred: false);
        c.Transaction = tx;
        c.AuditHead = null;
        c.Listening = null;
        try
        {
            foreach (var item in items)
            {
                item.Run(c);
            }
            tx.Commit();
            error = null;
            return true;
        }
        catch (Exception e) when (e is not SqliteException { SqliteErrorCode: 10 or 11 or 13 or 14 })
        {
            tx.Rollback();
            error = e;
            return false;
        }
        finally
        {
            c.Transaction = null;
            c.AuditHead = null;
            c.Listening = null;
        }
    }

    private const int MaxBatch = 128;

    private interface IWriteItem : IQueuedWrite
    {
        void Run(Db db);
    }

    private sealed class WriteItem<T>(Func<IWriteSession, ValueTask<T>> work) : QueuedWrite<T>, IWriteItem
    {
        public void Run(Db db) => Ran(Finish(work(db)));
    }

}
