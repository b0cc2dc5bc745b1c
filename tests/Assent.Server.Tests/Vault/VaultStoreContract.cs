using Assent.Server.Common;
using Assent.Server.Storage;
using Assent.Server.Storage.Postgres;
using Assent.Server.Storage.Sqlite;
using Assent.Server.Tests.Storage;
using Npgsql;

namespace Assent.Server.Tests.Vault;

/// <summary>The vault store's contract (docs/vault.md §3–§5), run unchanged against SQLite and PostgreSQL.</summary>
public abstract class VaultStoreContract : IAsyncLifetime
{
    private AssentStore _store = null!;

    internal AssentStore Store => _store;

    private IVaultStore Vault => _store.Vault;

    protected ManualClock Clock { get; } = new(DateTimeOffset.UtcNow);

    private long Now => Clock.GetUtcNow().ToUnixTimeMilliseconds();

    internal abstract Task<AssentStore> OpenAsync();

    public async Task InitializeAsync()
    {
        _store = await OpenAsync();
        await _store.MigrateAsync(default);
    }

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private static AuditEvent Audit(string type = "vault.test") => new(type, null, "test", null);

    private async Task<string> UserAsync()
    {
        var user = await Store.Users.CreateInviteAsync(new UserRecord(Ids.New("usr"), "u" + Guid.NewGuid().ToString("N")[..10], false, Now),
            new InviteRecord(Ids.Hash(Guid.NewGuid().ToString()), "", Now + 60_000, null), Audit(AuditTypes.UserInvited), default);
        return user.Id;
    }

    private async Task<string> DeviceAsync(string userId)
    {
        var id = Ids.New("dev");
        await Store.Devices.AddAsync(new DeviceRecord(id, userId, DeviceKinds.Ed25519, "d", "{}", null, 0, Now, null), Audit(AuditTypes.DeviceEnrolled), default);
        return id;
    }

    private VaultKeyRecord Key(string userId, string deviceId, string kind = "device") =>
        new("kid" + Guid.NewGuid().ToString("N")[..20], userId, deviceId, kind, [.. Enumerable.Repeat((byte)7, 32)], deviceId, new byte[64], null, null, Now);

    private static Dictionary<string, byte[]> Wraps(params VaultKeyRecord[] keys) => keys.ToDictionary(k => k.Kid, k => (byte[])[1, .. new byte[92]]);

    private static string ItemId() => Protocol.Vault.VaultFormat.NewItemId();

    [Fact]
    public async Task A_version_is_stored_only_as_latest_plus_one_with_a_wrap_for_exactly_each_key_and_its_own_id()
    {
        var user = await UserAsync();
        var device = await DeviceAsync(user);
        var key = Key(user, device);
        Assert.Equal(VaultKeyAdded.Added, (await Vault.AddKeyAsync(key, 10, Audit(), default)).Status);
        var id = ItemId();
        Assert.Equal(VaultPutStatus.VersionConflict, (await Vault.PutAsync(user, "a", id, 2, [1, 2], Wraps(key), device, Now, Audit(), default)).Status);
        Assert.Equal(VaultPutStatus.Created, (await Vault.PutAsync(user, "a", id, 1, [1, 2], Wraps(key), device, Now, Audit(), default)).Status);
        Assert.Equal(VaultPutStatus.VersionConflict, (await Vault.PutAsync(user, "a", id, 1, [1, 3], Wraps(key), device, Now, Audit(), default)).Status);
        Assert.Equal(VaultPutStatus.IdConflict, (await Vault.PutAsync(user, "a", ItemId(), 2, [1, 3], Wraps(key), device, Now, Audit(), default)).Status);
        Assert.Equal(VaultPutStatus.IdConflict, (await Vault.PutAsync(user, "b", id, 1, [1, 3], Wraps(key), device, Now, Audit(), default)).Status);
        Assert.Equal(VaultPutStatus.KeysChanged, (await Vault.PutAsync(user, "a", id, 2, [1, 3], new Dictionary<string, byte[]>(), device, Now, Audit(), default)).Status);
        var stranger = Key(user, device) with { Kid = "not-registered" };
        Assert.Equal(VaultPutStatus.KeysChanged, (await Vault.PutAsync(user, "a", id, 2, [1, 3], Wraps(key, stranger), device, Now, Audit(), default)).Status);
        var updated = await Vault.PutAsync(user, "a", id, 2, [1, 3, 5], Wraps(key), device, Now, Audit(), default);
        Assert.Equal((VaultPutStatus.Updated, 2u, 3L), (updated.Status, updated.Item!.Version, updated.Item.Size));
        Assert.Equal([(2u, 3L), (1u, 2L)], (await Vault.ListVersionsAsync(id, default)).Select(v => (v.Version, v.Size)));
        Assert.Equal([1, 2], (await Vault.FindSealedAsync(user, "a", 1, key.Kid, device, default))!.Ciphertext);
        Assert.Null(await Vault.FindSealedAsync(user, "a", 3, key.Kid, device, default));
    }

    [Fact]
    public async Task A_sealed_version_is_read_only_through_a_key_of_the_asking_device_or_the_recovery_key()
    {
        var user = await UserAsync();
        var (first, second) = (await DeviceAsync(user), await DeviceAsync(user));
        var (a, b, recovery) = (Key(user, first), Key(user, second), Key(user, "recovery", "recovery"));
        foreach (var k in new[] { a, b, recovery })
        {
            Assert.Equal(VaultKeyAdded.Added, (await Vault.AddKeyAsync(k, 10, Audit(), default)).Status);
        }
        var id = ItemId();
        Assert.Equal(VaultPutStatus.Created, (await Vault.PutAsync(user, "s", id, 1, [1, 9], Wraps(a, b, recovery), first, Now, Audit(), default)).Status);

        Assert.Equal(a.Kid, (await Vault.FindSealedAsync(user, "s", 1, a.Kid, first, default))!.Kid);
        Assert.Equal(b.Kid, (await Vault.FindSealedAsync(user, "s", 1, b.Kid, second, default))!.Kid);
        Assert.Equal(recovery.Kid, (await Vault.FindSealedAsync(user, "s", 1, recovery.Kid, second, default))!.Kid);
        // Another device's key, a key nobody registered, another user's device: nothing.
        Assert.Null(await Vault.FindSealedAsync(user, "s", 1, a.Kid, second, default));
        Assert.Null(await Vault.FindSealedAsync(user, "s", 1, "kid-unknown", first, default));
        var stranger = await UserAsync();
        Assert.Null(await Vault.FindSealedAsync(stranger, "s", 1, a.Kid, first, default));
    }

    [Fact]
    public async Task Of_writers_racing_for_the_same_version_exactly_one_stores_it()
    {
        var user = await UserAsync();
        var device = await DeviceAsync(user);
        var key = Key(user, device);
        await Vault.AddKeyAsync(key, 10, Audit(), default);
        var id = ItemId();
        await Vault.PutAsync(user, "raced", id, 1, [0], Wraps(key), device, Now, Audit(), default);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            Vault.PutAsync(user, "raced", id, 2, [(byte)i], Wraps(key), device, Now, Audit(), default)));
        Assert.Single(results, r => r.Status == VaultPutStatus.Updated);
        Assert.Equal(2, (await Vault.ListVersionsAsync(id, default)).Count);
        var news = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            Vault.PutAsync(user, "fresh", ItemId(), 1, [(byte)i], Wraps(key), device, Now, Audit(), default)));
        Assert.Single(news, r => r.Status == VaultPutStatus.Created);
    }

    [Fact]
    public async Task Items_are_listed_by_name_per_user_and_removing_one_removes_its_versions_wraps_and_pending_release()
    {
        var user = await UserAsync();
        var other = await UserAsync();
        var device = await DeviceAsync(user);
        var key = Key(user, device);
        await Vault.AddKeyAsync(key, 10, Audit(), default);
        var otherDevice = await DeviceAsync(other);
        var otherKey = Key(other, otherDevice);
        await Vault.AddKeyAsync(otherKey, 10, Audit(), default);
        foreach (var name in new[] { "b", "a/z", "c", "a" })
        {
            Assert.Equal(VaultPutStatus.Created, (await Vault.PutAsync(user, name, ItemId(), 1, [1], Wraps(key), device, Now, Audit(), default)).Status);
        }
        await Vault.PutAsync(other, "0", ItemId(), 1, [1], Wraps(otherKey), otherDevice, Now, Audit(), default);
        Assert.Equal(["a", "a/z", "b", "c"], (await Vault.ListItemsAsync(user, default)).Select(i => i.Name));
        var b = (await Vault.FindItemAsync(user, "b", default))!;
        Assert.Null(await Vault.FindItemAsync(other, "b", default));
        Assert.False(await Vault.RemoveItemAsync(other, "b", Audit(), default));
        Assert.Equal(4, await Vault.CountItemsAsync(user, default));
        Assert.True(await Vault.RemoveItemAsync(user, "b", Audit(), default));
        Assert.Equal(3, await Vault.CountItemsAsync(user, default));
        Assert.Empty(await Vault.ListVersionsAsync(b.Id, default));
        Assert.Equal(3, (await Vault.ListWrapsAsync(user, key.Kid, null, 0, 500, default)).Count);
        Assert.Single(await Vault.ListItemsAsync(other, default));
    }

    [Fact]
    public async Task Keys_are_registered_once_at_most_ten_per_device_one_recovery_key_and_removing_one_removes_its_wraps()
    {
        var user = await UserAsync();
        var device = await DeviceAsync(user);
        var first = Key(user, device);
        Assert.Equal(new VaultKeyOutcome(VaultKeyAdded.Added, false), await Vault.AddKeyAsync(first, 2, Audit(), default));
        Assert.Equal(VaultKeyAdded.AlreadyRegistered, (await Vault.AddKeyAsync(first, 2, Audit(), default)).Status);
        Assert.Equal(VaultKeyAdded.Conflict, (await Vault.AddKeyAsync(first with { DeviceId = "elsewhere" }, 2, Audit(), default)).Status);
        await Vault.PutAsync(user, "x", ItemId(), 1, [1], Wraps(first), device, Now, Audit(), default);
        // The owner has an item and a key: a new key needs the items re-wrapped for it.
        Assert.Equal(new VaultKeyOutcome(VaultKeyAdded.Added, true), await Vault.AddKeyAsync(Key(user, device), 2, Audit(), default));
        Assert.Equal(VaultKeyAdded.TooMany, (await Vault.AddKeyAsync(Key(user, device), 2, Audit(), default)).Status);
        var recovery = Key(user, "recovery", "recovery");
        Assert.Equal(VaultKeyAdded.Added, (await Vault.AddKeyAsync(recovery, 2, Audit(), default)).Status);
        Assert.Equal(VaultKeyAdded.RecoveryExists, (await Vault.AddKeyAsync(Key(user, "recovery", "recovery"), 2, Audit(), default)).Status);
        Assert.Equal(3, (await Vault.ListKeysAsync(user, default)).Count);

        Assert.Single(await Vault.ListWrapsAsync(user, first.Kid, null, 0, 10, default));
        Assert.False(await Vault.RemoveKeyAsync(await UserAsync(), first.Kid, Audit(), default));
        Assert.True(await Vault.RemoveKeyAsync(user, first.Kid, Audit(), default));
        Assert.Empty(await Vault.ListWrapsAsync(user, first.Kid, null, 0, 10, default));
        Assert.Equal(2, (await Vault.ListKeysAsync(user, default)).Count);
    }

    [Fact]
    public async Task Wraps_for_another_key_are_stored_only_when_every_version_is_the_owners()
    {
        var user = await UserAsync();
        var other = await UserAsync();
        var device = await DeviceAsync(user);
        var key = Key(user, device);
        var second = Key(user, device);
        await Vault.AddKeyAsync(key, 10, Audit(), default);
        var id = ItemId();
        await Vault.PutAsync(user, "x", id, 1, [1], Wraps(key), device, Now, Audit(), default);
        await Vault.AddKeyAsync(second, 10, Audit(), default);
        var otherDevice = await DeviceAsync(other);
        var otherKey = Key(other, otherDevice);
        await Vault.AddKeyAsync(otherKey, 10, Audit(), default);
        var otherId = ItemId();
        await Vault.PutAsync(other, "y", otherId, 1, [1], Wraps(otherKey), otherDevice, Now, Audit(), default);

        byte[] wrapped = [1, .. new byte[92]];
        Assert.False(await Vault.AddWrapsAsync(user, second.Kid, [new(id, 1, wrapped), new(otherId, 1, wrapped)], Audit(), default));
        Assert.False(await Vault.AddWrapsAsync(user, second.Kid, [new(id, 2, wrapped)], Audit(), default));
        Assert.False(await Vault.AddWrapsAsync(user, otherKey.Kid, [new(id, 1, wrapped)], Audit(), default));
        Assert.Empty(await Vault.ListWrapsAsync(user, second.Kid, null, 0, 10, default));
        Assert.True(await Vault.AddWrapsAsync(user, second.Kid, [new(id, 1, wrapped)], Audit(), default));
        // Uploading again replaces: a device that re-wraps after a failure is not refused.
        Assert.True(await Vault.AddWrapsAsync(user, second.Kid, [new(id, 1, [1, .. new byte[91], 9])], Audit(), default));
        Assert.Equal(9, Assert.Single(await Vault.ListWrapsAsync(user, second.Kid, null, 0, 10, default)).Wrapped[^1]);
    }

    [Fact]
    public async Task The_item_list_the_database_writes_as_JSON_is_the_users_items_by_name()
    {
        var user = await UserAsync();
        var other = await UserAsync();
        var device = await DeviceAsync(user);
        var key = Key(user, device);
        await Vault.AddKeyAsync(key, 10, Audit(), default);
        Assert.Equal("[]", System.Text.Encoding.UTF8.GetString(await Vault.ListItemsJsonAsync(user, default)));
        var otherDevice = await DeviceAsync(other);
        var otherKey = Key(other, otherDevice);
        await Vault.AddKeyAsync(otherKey, 10, Audit(), default);
        await Vault.PutAsync(other, "theirs", ItemId(), 1, [1], Wraps(otherKey), otherDevice, Now, Audit(), default);
        string[] names = ["prod/db+1@host", "a.b_c-d", "Z", "a/z", "b", "a", "x/" + new string('n', 120)];
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            Clock.Advance(TimeSpan.FromMilliseconds(7));
            var id = ItemId();
            await Vault.PutAsync(user, name, id, 1, [1, .. new byte[i]], Wraps(key), device, Now, Audit(), default);
            if (i % 2 == 0)
            {
                Clock.Advance(TimeSpan.FromMilliseconds(3));
                await Vault.PutAsync(user, name, id, 2, [1, .. new byte[i + 40]], Wraps(key), device, Now, Audit(), default);
            }
        }

        var json = await Vault.ListItemsJsonAsync(user, default);

        var listed = System.Text.Json.JsonSerializer.Deserialize([.. "{\"items\":"u8, .. json, .. "}"u8], Protocol.Messages.VaultJson.Default.VaultItemList)!.Items;
        // The same rows in the same order (the engine's order of names) as the rows read one by one.
        var expected = (await Vault.ListItemsAsync(user, default)).Select(i => new Protocol.Messages.VaultItemView(i.Id, i.Name, i.Version, i.Size, i.CreatedAt, i.UpdatedAt));
        Assert.Equal(expected, listed);
        Assert.Equal(names.Order(StringComparer.Ordinal), listed.Select(i => i.Name).Order(StringComparer.Ordinal));
        Assert.Contains(listed, i => i.Name == "prod/db+1@host" && i.Version == 2 && i.Size == 41 && i.UpdatedAt == i.CreatedAt + 3);
    }

    [Fact]
    public async Task Revoking_a_device_removes_its_keys_and_their_wraps_in_the_same_transaction()
    {
        var user = await UserAsync();
        var device = await DeviceAsync(user);
        var keeper = await DeviceAsync(user);
        var doomed = Key(user, device);
        var kept = Key(user, keeper);
        await Vault.AddKeyAsync(doomed, 10, Audit(), default);
        await Vault.AddKeyAsync(kept, 10, Audit(), default);
        await Vault.PutAsync(user, "x", ItemId(), 1, [1], Wraps(doomed, kept), device, Now, Audit(), default);
        Assert.True(await Store.Devices.TryRevokeAsync(device, user, Now, Audit(AuditTypes.DeviceRevoked), default));
        Assert.Equal([kept.Kid], (await Vault.ListKeysAsync(user, default)).Select(k => k.Kid));
        Assert.Empty(await Vault.ListWrapsAsync(user, doomed.Kid, null, 0, 10, default));
        Assert.Single(await Vault.ListWrapsAsync(user, kept.Kid, null, 0, 10, default));
    }

    private async Task<ApprovalRecord> ReleaseRequestAsync(string user)
    {
        var a = new ApprovalRecord(Ids.New("apr"), Ids.Hash(Guid.NewGuid().ToString()), ApprovalKinds.Ciba, "agt_x", user, "openid", "release", null, null,
            [1], ApprovalState.Pending, Now, Now + 60_000);
        await Store.Approvals.CreateAsync(a, Audit(AuditTypes.ApprovalCreated), default);
        return a;
    }

    /// <summary>A user's device with a vault key, item "x" (version 1, ciphertext 4 5 6) wrapped for it, and a re-wrapped key to release.</summary>
    private async Task<(string User, string Device, string Item, byte[] Wrapped)> ItemToReleaseAsync()
    {
        var user = await UserAsync();
        var device = await DeviceAsync(user);
        var key = Key(user, device);
        await Vault.AddKeyAsync(key, 10, Audit(), default);
        var id = ItemId();
        await Vault.PutAsync(user, "x", id, 1, [4, 5, 6], Wraps(key), device, Now, Audit(), default);
        return (user, device, id, [1, .. Enumerable.Repeat((byte)3, 92)]);
    }

    private Task<long> StoredReleasesAsync(string approvalId) =>
        Store.Database.ReadAsync(async s => (await s.AllAsync("SELECT count(*) FROM vault_releases WHERE approval_id = $1", r => r.GetInt64(0), approvalId))[0], default);

    [Fact]
    public async Task A_release_is_stored_with_an_approving_decision_only_and_taken_once_in_its_redemption()
    {
        var (user, device, id, wrapped) = await ItemToReleaseAsync();

        async Task<ApprovalRecord> DecidedAsync(ApprovalState decision)
        {
            var a = await ReleaseRequestAsync(user);
            Assert.Equal(decision, await Store.Approvals.TryDecideAsync(a, new DecisionRecord(a.Id, user, device, decision, "{}", Now), null, Audit(AuditTypes.ApprovalApproved),
                new VaultReleaseRecord(a.Id, id, 1, wrapped), default));
            return a;
        }
        AuditEvent Redeemed(ApprovalRecord a) => new(AuditTypes.ApprovalRedeemed, user, "agt_x", a.Id);
        AuditEvent Released(ApprovalRecord a) => new("vault.released", user, "agt_x", a.Id);

        // A denied request is not redeemed, and stored no key.
        var denied = await DecidedAsync(ApprovalState.Denied);
        Assert.Equal(0, await StoredReleasesAsync(denied.Id));
        Assert.Null(await Vault.RedeemReleaseAsync(denied.Id, Now, Redeemed(denied), Released(denied), default));
        Assert.Equal(ApprovalState.Denied, (await Store.Approvals.FindAsync(denied.Id, default))!.State);

        // An approved one is redeemed with its approving decision, and its key taken in the same write.
        var approved = await DecidedAsync(ApprovalState.Approved);
        var done = await Vault.RedeemReleaseAsync(approved.Id, Now, Redeemed(approved), Released(approved), default);
        Assert.Equal((approved.Id, ApprovalState.Redeemed), (done!.Approval.Approval.Id, done.Approval.Approval.State));
        Assert.Equal(device, Assert.Single(done.Approval.Decisions).DeviceId);
        var taken = done.Release!;
        Assert.Equal((approved.Id, id, 1u, "x"), (taken.ApprovalId, taken.ItemId, taken.Version, taken.Name));
        Assert.Equal(wrapped, taken.Wrapped);
        Assert.Equal([4, 5, 6], taken.Ciphertext);
        Assert.Equal(0, await StoredReleasesAsync(approved.Id));
        Assert.Equal(ApprovalState.Redeemed, (await Store.Approvals.FindAsync(approved.Id, default))!.State);

        // Once only.
        Assert.Null(await Vault.RedeemReleaseAsync(approved.Id, Now, Redeemed(approved), Released(approved), default));

        // Both audited, once each.
        await Store.Database.SettleAuditAsync(default);
        var types = (await Store.Audit.ReadAsync(0, 1000, user, default))
            .Where(r => System.Text.Encoding.UTF8.GetString(r.Entry).Contains(approved.Id, StringComparison.Ordinal))
            .Select(r => System.Text.Json.JsonDocument.Parse(r.Entry).RootElement.GetProperty("type").GetString()).ToList();
        Assert.Single(types, t => t == AuditTypes.ApprovalRedeemed);
        Assert.Single(types, t => t == "vault.released");
    }

    [Fact]
    public async Task A_stored_release_is_taken_only_by_its_requests_redemption()
    {
        var (user, device, id, wrapped) = await ItemToReleaseAsync();

        // A key stored beside a request nobody approved (written straight in) stays where it is: no redemption, no take.
        var pending = await ReleaseRequestAsync(user);
        await Store.Database.WriteAsync(async w => await VaultSql.InsertReleaseAsync(w, new VaultReleaseRecord(pending.Id, id, 1, wrapped), Now), default);
        Assert.Null(await Vault.RedeemReleaseAsync(pending.Id, Now, Audit(), Audit(), default));
        Assert.Equal(1, await StoredReleasesAsync(pending.Id));
        Assert.Equal(ApprovalState.Pending, (await Store.Approvals.FindAsync(pending.Id, default))!.State);

        // An approved request whose item was removed meanwhile is redeemed, with nothing to hand over.
        var approved = await ReleaseRequestAsync(user);
        Assert.Equal(ApprovalState.Approved, await Store.Approvals.TryDecideAsync(approved, new DecisionRecord(approved.Id, user, device, ApprovalState.Approved, "{}", Now),
            null, Audit(AuditTypes.ApprovalApproved), new VaultReleaseRecord(approved.Id, id, 1, wrapped), default));
        Assert.True(await Vault.RemoveItemAsync(user, "x", Audit(), default));
        var done = await Vault.RedeemReleaseAsync(approved.Id, Now, Audit(), Audit(), default);
        Assert.Equal(ApprovalState.Redeemed, done!.Approval.Approval.State);
        Assert.Null(done.Release);
    }
}

public sealed class SqliteVaultStoreContract : VaultStoreContract
{
    private readonly string _dir = Directory.CreateTempSubdirectory("assent-vault-store-").FullName;

    internal override Task<AssentStore> OpenAsync() => Task.FromResult(new AssentStore(new SqliteDatabase(Path.Combine(_dir, "t.db"), Clock)));

    [Theory]
    [InlineData(VaultStore.ListItemsSql)]
    [InlineData(VaultStore.ListItemsJsonSqlite)]
    public void A_users_items_are_listed_through_the_name_index(string sql)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + Path.Combine(_dir, "t.db"));
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "EXPLAIN QUERY PLAN " + sql.Replace("$1", "'u'", StringComparison.Ordinal);
        using var plan = cmd.ExecuteReader();
        var steps = new List<string>();
        while (plan.Read())
        {
            steps.Add(plan.GetString(3));
        }
        Assert.Contains(steps, s => s.Contains("USING INDEX sqlite_autoindex_vault_items_2", StringComparison.Ordinal));
        Assert.DoesNotContain(steps, s => s.Contains("TEMP B-TREE", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Migration_17_keeps_every_version_gives_it_its_size_and_moves_the_ciphertext_last()
    {
        var path = Path.Combine(_dir, "old.db");
        byte[] big = [1, .. Enumerable.Range(0, 70_000).Select(i => (byte)i)];
        using (var c = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + path + ";Pooling=False"))
        {
            c.Open();
            SqliteSchema.Migrate(c, upTo: SqliteSchema.VaultVersionSizesVersion - 1);
            using var insert = c.CreateCommand();
            insert.CommandText = """
                INSERT INTO users(id, handle, is_admin, created_at) VALUES ('usr_a', 'ann', 0, 1);
                INSERT INTO vault_items(id, user_id, name, version, size, created_at, updated_at) VALUES ('item_a', 'usr_a', 'a', 2, 70001, 1, 2);
                INSERT INTO vault_versions(item_id, version, ciphertext, created_by, created_at) VALUES ('item_a', 1, x'0102', 'dev_1', 1), ('item_a', 2, $big, 'dev_2', 2);
                """;
            insert.Parameters.AddWithValue("$big", big);
            insert.ExecuteNonQuery();
        }
        await using (var store = new AssentStore(new SqliteDatabase(path, Clock)))
        {
            await store.MigrateAsync(default);
            Assert.Equal([(2u, 70_001L, "dev_2", 2L), (1u, 2L, "dev_1", 1L)],
                (await store.Vault.ListVersionsAsync("item_a", default)).Select(v => (v.Version, v.Size, v.CreatedBy, v.CreatedAt)));
            Assert.Equal(big, Blob(path, 2));
            Assert.Equal([1, 2], Blob(path, 1));
        }
        using var check = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + path + ";Pooling=False");
        check.Open();
        using var columns = check.CreateCommand();
        columns.CommandText = "SELECT name FROM pragma_table_info('vault_versions') ORDER BY cid";
        using var r = columns.ExecuteReader();
        var names = new List<string>();
        while (r.Read())
        {
            names.Add(r.GetString(0));
        }
        Assert.Equal(["item_id", "version", "size", "created_by", "created_at", "ciphertext"], names);
    }

    private static byte[] Blob(string path, int version)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + path + ";Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT ciphertext FROM vault_versions WHERE item_id = 'item_a' AND version = $v";
        cmd.Parameters.AddWithValue("$v", version);
        return (byte[])cmd.ExecuteScalar()!;
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresVaultStoreContract(PostgresCluster cluster) : VaultStoreContract
{
    internal override async Task<AssentStore> OpenAsync() =>
        new(new PostgresDatabase(NpgsqlDataSource.Create(PostgresDatabase.ToConnectionString(await cluster.CreateDatabaseAsync())), Clock));
}
