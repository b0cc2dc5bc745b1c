using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Assent.Cli.Output;

/// <summary>Where output goes: <c>--json</c> gets exactly one JSON object on stdout; people get text.</summary>
internal static class Terminal
{
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
