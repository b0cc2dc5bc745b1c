using System.Net;
using System.Text.Json;
using Assent.Protocol.Jose;

namespace Assent.Server.Tests;

[Collection(SharedServerCollection.Name)]
public sealed class SurfaceTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    [Fact]
    public async Task Discovery_names_every_endpoint_and_advertises_ciba_and_eddsa()
    {
        var doc = JsonDocument.Parse(await Server.Http.GetStringAsync("/.well-known/openid-configuration")).RootElement;
        var issuer = Server.Options.Issuer;
        Assert.Equal(issuer, doc.GetProperty("issuer").GetString());
        Assert.Equal(issuer + "/oauth/jwks", doc.GetProperty("jwks_uri").GetString());
        Assert.Equal(issuer + "/oauth/token", doc.GetProperty("token_endpoint").GetString());
        Assert.Equal(issuer + "/oauth/bc-authorize", doc.GetProperty("backchannel_authentication_endpoint").GetString());
        Assert.Contains("urn:openid:params:grant-type:ciba", doc.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()));
        // EdDSA first, the default; ES256 and RS256 for web clients that ask for them (docs/tokens.md §8).
        Assert.Equal(["EdDSA", "ES256", "RS256"], doc.GetProperty("id_token_signing_alg_values_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(issuer + "/oauth/authorize", doc.GetProperty("authorization_endpoint").GetString());
        Assert.Equal(issuer + "/oauth/logout", doc.GetProperty("end_session_endpoint").GetString());
        Assert.Equal(["S256"], doc.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("client_secret_basic", doc.GetProperty("token_endpoint_auth_methods_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("payment", doc.GetProperty("authorization_details_types_supported").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Jwks_lists_okp_ed25519_keys_with_a_thumbprint_kid_and_no_alg()
    {
        var text = await Server.Http.GetStringAsync("/oauth/jwks");
        var set = JsonSerializer.Deserialize<JwkSet>(text)!;
        var key = Assert.Single(set.Keys);
        Assert.Equal("OKP", key.Kty);
        Assert.Equal("Ed25519", key.Crv);
        Assert.Equal("sig", key.Use);
        Assert.Equal(Jwk.Thumbprint(key.X!), key.Kid);
        Assert.DoesNotContain("\"alg\"", text);
        Assert.DoesNotContain("\"d\"", text);
    }

    [Fact]
    public async Task Did_document_lists_each_active_device_key_under_the_users_did()
    {
        var device = await Server.UserWithDeviceAsync();
        var doc = JsonDocument.Parse(await Server.Http.GetStringAsync($"/users/{device.UserId}/did.json")).RootElement;
        Assert.Equal(device.Did, doc.GetProperty("id").GetString());
        Assert.StartsWith($"did:web:localhost%3A{Server.Port}:users:", device.Did);
        var method = Assert.Single(doc.GetProperty("verificationMethod").EnumerateArray());
        Assert.Equal($"{device.Did}#{device.DeviceId}", method.GetProperty("id").GetString());
        var jwk = JsonSerializer.Deserialize<Jwk>(method.GetProperty("publicKeyJwk").GetRawText())!;
        Assert.True(jwk.TryGetEd25519(out var pub));
        Assert.Equal(Protocol.Crypto.Ed25519.PublicKeyFromSeed(device.Seed), pub);
        using var missing = await Server.Http.GetAsync("/users/usr_nobody/did.json");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task The_device_stream_delivers_a_new_request_and_its_settlement()
    {
        var device = await Server.UserWithDeviceAsync();
        var agent = await Server.AgentAsync(device.Handle);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var stream = await Server.Http.SendAsync(device.Signed(HttpMethod.Get, "/authenticator/stream"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal("text/event-stream", stream.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cts.Token));
        Assert.Equal(": ready", await reader.ReadLineAsync(cts.Token));

        await Server.AskAsync(agent, "Rotate the production database password");
        var (type, data) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("approval", type);
        Assert.Equal("Rotate the production database password", data.GetProperty("binding_message").GetString());
        var id = data.GetProperty("id").GetString()!;

        using (await device.PostDecisionAsync(id, "deny", device.SignDecision("deny", data.GetProperty("payload").GetString()!)))
        {
        }
        (type, data) = await ServerSentEvents.NextAsync(reader, cts.Token);
        Assert.Equal("settled", type);
        Assert.Equal(id, data.GetProperty("id").GetString());
        Assert.Equal("denied", data.GetProperty("state").GetString());
    }

    [Fact]
    public async Task Health_and_openapi_documents_are_served()
    {
        var health = JsonDocument.Parse(await Server.Http.GetStringAsync("/healthz")).RootElement;
        Assert.Equal("ok", health.GetProperty("status").GetString());
        var openapi = JsonDocument.Parse(await Server.Http.GetStringAsync("/openapi/v1.json")).RootElement;
        var paths = openapi.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/oauth/bc-authorize", paths);
        Assert.Contains("/oauth/token", paths);
        Assert.Contains("/authenticator/approvals/{id}/decision", paths);
        foreach (var path in new[] { "/v1/challenges", "/v1/challenges/{id}", "/v1/challenges/{id}/consume", "/v1/challenges/{id}/cancel", "/v1/webhooks",
                     "/v1/webhooks/{id}/deliveries", "/v1/webhooks/{id}/deliveries/{deliveryId}/retry", "/v1/api-keys", "/v1/api-keys/requests/{id}" })
        {
            Assert.Contains(path, paths);
        }
        // The bodies are described, in their own camelCase contract.
        var create = openapi.GetProperty("paths").GetProperty("/v1/challenges").GetProperty("post");
        Assert.True(create.TryGetProperty("requestBody", out _));
        var schemas = openapi.GetProperty("components").GetProperty("schemas");
        Assert.True(schemas.GetProperty("ChallengeResponse").GetProperty("properties").TryGetProperty("challengeId", out _));
    }

    [Fact]
    public async Task Devices_can_be_listed_and_renamed_by_a_signed_request()
    {
        var device = await Server.UserWithDeviceAsync();
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["name"] = "work laptop" });
        using (var rename = await Server.Http.SendAsync(device.Signed(HttpMethod.Patch, $"/authenticator/devices/{device.DeviceId}", body)))
        {
            Assert.Equal(HttpStatusCode.NoContent, rename.StatusCode);
        }
        using var list = await Server.Http.SendAsync(device.Signed(HttpMethod.Get, "/authenticator/devices"));
        var doc = JsonDocument.Parse(await list.Content.ReadAsStringAsync()).RootElement;
        var one = Assert.Single(doc.GetProperty("devices").EnumerateArray());
        Assert.Equal("work laptop", one.GetProperty("name").GetString());
        Assert.True(one.GetProperty("active").GetBoolean());
    }
}
