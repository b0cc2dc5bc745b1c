using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Assent.Protocol.Approvals;

/// <summary>
/// The one rule for text a human is shown before approving (binding messages, every string of
/// <c>authorization_details</c>, agent and device names): nothing that is invisible, that reorders
/// what is around it, or that a terminal or browser may render as something else.
/// </summary>
/// <remarks>
/// Refused, by code point (never by UTF-16 unit): general categories Cc (controls, C0 and C1), Cf
/// (format), Zl and Zp (line and paragraph separators), Cs (an unpaired surrogate), Co (private
/// use) and Cn (unassigned), and every other Default_Ignorable_Code_Point of Unicode's
/// DerivedCoreProperties.txt, except U+FE0E and U+FE0F, which only pick text or emoji
/// presentation. That covers the bidi controls of UAX #9 §2 (embeddings, overrides, isolates,
/// marks), zero-width characters, tags, fillers and the other variation selectors: the
/// characters UTS #39 (Unicode Security Mechanisms) names as ways text deceives its reader.
/// Approvers show whatever this rule refuses as <c>⟨U+XXXX⟩</c> (<see cref="Escape"/>), for rows
/// stored before the rule or sent by another server; the web app applies the same rule with
/// Unicode property escapes.
/// </remarks>
public static class DisplayText
{
    /// <summary>U+FE0E VARIATION SELECTOR-15: text presentation of the preceding character.</summary>
    private const int TextPresentation = 0xFE0E;

    /// <summary>U+FE0F VARIATION SELECTOR-16: emoji presentation of the preceding character.</summary>
    private const int EmojiPresentation = 0xFE0F;

    /// <summary>
    /// Default_Ignorable_Code_Point of DerivedCoreProperties.txt (Unicode 16.0 and 17.0 agree),
    /// as inclusive ranges. .NET exposes no binary properties, so the list is written out here.
    /// </summary>
    private static readonly (int First, int Last)[] DefaultIgnorable =
    [
        (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
        (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
        (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
    ];

    /// <summary>
    /// Why a code point may not be shown, e.g. <c>"bidi override"</c>; null when it may. A value in
    /// the surrogate range stands for a surrogate that is not half of a pair.
    /// </summary>
    public static string? Classify(int codePoint)
    {
        if (codePoint is >= 0xD800 and <= 0xDFFF)
        {
            return "unpaired surrogate";
        }
        if (codePoint is TextPresentation or EmojiPresentation)
        {
            return null;
        }
        // UAX #9 §2: the explicit directional formatting characters and the implicit marks.
        switch (codePoint)
        {
            case 0x202A or 0x202B:
                return "bidi embedding";
            case 0x202D or 0x202E:
                return "bidi override";
            case 0x2066 or 0x2067 or 0x2068:
                return "bidi isolate";
            case 0x202C or 0x2069:
                return "bidi pop";
            case 0x200E or 0x200F or 0x061C:
                return "bidi mark";
        }
        if (codePoint is 0xE0001 or >= 0xE0020 and <= 0xE007F)
        {
            return "tag character";
        }
        if (codePoint is >= 0xFE00 and <= 0xFE0F or >= 0xE0100 and <= 0xE01EF or >= 0x180B and <= 0x180D or 0x180F)
        {
            return "variation selector";
        }
        var category = Rune.GetUnicodeCategory(new Rune(codePoint));
        switch (category)
        {
            case UnicodeCategory.Control:
                return "control character";
            case UnicodeCategory.LineSeparator:
                return "line separator";
            case UnicodeCategory.ParagraphSeparator:
                return "paragraph separator";
            case UnicodeCategory.PrivateUse:
                return "private use character";
            case UnicodeCategory.Format:
                return "invisible format character";
        }
        if (IsDefaultIgnorable(codePoint))
        {
            return "default-ignorable character";
        }
        return category == UnicodeCategory.OtherNotAssigned ? "unassigned code point" : null;
    }

    /// <summary>The first code point of <paramref name="text"/> that may not be shown, or null when all may.</summary>
    public static (int CodePoint, string Class)? FindHidden(ReadOnlySpan<char> text)
    {
        while (!text.IsEmpty)
        {
            var status = Rune.DecodeFromUtf16(text, out var rune, out var used);
            // An unpaired surrogate decodes as invalid data: report the unit itself.
            var codePoint = status == OperationStatus.Done ? rune.Value : text[0];
            if (Classify(codePoint) is { } why)
            {
                return (codePoint, why);
            }
            text = text[Math.Max(used, 1)..];
        }
        return null;
    }

    /// <summary>True when every code point of <paramref name="text"/> may be shown.</summary>
    public static bool IsDisplayable(ReadOnlySpan<char> text) => FindHidden(text) is null;

    /// <summary>
    /// Null when <paramref name="text"/> may be shown; otherwise why not, naming the field, e.g.
    /// <c>"binding_message contains U+202E (bidi override)"</c>. ASCII only, as RFC 6749 §5.2
    /// requires of <c>error_description</c>.
    /// </summary>
    public static string? Problem(string field, ReadOnlySpan<char> text) =>
        FindHidden(text) is var (codePoint, why) ? $"{field} contains {Name(codePoint)} ({why})" : null;

    /// <summary>
    /// Null when every member name and string value of <paramref name="element"/>, at any depth, may
    /// be shown; otherwise why not, with the JSON path of the offending string.
    /// </summary>
    public static string? Problem(string field, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return TryRead(element, static e => e.GetString(), out var text) ? Problem(field, text) : $"{field} contains an unpaired surrogate";
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (Problem($"{field}[{index++}]", item) is { } why)
                    {
                        return why;
                    }
                }
                return null;
            case JsonValueKind.Object:
                foreach (var member in element.EnumerateObject())
                {
                    if (!TryRead(member, static m => m.Name, out var name))
                    {
                        return $"{field} has a member name that contains an unpaired surrogate";
                    }
                    if (FindHidden(name) is var (codePoint, reason))
                    {
                        return $"{field} has a member name that contains {Name(codePoint)} ({reason})";
                    }
                    if (Problem(field + PathSegment(name), member.Value) is { } why)
                    {
                        return why;
                    }
                }
                return null;
            default:
                return null;
        }
    }

    /// <summary>
    /// The text with every code point that may not be shown replaced by a visible <c>⟨U+XXXX⟩</c>;
    /// everything else as is.
    /// </summary>
    public static string Escape(string? text)
    {
        if (text is null)
        {
            return "";
        }
        if (IsDisplayable(text))
        {
            return text;
        }
        var sb = new StringBuilder(text.Length + 16);
        var rest = text.AsSpan();
        while (!rest.IsEmpty)
        {
            var status = Rune.DecodeFromUtf16(rest, out var rune, out var used);
            used = Math.Max(used, 1);
            var codePoint = status == OperationStatus.Done ? rune.Value : rest[0];
            if (Classify(codePoint) is null)
            {
                sb.Append(rest[..used]);
            }
            else
            {
                sb.Append('⟨').Append(Name(codePoint)).Append('⟩');
            }
            rest = rest[used..];
        }
        return sb.ToString();
    }

    /// <summary>The Unicode notation of a code point: <c>U+202E</c>, <c>U+E0041</c>.</summary>
    public static string Name(int codePoint) => "U+" + codePoint.ToString("X4", CultureInfo.InvariantCulture);

    private static bool IsDefaultIgnorable(int codePoint)
    {
        foreach (var (first, last) in DefaultIgnorable)
        {
            if (codePoint < first)
            {
                return false;
            }
            if (codePoint <= last)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>System.Text.Json refuses to turn an escaped unpaired surrogate (<c>"\ud800"</c>) into a string: false then.</summary>
    private static bool TryRead<T>(T source, Func<T, string?> read, out string text)
    {
        try
        {
            text = read(source) ?? "";
            return true;
        }
        catch (InvalidOperationException)
        {
            text = "";
            return false;
        }
    }

    /// <summary><c>.name</c> when the member name is short printable ASCII (RFC 6749 §5.2), else <c>.?</c>.</summary>
    private static string PathSegment(string name) =>
        name.Length is > 0 and <= 40 && name.All(c => c is >= ' ' and <= '~' and not ('"' or '\\')) ? "." + name : ".?";
}
