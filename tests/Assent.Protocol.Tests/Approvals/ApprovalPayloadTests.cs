using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;

namespace Assent.Protocol.Tests.Approvals;

public sealed class ApprovalPayloadTests
{
    private const string Details = """[{"type":"payment","amount":"125.00","currency":"USD","recipient":"ACME"}]""";

    private static byte[] Build(string? bindingMessage = "Pay ACME 125.00 USD", string? details = Details) =>
        ApprovalPayload.Build(
            "http://localhost:8400", "apr_1", "did:web:localhost%3A8400:users:usr_1", "agt_1", "Billing bot",
            "openid payments", bindingMessage, details is null ? [] : Encoding.UTF8.GetBytes(details),
            1767225600, 1767225900, "n_7f3a");

    [Fact]
    public void Build_writes_the_members_in_the_spec_order()
    {
        Assert.Equal(
            "{\"v\":1,\"iss\":\"http://localhost:8400\",\"req\":\"apr_1\",\"sub\":\"did:web:localhost%3A8400:users:usr_1\"," +
            "\"client_id\":\"agt_1\",\"client_name\":\"Billing bot\",\"scope\":\"openid payments\"," +
            "\"binding_message\":\"Pay ACME 125.00 USD\"," +
            "\"authorization_details\":[{\"type\":\"payment\",\"amount\":\"125.00\",\"currency\":\"USD\",\"recipient\":\"ACME\"}]," +
            "\"iat\":1767225600,\"exp\":1767225900,\"nonce\":\"n_7f3a\"}",
            Encoding.UTF8.GetString(Build()));
    }

    [Fact]
    public void Null_binding_message_and_null_details_are_written_as_json_null()
    {
        var json = Encoding.UTF8.GetString(Build(bindingMessage: null, details: null));
        Assert.Contains("\"scope\":\"openid payments\",\"binding_message\":null,\"authorization_details\":null,\"iat\":", json);
    }

    [Theory]
    [InlineData("Überweise 125,00 € an Zoë — 確認 🙂")]
    [InlineData("quote \" backslash \\ newline \n tab \t <b>&amp;</b> +1")]
    public void A_unicode_binding_message_survives_the_round_trip(string message)
    {
        var payload = Build(bindingMessage: message);
        Assert.True(ApprovalPayload.TryParse(payload, out var parsed));
        Assert.Equal(message, parsed!.BindingMessage);
        // Whatever the escaping, the bytes are valid UTF-8 JSON any device parses the same way.
        using var doc = JsonDocument.Parse(payload);
        Assert.Equal(message, doc.RootElement.GetProperty("binding_message").GetString());
    }

    [Theory]
    [InlineData("[{\"type\":")]
    [InlineData("not json")]
    [InlineData("[1,2")]
    [InlineData("[] []")]
    public void Invalid_details_json_throws(string details)
    {
        Assert.ThrowsAny<Exception>(() => Build(details: details));
    }

    [Fact]
    public void SigningInput_is_decision_nul_payload()
    {
        var payload = Build();
        Assert.Equal([.. "approve"u8, 0, .. payload], ApprovalPayload.SigningInput(Decisions.Approve, payload));
        Assert.Equal([.. "deny"u8, 0, .. payload], ApprovalPayload.SigningInput(Decisions.Deny, payload));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Approve")]
    [InlineData("APPROVE")]
    [InlineData("approve ")]
    [InlineData("approved")]
    [InlineData("yes")]
    [InlineData("deny\0")]
    public void SigningInput_throws_for_any_other_decision(string decision)
    {
        Assert.Throws<ArgumentException>(() => ApprovalPayload.SigningInput(decision, Build()));
    }

    [Fact]
    public void TryParse_round_trips_what_Build_wrote()
    {
        Assert.True(ApprovalPayload.TryParse(Build(), out var p));
        Assert.Equal(ApprovalPayload.Version, p!.V);
        Assert.Equal("http://localhost:8400", p.Iss);
        Assert.Equal("apr_1", p.Req);
        Assert.Equal("did:web:localhost%3A8400:users:usr_1", p.Sub);
        Assert.Equal("agt_1", p.ClientId);
        Assert.Equal("Billing bot", p.ClientName);
        Assert.Equal("openid payments", p.Scope);
        Assert.Equal("Pay ACME 125.00 USD", p.BindingMessage);
        Assert.Equal(Details, p.AuthorizationDetails!.Value.GetRawText());
        Assert.Equal(1767225600, p.Iat);
        Assert.Equal(1767225900, p.Exp);
        Assert.Equal("n_7f3a", p.Nonce);
    }

    [Fact]
    public void TryParse_reads_null_binding_message_and_details()
    {
        Assert.True(ApprovalPayload.TryParse(Build(bindingMessage: null, details: null), out var p));
        Assert.Null(p!.BindingMessage);
        Assert.Null(p.AuthorizationDetails);
    }

    public static TheoryData<string> NotAV1Payload()
    {
        var good = Encoding.UTF8.GetString(Build());
        var data = new TheoryData<string>
        {
            "",
            "null",
            "[]",
            "\"payload\"",
            "42",
            "{}",
            good.Replace("\"v\":1", "\"v\":2"),
            good.Replace("\"v\":1", "\"v\":0"),
            good.Replace("\"v\":1", "\"v\":\"1\""),
            good.Replace("\"v\":1", "\"v\":1.5"),
            good.Replace("\"v\":1", "\"v\":99999999999"),
            good.Replace("\"iat\":1767225600", "\"iat\":\"1767225600\""),
            good.Replace("\"exp\":1767225900", "\"exp\":1.5"),
            good.Replace("\"binding_message\":\"Pay ACME 125.00 USD\"", "\"binding_message\":42"),
            good.Replace("\"authorization_details\":[", "\"authorization_details\":{\"x\":[").Replace("}],\"iat\"", "}]},\"iat\""),
            good.Replace("\"nonce\":\"n_7f3a\"}", "\"nonce\":\"n_7f3a\",\"extra\":\"hidden from the human\"}"),
            good.Replace("\"scope\":\"openid payments\"", "\"scope\":\"openid payments\",\"scope\":\"openid admin\""),
            good + " {}",
            good[..^1],
            // Twelve members, but one of them unknown in place of a v1 member.
            good.Replace("\"nonce\":", "\"nonse\":"),
            // Deeper than a payload may nest (32), though the details were valid JSON.
            good.Replace("\"authorization_details\":[", "\"authorization_details\":[" + new string('[', 40) + new string(']', 40) + ","),
        };
        // Each member of the wrong JSON type.
        foreach (var (member, value) in new[] { ("iss", "\"http://localhost:8400\""), ("req", "\"apr_1\""), ("sub", "\"did:web:localhost%3A8400:users:usr_1\""),
                     ("client_id", "\"agt_1\""), ("client_name", "\"Billing bot\""), ("scope", "\"openid payments\""), ("nonce", "\"n_7f3a\""),
                     ("iat", "1767225600"), ("exp", "1767225900") })
        {
            data.Add(good.Replace($"\"{member}\":{value}", $"\"{member}\":" + (value.StartsWith('"') ? "42" : "\"x\"")));
        }
        foreach (var member in new[] { "\"iss\"", "\"req\"", "\"sub\"", "\"client_id\"", "\"client_name\"", "\"scope\"",
                     "\"binding_message\"", "\"authorization_details\"", "\"iat\"", "\"exp\"", "\"nonce\"", "\"v\"" })
        {
            using var doc = JsonDocument.Parse(good);
            var without = new Dictionary<string, JsonElement>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if ($"\"{p.Name}\"" != member)
                {
                    without[p.Name] = p.Value.Clone();
                }
            }
            data.Add(JsonSerializer.Serialize(without));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(NotAV1Payload))]
    public void TryParse_refuses_anything_but_a_complete_v1_payload(string json)
    {
        Assert.False(ApprovalPayload.TryParse(Encoding.UTF8.GetBytes(json), out var parsed));
        Assert.Null(parsed);
    }
}
