using System.Text.Json;

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

    private static async Task<List<string?>> KidsAsync(CliSandbox box)
    {
        using var doc = JsonDocument.Parse(await box.Http.GetStringAsync(box.Url + "/oauth/jwks"));
        return doc.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
    }
}
