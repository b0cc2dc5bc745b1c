using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Assent.Cli.Tests;

/// <summary>
/// <c>assent vault …</c> as real processes against a real server (docs/vault.md §7): the owner's device seals and opens, an agent
/// gets an item released by the device's approval, new devices and the recovery key get items re-wrapped, and a server whose
/// database was edited is caught.
/// </summary>
public sealed class VaultCommandTests
{
    private const string Secret = "correct horse battery staple";

    private static async Task<(string DeviceId, string Did)> ReadyAsync(CliSandbox box)
    {
        await box.StartServerAsync();
        var enrolled = await Steps.EnrollAsync(box, await Steps.InviteAsync(box, "alice"));
        return (enrolled.GetProperty("device_id").GetString()!, enrolled.GetProperty("user_did").GetString()!);
    }

    private static async Task PutAsync(CliSandbox box, string name, string secret, params string[] more)
    {
        var file = Path.Combine(box.Home, "secret-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(file, secret);
        var put = await box.RunAsync(["vault", "put", name, "--file", file, .. more]);
        Assert.True(put.ExitCode == 0, put.ToString());
        File.Delete(file);
    }

    [Fact]
    public async Task Put_list_show_get_and_rm_round_trip_on_the_owners_device()
    {
        await using var box = new CliSandbox();
        await ReadyAsync(box);

        await PutAsync(box, "prod/db-password", Secret);
        await PutAsync(box, "prod/db-password", Secret + " v2");
        await PutAsync(box, "api-key", "AKIA-123");

        var list = Steps.SingleJsonObject(await box.RunAsync("vault", "list", "--json")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["api-key", "prod/db-password"], list.Select(i => i.GetProperty("name").GetString()));
        Assert.Equal(2u, list[1].GetProperty("version").GetUInt32());
        var show = Steps.SingleJsonObject(await box.RunAsync("vault", "show", "prod/db-password", "--json"));
        Assert.Equal([2u, 1u], show.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetUInt32()));

        var latest = await box.RunAsync("vault", "get", "prod/db-password");
        Assert.True(latest.ExitCode == 0, latest.ToString());
        Assert.Equal(Secret + " v2", latest.Stdout);
        var first = await box.RunAsync("vault", "get", "prod/db-password", "--version", "1");
        Assert.Equal(Secret, first.Stdout);
        var file = Path.Combine(box.Home, "out.txt");
        var written = await box.RunAsync("vault", "get", "api-key", "--out", file);
        Assert.True(written.ExitCode == 0, written.ToString());
        Assert.Equal("AKIA-123", await File.ReadAllTextAsync(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        var removed = await box.RunAsync("vault", "rm", "prod/db-password");
        Assert.True(removed.ExitCode == 0, removed.ToString());
        var gone = await box.RunAsync("vault", "get", "prod/db-password");
        Assert.True(gone.ExitCode == 1, gone.ToString());
        Assert.Contains("no vault item 'prod/db-password'", gone.Stderr);
        Assert.Single(Steps.SingleJsonObject(await box.RunAsync("vault", "list", "--json")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Bad_names_and_missing_input_are_usage_errors_that_change_nothing()
    {
        await using var box = new CliSandbox();
        await ReadyAsync(box);

        var spaced = await box.RunAsync("vault", "put", "has space", "--file", "/dev/null");
        Assert.True(spaced.ExitCode == 64, spaced.ToString());
        var dots = await box.RunAsync("vault", "get", "a/../b");
        Assert.True(dots.ExitCode == 64, dots.ToString());
        var missing = await box.RunAsync("vault", "put", "x", "--file", Path.Combine(box.Home, "nope"));
        Assert.True(missing.ExitCode == 1, missing.ToString());
        Assert.Contains("cannot read --file", missing.Stderr);
        Assert.Contains("empty", (await box.RunAsync("vault", "list")).Stdout);
    }

    [Fact]
    public async Task A_flipped_ciphertext_byte_or_a_swapped_wrapped_key_is_refused_by_get()
    {
        await using var box = new CliSandbox();
        await ReadyAsync(box);
        await PutAsync(box, "db-password", Secret);
        await PutAsync(box, "api-key", "AKIA-123");
        var db = Id(box, "db-password");
        var api = Id(box, "api-key");

        Sql(box, "UPDATE vault_wraps SET wrapped = (SELECT wrapped FROM vault_wraps WHERE item_id = $api) WHERE item_id = $db", ("$api", api), ("$db", db));
        var swapped = await box.RunAsync("vault", "get", "db-password");
        Assert.True(swapped.ExitCode == 1, swapped.ToString());
        Assert.Contains("wrapped key", swapped.Stderr);
        Assert.Contains("does not open", swapped.Stderr);
        Assert.Equal("", swapped.Stdout);

        var ciphertext = Blob(box, "SELECT ciphertext FROM vault_versions WHERE item_id = $api", ("$api", api));
        ciphertext[^3] ^= 0x80;
        Sql(box, "UPDATE vault_versions SET ciphertext = $c WHERE item_id = $api", ("$c", ciphertext), ("$api", api));
        var flipped = await box.RunAsync("vault", "get", "api-key");
        Assert.True(flipped.ExitCode == 1, flipped.ToString());
        Assert.Contains("ciphertext", flipped.Stderr);
        Assert.Contains("does not open", flipped.Stderr);
        Assert.Equal("", flipped.Stdout);
    }

    [Fact]
    public async Task An_agent_gets_an_item_the_device_releases_and_nothing_when_denied()
    {
        await using var box = new CliSandbox();
        var (_, did) = await ReadyAsync(box);
        await PutAsync(box, "db-password", Secret);
        var agent = await Steps.CreateAgentAsync(box, "alice");
        string[] get = ["vault", "get", "db-password", "--server", box.Url, "--client-id", agent.ClientId, "--client-secret", agent.ClientSecret, "--user", did];

        var asking = box.RunAsync(get);
        CliResult device;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        do
        {
            device = await box.RunAsync("device", "approve", "--all", "--yes", "--json");
        }
        while (Steps.SingleJsonObject(device).GetProperty("decided").GetArrayLength() == 0 && DateTime.UtcNow < until);
        var released = await asking;

        Assert.Equal("approved", Steps.SingleJsonObject(device).GetProperty("decided")[0].GetProperty("state").GetString());
        Assert.True(released.ExitCode == 0, released.ToString());
        Assert.Equal(Secret, released.Stdout);
        // The agent says which key it asks for; the device shows the same key id with the item, version and agent.
        var kid = System.Text.RegularExpressions.Regex.Match(released.Stderr, "agent's key ([A-Za-z0-9_-]{8})").Groups[1].Value;
        Assert.NotEmpty(kid);
        Assert.Contains($"vault:    release db-password (version 1) to deploy-bot, key {kid}", device.Stderr);

        asking = box.RunAsync(get);
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        var denied = await asking;
        Assert.True(denied.ExitCode == 1, denied.ToString());
        Assert.Contains("denied", denied.Stderr);
        Assert.Equal("", denied.Stdout);
    }

    [Fact]
    public async Task The_device_refuses_to_approve_a_release_of_a_version_that_does_not_open()
    {
        await using var box = new CliSandbox();
        var (_, did) = await ReadyAsync(box);
        await PutAsync(box, "db-password", Secret);
        var agent = await Steps.CreateAgentAsync(box, "alice");
        var id = Id(box, "db-password");
        var ciphertext = Blob(box, "SELECT ciphertext FROM vault_versions WHERE item_id = $id", ("$id", id));
        ciphertext[15] ^= 0x01;
        Sql(box, "UPDATE vault_versions SET ciphertext = $c WHERE item_id = $id", ("$c", ciphertext), ("$id", id));

        var asking = box.RunAsync("vault", "get", "db-password", "--server", box.Url, "--client-id", agent.ClientId, "--client-secret", agent.ClientSecret,
            "--user", did, "--timeout", "20");
        CliResult approve;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        do
        {
            approve = await box.RunAsync("device", "approve", "--all", "--yes", "--json");
        }
        while (!approve.Stderr.Contains("not approving", StringComparison.Ordinal) && DateTime.UtcNow < until);
        var stillPending = await box.RunAsync("device", "approve", "--all", "--yes", "--deny", "--json");
        var denied = await asking;

        Assert.True(approve.ExitCode == 1, approve.ToString());
        Assert.Contains("does not open", approve.Stderr);
        Assert.Single(Steps.SingleJsonObject(stillPending).GetProperty("decided").EnumerateArray());
        Assert.True(denied.ExitCode == 1, denied.ToString());
    }

    [Fact]
    public async Task A_new_device_gets_the_items_when_an_existing_device_approves_the_rewrap()
    {
        await using var box = new CliSandbox();
        var (first, _) = await ReadyAsync(box);
        await PutAsync(box, "db-password", Secret);
        await PutAsync(box, "api-key", "AKIA-123");

        var second = (await Steps.EnrollAsync(box, await Steps.InviteAsync(box, "alice"))).GetProperty("device_id").GetString()!;
        var before = await box.RunAsync("vault", "get", "db-password", "--device", second);
        Assert.True(before.ExitCode == 1, before.ToString());
        Assert.Contains("this device cannot open 'db-password' yet", before.Stderr);
        var noVersion = await box.RunAsync("vault", "get", "db-password", "--version", "7");
        Assert.True(noVersion.ExitCode == 1, noVersion.ToString());
        Assert.Contains("has no version 7", noVersion.Stderr);

        var own = await box.RunAsync("device", "approve", "--all", "--yes", "--device", second);
        Assert.True(own.ExitCode == 1, own.ToString());
        Assert.Contains("approve it on another of your devices", own.Stderr);
        var approved = await box.RunAsync("device", "approve", "--all", "--yes", "--json", "--device", first);
        Assert.Single(Steps.SingleJsonObject(approved).GetProperty("decided").EnumerateArray());
        Assert.Contains("Re-wrapped 2 item version(s)", approved.Stderr);

        var after = await box.RunAsync("vault", "get", "db-password", "--device", second);
        Assert.True(after.ExitCode == 0, after.ToString());
        Assert.Equal(Secret, after.Stdout);
        // And the new device's key is a recipient of what is stored from now on, from either device.
        await PutAsync(box, "new-item", "from the first", "--device", first);
        Assert.Equal("from the first", (await box.RunAsync("vault", "get", "new-item", "--device", second)).Stdout);
    }

    [Fact]
    public async Task The_recovery_key_recovers_every_item_on_a_new_device()
    {
        await using var box = new CliSandbox();
        var (first, _) = await ReadyAsync(box);
        await PutAsync(box, "db-password", Secret);

        var created = await box.RunAsync("vault", "recovery-key");
        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.Contains("keep it offline", created.Stderr);
        var recovery = created.Stdout.Trim();
        Assert.Equal(43, recovery.Length);
        var again = await box.RunAsync("vault", "recovery-key");
        Assert.True(again.ExitCode == 1, again.ToString());
        Assert.Contains("--replace", again.Stderr);
        // Items stored after the recovery key was made are wrapped to it too.
        await PutAsync(box, "later", "stored after", "--device", first);

        var second = (await Steps.EnrollAsync(box, await Steps.InviteAsync(box, "alice"))).GetProperty("device_id").GetString()!;
        var wrong = await box.RunAsync("vault", "recover", "--key", Protocol.Base64Url.Encode(new byte[32]), "--device", second);
        Assert.True(wrong.ExitCode == 1, wrong.ToString());
        var recovered = await box.RunAsync("vault", "recover", "--key", recovery, "--device", second);
        Assert.True(recovered.ExitCode == 0, recovered.ToString());
        Assert.Contains("Recovered 2 item version(s)", recovered.Stdout);

        Assert.Equal(Secret, (await box.RunAsync("vault", "get", "db-password", "--device", second)).Stdout);
        Assert.Equal("stored after", (await box.RunAsync("vault", "get", "later", "--device", second)).Stdout);
    }

    [Fact]
    public async Task A_device_enrolled_before_the_vault_makes_and_registers_its_key_on_its_next_run()
    {
        await using var box = new CliSandbox();
        var (deviceId, _) = await ReadyAsync(box);
        var path = Path.Combine(box.Home, ".assent", "devices", deviceId + ".json");
        var file = JsonDocument.Parse(await File.ReadAllTextAsync(path)).RootElement;
        Assert.Equal(43, file.GetProperty("vault_key").GetString()!.Length);
        // As a file written before the vault: no vault key, and the server never saw one.
        var old = file.EnumerateObject().Where(p => !p.Name.StartsWith("vault_", StringComparison.Ordinal)).ToDictionary(p => p.Name, p => p.Value);
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(old));
        Sql(box, "DELETE FROM vault_keys");

        var listed = await box.RunAsync("device", "list", "--json");
        Assert.True(listed.ExitCode == 0, listed.ToString());

        var now = JsonDocument.Parse(await File.ReadAllTextAsync(path)).RootElement;
        Assert.NotEqual(file.GetProperty("vault_key").GetString(), now.GetProperty("vault_key").GetString());
        Assert.True(now.TryGetProperty("vault_key_registered_at", out _));
        Assert.Equal(1L, (long)Scalar(box, "SELECT count(*) FROM vault_keys"));
        await PutAsync(box, "db-password", Secret);
        Assert.Equal(Secret, (await box.RunAsync("vault", "get", "db-password")).Stdout);
    }

    private static string Id(CliSandbox box, string name) => (string)Scalar(box, "SELECT id FROM vault_items WHERE name = $n", ("$n", name));

    private static SqliteConnection Open(CliSandbox box)
    {
        var connection = new SqliteConnection($"Data Source={Path.Combine(box.Data, "assent.db")};Pooling=False");
        connection.Open();
        using var wait = connection.CreateCommand();
        wait.CommandText = "PRAGMA busy_timeout = 5000";
        wait.ExecuteNonQuery();
        return connection;
    }

    private static void Sql(CliSandbox box, string sql, params (string Name, object Value)[] parameters)
    {
        using var connection = Open(box);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        Assert.True(command.ExecuteNonQuery() > 0, $"changed nothing: {sql}");
    }

    private static object Scalar(CliSandbox box, string sql, params (string Name, object Value)[] parameters)
    {
        using var connection = Open(box);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return command.ExecuteScalar() ?? throw new InvalidOperationException("no row: " + sql);
    }

    private static byte[] Blob(CliSandbox box, string sql, params (string Name, object Value)[] parameters) =>
        Assert.IsType<byte[]>(Scalar(box, sql, parameters));
}
