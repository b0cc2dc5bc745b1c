using Microsoft.Extensions.Configuration;

namespace Assent.Server.Tests;

/// <summary>
/// The server watches no configuration file: a reloadOnChange source watches the working directory and everything under
/// it, and where that holds the data directory (the container's /data) every database write wakes the watcher.
/// </summary>
public sealed class ConfigurationWatchTests
{
    [Fact]
    public async Task No_configuration_file_is_watched_for_changes()
    {
        await using var server = await TestServer.StartAsync();

        var root = (IConfigurationRoot)server.Service<IConfiguration>();

        var files = root.Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.NotEmpty(files); // appsettings.json is still read once, when present
        Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is watched"));
    }
}
