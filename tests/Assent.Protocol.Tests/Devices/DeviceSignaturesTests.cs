using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;

namespace Assent.Protocol.Tests.Devices;

/// <summary>The device API's proof of possession (docs/http-api.md §10): what a device signs, and the header that carries it.</summary>
public sealed class DeviceSignaturesTests
{
    private static readonly string Sig = Base64Url.Encode(new byte[64]);

    [Fact]
    public void The_request_signing_input_is_the_versioned_lines_with_the_method_upper_cased_and_the_body_hashed()
    {
        var body = "{\"name\":\"x\"}"u8.ToArray();
        var text = Encoding.UTF8.GetString(DeviceSignatures.RequestSigningInput("patch", "/authenticator/devices/dev_1?a=b", 1767225600, "nonce-0123456789", body));

        Assert.Equal("assent-device-request-v1\nPATCH\n/authenticator/devices/dev_1?a=b\n1767225600\nnonce-0123456789\n" +
                     Base64Url.Encode(SHA256.HashData(body)), text);
    }

    [Fact]
    public void The_enrolment_input_signs_the_normalised_code_and_the_public_key()
    {
        Assert.Equal("ABCD1234", DeviceSignatures.NormalizeInviteCode(" abcd-12 34\t"));
        Assert.Equal("assent-device-enroll-v1\nABCD1234\npk", Encoding.UTF8.GetString(DeviceSignatures.EnrollmentSigningInput("abcd-1234", "pk")));
    }

    [Fact]
    public void A_signed_request_header_parses_back_and_its_signature_verifies_over_the_request()
    {
        var seed = Ed25519.NewSeed();
        var now = DateTimeOffset.FromUnixTimeSeconds(1767225600);
        var body = "{}"u8.ToArray();

        var header = DeviceSignatures.SignRequest("dev_1", seed, "post", "/authenticator/approvals/apr_1/decision", body, now);

        Assert.StartsWith("AssentDevice id=\"dev_1\", ts=\"1767225600\", nonce=\"", header);
        Assert.True(DeviceSignatures.TryParseHeader(header, out var parsed));
        Assert.Equal("dev_1", parsed!.DeviceId);
        Assert.Equal(1767225600, parsed.Timestamp);
        Assert.Equal(22, parsed.Nonce.Length); // 16 random bytes
        var input = DeviceSignatures.RequestSigningInput("POST", "/authenticator/approvals/apr_1/decision", parsed.Timestamp, parsed.Nonce, body);
        Assert.True(Ed25519.Verify(Ed25519.PublicKeyFromSeed(seed), input, parsed.Signature));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(64)]
    public void A_header_with_a_nonce_of_16_to_64_characters_parses(int nonceLength)
    {
        var header = DeviceSignatures.FormatHeader("dev_1", 42, new string('n', nonceLength), new byte[64]);
        Assert.Equal($"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{new string('n', nonceLength)}\", sig=\"{Sig}\"", header);
        Assert.True(DeviceSignatures.TryParseHeader(header, out var parsed));
        Assert.Equal(new ParsedHeaderView("dev_1", 42, new string('n', nonceLength), 64), ParsedHeaderView.Of(parsed!));
    }

    public static TheoryData<string?> Malformed()
    {
        var nonce = new string('n', 16);
        var data = new TheoryData<string?>
        {
            null,
            "",
            $"Bearer id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",
            $"AssentDevice  ",
            $"assentdevice id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",
            $"AssentDevices id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",               // another scheme
            $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\", =\"x\"",       // a field without a name
            $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\"",                                 // no sig
            $"AssentDevice ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",                                 // no id
            $"AssentDevice id=\"dev_1\", nonce=\"{nonce}\", sig=\"{Sig}\"",                              // no ts
            $"AssentDevice id=\"dev_1\", ts=\"42\", sig=\"{Sig}\"",                                      // no nonce
            $"AssentDevice id=\"dev_1\", id=\"dev_2\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",     // repeated field
            $"AssentDevice id=dev_1, ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",                       // unquoted
            $"AssentDevice id=\"dev_1, ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",                     // quote not closed
            $"AssentDevice =\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",                     // no name
            $"AssentDevice id, ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",                             // no value
            $"AssentDevice id=\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",                          // a lone quote
            $"AssentDevice id=\"dev_1\", ts=\"-42\", nonce=\"{nonce}\", sig=\"{Sig}\"",                  // signed number
            $"AssentDevice id=\"dev_1\", ts=\"+42\", nonce=\"{nonce}\", sig=\"{Sig}\"",
            $"AssentDevice id=\"dev_1\", ts=\" 42\", nonce=\"{nonce}\", sig=\"{Sig}\"",
            $"AssentDevice id=\"dev_1\", ts=\"4x\", nonce=\"{nonce}\", sig=\"{Sig}\"",
            $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{new string('n', 15)}\", sig=\"{Sig}\"",     // nonce too short
            $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{new string('n', 65)}\", sig=\"{Sig}\"",     // nonce too long
            $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Base64Url.Encode(new byte[63])}\"",
            $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Base64Url.Encode(new byte[65])}\"",
            $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{nonce}\", sig=\"not base64url!\"",
            // Longer than 1,024 characters, though well formed.
            $"AssentDevice id=\"{new string('d', 900)}\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"",
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void A_malformed_header_does_not_parse(string? value)
    {
        Assert.False(DeviceSignatures.TryParseHeader(value, out var parsed));
        Assert.Null(parsed);
    }

    [Fact]
    public void Fields_the_parser_does_not_know_are_ignored_even_when_empty()
    {
        var header = $"AssentDevice id=\"dev_1\", ts=\"42\", nonce=\"{new string('n', 16)}\", sig=\"{Sig}\", ext=\"\"";
        Assert.True(DeviceSignatures.TryParseHeader(header, out var parsed));
        Assert.Equal("dev_1", parsed!.DeviceId);
    }

    [Fact]
    public void A_header_of_exactly_1024_characters_parses()
    {
        var nonce = new string('n', 16);
        var shortest = $"AssentDevice id=\"\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"";
        var header = $"AssentDevice id=\"{new string('d', 1024 - shortest.Length)}\", ts=\"42\", nonce=\"{nonce}\", sig=\"{Sig}\"";
        Assert.Equal(1024, header.Length);
        Assert.True(DeviceSignatures.TryParseHeader(header, out _));
    }

    private sealed record ParsedHeaderView(string DeviceId, long Timestamp, string Nonce, int SignatureLength)
    {
        public static ParsedHeaderView Of(DeviceSignatures.ParsedHeader h) => new(h.DeviceId, h.Timestamp, h.Nonce, h.Signature.Length);
    }
}
