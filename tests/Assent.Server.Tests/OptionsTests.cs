using Assent.Server.Common;
using Assent.Server.Hosting;

namespace Assent.Server.Tests;

public sealed class OptionsTests
{
    [Fact]
    public void A_required_setting_left_empty_is_refused_with_its_name()
    {
        var options = new AssentOptions { DataDirectory = "" };
        var problem = options.Validate();
        Assert.NotNull(problem);
        Assert.StartsWith("Assent:DataDirectory is invalid", problem);
    }

    [Fact]
    public async Task The_server_does_not_start_on_settings_that_fail_validation()
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            AssentServer.BuildAsync(new AssentOptions { DataDirectory = "", Issuer = "http://localhost:1" }, "http://127.0.0.1:0"));
        Assert.Contains("DataDirectory", refused.Message);
    }
}
