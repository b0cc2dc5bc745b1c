using System.Text;
using System.Text.Json;

namespace Assent.Mcp;

/// <summary>
/// A binding-message template such as <c>Deploy {service} to {env}</c>: each <c>{name}</c> is replaced by the
/// call's argument of that name (a string as it is, any other value as canonical JSON); <c>{{</c> and <c>}}</c>
/// are literal braces. The message is what the human reads on the device (docs/mcp.md §2), so an argument the
/// template names but the call lacks is an error, never an empty gap.
/// </summary>
public static class ApprovalTemplate
{
    /// <summary>The longest binding message a request may carry (docs/concepts.md §6: at most 256 characters).</summary>
    public const int MaxMessageLength = 256;

    /// <summary>The argument names <paramref name="template"/> uses, in order.</summary>
    /// <exception cref="ArgumentException">A brace is unbalanced or a placeholder empty.</exception>
    public static IReadOnlyList<string> Placeholders(string template)
    {
        var names = new List<string>();
        var probe = new Probe(names);
        Fill(template, probe, checkLength: false);
        return names;
    }

    /// <summary>Fills <paramref name="template"/> from <paramref name="arguments"/>.</summary>
    /// <exception cref="ArgumentException">An argument is missing, a brace is unbalanced, or the message exceeds 256 characters.</exception>
    public static string Fill(string template, IReadOnlyDictionary<string, JsonElement>? arguments) => Fill(template, arguments, checkLength: true);

    private static string Fill(string template, IReadOnlyDictionary<string, JsonElement>? arguments, bool checkLength)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < template.Length; i++)
        {
            var c = template[i];
            if (c == '{' && i + 1 < template.Length && template[i + 1] == '{')
            {
                sb.Append('{');
                i++;
            }
            else if (c == '}' && i + 1 < template.Length && template[i + 1] == '}')
            {
                sb.Append('}');
                i++;
            }
            else if (c == '{')
            {
                var end = template.IndexOf('}', i + 1);
                if (end < 0)
                {
                    throw new ArgumentException($"the approval template '{template}' has an unclosed '{{'");
                }
                var name = template[(i + 1)..end].Trim();
                if (name.Length == 0)
                {
                    throw new ArgumentException($"the approval template '{template}' has an empty placeholder");
                }
                if (arguments is null || !arguments.TryGetValue(name, out var value) || value.ValueKind is JsonValueKind.Undefined)
                {
                    throw new ArgumentException($"the approval message needs the argument '{name}', which the call does not give");
                }
                sb.Append(value.ValueKind == JsonValueKind.String ? value.GetString() : CanonicalJson.Serialize(value));
                i = end;
            }
            else if (c == '}')
            {
                throw new ArgumentException($"the approval template '{template}' has an unmatched '}}'");
            }
            else
            {
                sb.Append(c);
            }
        }
        var message = sb.ToString();
        if (checkLength && message.Length > MaxMessageLength)
        {
            throw new ArgumentException($"the approval message would be {message.Length} characters; at most {MaxMessageLength} are shown to the human");
        }
        return message;
    }

    /// <summary>Answers every name with an empty string and records it: how <see cref="Placeholders"/> reads a template.</summary>
    private sealed class Probe(List<string> names) : IReadOnlyDictionary<string, JsonElement>
    {
        private static readonly JsonElement Empty = JsonDocument.Parse("\"\"").RootElement.Clone();

        public JsonElement this[string key] => Empty;

        public IEnumerable<string> Keys => names;

        public IEnumerable<JsonElement> Values => names.Select(_ => Empty);

        public int Count => names.Count;

        public bool ContainsKey(string key) => true;

        public bool TryGetValue(string key, out JsonElement value)
        {
            names.Add(key);
            value = Empty;
            return true;
        }

        public IEnumerator<KeyValuePair<string, JsonElement>> GetEnumerator() => names.Select(n => KeyValuePair.Create(n, Empty)).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
