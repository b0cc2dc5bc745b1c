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
    [InlineData("*", "", true)]
    [InlineData("?", "", false)]
    [InlineData("a*b*c", "aXbYbZc", true)]
    [InlineData("a*b*c", "aXbYbZ", false)]
    [InlineData("*_db", "drop_db_db", true)]
    [InlineData("*_db", "drop_dbx", false)]
    [InlineData("a**?", "ab", true)]
    [InlineData("a**?", "a", false)]
    [InlineData("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    [InlineData("x[1]+$", "x[1]+$", true)]
    [InlineData("x[1]+$", "x1+", false)]
    [InlineData("tool\\*", "tool\\name", true)]
    public void A_name_matches_as_a_whole_glob(string patterns, string name, bool expected) =>
        Assert.Equal(expected, new ToolPatterns([patterns]).Matches(name));

    [Theory]
    [InlineData("deploy,,status")]
    [InlineData("")]
    [InlineData("dep loy")]
    public void Bad_patterns_are_refused(string patterns) => Assert.Throws<ArgumentException>(() => new ToolPatterns([patterns]));
}
