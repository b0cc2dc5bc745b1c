using System.Text.Json;
using Assent.Protocol.Approvals;

namespace Assent.Protocol.Tests.Approvals;

public sealed class DisplayTextTests
{
    [Theory]
    // Cc: C0 controls (NUL, TAB, LF, ESC, DEL) and C1 controls (NEL, CSI).
    [InlineData("\u0000", 0x0000, "control character")]
    [InlineData("\t", 0x0009, "control character")]
    [InlineData("\n", 0x000A, "control character")]
    [InlineData("\u001B[2J", 0x001B, "control character")]
    [InlineData("\u007F", 0x007F, "control character")]
    [InlineData("\u0085", 0x0085, "control character")]
    [InlineData("\u009B", 0x009B, "control character")]
    // UAX #9 §2: explicit embeddings, overrides, isolates and their pops; implicit marks.
    [InlineData("\u202A", 0x202A, "bidi embedding")]
    [InlineData("\u202B", 0x202B, "bidi embedding")]
    [InlineData("\u202C", 0x202C, "bidi pop")]
    [InlineData("\u202D", 0x202D, "bidi override")]
    [InlineData("\u202E", 0x202E, "bidi override")]
    [InlineData("\u2066", 0x2066, "bidi isolate")]
    [InlineData("\u2068", 0x2068, "bidi isolate")]
    [InlineData("\u2069", 0x2069, "bidi pop")]
    [InlineData("\u200E", 0x200E, "bidi mark")]
    [InlineData("\u200F", 0x200F, "bidi mark")]
    [InlineData("\u061C", 0x061C, "bidi mark")]
    // Cf: zero-width and other invisible format characters.
    [InlineData("\u200B", 0x200B, "invisible format character")]
    [InlineData("\u200C", 0x200C, "invisible format character")]
    [InlineData("\u200D", 0x200D, "invisible format character")]
    [InlineData("\u2060", 0x2060, "invisible format character")]
    [InlineData("\u2064", 0x2064, "invisible format character")]
    [InlineData("\uFEFF", 0xFEFF, "invisible format character")]
    [InlineData("\u00AD", 0x00AD, "invisible format character")]
    [InlineData("\u180E", 0x180E, "invisible format character")]
    [InlineData("\u0600", 0x0600, "invisible format character")]
    [InlineData("\uFFF9", 0xFFF9, "invisible format character")]
    [InlineData("\U0001BCA0", 0x1BCA0, "invisible format character")]
    [InlineData("\U0001D173", 0x1D173, "invisible format character")]
    // Tags (Cf): invisible letters after an emoji or anywhere.
    [InlineData("\U000E0001", 0xE0001, "tag character")]
    [InlineData("\U000E0041", 0xE0041, "tag character")]
    [InlineData("\U000E007F", 0xE007F, "tag character")]
    // Zl, Zp.
    [InlineData("\u2028", 0x2028, "line separator")]
    [InlineData("\u2029", 0x2029, "paragraph separator")]
    // Co: private use, in the BMP and in plane 15.
    [InlineData("\uE000", 0xE000, "private use character")]
    [InlineData("\U000F0000", 0xF0000, "private use character")]
    // Cn: unassigned.
    [InlineData("\u0378", 0x0378, "unassigned code point")]
    [InlineData("\U0010FFFF", 0x10FFFF, "unassigned code point")]
    // Default_Ignorable_Code_Point outside Cf: fillers, the combining grapheme joiner, Khmer inherent vowels,
    // reserved ignorables, and every variation selector but FE0E/FE0F.
    [InlineData("\u3164", 0x3164, "default-ignorable character")]
    [InlineData("\uFFA0", 0xFFA0, "default-ignorable character")]
    [InlineData("\u115F", 0x115F, "default-ignorable character")]
    [InlineData("\u1160", 0x1160, "default-ignorable character")]
    [InlineData("a\u034F", 0x034F, "default-ignorable character")]
    [InlineData("\u17B4", 0x17B4, "default-ignorable character")]
    [InlineData("\u2065", 0x2065, "default-ignorable character")]
    [InlineData("\uFFF0", 0xFFF0, "default-ignorable character")]
    [InlineData("\U000E0000", 0xE0000, "default-ignorable character")]
    [InlineData("\U000E0FFF", 0xE0FFF, "default-ignorable character")]
    [InlineData("x\uFE00", 0xFE00, "variation selector")]
    [InlineData("\u180B", 0x180B, "variation selector")]
    [InlineData("\u180F", 0x180F, "variation selector")]
    [InlineData("\U000E0100", 0xE0100, "variation selector")]
    public void Every_character_that_hides_or_reorders_text_is_found_with_its_class(string text, int codePoint, string why)
    {
        Assert.Equal((codePoint, why), DisplayText.FindHidden("Pay " + text + " 125.00"));
        Assert.False(DisplayText.IsDisplayable(text));
        Assert.Equal($"binding_message contains {DisplayText.Name(codePoint)} ({why})", DisplayText.Problem("binding_message", text));
    }

    [Fact]
    public void A_surrogate_that_is_not_half_of_a_pair_is_found_as_itself()
    {
        // Cs. Not theory data: xunit turns lone surrogates in test names into U+FFFD.
        Assert.Equal((0xD800, "unpaired surrogate"), DisplayText.FindHidden("Pay \uD800 125.00"));
        Assert.Equal((0xDC00, "unpaired surrogate"), DisplayText.FindHidden("\uDC00\uD83D\uDE00"));
        Assert.Equal((0xD83D, "unpaired surrogate"), DisplayText.FindHidden("😀 \uD83D"));
        Assert.Equal((0xD83D, "unpaired surrogate"), DisplayText.FindHidden("\uD83D\uD83D\uDE00"));
        Assert.Equal("binding_message contains U+D800 (unpaired surrogate)", DisplayText.Problem("binding_message", "\uD800"));
    }

    [Theory]
    [InlineData("Pay Zoë 125.00 € to ACME GmbH")]
    [InlineData("Überweisung an Müller & Söhne: <b>42</b> \"quoted\" 'single' \\ /")]
    [InlineData("e\u0301 and a non\u00A0breaking space, an ideographic\u3000space")]
    [InlineData("مرحبا بالعالم")]
    [InlineData("שלום")]
    [InlineData("送金 125 円")]
    [InlineData("Deploy 🚀 now 😀")]
    [InlineData("I \u2764\uFE0F it")]
    [InlineData("\u2764\uFE0E as text")]
    [InlineData("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛")]
    [InlineData("")]
    public void Ordinary_text_in_any_script_emoji_and_presentation_selectors_are_displayable(string text)
    {
        Assert.Null(DisplayText.FindHidden(text));
        Assert.True(DisplayText.IsDisplayable(text));
        Assert.Null(DisplayText.Problem("binding_message", text));
        Assert.Same(text, DisplayText.Escape(text));
    }

    [Fact]
    public void An_emoji_zwj_sequence_is_refused_for_its_zero_width_joiner()
    {
        Assert.Equal((0x200D, "invisible format character"), DisplayText.FindHidden("👨\u200D👩\u200D👧"));
    }

    [Fact]
    public void Escape_shows_each_refused_code_point_as_its_unicode_name_and_keeps_the_rest()
    {
        Assert.Equal("pay ⟨U+202E⟩00.521 ⟨U+0000⟩⟨U+001B⟩[2J", DisplayText.Escape("pay \u202E00.521 \u0000\u001B[2J"));
        Assert.Equal("flag🏴⟨U+E0067⟩⟨U+E0062⟩⟨U+E007F⟩ ok😀", DisplayText.Escape("flag🏴\U000E0067\U000E0062\U000E007F ok😀"));
        Assert.Equal("a⟨U+D800⟩b⟨U+DC00⟩", DisplayText.Escape("a\uD800b\uDC00"));
        Assert.Equal("line⟨U+2028⟩two ⟨U+3164⟩ ⟨U+200B⟩", DisplayText.Escape("line\u2028two \u3164 \u200B"));
        Assert.Equal("I \u2764\uFE0F it", DisplayText.Escape("I \u2764\uFE0F it"));
        Assert.Equal("", DisplayText.Escape(null));
    }

    [Fact]
    public void Json_is_checked_in_every_member_name_and_string_value_at_any_depth()
    {
        static string? Check(string json)
        {
            using var doc = JsonDocument.Parse(json);
            return DisplayText.Problem("authorization_details", doc.RootElement);
        }

        Assert.Null(Check("""[{"type":"payment","amount":"125.00","to":{"name":"Zoë 😀","tags":["a",1,true,null]}}]"""));
        Assert.Equal("authorization_details[0].amount contains U+202E (bidi override)", Check("""[{"type":"payment","amount":"\u202e00.521"}]"""));
        Assert.Equal("authorization_details[1].to.tags[2] contains U+0000 (control character)",
            Check("""[{"type":"a"},{"type":"payment","to":{"tags":["x","y","\u0000"]}}]"""));
        Assert.Equal("authorization_details[0].memo contains U+001B (control character)", Check("""[{"type":"payment","memo":"\u001b[31mred"}]"""));
        Assert.Equal("authorization_details[0] has a member name that contains U+202E (bidi override)", Check("""[{"type":"payment","\u202eyek":"1"}]"""));
        Assert.Equal("authorization_details[0].? contains U+200B (invisible format character)",
            Check("""[{"type":"payment","naïve":"a\u200bb"}]"""));
        Assert.Equal("authorization_details[0].x contains U+E0041 (tag character)", Check("""[{"type":"payment","x":"\udb40\udc41"}]"""));
        Assert.Equal("authorization_details[0].x contains an unpaired surrogate", Check("""[{"type":"payment","x":"\ud800"}]"""));
        Assert.Equal("authorization_details[0] has a member name that contains an unpaired surrogate", Check("""[{"type":"payment","\udc00":"x"}]"""));
    }
}
