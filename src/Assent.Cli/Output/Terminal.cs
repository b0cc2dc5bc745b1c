using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Assent.Protocol.Approvals;
using Spectre.Console;

namespace Assent.Cli.Output;

/// <summary>Where output goes: <c>--json</c> gets exactly one JSON object on stdout; people get text.</summary>
internal static class Terminal
{
    /// <summary>
    /// Spectre.Console for tables and colour, on stdout. When stdout is a file or a pipe there are no
    /// escape codes and no wrapping at 80 columns, so ids and URLs stay whole for whoever reads them.
    /// </summary>
    public static IAnsiConsole Rich()
    {
        var redirected = Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = InteractionSupport.No,
        });
        if (redirected)
        {
            console.Profile.Width = 240;
        }
        return console;
    }

    public static async Task WriteJsonAsync<T>(T value, JsonTypeInfo<T> type)
    {
        await Console.Out.WriteLineAsync(JsonSerializer.Serialize(value, type));
        await Console.Out.FlushAsync();
    }

    /// <summary>
    /// Shows text from another party (binding messages, client and device names, details) as is, except
    /// what could hide or reorder it or rewrite the terminal: each code point the server would refuse
    /// (<see cref="DisplayText"/>: controls, bidi and other format characters, default-ignorables, …) is
    /// shown as <c>⟨U+XXXX⟩</c>, whether the text comes from an older row or another server.
    /// </summary>
    public static string Visible(string? text) => DisplayText.Escape(text);
}
