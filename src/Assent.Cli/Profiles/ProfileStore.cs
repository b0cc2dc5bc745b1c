using System.Text.Json;
using System.Text.Json.Serialization;
using Assent.Server.Common;

namespace Assent.Cli.Profiles;

/// <summary>A signed-in human (docs/cli.md §4, <c>humans</c>): the session tokens of <c>assent auth login</c>.</summary>
internal sealed record HumanProfile(
    string Server,
    string Handle,
    string Sub,
    string Scope,
    string AccessToken,
    DateTimeOffset AccessTokenExpiresAt,
    string RefreshToken,
    DateTimeOffset SignedInAt);

/// <summary>An agent's credentials (docs/cli.md §4, <c>agents</c>), saved by <c>assent auth setup-agent --save</c>.</summary>
internal sealed record AgentProfile(string Server, string ClientId, string ClientSecret, string Name, string Scopes, string Owner, DateTimeOffset CreatedAt);

internal sealed class ProfileDefaults
{
    public string? Human { get; set; }

    public string? Agent { get; set; }
}

/// <summary>docs/cli.md §4, <c>~/.assent/profiles.json</c>: <c>{version, defaults:{human,agent}, humans:{}, agents:{}}</c>.</summary>
internal sealed class ProfilesFile
{
    public const int CurrentVersion = 1;

    public int Version { get; set; } = CurrentVersion;

    public ProfileDefaults Defaults { get; set; } = new();

    public Dictionary<string, HumanProfile> Humans { get; set; } = new(StringComparer.Ordinal);

    public Dictionary<string, AgentProfile> Agents { get; set; } = new(StringComparer.Ordinal);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ProfilesFile))]
internal sealed partial class ProfilesJson : JsonSerializerContext;

/// <summary>
/// The profiles file. Secrets live in it, so the directory is 0700 and the file 0600 (repaired with a
/// warning when found wider). Every change is read-modify-write under an exclusive lock on a sibling
/// <c>.lock</c> file and lands by atomic rename, so concurrent <c>assent</c> processes never lose each
/// other's changes and a reader never sees half a file.
/// </summary>
internal sealed class ProfileStore(string root, TextWriter warnings)
{
    /// <summary>docs/cli.md §3: selects the profile to use instead of the default.</summary>
    public const string ProfileVariable = "ASSENT_PROFILE";

    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(20);

    public static ProfileStore ForCurrentUser()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home))
        {
            throw CliException.Invalid("cannot find the home directory for ~/.assent; set HOME");
        }
        return new ProfileStore(Path.Combine(home, ".assent"), Console.Error);
    }

    public string FilePath => Path.Combine(root, "profiles.json");

    private string LockPath => FilePath + ".lock";

    /// <summary>A consistent snapshot (renames are atomic, so no lock is needed to read).</summary>
    public ProfilesFile Read()
    {
        RepairPermissions();
        return Load();
    }

    /// <summary>Applies <paramref name="change"/> to the latest contents under the lock and writes the result atomically.</summary>
    public T Update<T>(Func<ProfilesFile, T> change)
    {
        SecureFile.EnsurePrivateDirectory(root);
        RepairPermissions();
        using var held = AcquireLock();
        var file = Load();
        var result = change(file);
        SecureFile.WriteAtomic(FilePath, JsonSerializer.SerializeToUtf8Bytes(file, ProfilesJson.Default.ProfilesFile));
        return result;
    }

    /// <summary>
    /// The human profile to act as: <c>ASSENT_PROFILE</c>, else the default. <c>ASSENT_PROFILE</c> naming an
    /// agent profile selects that agent for the agent commands and leaves the human commands on the default.
    /// </summary>
    public static (string Name, HumanProfile Profile)? SelectHuman(ProfilesFile file)
    {
        var chosen = Environment.GetEnvironmentVariable(ProfileVariable);
        var name = chosen is { Length: > 0 } && !file.Agents.ContainsKey(chosen) ? chosen : file.Defaults.Human;
        if (name is null)
        {
            return null;
        }
        if (!file.Humans.TryGetValue(name, out var profile))
        {
            throw CliException.Invalid($"no signed-in profile '{name}'{(name == file.Defaults.Human ? "" : $" (from {ProfileVariable})")}; see: assent profiles list");
        }
        return (name, profile);
    }

    /// <summary>
    /// The agent profile to act as: <paramref name="name"/> (its profile id, or the agent's name as
    /// <c>setup-agent --name</c> took it), else <c>ASSENT_PROFILE</c> when it names an agent, else the default
    /// agent. Null when none is chosen and <paramref name="required"/> is false.
    /// </summary>
    public static (string Name, AgentProfile Profile)? SelectAgent(ProfilesFile file, string? name, bool required)
    {
        if (name is not null)
        {
            if (file.Agents.TryGetValue(name, out var named) || file.Agents.TryGetValue(Slug(name), out named))
            {
                return (file.Agents.ContainsKey(name) ? name : Slug(name), named);
            }
            throw CliException.Usage($"--agent: no saved agent profile '{name}'; see: assent profiles list (save one with: assent auth setup-agent --name NAME --save)");
        }
        var chosen = Environment.GetEnvironmentVariable(ProfileVariable);
        if (chosen is { Length: > 0 } && file.Agents.TryGetValue(chosen, out var selected))
        {
            return (chosen, selected);
        }
        if (chosen is { Length: > 0 } && !file.Humans.ContainsKey(chosen))
        {
            throw CliException.Usage($"no profile '{chosen}' (from {ProfileVariable}); see: assent profiles list");
        }
        if (file.Defaults.Agent is { } fallback && file.Agents.TryGetValue(fallback, out var byDefault))
        {
            return (fallback, byDefault);
        }
        return required
            ? throw CliException.Usage("--agent: no default agent profile; name one (assent profiles list) or save one with: assent auth setup-agent --name NAME --save")
            : null;
    }

    /// <summary>
    /// A profile id from an agent's name, as typed on the command line: lower case a-z, 0-9 and single
    /// hyphens (<c>"Deploy Bot #2"</c> becomes <c>deploy-bot-2</c>), at most 48 characters.
    /// </summary>
    public static string Slug(string name)
    {
        var sb = new System.Text.StringBuilder(name.Length);
        foreach (var c in name.Normalize(System.Text.NormalizationForm.FormD))
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                sb.Append(char.ToLowerInvariant(c));
            }
            else if (System.Globalization.CharUnicodeInfo.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.NonSpacingMark)
            {
                // An accent after its letter (é is e + ́ once decomposed) is dropped, the letter kept.
            }
            else if (sb.Length > 0 && sb[^1] != '-')
            {
                sb.Append('-');
            }
        }
        var slug = sb.ToString().Trim('-');
        slug = slug.Length > 48 ? slug[..48].TrimEnd('-') : slug;
        return slug.Length == 0 ? "agent" : slug;
    }

    /// <summary>A human profile is named after who and where: <c>alice@localhost:8400</c>.</summary>
    public static string HumanName(string handle, Uri server) => $"{handle}@{server.Authority}";

    private ProfilesFile Load()
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(FilePath);
        }
        catch (FileNotFoundException)
        {
            return new ProfilesFile();
        }
        catch (DirectoryNotFoundException)
        {
            return new ProfilesFile();
        }
        ProfilesFile? file;
        try
        {
            file = JsonSerializer.Deserialize(bytes, ProfilesJson.Default.ProfilesFile);
        }
        catch (JsonException e)
        {
            // Never overwrite what cannot be read: it may hold the only copy of an agent's secret.
            throw CliException.Invalid($"{FilePath} is not valid JSON ({e.Message}); fix or move it away, then try again");
        }
        if (file is null || file.Version > ProfilesFile.CurrentVersion)
        {
            throw CliException.Invalid($"{FilePath} is from a newer Assent (version {file?.Version}); upgrade the CLI");
        }
        file.Defaults ??= new ProfileDefaults();
        file.Humans ??= new(StringComparer.Ordinal);
        file.Agents ??= new(StringComparer.Ordinal);
        return file;
    }

    /// <summary>Tokens and secrets are in here: like ssh, refuse to leave them readable by others, but fix it rather than fail.</summary>
    private void RepairPermissions()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        const UnixFileMode wide = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                  UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if (Directory.Exists(root) && (File.GetUnixFileMode(root) & wide) != 0)
        {
            File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            warnings.WriteLine($"warning: {root} was accessible by other users; its mode is now 0700");
        }
        if (File.Exists(FilePath) && (File.GetUnixFileMode(FilePath) & wide) != 0)
        {
            File.SetUnixFileMode(FilePath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            warnings.WriteLine($"warning: {FilePath} was readable by other users; its mode is now 0600. " +
                               "If others could read it, end the sessions in it (assent auth logout) and replace agent secrets.");
        }
    }

    /// <summary>An exclusive lock (flock on Unix) on <c>profiles.json.lock</c>, retried with jitter until <see cref="LockTimeout"/>.</summary>
    private FileStream AcquireLock()
    {
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        var deadline = DateTime.UtcNow + LockTimeout;
        while (true)
        {
            try
            {
                return new FileStream(LockPath, options);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(Random.Shared.Next(5, 30));
            }
            catch (IOException e)
            {
                throw CliException.Invalid($"{LockPath} stayed locked for {LockTimeout.TotalSeconds:0} s ({e.Message}); is another assent command stuck?");
            }
        }
    }
}
