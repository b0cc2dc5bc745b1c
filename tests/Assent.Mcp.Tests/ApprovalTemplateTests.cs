using System.Text.Json;

namespace Assent.Mcp.Tests;

public sealed class ApprovalTemplateTests
{
    private static Dictionary<string, JsonElement> Args(string json) =>
        JsonDocument.Parse(json).RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());

    [Fact]
    public void Placeholders_are_filled_from_the_arguments() =>
        Assert.Equal("Deploy api to production", ApprovalTemplate.Fill("Deploy {service} to {env}", Args("""{"service":"api","env":"production"}""")));

    [Fact]
    public void Values_that_are_not_strings_appear_as_canonical_json() =>
        Assert.Equal("Scale to 3 with {\"a\":1,\"b\":true}", ApprovalTemplate.Fill("Scale to {n} with {opts}", Args("""{"n":3.0,"opts":{"b":true,"a":1}}""")));

    [Fact]
    public void Doubled_braces_are_literal() =>
        Assert.Equal("Run {x} for bob", ApprovalTemplate.Fill("Run {{x}} for {who}", Args("""{"who":"bob"}""")));

    [Fact]
    public void A_missing_argument_is_an_error_naming_it()
    {
        var e = Assert.Throws<ArgumentException>(() => ApprovalTemplate.Fill("Deploy {service} to {env}", Args("""{"service":"api"}""")));
        Assert.Contains("'env'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Deploy {service")]
    [InlineData("Deploy service}")]
    [InlineData("Deploy {}")]
    public void A_malformed_template_is_an_error(string template) => Assert.Throws<ArgumentException>(() => ApprovalTemplate.Placeholders(template));

    [Fact]
    public void Placeholders_lists_the_names() => Assert.Equal(["service", "env"], ApprovalTemplate.Placeholders("Deploy {service} to {env} {{not}}"));

    [Fact]
    public void A_message_longer_than_256_characters_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => ApprovalTemplate.Fill("Delete {path}", Args($$"""{"path":"{{new string('a', 300)}}"}""")));
        Assert.Contains("256", e.Message, StringComparison.Ordinal);
    }
}
