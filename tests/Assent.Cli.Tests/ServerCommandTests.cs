using System.Text.Json;
using Assent.Cli.Commands;

namespace Assent.Cli.Tests;

public sealed class ServerCommandTests
{
    [Fact]
    public async Task First_server_start_on_an_empty_data_dir_prints_an_enrolment_code_and_link()
    {
        await using var box = new CliSandbox();

        await box.StartServerAsync();

        var output = box.ServerOutput;
        Assert.Matches(@"code: [A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", output);
        Assert.Contains($"link: {box.Url}/app/enroll?code=", output);
        Assert.Contains($"Assent listening on {box.Url} (issuer {box.Url})", output);
    }

    [Fact]
    public async Task Admin_keys_rotate_changes_the_kid_served_in_jwks_after_a_restart()
    {
        await using var box = new CliSandbox();
        await box.StartServerAsync();
        var before = await KidsAsync(box);
        box.StopServer();

        var rotated = Steps.SingleJsonObject(await box.RunAsync("admin", "keys", "rotate", "--data", box.Data, "--json"));
        await box.StartServerAsync();

        var kid = rotated.GetProperty("kid").GetString();
        Assert.DoesNotContain(kid, before);
        Assert.Contains(kid, await KidsAsync(box));
    }

    [Fact]
    public async Task Server_with_a_non_https_public_issuer_exits_64_without_a_stack_trace()
    {
        await using var box = new CliSandbox();

        var result = await box.RunAsync("server", "--urls", box.Url, "--data", box.Data, "--issuer", "http://assent.example.com");

        Assert.Equal(64, result.ExitCode);
        Assert.Contains("--issuer must use https", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    public async Task A_second_server_on_a_port_in_use_exits_1_with_one_line_saying_what_to_do()
    {
        await using var box = new CliSandbox();
        await box.StartServerAsync();

        var second = await box.RunAsync("server", "--urls", box.Url, "--data", Path.Combine(box.Home, "other-data"));

        Assert.Equal(1, second.ExitCode);
        Assert.Contains("choose another address with --urls", second.Stderr);
        Assert.DoesNotContain("   at ", second.Stdout + second.Stderr);
        Assert.DoesNotContain("code:", second.Stdout);
    }

    [Theory]
    [InlineData("http://localhost:8400", "http://localhost:8400")]
    [InlineData("http://0.0.0.0:9000;http://localhost:9001", "http://localhost:9000")]
    [InlineData("http://+:80", "http://localhost:80")]
    [InlineData("http://*:8400", "http://localhost:8400")]
    [InlineData("http://[::]:8400", "http://localhost:8400")]
    [InlineData("https://assent.example.com/", "https://assent.example.com")]
    public void The_default_issuer_is_the_first_listen_url_with_wildcard_hosts_as_localhost(string urls, string issuer) =>
        Assert.Equal(issuer, ServerCommand.IssuerFromUrls(urls));

    private static async Task<List<string?>> KidsAsync(CliSandbox box)
    {
        using var doc = JsonDocument.Parse(await box.Http.GetStringAsync(box.Url + "/oauth/jwks"));
        return doc.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
    }
}
