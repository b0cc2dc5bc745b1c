using System.Text.RegularExpressions;

namespace Assent.Mcp;

/// <summary>
/// Tool-name patterns (docs/mcp.md §2): a comma-separated list of globs where <c>*</c> matches any run of
/// characters and <c>?</c> one; matched against the whole name, case-sensitively (MCP tool names are
/// case-sensitive, MCP 2025-11-25 server/tools "Tool names").
/// </summary>
public sealed class ToolPatterns
{
    private readonly Regex[] _patterns;

    /// <summary>Parses patterns; each item of <paramref name="patterns"/> may itself hold a comma-separated list.</summary>
    /// <exception cref="ArgumentException">A pattern is empty or contains whitespace.</exception>
    public ToolPatterns(IEnumerable<string> patterns)
    {
        var list = new List<Regex>();
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
                var regex = "^" + Regex.Escape(pattern).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$";
                list.Add(new Regex(regex, RegexOptions.CultureInvariant | RegexOptions.Singleline, TimeSpan.FromSeconds(1)));
            }
        }
        _patterns = [.. list];
    }

    /// <summary>No pattern at all.</summary>
    public bool IsEmpty => _patterns.Length == 0;

    /// <summary>True when <paramref name="toolName"/> matches one of the patterns.</summary>
    public bool Matches(string toolName) => _patterns.Any(p => p.IsMatch(toolName));
}
