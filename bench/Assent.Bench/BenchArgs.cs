using System.Globalization;

namespace Assent.Bench;

/// <summary><c>--name value</c> pairs and bare <c>--flag</c>s.</summary>
internal sealed class BenchArgs(Dictionary<string, string?> values)
{
    public static BenchArgs Parse(IEnumerable<string> args)
    {
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        string? pending = null;
        foreach (var arg in args)
        {
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (pending is not null)
                {
                    values[pending] = null;
                }
                pending = arg[2..];
            }
            else if (pending is not null)
            {
                values[pending] = arg;
                pending = null;
            }
            else
            {
                throw new UsageException($"unexpected argument '{arg}'");
            }
        }
        if (pending is not null)
        {
            values[pending] = null;
        }
        return new BenchArgs(values);
    }

    /// <summary>Every option given, by name without its dashes.</summary>
    public IEnumerable<string> Names => values.Keys;

    public bool Flag(string name) => values.ContainsKey(name);

    public string? String(string name) => values.GetValueOrDefault(name);

    public string Required(string name) => String(name) ?? throw new UsageException($"--{name} is required");

    public int Int(string name, int fallback, int min, int max)
    {
        if (String(name) is not { } text)
        {
            return fallback;
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new UsageException($"--{name} must be a whole number from {min} to {max}");
        }
        return value;
    }
}

/// <summary>The command line itself is wrong: the message, then the command's usage.</summary>
internal sealed class UsageException(string message) : ArgumentException(message);
