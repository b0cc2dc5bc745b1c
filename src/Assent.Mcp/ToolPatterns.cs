namespace Assent.Mcp;

/// <summary>
/// Tool-name patterns (docs/mcp.md §2): a comma-separated list of globs where <c>*</c> matches any run of
/// characters and <c>?</c> one; matched against the whole name, case-sensitively (MCP tool names are
/// case-sensitive, MCP 2025-11-25 server/tools "Tool names"). Every other character stands for itself.
/// </summary>
/// <remarks>
/// Matched by a plain wildcard walk rather than a regular expression: no pattern can backtrack without bound
/// (the walk is at most name length × pattern length steps), and <c>assent mcp gate</c>, which classifies every
/// message it relays, does not load the regular-expression engine for it (docs/mcp.md §4).
/// </remarks>
public sealed class ToolPatterns
{
    private readonly string[] _patterns;

    /// <summary>Parses patterns; each item of <paramref name="patterns"/> may itself hold a comma-separated list.</summary>
    /// <exception cref="ArgumentException">A pattern is empty or contains whitespace.</exception>
    public ToolPatterns(IEnumerable<string> patterns)
    {
        var list = new List<string>();
        foreach (var item in patterns)
        {
            foreach (var raw in item.Split(','))
            {
                var pattern = raw.Trim();
                if (pattern.Length == 0)
                {
                    throw new ArgumentException("a tool pattern is empty (patterns are comma-separated globs such as deploy_*,delete_?)");
                }
                if (pattern.Any(char.IsWhiteSpace))
                {
                    throw new ArgumentException($"the tool pattern '{pattern}' contains whitespace");
                }
                list.Add(pattern);
            }
        }
        _patterns = [.. list];
    }

    /// <summary>No pattern at all.</summary>
    public bool IsEmpty => _patterns.Length == 0;

    /// <summary>True when <paramref name="toolName"/> matches one of the patterns.</summary>
    public bool Matches(string toolName)
    {
        foreach (var pattern in _patterns)
        {
            if (Glob(pattern, toolName))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Whole-name glob match, by UTF-16 code unit. A mismatch after a <c>*</c> retries with that star taking one more
    /// character; only the latest star needs retrying, since an earlier one could only give up characters the latest
    /// can take as well.
    /// </summary>
    private static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> name)
    {
        int p = 0, n = 0, star = -1, resume = 0;
        while (n < name.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                resume = n;
            }
            else if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == name[n]))
            {
                p++;
                n++;
            }
            else if (star >= 0)
            {
                p = star + 1;
                n = ++resume;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }
        return p == pattern.Length;
    }
}
