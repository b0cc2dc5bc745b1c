using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Assent.Mcp;

/// <summary>
/// The JSON Canonicalization Scheme (RFC 8785, JCS): object members sorted by the UTF-16 code units of their
/// names, no insignificant whitespace, strings with the minimal escapes of RFC 8785 §3.2.2.2, numbers as
/// ECMAScript's Number.prototype.toString prints the IEEE 754 double (RFC 8785 §3.2.2.3). The device signs
/// the arguments in this form (docs/mcp.md §2), so two calls with the same arguments in another member order
/// or number spelling are the same approval. Hand-written: no package served here implements RFC 8785, and it
/// is short enough to test against the RFC's own examples.
/// </summary>
public static class CanonicalJson
{
    /// <summary>The canonical form of <paramref name="element"/>.</summary>
    /// <exception cref="ArgumentException">A number is not finite, or an object repeats a member name (RFC 8785 §3.1, I-JSON).</exception>
    public static string Serialize(JsonElement element)
    {
        var sb = new StringBuilder();
        Write(sb, element);
        return sb.ToString();
    }

    /// <summary>The canonical form of <paramref name="element"/> parsed back: a JSON value whose raw text is canonical.</summary>
    public static JsonElement Canonicalize(JsonElement element)
    {
        using var doc = JsonDocument.Parse(Serialize(element));
        return doc.RootElement.Clone();
    }

    private static void Write(StringBuilder sb, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var members = new List<(string Name, JsonElement Value)>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    // RFC 8785 §3.1: input must be I-JSON (RFC 7493 §2.3), which forbids duplicate names; a parser
                    // differential on duplicates would let the approved and the executed arguments differ.
                    if (!seen.Add(property.Name))
                    {
                        throw new ArgumentException($"the object repeats the member name '{property.Name}'");
                    }
                    members.Add((property.Name, property.Value));
                }
                // RFC 8785 §3.2.3: sort by the names' UTF-16 code units, which is what ordinal comparison of .NET strings does.
                members.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
                sb.Append('{');
                for (var i = 0; i < members.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }
                    WriteString(sb, members[i].Name);
                    sb.Append(':');
                    Write(sb, members[i].Value);
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                var first = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }
                    first = false;
                    Write(sb, item);
                }
                sb.Append(']');
                break;
            case JsonValueKind.String:
                WriteString(sb, element.GetString()!);
                break;
            case JsonValueKind.Number:
                sb.Append(Number(element.GetDouble()));
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            case JsonValueKind.Null:
                sb.Append("null");
                break;
            default:
                throw new ArgumentException($"not a JSON value: {element.ValueKind}");
        }
    }

    /// <summary>RFC 8785 §3.2.2.2: only <c>"</c>, <c>\</c> and the C0 controls are escaped; the short forms where JSON has one, else <c>\u00xx</c> in lower case.</summary>
    private static void WriteString(StringBuilder sb, string value)
    {
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>
    /// RFC 8785 §3.2.2.3: the ECMAScript Number.prototype.toString form (ECMA-262 §6.1.6.1.20) of the double: the
    /// shortest digits that round-trip (which .NET's "R" format gives), placed by the ECMAScript rules.
    /// </summary>
    internal static string Number(double value)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentException("NaN and Infinity are not JSON numbers (RFC 8785 §3.2.2.3)");
        }
        if (value == 0)
        {
            return "0"; // also -0
        }
        var negative = value < 0;
        // Shortest round-trip digits: "R" gives them, possibly in exponent form; normalise to digits + exponent.
        var shortest = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        var ePos = shortest.IndexOfAny(['E', 'e']);
        var mantissa = ePos < 0 ? shortest : shortest[..ePos];
        var exp10 = ePos < 0 ? 0 : int.Parse(shortest[(ePos + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        var dot = mantissa.IndexOf('.');
        var intPart = dot < 0 ? mantissa : mantissa[..dot];
        var fracPart = dot < 0 ? "" : mantissa[(dot + 1)..];
        var digits = (intPart + fracPart).TrimStart('0');
        // n: the position of the decimal point relative to the digit string (ECMA-262's n).
        var leadingZeros = (intPart + fracPart).Length - (intPart + fracPart).TrimStart('0').Length;
        var n = intPart.Length + exp10 - leadingZeros;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            return "0";
        }
        var k = digits.Length;
        string text;
        if (k <= n && n <= 21)
        {
            text = digits + new string('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            text = digits[..n] + "." + digits[n..];
        }
        else if (-6 < n && n <= 0)
        {
            text = "0." + new string('0', -n) + digits;
        }
        else
        {
            var e = n - 1;
            var sign = e < 0 ? "-" : "+";
            text = (k == 1 ? digits : digits[..1] + "." + digits[1..]) + "e" + sign + Math.Abs(e).ToString(CultureInfo.InvariantCulture);
        }
        return negative ? "-" + text : text;
    }
}
