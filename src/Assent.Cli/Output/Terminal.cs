using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
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
    /// Shows text from another party (binding messages, client names) as is, except characters that
    /// could rewrite the terminal: control and bidi-override characters are shown as \uXXXX escapes.
    /// </summary>
    public static string Visible(string? text)
    {
        if (text is null)
        {
            return "";
        }
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069')
            {
                sb.Append($"\\u{(int)c:X4}");
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }
}
