using System.Text.Json;

namespace Assent.Mcp.Tests;

/// <summary>RFC 8785 (JCS), checked against the RFC's own examples.</summary>
public sealed class CanonicalJsonTests
{
    private static string Canonical(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return CanonicalJson.Serialize(doc.RootElement);
    }

    [Fact]
    public void Members_are_sorted_by_utf16_code_units_and_whitespace_is_dropped()
    {
        // RFC 8785 §3.2.3's sorting example: "\u20ac" (€), "\r", "\ufb33" (a Hebrew letter), "1", "\ud83d\ude00" (😀), "\u0080", "ö".
        var input = """{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}""";
        var names = JsonDocument.Parse(Canonical(input)).RootElement.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Equal(["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"], names);
        Assert.Equal("""{"a":[1,{"b":null}],"c":"d e"}""", Canonical("{ \"c\" : \"d e\" ,\n \"a\" : [ 1 , { \"b\" : null } ] }"));
    }

    [Fact]
    public void The_rfc_example_canonicalizes_byte_for_byte()
    {
        // RFC 8785 §3.2.2 example input and its canonical output.
        var input = """
            {
              "numbers": [333333333.33333329, 1E30, 4.50,
                          2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """;
        Assert.Equal("""{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}""", Canonical(input));
    }

    [Theory]
    // RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
    [InlineData(0.0, "0")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(9007199254740992.0, "9007199254740992")]
    [InlineData(295147905179352830000.0, "295147905179352830000")]
    [InlineData(1e21, "1e+21")]
    [InlineData(1e-7, "1e-7")]
    [InlineData(0.000001, "0.000001")]
    [InlineData(123.456, "123.456")]
    [InlineData(-42.0, "-42")]
    [InlineData(333333333.3333333, "333333333.3333333")]
    public void Numbers_print_as_ecmascript_does(double value, string expected) => Assert.Equal(expected, CanonicalJson.Number(value));

    [Fact]
    public void Negative_zero_prints_as_zero() => Assert.Equal("0", CanonicalJson.Number(-0.0));

    [Fact]
    public void Two_spellings_of_the_same_arguments_are_one_canonical_form() =>
        Assert.Equal(Canonical("""{"env":"prod","replicas":3,"service":"api"}"""), Canonical("""{ "service": "api", "replicas": 3.0, "env": "prod" }"""));

    [Fact]
    public void A_repeated_member_name_is_refused()
    {
        using var doc = JsonDocument.Parse("""{"tool":"safe","tool":"rm -rf"}""");
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(doc.RootElement));
    }
}
