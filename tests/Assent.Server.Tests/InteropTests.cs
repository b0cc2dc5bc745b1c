using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Approvals;

namespace Assent.Server.Tests;

/// <summary>Its own server: the shared one's clock is moved by other tests, and a third-party verifier checks iat/nbf/exp on real time.</summary>
public sealed class InteropServer : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Third-party clients against a live server: openid-client 6 runs the whole CIBA poll flow
/// (discovery, bc-authorize, token polling, ID token validation) and jose verifies the access
/// token from the JWKS alone. Scripts and pinned packages live in tests/interop.
/// </summary>
public sealed class InteropTests(InteropServer fixture) : IClassFixture<InteropServer>
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(20);

    private TestServer Server => fixture.Server;

    private string Issuer => Server.Options.Issuer;

    [Fact]
    public async Task Openid_client_runs_the_ciba_flow_and_jose_verifies_the_access_token()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        using var cts = new CancellationTokenSource(Budget);
        await using var node = await NodeScript.StartAsync("ciba.mjs", [Issuer, agent.ClientId, agent.ClientSecret, device.Did], cts.Token);

        var authReqId = await node.ExpectAsync("PENDING ", cts.Token);
        var pending = Assert.Single(await device.PendingAsync());
        Assert.Equal("Interop test", pending.GetProperty("binding_message").GetString());
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }

        var tokens = JsonDocument.Parse(await node.ExpectAsync("{", cts.Token, keepPrefix: true)).RootElement;
        Assert.Equal("openid approve:action", tokens.GetProperty("scope").GetString());
        Assert.Equal("bearer", tokens.GetProperty("token_type").GetString()!.ToLowerInvariant());
        var idToken = tokens.GetProperty("id_token_claims");
        Assert.Equal(Issuer, idToken.GetProperty("iss").GetString());
        Assert.Equal(device.Did, idToken.GetProperty("sub").GetString());
        Assert.Equal(agent.ClientId, idToken.GetProperty("aud").GetString());
        Assert.Equal(authReqId, idToken.GetProperty("urn:openid:params:jwt:claim:auth_req_id").GetString());

        var claims = JsonDocument.Parse(await node.ExpectAsync("VERIFIED ", cts.Token)).RootElement;
        Assert.Equal(Issuer, claims.GetProperty("iss").GetString());
        Assert.Equal(device.Did, claims.GetProperty("sub").GetString());
        Assert.Equal(agent.ClientId, claims.GetProperty("aud").GetString());
        Assert.Equal(agent.ClientId, claims.GetProperty("client_id").GetString());
        Assert.Equal(agent.ClientId, claims.GetProperty("act").GetProperty("sub").GetString());
        Assert.Equal("openid approve:action", claims.GetProperty("scope").GetString());
        Assert.Equal("Interop test", claims.GetProperty("binding_message").GetString());
        Assert.Equal(pending.GetProperty("id").GetString(), claims.GetProperty("txn").GetString());
        Assert.Equal(0, await node.ExitCodeAsync(cts.Token));
    }

    [Fact]
    public async Task Openid_client_reports_access_denied_when_the_user_denies()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        using var cts = new CancellationTokenSource(Budget);
        await using var node = await NodeScript.StartAsync("ciba.mjs", [Issuer, agent.ClientId, agent.ClientSecret, device.Handle], cts.Token);

        await node.ExpectAsync("PENDING ", cts.Token);
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Deny))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }

        await node.ExpectAsync("DENIED", cts.Token);
        Assert.Equal(3, await node.ExitCodeAsync(cts.Token));
    }

    [Fact]
    public async Task Jose_accepts_the_access_token_for_its_audience_and_refuses_it_for_another()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        var authReqId = await Server.AskAsync(agent);
        using (var decided = await device.DecideOnlyPendingAsync(Decisions.Approve))
        {
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        using var tokenResponse = await Server.TokenAsync(agent, authReqId);
        var (status, body) = await TestServer.ReadAsync(tokenResponse);
        Assert.Equal(HttpStatusCode.OK, status);
        var token = body.GetProperty("access_token").GetString()!;
        var jwksUri = Issuer + "/oauth/jwks";
        using var cts = new CancellationTokenSource(Budget);

        await using (var wrongAudience = await NodeScript.StartAsync("verify.mjs", [token, jwksUri, Issuer, "agt_someone_else"], cts.Token))
        {
            Assert.Equal("ERR_JWT_CLAIM_VALIDATION_FAILED", await wrongAudience.ExpectAsync("REJECTED ", cts.Token));
            Assert.Equal(1, await wrongAudience.ExitCodeAsync(cts.Token));
        }
        await using (var wrongIssuer = await NodeScript.StartAsync("verify.mjs", [token, jwksUri, "http://evil.example", agent.ClientId], cts.Token))
        {
            Assert.Equal("ERR_JWT_CLAIM_VALIDATION_FAILED", await wrongIssuer.ExpectAsync("REJECTED ", cts.Token));
            Assert.Equal(1, await wrongIssuer.ExitCodeAsync(cts.Token));
        }
        await using (var right = await NodeScript.StartAsync("verify.mjs", [token, jwksUri, Issuer, agent.ClientId], cts.Token))
        {
            var claims = JsonDocument.Parse(await right.ExpectAsync("VERIFIED ", cts.Token)).RootElement;
            Assert.Equal(device.Did, claims.GetProperty("sub").GetString());
            Assert.Equal(0, await right.ExitCodeAsync(cts.Token));
        }
    }
}

/// <summary>A <c>node</c> process running one script from tests/interop, read line by line.</summary>
internal sealed class NodeScript : IAsyncDisposable
{
    private static readonly SemaphoreSlim InstallLock = new(1, 1);
    private static readonly (string Name, string Version)[] Pinned = [("openid-client", "6.8.9"), ("jose", "6.2.17"), ("standardwebhooks", "1.1.1"), ("http_ece", "1.2.1"),
        ("@x402/express", "2.27.0"), ("@x402/core", "2.27.0"), ("@x402/evm", "2.27.0"), ("x402-express", "1.2.0"), ("x402", "1.2.0")];

    private readonly Process _process;
    private readonly Task<string> _stderr;
    private readonly List<string> _seen = [];

    private NodeScript(Process process)
    {
        _process = process;
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public static string InteropDirectory { get; } = Path.Combine(RepoRoot(), "tests", "interop");

    public static async Task<NodeScript> StartAsync(string script, IReadOnlyList<string> args, CancellationToken ct)
    {
        await EnsurePackagesAsync(ct);
        return new NodeScript(Start("node", [script, .. args], "Node.js (node) must be on PATH for the interop tests"));
    }

    /// <summary>Reads lines until one starts with <paramref name="prefix"/>; returns the rest of it.</summary>
    public async Task<string> ExpectAsync(string prefix, CancellationToken ct, bool keepPrefix = false)
    {
        while (true)
        {
            string? line;
            try
            {
                line = await _process.StandardOutput.ReadLineAsync(ct);
            }
            catch (OperationCanceledException)
            {
                Kill();
                Assert.Fail($"timed out waiting for '{prefix}' from node; stdout so far:\n{string.Join('\n', _seen)}\nstderr:\n{await StderrAsync()}");
                throw;
            }
            if (line is null)
            {
                await _process.WaitForExitAsync(CancellationToken.None);
                Assert.Fail($"node exited ({_process.ExitCode}) before printing '{prefix}'; stdout:\n{string.Join('\n', _seen)}\nstderr:\n{await StderrAsync()}");
            }
            _seen.Add(line);
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return keepPrefix ? line : line[prefix.Length..];
            }
        }
    }

    /// <summary>The next line, whatever it says; null once node has exited. For a reader that keeps every line (not mixed with <see cref="ExpectAsync"/>).</summary>
    public async Task<string?> ReadLineAsync(CancellationToken ct) => await _process.StandardOutput.ReadLineAsync(ct);

    public async Task<int> ExitCodeAsync(CancellationToken ct)
    {
        try
        {
            await _process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            Kill();
            Assert.Fail($"node did not exit in time; stderr:\n{await StderrAsync()}");
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await _process.WaitForExitAsync(CancellationToken.None);
        _process.Dispose();
    }

    private void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
    }

    private async Task<string> StderrAsync() => await Task.WhenAny(_stderr, Task.Delay(2000)) == _stderr ? await _stderr : "(stderr still open)";

    /// <summary>Installs the pinned packages from the committed lockfile once, if they are missing or differ.</summary>
    private static async Task EnsurePackagesAsync(CancellationToken ct)
    {
        await InstallLock.WaitAsync(ct);
        try
        {
            if (Pinned.All(p => InstalledVersion(p.Name) == p.Version))
            {
                return;
            }
            using var npm = Start("npm", ["ci", "--no-audit", "--no-fund"], "npm must be on PATH to install tests/interop packages");
            var stdout = npm.StandardOutput.ReadToEndAsync(ct);
            var stderr = npm.StandardError.ReadToEndAsync(ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromMinutes(3));
            await npm.WaitForExitAsync(timeout.Token);
            Assert.True(npm.ExitCode == 0, $"npm ci in {InteropDirectory} failed ({npm.ExitCode}):\n{await stdout}\n{await stderr}");
        }
        finally
        {
            InstallLock.Release();
        }
    }

    private static string? InstalledVersion(string package)
    {
        var manifest = Path.Combine(InteropDirectory, "node_modules", package, "package.json");
        return File.Exists(manifest) ? JsonDocument.Parse(File.ReadAllText(manifest)).RootElement.GetProperty("version").GetString() : null;
    }

    private static Process Start(string fileName, IEnumerable<string> args, string missing)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = InteropDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        try
        {
            return Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}");
        }
        catch (Win32Exception e)
        {
            // Never a skip: a machine without Node cannot claim interop.
            Assert.Fail($"{missing} ({e.Message})");
            throw;
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Assent.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Assent.slnx above {AppContext.BaseDirectory}");
    }
}
