using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Server.Authorize;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>Its own server: the tests rotate its keys.</summary>
public sealed class WebSignInServer : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// The server side of web sign-in that needs no browser (docs/http-api.md §17, docs/tokens.md §11): redirect URI rules,
/// the ES256/RS256 keys (one per algorithm across nodes, rotated, published with alg), and id_token_hint checked as RFC 8725 asks.
/// The browser flow with openid-client is tests/Assent.Web.Tests/SignInTests.cs.
/// </summary>
public sealed class WebSignInTests(WebSignInServer fixture) : IClassFixture<WebSignInServer>
{
    private TestServer Server => fixture.Server;

    [Theory]
    [InlineData("https://app.example.com/cb", true)]
    [InlineData("https://app.example.com/cb?tenant=1", true)]
    [InlineData("http://localhost:3000/cb", true)]
    [InlineData("http://127.0.0.1:3000/cb", true)]
    [InlineData("http://[::1]:3000/cb", true)]
    [InlineData("http://app.example.com/cb", false)]
    [InlineData("https://app.example.com/cb#frag", false)]
    [InlineData("https://user:pw@app.example.com/cb", false)]
    [InlineData("/relative/cb", false)]
    [InlineData("javascript:alert(1)", false)]
    [InlineData("http://localhost.evil.example/cb", false)]
    public void Redirect_uris_are_absolute_without_fragment_and_https_except_loopback(string uri, bool accepted) =>
        Assert.Equal(accepted, WebClientRegistration.RedirectUriProblem(uri) is null);

    [Fact]
    public async Task The_sign_in_page_is_one_response_within_60_KB_that_loads_nothing_else()
    {
        var client = await Server.Admin.CreateWebClientAsync("wiki", ["https://wiki.example.com/cb"], [], false, null, default);
        using var response = await Server.Http.GetAsync($"/oauth/authorize?response_type=code&client_id={client.ClientId}" +
                                                        $"&redirect_uri={Uri.EscapeDataString("https://wiki.example.com/cb")}&scope=openid&state=s");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        // The budget of docs/http-api.md §17.2, uncompressed (the /app budget is on the wire, compressed).
        Assert.InRange(bytes.Length, 1, 60 * 1024);
        var html = Encoding.UTF8.GetString(bytes);
        Assert.Contains("autocomplete=\"username webauthn\"", html);
        // Its one script and style are inline under the CSP nonce: no script, stylesheet, image or font to fetch.
        Assert.DoesNotContain(" src=", html);
        Assert.DoesNotContain("<link", html);
        Assert.Contains("default-src 'none'", response.Headers.GetValues("Content-Security-Policy").Single());
    }

    [Fact]
    public async Task Form_post_answers_with_a_page_that_posts_the_response_under_its_csp_nonce()
    {
        const string Callback = "https://wiki.example.com/cb";
        var client = await Server.Admin.CreateWebClientAsync("wiki", [Callback], [], true, null, default);
        // A public client without PKCE: an error, which OAuth 2.0 Form Post Response Mode §2 posts like a code.
        using var response = await Server.Http.GetAsync($"/oauth/authorize?response_type=code&client_id={client.ClientId}" +
                                                        $"&redirect_uri={Uri.EscapeDataString(Callback)}&scope=openid&state=%22%3E%3Cx&response_mode=form_post");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync();
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        var nonce = System.Text.RegularExpressions.Regex.Match(csp, "script-src 'nonce-([^']+)'").Groups[1].Value;
        Assert.NotEmpty(nonce);
        Assert.Contains("form-action https://wiki.example.com", csp);
        Assert.Contains($"<script nonce=\"{nonce}\">document.forms[0].submit();</script>", html);
        Assert.Contains($"<form method=\"post\" action=\"{Callback}\">", html);
        Assert.Contains("<input type=\"hidden\" name=\"error\" value=\"invalid_request\">", html);
        Assert.Contains("<input type=\"hidden\" name=\"state\" value=\"&quot;&gt;&lt;x\">", html);
        Assert.Contains($"<input type=\"hidden\" name=\"iss\" value=\"{Server.Options.Issuer}\">", html);
        Assert.Null(response.Headers.Location);

        using var unknownMode = await new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = Server.BaseUri }
            .GetAsync($"/oauth/authorize?response_type=code&client_id={client.ClientId}&redirect_uri={Uri.EscapeDataString(Callback)}&scope=openid&response_mode=fragment");
        Assert.Contains("error=invalid_request", unknownMode.Headers.Location!.ToString());

        using var discovery = JsonDocument.Parse(await Server.Http.GetStringAsync("/.well-known/openid-configuration"));
        Assert.Equal(["query", "form_post"], discovery.RootElement.GetProperty("response_modes_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("offline_access", discovery.RootElement.GetProperty("scopes_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("refresh_token", discovery.RootElement.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Registering_refuses_a_bad_redirect_uri_or_algorithm_and_stores_only_the_secrets_hash()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Server.Admin.CreateWebClientAsync("wiki", ["http://wiki.example.com/cb"], [], false, null, default));
        await Assert.ThrowsAsync<ArgumentException>(() => Server.Admin.CreateWebClientAsync("wiki", ["https://wiki.example.com/cb"], [], false, "HS256", default));
        await Assert.ThrowsAsync<ArgumentException>(() => Server.Admin.CreateWebClientAsync("wiki", [], [], false, null, default));
        var created = await Server.Admin.CreateWebClientAsync("wiki", ["https://wiki.example.com/cb"], [], false, "es256", default);
        Assert.Equal("ES256", created.IdTokenAlg);
        var stored = (await Server.Store.WebClients.FindAsync(created.ClientId, default))!;
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(created.ClientSecret!)), stored.SecretHash);
        var pub = await Server.Admin.CreateWebClientAsync("spa", ["https://spa.example.com/cb"], [], true, null, default);
        Assert.Null(pub.ClientSecret);
        Assert.True((await Server.Store.WebClients.FindAsync(pub.ClientId, default))!.IsPublic);
    }

    [Fact]
    public async Task Es256_and_rs256_keys_are_made_once_across_nodes_published_with_alg_and_rotated_with_the_ed25519_key()
    {
        var ring = Server.Service<KeyRing>();
        // A second node on the same database: both need the ES256 key at once, one key results.
        var other = new KeyRing(Server.Store.Keys, Server.Store.Meta, MasterKey.Load(Server.Options), Server.Options, TimeProvider.System, Server.Store.JoseKeys);
        await other.InitializeAsync(default);
        var both = await Task.WhenAll(ring.JoseKeyAsync(IdTokenAlgs.Es256, default), other.JoseKeyAsync(IdTokenAlgs.Es256, default));
        Assert.Equal(both[0].Kid, both[1].Kid);
        var rsa = await ring.JoseKeyAsync(IdTokenAlgs.Rs256, default);
        Assert.Single(await Server.Store.JoseKeys.ListAsync(default), k => k.Alg == IdTokenAlgs.Es256);

        var keys = JsonDocument.Parse(ring.JwksJson).RootElement.GetProperty("keys").EnumerateArray().ToList();
        Assert.All(keys.Where(k => k.GetProperty("kty").GetString() == "OKP"), k => Assert.False(k.TryGetProperty("alg", out _)));
        var ec = Assert.Single(keys, k => k.GetProperty("kid").GetString() == both[0].Kid);
        Assert.Equal(("EC", "P-256", "ES256"), (ec.GetProperty("kty").GetString(), ec.GetProperty("crv").GetString(), ec.GetProperty("alg").GetString()));
        Assert.False(ec.TryGetProperty("d", out _));
        var rs = Assert.Single(keys, k => k.GetProperty("kid").GetString() == rsa.Kid);
        Assert.Equal("RS256", rs.GetProperty("alg").GetString());

        await ring.RotateAsync(default);
        var rotated = await ring.JoseKeyAsync(IdTokenAlgs.Es256, default);
        Assert.NotEqual(both[0].Kid, rotated.Kid);
        var after = JsonDocument.Parse(ring.JwksJson).RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
        // The retired key stays published while tokens it signed may live.
        Assert.Contains(both[0].Kid, after);
        Assert.Contains(rotated.Kid, after);
    }

    [Theory]
    [InlineData("EdDSA")]
    [InlineData("ES256")]
    [InlineData("RS256")]
    public async Task An_id_token_hint_of_this_server_is_accepted_and_forgeries_are_not(string alg)
    {
        var issuer = Server.Service<TokenIssuer>();
        var hints = Server.Service<IdTokenHints>();
        var now = Server.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var code = new AuthorizationCodeRecord([1], "web_test", "usr_test", "dev_test", "https://rp.example/cb", "openid", null, "n", now, AuthorizationCodes.PasskeyAmr,
            now, now + 60_000);
        var tokens = await issuer.ForAuthorizationCodeAsync(code, "jti1", alg, default);
        var hinted = hints.Validate(tokens.IdToken!);
        Assert.NotNull(hinted);
        Assert.Equal("web_test", hinted.ClientId);
        Assert.Equal(issuer.UserDid("usr_test"), hinted.Subject);

        var parts = tokens.IdToken!.Split('.');
        var header = JsonDocument.Parse(Base64Url.Decode(parts[0])).RootElement;
        var kid = header.GetProperty("kid").GetString()!;
        string Forge(string forgedAlg, byte[] signature) =>
            Base64Url.Encode(Encoding.UTF8.GetBytes($"{{\"alg\":\"{forgedAlg}\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}")) + "." + parts[1] + "." + Base64Url.Encode(signature);

        // RFC 8725 §3.1: no none, no HMAC keyed with a public key, no algorithm the key is not for.
        Assert.Null(hints.Validate(Forge("none", [])));
        var publicKeyJson = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(Server.Service<KeyRing>().Published.First(k => k.Kid == kid), Assent.Protocol.Jose.JwkJson.Default.Jwk));
        Assert.Null(hints.Validate(Forge("HS256", HMACSHA256.HashData(publicKeyJson, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1])))));
        Assert.Null(hints.Validate(Forge(alg == "RS256" ? "ES256" : "RS256", Base64Url.Decode(parts[2]))));
        // A changed payload; an access token (RFC 8725 §3.11: another typ) is no hint.
        Assert.Null(hints.Validate(parts[0] + "." + Base64Url.Encode(Encoding.UTF8.GetBytes("{\"iss\":\"https://evil.example\",\"sub\":\"x\",\"aud\":\"web_test\"}")) + "." + parts[2]));
        Assert.Null(hints.Validate(tokens.AccessToken));
        Assert.Null(hints.Validate(new string('a', 20_000)));
    }
}
