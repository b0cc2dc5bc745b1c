using System.Collections;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Assent.Cli.Mcp;

/// <summary>
/// Runtime settings for the <c>assent mcp gate</c> process alone (docs/mcp.md §4). The CLI's runtimeconfig is shared
/// with <c>assent server</c>, whose throughput needs tiered compilation and dynamic PGO; a relay that stays resident
/// beside an MCP host needs neither, and without them it holds ~10 MB less (no call-counting stubs, no second and third
/// copies of hot methods, no PGO data; bench/mcp.sh). The runtime reads these settings only when it starts, so the gate starts
/// itself once more, in place: execve(2) of the same executable with the same arguments and the settings added to
/// its environment. The process keeps its PID, its parent (the MCP host) and its stdin/stdout/stderr; it happens first
/// thing in Program.cs, before the command line is parsed or anything is read or started.
/// </summary>
/// <remarks>
/// Only on Linux (where <c>/proc/self/exe</c> and <c>/proc/self/cmdline</c> name the process exactly), only when the
/// CLI itself is the entry point, and only once: the marker variable records which settings were added, so the
/// relaunched gate neither relaunches again nor passes them on to the MCP server it runs (<see cref="Added"/>). A
/// setting already in the environment is the user's and is left as it is; <c>ASSENT_MCP_GATE_RUNTIME=keep</c> turns
/// the relaunch off. If execve fails, the gate simply runs with the settings it has.
/// </remarks>
internal static class GateRuntime
{
    /// <summary>Set in the relaunched gate's environment: the settings it added (comma-separated), or <c>keep</c> from the user.</summary>
    public const string Marker = "ASSENT_MCP_GATE_RUNTIME";

    /// <summary>
    /// <c>DOTNET_TC_CallCounting=0</c>: methods are not counted and never recompiled: precompiled (ReadyToRun) framework
    /// code runs as it is, the rest stays as first compiled. No call-counting stubs, no second copies, no PGO data; the
    /// relay's work per message is small enough that optimised copies of it would not be noticed (bench/mcp.sh prints the
    /// gate's CPU per message). It is a runtime setting without a runtimeconfig name, hence the environment.
    /// <c>DOTNET_TieredPGO=0</c> (documented) as well, so that a runtime ignoring the first still leaves out the
    /// instrumented copies, the larger part of the saving.
    /// </summary>
    internal static readonly (string Name, string Value)[] Settings = [("DOTNET_TC_CallCounting", "0"), ("DOTNET_TieredPGO", "0")];

    private delegate int Execve(string path, string?[] argv, string?[] envp);

    /// <summary>Relaunches the process with <see cref="Settings"/> when that applies; returns when it does not (or execve failed).</summary>
    public static void RelaunchIfNeeded(TextWriter log)
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Marker) is not null
            || Assembly.GetEntryAssembly() != typeof(GateRuntime).Assembly)
        {
            return;
        }
        var added = Settings.Where(s => Environment.GetEnvironmentVariable(s.Name) is null).ToList();
        if (added.Count == 0)
        {
            return;
        }
        string?[] argv;
        try
        {
            // proc(5): the arguments as the process got them, NUL-separated (so `dotnet assent.dll …`, `dotnet exec …`
            // and the apphost all come back as they were).
            var cmdline = File.ReadAllBytes("/proc/self/cmdline");
            argv = [.. Encoding.UTF8.GetString(cmdline).TrimEnd('\0').Split('\0'), null];
        }
        catch (IOException)
        {
            return;
        }
        var environment = new List<string?>();
        foreach (DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            environment.Add($"{variable.Key}={variable.Value}");
        }
        environment.AddRange(added.Select(s => $"{s.Name}={s.Value}"));
        environment.Add($"{Marker}={string.Join(',', added.Select(s => s.Name))}");
        environment.Add(null);
        if (!NativeLibrary.TryLoad("libc.so.6", out var libc) && !NativeLibrary.TryLoad("libc.so", out libc))
        {
            return;
        }
        if (!NativeLibrary.TryGetExport(libc, "execve", out var execve))
        {
            return;
        }
        // The runtime's diagnostic endpoints are files named after the PID (and its start time), which the relaunched
        // runtime keeps and must create again: this runtime's are removed first, or dotnet-counters and debuggers could
        // not reach the gate.
        try
        {
            foreach (var pattern in new[] { $"dotnet-diagnostic-{Environment.ProcessId}-*-socket", $"clr-debug-pipe-{Environment.ProcessId}-*" })
            {
                foreach (var file in Directory.EnumerateFiles(Path.GetTempPath(), pattern))
                {
                    File.Delete(file);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Diagnostics may not reach the relaunched gate; it runs all the same.
        }
        log.Flush();
        // The same executable by its own path (so ps and top still name it), the same arguments. Returns only on
        // failure (errno says why); the gate then runs on as it is.
        _ = Marshal.GetDelegateForFunctionPointer<Execve>(execve)(Environment.ProcessPath ?? "/proc/self/exe", argv, [.. environment]);
    }

    /// <summary>The variables the relaunch added (and the marker), to take out of the MCP server's environment.</summary>
    public static IEnumerable<string> Added()
    {
        if (Environment.GetEnvironmentVariable(Marker) is not { } marker)
        {
            return [];
        }
        var known = Settings.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        return [Marker, .. marker.Split(',').Where(known.Contains)];
    }
}
