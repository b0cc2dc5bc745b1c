namespace Assent.Protocol.Tests;

public sealed class Base64UrlTests
{
    [Theory]
    [InlineData(new byte[0], "")]
    [InlineData(new byte[] { 0xfb, 0xff }, "-_8")]
    [InlineData(new byte[] { 1, 2, 3 }, "AQID")]
    public void Encodes_without_padding_and_round_trips(byte[] data, string text)
    {
        Assert.Equal(text, Base64Url.Encode(data));
        Assert.True(Base64Url.TryDecode(text, out var back));
        Assert.Equal(data, back);
    }

    [Theory]
    [InlineData("AQ==")]
    [InlineData("+/8")]
    [InlineData("A")]
    [InlineData("AQI D")]
    [InlineData("AQ IDAQ")]
    [InlineData("AQID\n")]
    [InlineData("\tAQID")]
    [InlineData("AQID\r\nAQ")]
    [InlineData("AR")]
    public void Refuses_padding_whitespace_standard_alphabet_stray_bits_and_impossible_lengths(string text)
    {
        Assert.False(Base64Url.TryDecode(text, out _));
    }
}
