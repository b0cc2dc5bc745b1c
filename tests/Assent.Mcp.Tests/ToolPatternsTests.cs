namespace Assent.Mcp.Tests;

public sealed class ToolPatternsTests
{
    [Theory]
    [InlineData("deploy_*", "deploy_api", true)]
    [InlineData("deploy_*", "deploy_", true)]
    [InlineData("deploy_*", "redeploy_api", false)]
    [InlineData("deploy_*", "Deploy_api", false)]
    [InlineData("delete_?", "delete_x", true)]
    [InlineData("delete_?", "delete_xy", false)]
    [InlineData("a.b", "a.b", true)]
    [InlineData("a.b", "axb", false)]
    [InlineData("status,deploy_*", "status", true)]
    [InlineData("status, deploy_*", "deploy_web", true)]
    [InlineData("*", "anything", true)]
    public void A_name_matches_as_a_whole_glob(string patterns, string name, bool expected) =>
        Assert.Equal(expected, new ToolPatterns([patterns]).Matches(name));

    [Theory]
    [InlineData("deploy,,status")]
    [InlineData("")]
    [InlineData("dep loy")]
    public void Bad_patterns_are_refused(string patterns) => Assert.Throws<ArgumentException>(() => new ToolPatterns([patterns]));
}
