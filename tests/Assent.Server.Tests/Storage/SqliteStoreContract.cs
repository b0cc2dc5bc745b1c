using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace Assent.Server.Tests.Storage;

/// <summary>The storage contract on SQLite, and what only the embedded engine has: its write-ahead log's checkpoints (docs/storage.md §4), its writer, its query plans.</summary>
public sealed class SqliteStoreContract : StoreContract
{
    private readonly string _dir = Directory.CreateTempSubdirectory("assent-store-").FullName;

    private string DatabasePath => Path.Combine(_dir, "t.db");

    private SqliteDatabase? _database;

    internal override Task<AssentStore> OpenAsync() => Task.FromResult(new AssentStore(_database = new SqliteDatabase(DatabasePath, Clock)));

    [Fact]
    public async Task Under_sustained_writes_the_write_ahead_log_starts_over_once_it_is_a_few_MiB_long()
    {
        // Checkpointed by another connection alone, this WAL grew to 50 MiB here (3.8 GB in 25 s under the benchmark):
        // steady writes never let such a checkpoint finish with nothing appended, so the log never started over. The
        // writer catches up itself once the checkpoint thread has prepared it, from 2,048 frames (8 MiB of 4 KiB pages).
        var user = await UserAsync("wal");
        for (var wave = 0; wave < 600; wave++)
        {
            await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => PendingAsync(user)));
        }
        // The file is never shortened: its size is the longest the log has been. Here, where nothing but this test writes,
        // the log grows by about 25 frames a millisecond, and the writer caught up at 2,700-4,100 frames (one to four of a
        // run's 9-11 catch-ups before the checkpoint thread had prepared them, at twice the mark by the writer's own count:
        // the file then shows 16.6 MiB). On a slower disk the thread's syncs prepare none of them in time (all ten of a CI
        // run's), so whether they came prepared is not asserted here: the thread's decisions are SqliteCheckpointsTests',
        // its syncs SqliteFilesTests'. The bound leaves room for a machine busy with other tests.
        var wal = new FileInfo(DatabasePath + "-wal");
        Assert.True(wal.Exists);
        Assert.True(wal.Length < 32 * 1024 * 1024, $"the WAL reached {wal.Length / 1024} KiB");
        Assert.Equal(12000, (await Store.Approvals.ListPendingAsync(user.Id, Clock.GetUtcNow().ToUnixTimeMilliseconds(), default)).Count);
        var catchUps = _database!.CatchUps;
        Assert.True(catchUps >= 2, $"the writer caught up {catchUps} times");
    }

    [Fact]
    public async Task After_a_write_fails_for_want_of_room_the_writer_reopens_with_its_own_settings()
    {
        var database = _database!;
        Task<long> Pragma(string pragma) => database.StatementAsync($"PRAGMA {pragma}", [], (r, _) => Task.FromResult(r.Read() ? r.GetInt64(0) : -1), default);
        var user = await UserAsync("room");
        Assert.Equal(1, await Pragma("synchronous")); // NORMAL (docs/storage.md §4)
        Assert.Equal(0, await Pragma("wal_autocheckpoint"));

        // The writer's connection may grow the file no further: the next write that needs a page fails with SQLITE_FULL, as
        // on a full disk, and the writer drops its connection.
        var pages = await Pragma("page_count");
        Assert.Equal(pages, await Pragma($"max_page_count = {pages}"));
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            for (var i = 0; i < 1000; i++)
            {
                await PendingAsync(user);
            }
        });

        // Reopened (no page limit any more), with the settings the writer's first connection had, not SQLite's defaults
        // (synchronous=FULL, a checkpoint in the writer's own commits every 1,000 frames).
        Assert.True(await Pragma("max_page_count") > pages);
        Assert.Equal(1, await Pragma("synchronous"));
        Assert.Equal(0, await Pragma("wal_autocheckpoint"));
        await PendingAsync(user);
    }

    [Fact]
    public async Task Once_the_writer_is_idle_everything_it_committed_is_copied_back_from_the_log()
    {
        // Writes leave their frames in the log (no checkpoint in their path); the checkpoint thread copies them back
        // after the last commit, so a quiet server's log holds nothing the database file lacks.
        var user = await UserAsync("idle");
        for (var i = 0; i < 5; i++)
        {
            await PendingAsync(user);
        }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var (frames, backfilled) = WalIndex();
        while ((frames == 0 || backfilled < frames) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
            (frames, backfilled) = WalIndex();
        }
        Assert.True(frames > 0, "nothing was written to the log");
        Assert.Equal(frames, backfilled);
    }

    /// <summary>
    /// The log's frame count and how many of them a checkpoint has copied back, from the shared WAL index (SQLite's
    /// documented "-shm" layout: the header's mxFrame at byte 16, the checkpoint information's nBackfill at byte 96).
    /// </summary>
    private (uint Frames, uint Backfilled) WalIndex()
    {
        using var shm = new FileStream(DatabasePath + "-shm", FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var header = new byte[100];
        shm.ReadExactly(header);
        return (BitConverter.ToUInt32(header, 16), BitConverter.ToUInt32(header, 96));
    }

    [Fact]
    public async Task Migrating_keeps_the_oldest_of_an_owners_same_named_agents_and_renames_the_others_with_their_client_id()
    {
        var path = Path.Combine(_dir, "old.db");
        using (var c = new SqliteConnection("Data Source=" + path))
        {
            c.Open();
            SqliteSchema.Migrate(c, upTo: SqliteSchema.UniqueAgentNamesVersion - 1);
            using var insert = c.CreateCommand();
            insert.CommandText = """
                INSERT INTO users(id, handle, is_admin, created_at) VALUES ('usr_a', 'ann', 0, 1), ('usr_b', 'ben', 0, 1);
                INSERT INTO clients(id, secret_hash, name, owner_user_id, scopes, created_at, revoked_at) VALUES
                    ('agt_1', x'01', 'bot', 'usr_a', 'openid', 10, NULL),
                    ('agt_2', x'01', 'Bot', 'usr_a', 'openid', 20, NULL),
                    ('agt_3', x'01', 'BOT', 'usr_a', 'openid', 20, NULL),
                    ('agt_4', x'01', 'bot', 'usr_a', 'openid', 5, 6),
                    ('agt_5', x'01', 'bot', 'usr_b', 'openid', 30, NULL),
                    ('agt_6', x'01', 'an agent name of sixty-four characters: it stays within 64 chars', 'usr_b', 'openid', 1, NULL),
                    ('agt_7', x'01', 'an agent name of sixty-four characters: it stays within 64 chars', 'usr_b', 'openid', 2, NULL);
                """;
            insert.ExecuteNonQuery();
        }
        await using var store = new AssentStore(new SqliteDatabase(path, Clock));

        await store.MigrateAsync(default);

        var names = new Dictionary<string, string>();
        foreach (var id in new[] { "agt_1", "agt_2", "agt_3", "agt_4", "agt_5", "agt_6", "agt_7" })
        {
            names[id] = (await store.Clients.FindAsync(id, default))!.Name;
        }
        Assert.Equal("bot", names["agt_1"]);
        Assert.Equal("Bot (agt_2)", names["agt_2"]);
        Assert.Equal("BOT (agt_3)", names["agt_3"]);
        Assert.Equal("bot", names["agt_4"]);
        Assert.Equal("bot", names["agt_5"]);
        Assert.Equal("an agent name of sixty-four characters: it stays within 64 chars", names["agt_6"]);
        Assert.Equal("an agent name of sixty-four characters: it stays within  (agt_7)", names["agt_7"]);
        Assert.True(names["agt_7"].Length <= 64);
        Assert.Null(await store.Clients.FindActiveByNameAsync("usr_a", "bot (agt_1)", default));
        Assert.False(await store.Clients.TryCreateAsync(new ClientRecord("agt_8", [1], "BoT", "usr_a", "openid", 40, null),
            new AuditEvent(AuditTypes.AgentCreated, "usr_a", "op", "agt_8"), default));
    }

    [Fact]
    public async Task An_endpoint_that_another_process_added_between_two_transactions_receives_the_later_events()
    {
        // Whether anyone listens is asked again in each transaction (docs/storage.md §9): an offline command may add an
        // endpoint to the file while the server runs.
        var user = await UserAsync("nils");
        Task<int> EmitAsync(string subject) => Store.Database.WriteAsync(w =>
            w.EmitAsync(Store.Database.Outbox, new OutboxEvent(Ids.Ordered("msg", Clock.GetUtcNow()), "approval.approved", subject, user.Id, null, Now, false)), default);
        Assert.Equal(0, await EmitAsync("apr_nils1"));

        using (var other = new SqliteConnection("Data Source=" + DatabasePath))
        {
            other.Open();
            using var insert = other.CreateCommand();
            insert.CommandText = "INSERT INTO webhook_endpoints(id, owner_user_id, url, events, sealed_secret, created_at) VALUES('whk_nils', $user, 'https://hooks.example/nils', '*', x'00', 1); " +
                                 "INSERT INTO webhook_events(endpoint_id, event) VALUES('whk_nils', '*');";
            insert.Parameters.AddWithValue("$user", user.Id);
            insert.ExecuteNonQuery();
        }

        Assert.Equal(1, await EmitAsync("apr_nils2"));
        Assert.Equal("apr_nils2", Assert.Single(await Store.Webhooks.ListDeliveriesAsync("whk_nils", long.MaxValue, 100, default)).Subject);
    }

    [Fact]
    public void Whether_anyone_listens_is_read_from_indexes_without_reading_every_agent()
    {
        // Asked at the start of every write transaction that emits an event (docs/storage.md §9), so its cost must not grow with the agents.
        var steps = QueryPlan(OutboxSql.ListeningSql);
        Assert.Contains(steps, s => s.Contains(" INDEX clients_notified", StringComparison.Ordinal));
        Assert.DoesNotContain(steps, s => s.StartsWith("SCAN clients", StringComparison.Ordinal) && !s.Contains("INDEX", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("SELECT id FROM approvals WHERE user_id = 'u' AND state = 0 AND expires_at > 0 ORDER BY created_at, id", "approvals_user_pending")]
    [InlineData("SELECT id FROM approvals WHERE user_id = 'u' AND state <> 0 ORDER BY created_at DESC, id LIMIT 20", "approvals_user_created")]
    [InlineData("SELECT 1 FROM approvals WHERE client_id = 'c' AND user_id = 'u' AND state = 0 AND expires_at > 0 LIMIT 20", "approvals_client_pending")]
    public void A_users_lists_are_read_through_their_indexes(string query, string index)
    {
        var steps = QueryPlan(query);
        Assert.Contains(steps, s => s.Contains(" INDEX " + index, StringComparison.Ordinal));
        Assert.DoesNotContain(steps, s => s.StartsWith("SCAN approvals", StringComparison.Ordinal) && !s.Contains("INDEX", StringComparison.Ordinal));
    }

    /// <summary>The steps of SQLite's plan for <paramref name="query"/> on this database (sqlite.org/eqp.html).</summary>
    private List<string> QueryPlan(string query)
    {
        using var c = new SqliteConnection("Data Source=" + DatabasePath);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "EXPLAIN QUERY PLAN " + query;
        using var plan = cmd.ExecuteReader();
        var steps = new List<string>();
        while (plan.Read())
        {
            steps.Add(plan.GetString(3));
        }
        return steps;
    }
}
