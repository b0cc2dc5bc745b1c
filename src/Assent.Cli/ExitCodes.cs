namespace Assent.Cli;

/// <summary>Exit codes of docs/cli.md §2; 64 and 69 are sysexits.h EX_USAGE and EX_UNAVAILABLE.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int DeniedOrInvalid = 1;
    public const int ExpiredOrTimeout = 2;
    public const int Usage = 64;
    public const int Unavailable = 69;
    public const int Interrupted = 130;
}

/// <summary>A failure the user can act on: its message goes to stderr as is, and the process exits with the code.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode => exitCode;

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);

    public static CliException Invalid(string message) => new(ExitCodes.DeniedOrInvalid, message);
}
