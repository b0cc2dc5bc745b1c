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

    private delegate int Execve(string path, IntPtr[] argv, IntPtr[] envp);

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
        List<byte[]> argv, environment;
        try
        {
            // proc(5): the arguments and the environment exactly as the process got them, byte for byte, each ended
            // by a NUL (so `dotnet assent.dll …`, `dotnet exec …` and the apphost all come back as they were, and
            // nothing is re-encoded on its way to the relaunched gate or the server it runs).
            argv = Entries(File.ReadAllBytes("/proc/self/cmdline"));
            environment = Entries(File.ReadAllBytes("/proc/self/environ"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        if (argv.Count == 0)
        {
            return;
        }
        environment.AddRange(added.Select(s => Encoding.UTF8.GetBytes($"{s.Name}={s.Value}")));
        environment.Add(Encoding.UTF8.GetBytes($"{Marker}={string.Join(',', added.Select(s => s.Name))}"));
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
        var args = Native(argv);
        var envp = Native(environment);
        try
        {
            // The same executable by its own path (so ps and top still name it), the same arguments. Returns only on
            // failure (errno says why); the gate then runs on as it is.
            _ = Marshal.GetDelegateForFunctionPointer<Execve>(execve)(Environment.ProcessPath ?? "/proc/self/exe", args, envp);
        }
        finally
        {
            foreach (var pointer in args.Concat(envp))
            {
                Marshal.FreeHGlobal(pointer);
            }
        }
    }

    /// <summary>NUL-terminated entries, as in <c>/proc/self/cmdline</c> and <c>/proc/self/environ</c>.</summary>
    internal static List<byte[]> Entries(byte[] data)
    {
        var entries = new List<byte[]>();
        var start = 0;
        for (var i = 0; i < data.Length; i++)
        {
            if (data[i] == 0)
            {
                entries.Add(data[start..i]);
                start = i + 1;
            }
        }
        return entries;
    }

    /// <summary>A NULL-terminated array of NUL-terminated C strings (execve(2)'s argv and envp); Zero entries are free to FreeHGlobal.</summary>
    private static IntPtr[] Native(List<byte[]> entries)
    {
        var pointers = new IntPtr[entries.Count + 1];
        for (var i = 0; i < entries.Count; i++)
        {
            pointers[i] = Marshal.AllocHGlobal(entries[i].Length + 1);
            Marshal.Copy(entries[i], 0, pointers[i], entries[i].Length);
            Marshal.WriteByte(pointers[i], entries[i].Length, 0);
        }
        return pointers;
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
