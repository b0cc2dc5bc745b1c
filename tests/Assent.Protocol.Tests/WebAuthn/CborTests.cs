using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

public sealed class CborTests
{
    [Theory]
    [InlineData("00", 0L)]
    [InlineData("17", 23L)]
    [InlineData("1818", 24L)]
    [InlineData("190100", 256L)]
    [InlineData("1a00010000", 65536L)]
    [InlineData("1b0000000100000000", 4294967296L)]
    [InlineData("1b7fffffffffffffff", long.MaxValue)]
    [InlineData("20", -1L)]
    [InlineData("3903e7", -1000L)]
    [InlineData("3b7fffffffffffffff", long.MinValue)]
    public void Integers_decode_to_their_values(string hex, long expected)
    {
        Assert.Equal(new CborInteger(expected), Cbor.Decode(Convert.FromHexString(hex)));
    }

    [Fact]
    public void Maps_with_integer_and_text_keys_decode()
    {
        // {1: [1, 2], "a": h'010203', -1: []}
        var value = Cbor.Decode(Convert.FromHexString("a3" + "01820102" + "6161" + "43010203" + "2080"));
        var map = Assert.IsType<CborMap>(value);
        Assert.Equal(3, map.Entries.Count);
        Assert.Equal([new CborInteger(1), new CborInteger(2)], Assert.IsType<CborArray>(map[1]).Items);
        Assert.Equal(new byte[] { 1, 2, 3 }, Assert.IsType<CborByteString>(map["a"]).Value);
        Assert.Empty(Assert.IsType<CborArray>(map[-1]).Items);
    }

    [Fact]
    public void Text_and_simple_values_decode()
    {
        var array = Assert.IsType<CborArray>(Cbor.Decode(Convert.FromHexString("8463c3a97af4f5f6")));
        Assert.Equal<CborValue>([new CborTextString("éz"), new CborBoolean(false), new CborBoolean(true), new CborNull()], array.Items);
    }

    [Theory]
    [InlineData("1bffffffffffffffff", "unsigned above long")]
    [InlineData("3b8000000000000000", "negative below long")]
    [InlineData("62c328", "invalid UTF-8")]
    [InlineData("5f4101ff", "indefinite byte string")]
    [InlineData("7f6161ff", "indefinite text string")]
    [InlineData("9f01ff", "indefinite array")]
    [InlineData("bf0101ff", "indefinite map")]
    [InlineData("c00a", "tag")]
    [InlineData("f93c00", "half float")]
    [InlineData("fa3f800000", "single float")]
    [InlineData("fb3ff0000000000000", "double float")]
    [InlineData("f7", "undefined")]
    [InlineData("f0", "unassigned simple value")]
    [InlineData("f818", "one-byte simple value")]
    [InlineData("ff", "stray break")]
    [InlineData("1c", "reserved 28")]
    [InlineData("5d", "reserved 29")]
    [InlineData("9e", "reserved 30")]
    [InlineData("1817", "non-shortest one-byte argument")]
    [InlineData("1900ff", "non-shortest two-byte argument")]
    [InlineData("1a0000ffff", "non-shortest four-byte argument")]
    [InlineData("1b00000000ffffffff", "non-shortest eight-byte argument")]
    [InlineData("a201020102", "duplicate integer key")]
    [InlineData("a2616101616102", "duplicate text key")]
    [InlineData("a1410101", "byte string key")]
    [InlineData("a1800101", "array key")]
    [InlineData("0000", "trailing byte")]
    [InlineData("", "empty input")]
    [InlineData("430102", "byte string shorter than declared")]
    [InlineData("8301", "array shorter than declared")]
    [InlineData("19", "truncated argument")]
    public void Refuses_what_webauthn_never_needs_or_what_is_malformed(string hex, string why)
    {
        var e = Assert.Throws<CborException>(() => Cbor.Decode(Convert.FromHexString(hex)));
        Assert.False(string.IsNullOrEmpty(e.Message), why);
    }

    [Fact]
    public void Duplicate_keys_are_refused_even_when_values_differ()
    {
        Assert.Throws<CborException>(() => Cbor.Decode(Convert.FromHexString("a201020103")));
    }

    [Fact]
    public void Decode_first_reports_the_bytes_it_consumed()
    {
        var value = Cbor.DecodeFirst(Convert.FromHexString("a1616101ffff"), out var consumed);

        Assert.IsType<CborMap>(value);
        Assert.Equal(4, consumed);
    }

    [Fact]
    public void Nesting_is_accepted_up_to_the_depth_limit_and_refused_beyond()
    {
        byte[] atLimit = [.. Enumerable.Repeat((byte)0x81, Cbor.MaxDepth - 1), 0x00];
        byte[] beyond = [.. Enumerable.Repeat((byte)0x81, Cbor.MaxDepth), 0x00];

        Assert.IsType<CborArray>(Cbor.Decode(atLimit));
        Assert.Throws<CborException>(() => Cbor.Decode(beyond));
    }
}
