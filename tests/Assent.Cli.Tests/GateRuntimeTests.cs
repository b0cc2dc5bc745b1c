using System.Text;
using Assent.Cli.Mcp;

namespace Assent.Cli.Tests;

/// <summary>docs/mcp.md §4: the gate relaunches itself with the arguments and environment it got, byte for byte.</summary>
public sealed class GateRuntimeTests
{
    [Fact]
    public void Proc_entries_keep_empty_arguments_and_bytes_that_are_not_utf8()
    {
        byte[] cmdline = [.. "dotnet\0assent.dll\0--message\0\0--\0"u8, 0xff, 0xfe, 0];
        var entries = GateRuntime.Entries(cmdline);
        Assert.Equal(6, entries.Count);
        Assert.Equal(["dotnet", "assent.dll", "--message", "", "--"], entries.Take(5).Select(e => Encoding.UTF8.GetString(e)));
        Assert.Equal(new byte[] { 0xff, 0xfe }, entries[5]);
    }

    [Fact]
    public void Only_the_gate_settings_are_taken_out_of_the_servers_environment()
    {
        // The marker names what the relaunch added; anything else in it is not the gate's to remove.
        var before = Environment.GetEnvironmentVariable(GateRuntime.Marker);
        try
        {
            Environment.SetEnvironmentVariable(GateRuntime.Marker, "DOTNET_TC_CallCounting,PATH,DOTNET_TieredPGO");
            Assert.Equal([GateRuntime.Marker, "DOTNET_TC_CallCounting", "DOTNET_TieredPGO"], GateRuntime.Added());
            Environment.SetEnvironmentVariable(GateRuntime.Marker, "keep");
            Assert.Equal([GateRuntime.Marker], GateRuntime.Added());
        }
        finally
        {
            Environment.SetEnvironmentVariable(GateRuntime.Marker, before);
        }
    }
}
