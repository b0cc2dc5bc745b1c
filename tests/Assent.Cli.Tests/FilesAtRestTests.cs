using System.Text.RegularExpressions;

namespace Assent.Cli.Tests;

/// <summary>The database files and the key-encryption key on disk (docs/deployment.md §3 and §11).</summary>
public sealed partial class FilesAtRestTests
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode WorldReadable = OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const string PublicIssuer = "https://assent.example.com";
    private const string PlacementWarning = "is inside the data directory, so whoever copies the directory can forge tokens";

    [Fact]
    public async Task The_database_and_its_wal_and_shm_files_are_0600_once_the_server_has_written()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        await Steps.EnrollAsync(box, InviteCode().Match(box.ServerOutput).Groups[1].Value);

        foreach (var file in DatabaseFiles(box))
        {
            Assert.True(File.Exists(file), $"{file} should exist while the server runs");
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(file));
        }
        box.StopServer();
        Assert.DoesNotContain("warning:", box.ServerOutput);
    }

    [Fact]
    public async Task Database_files_left_readable_by_others_are_made_0600_at_start_with_a_one_line_warning()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        box.StopServer(); // SIGKILL: the -wal and -shm files stay behind
        foreach (var file in DatabaseFiles(box))
        {
            File.SetUnixFileMode(file, WorldReadable);
        }

        await box.StartServerAsync();

        foreach (var file in DatabaseFiles(box))
        {
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(file));
        }
        box.StopServer();
        var warning = Assert.Single(Lines(box.ServerOutput), l => l.StartsWith("warning:", StringComparison.Ordinal));
        Assert.Contains("assent.db, ", warning);
        Assert.Contains("assent.db-wal", warning);
        Assert.Contains("0600", warning);
    }

    [Fact]
    public async Task A_public_issuer_with_master_key_in_the_data_directory_is_warned_about_at_start()
    {
        await using var box = new CliSandbox();

        await box.StartServerAsync("--issuer", PublicIssuer);
        box.StopServer();

        var warning = Assert.Single(Lines(box.ServerOutput), l => l.Contains(PlacementWarning, StringComparison.Ordinal));
        Assert.Contains(Path.Combine(box.Data, "master.key"), warning);
        Assert.Contains("--master-key-file", warning);
    }

    [Fact]
    public async Task A_master_key_file_outside_the_data_directory_is_created_0600_and_silences_the_warning()
    {
        await using var box = new CliSandbox();
        var keyFile = KeyFile(box, "assent.key");

        await box.StartServerAsync("--issuer", PublicIssuer, "--master-key-file", keyFile);
        box.StopServer();

        Assert.DoesNotContain(PlacementWarning, box.ServerOutput);
        Assert.Contains($"Created a new key-encryption key in {keyFile}", box.ServerOutput);
        Assert.False(File.Exists(Path.Combine(box.Data, "master.key")), "no master.key beside the database");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(keyFile));
        }
        // The same server again, the key now read from the file: it opens the signing keys it sealed.
        await box.StartServerAsync("--issuer", PublicIssuer, "--master-key-file", keyFile);
    }

    [Fact]
    public async Task Admin_keys_rotate_takes_the_key_itself_over_the_key_file_over_master_key_in_the_data_directory()
    {
        await using var box = new CliSandbox();
        var keyFile = KeyFile(box, "assent.key");
        await Steps.InviteAsync(box, "alice"); // the database offline commands work on (docs/cli.md §6)

        Steps.SingleJsonObject(await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--master-key-file", keyFile, "--json"));
        Assert.True(File.Exists(keyFile));
        Assert.False(File.Exists(Path.Combine(box.Data, "master.key")), "the key file, not master.key, seals the signing keys");

        // Without the file, a new master.key is made in the data directory, and it opens nothing.
        var withoutFile = await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--json");
        Assert.Equal(1, withoutFile.ExitCode);
        Assert.Contains("does not match this database", withoutFile.Stderr);
        var dataKey = Path.Combine(box.Data, "master.key");

        // ASSENT_MASTER_KEY_FILE is read instead of master.key; --master-key-file instead of ASSENT_MASTER_KEY_FILE.
        box.Variables["ASSENT_MASTER_KEY_FILE"] = keyFile;
        Steps.SingleJsonObject(await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--json"));
        box.Variables["ASSENT_MASTER_KEY_FILE"] = dataKey;
        Steps.SingleJsonObject(await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--master-key-file", keyFile, "--json"));
        box.Variables.Remove("ASSENT_MASTER_KEY_FILE");

        // ASSENT_MASTER_KEY, the key itself, wins over --master-key-file: right or wrong.
        box.Variables["ASSENT_MASTER_KEY"] = File.ReadAllText(keyFile).Trim();
        Steps.SingleJsonObject(await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--master-key-file", dataKey, "--json"));
        box.Variables["ASSENT_MASTER_KEY"] = File.ReadAllText(dataKey).Trim();
        var wrongValue = await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--master-key-file", keyFile, "--json");
        Assert.Equal(1, wrongValue.ExitCode);
        Assert.Contains("check ASSENT_MASTER_KEY", wrongValue.Stderr);
    }

    [Fact]
    public async Task A_master_key_file_readable_by_others_refuses_the_server_and_the_admin_commands()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        await using var box = new CliSandbox();
        var keyFile = KeyFile(box, "assent.key");
        File.WriteAllText(keyFile, Convert.ToBase64String(new byte[32]) + "\n");
        File.SetUnixFileMode(keyFile, WorldReadable);

        var server = await box.RunAsync("server", "--urls", box.Url, "--data", box.Data, "--master-key-file", keyFile);
        Assert.False(File.Exists(Path.Combine(box.Data, "assent.db")), "a server refused its key leaves no database behind");
        await Steps.InviteAsync(box, "alice");
        var rotate = await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--master-key-file", keyFile);

        foreach (var refused in new[] { server, rotate })
        {
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains($"chmod 600 {keyFile}", refused.Stderr);
            Assert.DoesNotContain("   at ", refused.Stdout + refused.Stderr);
        }
        Assert.Equal(WorldReadable, File.GetUnixFileMode(keyFile));
    }

    [Fact]
    public async Task A_master_key_file_is_not_created_in_a_directory_that_does_not_exist()
    {
        await using var box = new CliSandbox();
        var keyFile = Path.Combine(box.Home, "no-such-dir", "assent.key");

        var server = await box.RunAsync("server", "--urls", box.Url, "--data", box.Data, "--master-key-file", keyFile);
        await Steps.InviteAsync(box, "alice");
        var rotate = await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--master-key-file", keyFile);

        foreach (var refused in new[] { server, rotate })
        {
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains($"{keyFile} does not exist, nor does its directory", refused.Stderr);
        }
        Assert.False(Directory.Exists(Path.GetDirectoryName(keyFile)));
    }

    private static string[] DatabaseFiles(CliSandbox box) =>
        new[] { "", "-wal", "-shm" }.Select(suffix => Path.Combine(box.Data, "assent.db" + suffix)).ToArray();

    /// <summary>A path for a key file in a directory of its own, outside the data directory; the file is not created.</summary>
    private static string KeyFile(CliSandbox box, string name)
    {
        var dir = Path.Combine(box.Home, "keys");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [GeneratedRegex(@"code: (\S+)")]
    private static partial Regex InviteCode();
}
