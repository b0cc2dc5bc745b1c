using System.CommandLine;
using Assent.Server.Common;

namespace Assent.Cli.Commands;

/// <summary>The options that say where the server's data lives, shared by <c>server</c> and the offline <c>admin</c> commands.</summary>
internal static class StoreOptions
{
    public const string DefaultData = "assent-data";

    public static Option<string?> Data() => new("--data") { Description = "Data directory: the SQLite file and the master key (default ./assent-data)" };

    public static Option<string?> Database() =>
        new("--database") { Description = $"Database connection instead of SQLite in --data (default: ${ServerCommand.DatabaseVariable})" };

    public static Option<string?> MasterKeyFile() =>
        new("--master-key-file")
        {
            Description = $"The key-encryption key file, kept outside --data (default: ${ServerCommand.MasterKeyFileVariable}, else master.key in --data; " +
                "$ASSENT_MASTER_KEY, the key itself, wins)",
        };

    public static Option<string?> Issuer() =>
        new("--issuer") { Description = "The server's public base URL, used in links (default: the issuer the server last started with on this data, else http://localhost:8400)" };

    public static Option<bool> Json() => new("--json") { Description = "Print exactly one JSON object on stdout" };

    public static string? DatabaseOrEnvironment(string? database) =>
        string.IsNullOrWhiteSpace(database) ? NullIfEmpty(Environment.GetEnvironmentVariable(ServerCommand.DatabaseVariable)) : database;

    public static string? MasterKeyFileOrEnvironment(string? file) =>
        string.IsNullOrWhiteSpace(file) ? NullIfEmpty(Environment.GetEnvironmentVariable(ServerCommand.MasterKeyFileVariable)) : file;

    public static AssentOptions Read(System.CommandLine.ParseResult parse, Option<string?> data, Option<string?> database, Option<string?>? issuer,
        Option<string?>? masterKeyFile = null)
    {
        var options = new AssentOptions
        {
            DataDirectory = parse.GetValue(data) ?? DefaultData,
            Database = DatabaseOrEnvironment(parse.GetValue(database)),
            MasterKeyFile = MasterKeyFileOrEnvironment(masterKeyFile is null ? null : parse.GetValue(masterKeyFile)),
        };
        if (issuer is not null && parse.GetValue(issuer) is { } i)
        {
            options.Issuer = i;
        }
        if (options.Validate() is { } problem)
        {
            throw CliException.Usage(problem.Replace("Assent:Issuer", "--issuer", StringComparison.Ordinal));
        }
        return options;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
