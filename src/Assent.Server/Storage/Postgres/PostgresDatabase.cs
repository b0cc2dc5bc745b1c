using System.Data.Common;
using System.Text.Json;
using Npgsql;

namespace Assent.Server.Storage.Postgres;

/// <summary>
/// The scale-out engine: any number of stateless nodes over one PostgreSQL database (docs/storage.md §5).
/// Transitions are guarded by their WHERE clauses under READ COMMITTED (a racing update waits and re-checks).
/// A transition's audit event is stored in its own transaction, unsealed (<c>audit_pending</c>); a sealer then
/// chains pending entries in batches under the chain-head row lock, so the chain has one order across all nodes
/// without every write queueing for that lock. Transitions other nodes must hear of are NOTIFYed at commit.
/// </summary>
internal sealed class PostgresDatabase(NpgsqlDataSource source, TimeProvider time) : Database
{
    public const string Channel = "assent_approvals";

    public NpgsqlDataSource Source => source;

    /// <summary>Identifies this process in notifications, so it ignores its own (it told its hub directly).</summary>
    public string NodeId { get; } = Guid.NewGuid().ToString("N")[..12];

    public override string Engine => "postgres";

    public override string ForUpdate => " FOR UPDATE";

    public override string ForUpdateSkipLocked => " FOR UPDATE SKIP LOCKED";

    public override async Task MigrateAsync(CancellationToken ct)
    {
        await PostgresSchema.MigrateAsync(source, ct);
        EnsureSealer();
    }

    public override IApprovalStore CreateApprovalStore() => new PostgresApprovalStore(this);

    public override IMandateStore CreateMandateStore() => new PostgresMandateStore(this);

    public override Task SettleAuditAsync(CancellationToken ct) => SealPendingAsync(ct);

    public override async Task<T> ReadAsync<T>(Func<ISqlSession, ValueTask<T>> work, CancellationToken ct)
    {
        await using var c = await source.OpenConnectionAsync(ct);
        return await work(new Session(this, c, null, ct));
    }

    public override Task<T> StatementAsync<T>(string sql, object?[] args, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken ct) =>
        PipelineAsync(Batched(sql, args), read, ct);

    /// <summary>Accepts <c>postgres://user:pass@host:port/db?…</c> or an Npgsql connection string.</summary>
    public static string ToConnectionString(string database)
    {
        if (!database.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) && !database.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            // The plain builder lists only the keywords written; Npgsql's answers true for every keyword it knows.
            var written = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = database };
            return WithDefaults(new NpgsqlConnectionStringBuilder(database), written.Keys.Cast<string>());
        }
        var uri = new Uri(database);
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                b.Password = Uri.UnescapeDataString(parts[1]);
            }
        }
        var keys = new List<string>();
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            b[key] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "true";
            keys.Add(key);
        }
        return WithDefaults(b, keys);
    }

    /// <summary>
    /// Assent runs a small fixed set of statements: let Npgsql prepare them server-side unless told
    /// otherwise. And Assent sets no session state on pooled connections (the one LISTEN connection
    /// undoes its LISTEN before it goes back), so the reset on every return to the pool (seven
    /// statements once anything is prepared) is skipped unless the connection string asks for it.
    /// Prepared statements use the generic plan (<c>plan_cache_mode=force_generic_plan</c>): every
    /// statement Assent runs looks rows up by key, so one plan fits all values, and under the
    /// default <c>auto</c> PostgreSQL kept replanning the redeem statement (an UPDATE … RETURNING in
    /// a CTE joined to the decisions) on every call, about a quarter of a millisecond each time
    /// (docs/deployment.md §4).
    /// </summary>
    private const string PlanCacheMode = "-c plan_cache_mode=force_generic_plan";

    private static string WithDefaults(NpgsqlConnectionStringBuilder b, IEnumerable<string> written)
    {
        // Keywords compare without case or spaces: "No Reset On Close" and "NoResetOnClose" are one.
        var given = written.Select(k => k.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant()).ToHashSet(StringComparer.Ordinal);
        if (!given.Contains("MAXAUTOPREPARE"))
        {
            b.MaxAutoPrepare = 128;
            if (!given.Contains("AUTOPREPAREMINUSAGES"))
            {
                b.AutoPrepareMinUsages = 2;
            }
        }
        if (!given.Contains("NORESETONCLOSE"))
        {
            b.NoResetOnClose = true;
        }
        if (!(b.Options ?? "").Contains("plan_cache_mode", StringComparison.OrdinalIgnoreCase))
        {
            b.Options = string.IsNullOrWhiteSpace(b.Options) ? PlanCacheMode : $"{b.Options} {PlanCacheMode}";
        }
        return b.ConnectionString;
    }

    /// <summary>Statements on one connection, inside the write transaction when there is one.</summary>
    private sealed class Session(PostgresDatabase db, NpgsqlConnection c, NpgsqlTransaction? tx, CancellationToken ct) : IWriteSession
    {
        public async ValueTask<int> ExecAsync(string sql, params object?[] args)
        {
            await using var cmd = Cmd(c, tx, sql, args);
            return await cmd.ExecuteNonQueryAsync(ct);
        }

        public async ValueTask<T?> OneAsync<T>(string sql, Func<DbDataReader, T> read, params object?[] args) where T : class
        {
            await using var cmd = Cmd(c, tx, sql, args);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            return await r.ReadAsync(ct) ? read(r) : null;
        }

        public async ValueTask<IReadOnlyList<T>> AllAsync<T>(string sql, Func<DbDataReader, T> read, params object?[] args)
        {
            await using var cmd = Cmd(c, tx, sql, args);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var list = new List<T>();
            while (await r.ReadAsync(ct))
            {
                list.Add(read(r));
            }
            return list;
        }

        public async ValueTask<bool> AnyAsync(string sql, params object?[] args)
        {
            await using var cmd = Cmd(c, tx, sql, args);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            return await r.ReadAsync(ct);
        }

        /// <summary>Stored unsealed in this transaction; the sealer gives it its place in the chain.</summary>
        public async ValueTask AuditAsync(AuditEvent e) =>
            await ExecAsync("INSERT INTO audit_pending(body, user_id) VALUES($1, $2)", db.Unsealed(e), e.UserId);

        public async ValueTask NotifyAsync(ApprovalNotice notice) =>
            await ExecAsync("SELECT pg_notify($1, $2)", Channel, db.Payload(notice));

        /// <summary>
        /// Always: another node may add a webhook endpoint between a read of them and this transaction's fan-out, which
        /// reads them itself (and the pipelined transitions carry the fan-out in their one statement anyway).
        /// </summary>
        public ValueTask<bool> ListeningAsync() => ValueTask.FromResult(true);
    }

    /// <summary>
    /// NOTIFY is transactional: the other nodes hear of a transition only once it has committed.
    /// Payload: <c>node|kind|approval|user|state</c> (ids never contain '|'). A new request's notice also carries
    /// the request itself (without its handle hash) when it fits PostgreSQL's 8000-byte payload limit, so the
    /// other nodes' device streams need no read.
    /// </summary>
    internal string Payload(ApprovalNotice notice)
    {
        var head = string.Join('|', NodeId, notice.Kind, notice.ApprovalId, notice.UserId, notice.State);
        if (notice.AlsoTo is { } others)
        {
            // node|settled|approval|user|state|other,other…: a user id never holds ',' or '|' (Ids). Too many to fit, and the
            // others hear of it when their streams reconnect, as before.
            var tail = "|" + string.Join(',', others);
            return head.Length + tail.Length < MaxNotifyPayload ? head + tail : head;
        }
        if (notice.Approval is not { } a)
        {
            return head;
        }
        var json = JsonSerializer.Serialize(a with { HandleHash = [] }, StoreJson.Default.ApprovalRecord);
        return head.Length + 1 + System.Text.Encoding.UTF8.GetByteCount(json) < MaxNotifyPayload ? head + "|" + json : head;
    }

    private const int MaxNotifyPayload = 7900;

    internal byte[] Unsealed(AuditEvent e) => AuditChain.Unsealed(time.GetUtcNow().ToUnixTimeMilliseconds(), e);

    public override async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_writer is { } writer)
        {
            await writer;
        }
        if (_sealer is { } sealer)
        {
            try
            {
                // Seal what this node wrote last; if the database is gone, any other node (or the next start) seals it.
                await SealPendingAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or OperationCanceledException)
            {
            }
            await _closing.CancelAsync();
            await sealer;
        }
        await _closing.CancelAsync();
        await source.DisposeAsync();
    }

    // ---- audit sealing -----------------------------------------------------------------

    private const int SealBatch = 2000;
    private static readonly TimeSpan SealPoll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan SealGather = TimeSpan.FromMilliseconds(200);
    private readonly SemaphoreSlim _sealNeeded = new(0, 1);
    private Task? _sealer;

    /// <summary>Asks the sealer to run soon (after a commit that stored audit events).</summary>
    private void RequestSeal()
    {
        if (_sealNeeded.CurrentCount == 0)
        {
            try
            {
                _sealNeeded.Release();
            }
            catch (SemaphoreFullException)
            {
            }
        }
    }

    private void EnsureSealer()
    {
        if (_sealer is null)
        {
            lock (_queue)
            {
                _sealer ??= Task.Run(SealerLoopAsync);
            }
        }
    }

    /// <summary>
    /// Runs on every node: wakes after local commits and polls for other nodes' (or a crashed node's)
    /// pending entries. Sealers on several nodes take turns on the head row; each seals what it sees.
    /// </summary>
    private async Task SealerLoopAsync()
    {
        var ct = _closing.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (await _sealNeeded.WaitAsync(SealPoll, ct))
                {
                    // Let the commits of the next few milliseconds join this pass: one pass seals them all.
                    await Task.Delay(SealGather, ct);
                }
                int sealedNow, sealedInPass = 0;
                do
                {
                    sealedNow = await SealPendingAsync(ct);
                    sealedInPass += sealedNow;
                }
                while (sealedNow == SealBatch);
                _sealedSinceVacuum += sealedInPass;
                if (_sealedSinceVacuum >= VacuumEveryRows)
                {
                    await VacuumPendingAsync(ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
            {
                // The database is unreachable: the entries wait in audit_pending; try again at the next poll.
                await Task.Delay(SealPoll, CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// Chains up to <see cref="SealBatch"/> committed pending entries after the head, in one transaction
    /// holding the head row: entry n = <c>{"seq":n,</c> + its unsealed body, hash_n = SHA-256(hash_{n-1} ‖ entry_n).
    /// Returns how many were sealed.
    /// </summary>
    internal async Task<int> SealPendingAsync(CancellationToken ct)
    {
        await using var c = await source.OpenConnectionAsync(ct);
        // Through the index: a scan of the heap would walk every deleted row that vacuum has not yet removed.
        await using (var probe = Cmd(c, null, "SELECT id FROM audit_pending ORDER BY id LIMIT 1"))
        {
            if (await probe.ExecuteScalarAsync(ct) is null)
            {
                return 0;
            }
        }
        await using var tx = await c.BeginTransactionAsync(ct);
        var session = new Session(this, c, tx, ct);
        var head = (await session.OneAsync("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", AuditChain.ReadHead))!;
        // Read after the lock: a sealer that held it before us has already moved (and deleted) what it sealed.
        var pending = await session.AllAsync("SELECT id, body, user_id FROM audit_pending ORDER BY id LIMIT $1",
            r => (Id: r.GetInt64(0), Body: (byte[])r[1], UserId: Rows.NullableString(r, 2)), SealBatch);
        if (pending.Count == 0)
        {
            await tx.RollbackAsync(ct);
            return 0;
        }
        var seqs = new long[pending.Count];
        var entries = new byte[pending.Count][];
        var hashes = new byte[pending.Count][];
        var users = new string?[pending.Count];
        var ids = new long[pending.Count];
        var (seq, hash) = (head.Seq, head.Hash);
        for (var i = 0; i < pending.Count; i++)
        {
            seq++;
            entries[i] = AuditChain.Seal(seq, pending[i].Body);
            hash = AuditChain.Link(hash, entries[i]);
            (seqs[i], hashes[i], users[i], ids[i]) = (seq, hash, pending[i].UserId, pending[i].Id);
        }
        await session.ExecAsync("INSERT INTO audit(seq, entry, hash, user_id) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[])",
            seqs, entries, hashes, users);
        await session.ExecAsync("DELETE FROM audit_pending WHERE id = ANY($1)", ids);
        await session.ExecAsync("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", seq, hash);
        await tx.CommitAsync(ct);
        return pending.Count;
    }

    /// <summary>
    /// audit_pending is a queue: every row is deleted within moments of its insert. Autovacuum looks
    /// at a table about once a minute, by which time the table holds a minute of deleted rows that
    /// seal passes walk and inserts grow the file past. So the sealer vacuums it itself, after every
    /// <see cref="VacuumEveryRows"/> rows it deleted. Not more often: each VACUUM also writes the table's
    /// statistics to pg_class, and that invalidates every cached plan naming the table in every session,
    /// so each connection of every node then analyzes and plans again the statements that write
    /// audit_pending (every transition's) at their next use. Once a second on two nodes, that replanning
    /// took 12% of PostgreSQL's CPU samples (docs/storage.md §5).
    /// SKIP_LOCKED: a vacuum already running (another node's, or autovacuum) is enough. TRUNCATE
    /// false: giving the file's empty end back takes a lock that stops inserts (with it, these
    /// vacuums took 81 ms each under load; without, 1.2 ms). A role that does not own the table
    /// gets a warning, not an error, and autovacuum does the work as before.
    /// </summary>
    private async Task VacuumPendingAsync(CancellationToken ct)
    {
        _sealedSinceVacuum = 0;
        await using var c = await source.OpenConnectionAsync(ct);
        await using var vacuum = Cmd(c, null, "VACUUM (SKIP_LOCKED, TRUNCATE false) audit_pending");
        await vacuum.ExecuteNonQueryAsync(ct);
    }

    /// <summary>How many entries this node's sealer deletes from audit_pending between two vacuums of it (a test sets fewer).</summary>
    internal int VacuumEveryRows { get; init; } = 10_000;

    // Only the sealer's loop reads and writes it.
    private long _sealedSinceVacuum;

    // ---- group commit ------------------------------------------------------------------

    public override Task<T> WriteAsync<T>(Func<IWriteSession, ValueTask<T>> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var item = new WriteItem<T>(this, work);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(PostgresDatabase));
        }
        // Once queued the write happens even if this caller stops waiting: state stays consistent.
        EnsureWriter();
        return item.Completion.WaitAsync(ct);
    }

    /// <summary>
    /// Queues a write that is one statement: it joins the other one-statement writes of its batch in a
    /// single round trip (see <see cref="TryCommitTogetherAsync"/>). <paramref name="read"/> reads its one result set.
    /// </summary>
    public Task<T> PipelineAsync<T>(Func<NpgsqlBatchCommand> command, Func<NpgsqlDataReader, CancellationToken, Task<T>> read, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var item = new PipelinedItem<T>(command, read);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(PostgresDatabase));
        }
        EnsureWriter();
        return item.Completion.WaitAsync(ct);
    }

    /// <summary>A statement for a batch; a factory, because a replayed item needs a fresh command.</summary>
    public static Func<NpgsqlBatchCommand> Batched(string sql, params object?[] args) => () =>
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var arg in args)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = arg ?? DBNull.Value });
        }
        return command;
    };

    /// <summary>
    /// Group commit, as on SQLite: this node's writes are queued and committed together, one commit
    /// per batch. No global lock is taken (audit entries are sealed later), so several writers per
    /// node and the writers of every node commit side by side; rows guard themselves.
    /// </summary>
    private async Task WriterLoopAsync()
    {
        var batch = new List<IWriteItem>(MaxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }
            try
            {
                await using var c = await source.OpenConnectionAsync(_closing.Token);
                if ((await TryCommitTogetherAsync(c, batch)).Error is not null)
                {
                    // An item threw (a constraint, a deadlock victim): nothing committed. Replay each alone.
                    foreach (var item in batch)
                    {
                        if ((await TryCommitTogetherAsync(c, [item])).Error is { } error)
                        {
                            item.Failed(error);
                        }
                    }
                }
                foreach (var item in batch)
                {
                    item.Publish();
                }
                RequestSeal();
            }
            catch (Exception e)
            {
                // The connection broke or the server went away: nothing of this batch committed.
                foreach (var item in batch)
                {
                    item.Abort(e);
                }
            }
        }
    }

    private sealed record CommitResult(Exception? Error);

    private async Task<CommitResult> TryCommitTogetherAsync(NpgsqlConnection c, List<IWriteItem> items)
    {
        var ct = _closing.Token;
        if (items.TrueForAll(i => i is IPipelinedItem))
        {
            // Every item is one statement: send them all at once. The statements of one batch message run
            // in one implicit transaction (PostgreSQL protocol, "Multiple Statements in an Extended Query"):
            // all commit at its Sync, or none does.
            try
            {
                await RunPipelinedAsync(c, null, items, ct);
                return new CommitResult(null);
            }
            catch (PostgresException e) when (!e.IsTransient || e.SqlState == PostgresErrorCodes.DeadlockDetected)
            {
                return new CommitResult(e);
            }
        }
        await using var tx = await c.BeginTransactionAsync(ct);
        try
        {
            if (items.Exists(i => i is IPipelinedItem))
            {
                await RunPipelinedAsync(c, tx, items, ct);
            }
            foreach (var item in items)
            {
                if (item is IScriptedItem scripted)
                {
                    await scripted.RunAsync(c, tx, ct);
                }
            }
            await tx.CommitAsync(ct);
            return new CommitResult(null);
        }
        catch (PostgresException e) when (!e.IsTransient || e.SqlState == PostgresErrorCodes.DeadlockDetected)
        {
            await tx.RollbackAsync(CancellationToken.None);
            return new CommitResult(e);
        }
        catch (Exception e) when (e is not (NpgsqlException or IOException or OperationCanceledException))
        {
            await tx.RollbackAsync(CancellationToken.None);
            return new CommitResult(e);
        }
    }

    private void EnsureWriter()
    {
        if (_writer is null)
        {
            lock (_queue)
            {
                _writer ??= Task.WhenAll(Enumerable.Range(0, Writers).Select(_ => Task.Run(WriterLoopAsync)));
            }
        }
    }

    private const int MaxBatch = 64;

    /// <summary>Batches in flight per node: while one waits for its commit, the next is built.</summary>
    private const int Writers = 2;

    private readonly System.Threading.Channels.Channel<IWriteItem> _queue =
        System.Threading.Channels.Channel.CreateUnbounded<IWriteItem>(new() { SingleReader = false });

    private readonly CancellationTokenSource _closing = new();
    private Task? _writer;

    /// <summary>Sends the one-statement items of <paramref name="items"/> as one batch and hands each its result set.</summary>
    private static async Task RunPipelinedAsync(NpgsqlConnection c, NpgsqlTransaction? tx, List<IWriteItem> items, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(c, tx);
        var pipelined = new List<IPipelinedItem>(items.Count);
        foreach (var item in items)
        {
            if (item is IPipelinedItem p)
            {
                batch.BatchCommands.Add(p.Command());
                pipelined.Add(p);
            }
        }
        await using var reader = await batch.ExecuteReaderAsync(ct);
        for (var i = 0; i < pipelined.Count; i++)
        {
            if (i > 0 && !await reader.NextResultAsync(ct))
            {
                throw new InvalidOperationException("a batched statement returned no result");
            }
            await pipelined[i].ReadAsync(reader, ct);
        }
    }

    private interface IWriteItem : IQueuedWrite;

    private interface IScriptedItem : IWriteItem
    {
        Task RunAsync(NpgsqlConnection c, NpgsqlTransaction tx, CancellationToken ct);
    }

    private interface IPipelinedItem : IWriteItem
    {
        NpgsqlBatchCommand Command();

        Task ReadAsync(NpgsqlDataReader reader, CancellationToken ct);
    }

    private sealed class WriteItem<T>(PostgresDatabase db, Func<IWriteSession, ValueTask<T>> work) : QueuedWrite<T>, IScriptedItem
    {
        public async Task RunAsync(NpgsqlConnection c, NpgsqlTransaction tx, CancellationToken ct) => Ran(await work(new Session(db, c, tx, ct)));
    }

    private sealed class PipelinedItem<T>(Func<NpgsqlBatchCommand> command, Func<NpgsqlDataReader, CancellationToken, Task<T>> read) : QueuedWrite<T>, IPipelinedItem
    {
        public NpgsqlBatchCommand Command() => command();

        public async Task ReadAsync(NpgsqlDataReader reader, CancellationToken ct) => Ran(await read(reader, ct));
    }

    private static NpgsqlCommand Cmd(NpgsqlConnection c, NpgsqlTransaction? tx, string sql, params object?[] args)
    {
        var cmd = new NpgsqlCommand(sql, c, tx);
        foreach (var arg in args)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = arg ?? DBNull.Value });
        }
        return cmd;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(ApprovalRecord))]
internal sealed partial class StoreJson : System.Text.Json.Serialization.JsonSerializerContext;
