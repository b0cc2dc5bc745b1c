using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Protocol.Vault;
using Assent.Server.Tests.Processes;

namespace Assent.Server.Tests.Vault;

/// <summary>
/// docs/vault.md threat model: what the server keeps (its SQLite database with its WAL) and what it writes to its log hold
/// neither a secret nor any key that opens it, in any usual spelling, after items are stored, read and released.
/// </summary>
public sealed class VaultLeakTests
{
    [Fact]
    public async Task Neither_the_database_files_nor_the_servers_log_hold_a_plaintext_or_an_item_key_after_put_get_and_release()
    {
        var dir = Directory.CreateTempSubdirectory("assent-vault-leak-").FullName;
        var port = Ports.Reserve();
        var issuer = $"http://localhost:{port}";
        var provisioned = await Provisioned.CreateAsync(dir, issuer, null, "vault agent");
        // The most talkative level the server has: whatever it might log about a request is written.
        await using var node = await ServerProcess.StartAsync(dir, port, issuer, configure: s =>
        {
            s.Environment["Logging__LogLevel__Default"] = "Trace";
            s.Environment["Logging__LogLevel__Microsoft.AspNetCore"] = "Trace";
        });
        var http = node.Http;

        var seed = Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed));
        using var enrolled = await http.PostAsync("/authenticator/enroll", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["code"] = provisioned.InviteCode, ["public_key"] = publicKey,
            ["proof"] = Base64Url.Encode(Ed25519.Sign(seed, DeviceSignatures.EnrollmentSigningInput(provisioned.InviteCode, publicKey))),
        }));
        var enrollment = JsonDocument.Parse(await enrolled.Content.ReadAsStringAsync()).RootElement;
        var deviceId = enrollment.GetProperty("device_id").GetString()!;
        HttpRequestMessage Signed(HttpMethod method, string path, byte[]? body)
        {
            var request = new HttpRequestMessage(method, path);
            request.Headers.TryAddWithoutValidation("Authorization", DeviceSignatures.SignRequest(deviceId, seed, method.Method, path, body ?? [], DateTimeOffset.UtcNow));
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            }
            return request;
        }
        var owner = new VaultOwner(http, Signed, enrollment.GetProperty("user_id").GetString()!, deviceId, seed);
        Assert.Equal(HttpStatusCode.Created, (await owner.RegisterAsync()).Status);

        var secrets = new List<byte[]>();
        var id = VaultFormat.NewItemId();
        for (uint version = 1; version <= 2; version++)
        {
            var plaintext = Encoding.ASCII.GetBytes("plaintext-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24)));
            secrets.Add(plaintext);
            var (status, body) = await owner.PutAsync("leak/check", plaintext, id, version);
            Assert.True(status is HttpStatusCode.Created or HttpStatusCode.OK, body.ToString());
            Assert.Equal(plaintext, await owner.OpenAsync("leak/check", version));
        }

        // A release to an agent: the device re-wraps version 2's key to the agent's key and the agent opens it.
        var agentKey = VaultFormat.NewPrivateKey();
        using var ask = new HttpRequestMessage(HttpMethod.Post, "/oauth/bc-authorize")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["scope"] = "openid", ["login_hint"] = "ops", ["binding_message"] = "Release leak/check",
                ["authorization_details"] = VaultReleaseTests.ReleaseDetails("leak/check", X25519.PublicKeyFromPrivateKey(agentKey)),
            }),
        };
        ask.Headers.Authorization = AgentCalls.Basic(provisioned.ClientId, provisioned.ClientSecret);
        using var asked = await http.SendAsync(ask);
        var askText = await asked.Content.ReadAsStringAsync();
        Assert.True(asked.IsSuccessStatusCode, askText);
        var authReqId = JsonDocument.Parse(askText).RootElement.GetProperty("auth_req_id").GetString()!;
        var (_, pendingList) = await owner.CallAsync(HttpMethod.Get, "/authenticator/approvals");
        var pending = Assert.Single(pendingList.GetProperty("approvals").EnumerateArray());
        var wrapped = await VaultReleaseTests.RewrapForAgentAsync(owner, pending.GetProperty("authorization_details")[0]);
        using var decided = await http.PostAsync($"/authenticator/approvals/{pending.GetProperty("id").GetString()}/decision", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["device_id"] = deviceId, ["decision"] = "approve", ["vault_release"] = Base64Url.Encode(wrapped),
            ["signature"] = Base64Url.Encode(Ed25519.Sign(seed, ApprovalPayload.SigningInput("approve", Base64Url.Decode(pending.GetProperty("payload").GetString()!)))),
        }));
        Assert.True(decided.IsSuccessStatusCode, await decided.Content.ReadAsStringAsync());
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "urn:openid:params:grant-type:ciba", ["auth_req_id"] = authReqId }),
        };
        tokenRequest.Headers.Authorization = AgentCalls.Basic(provisioned.ClientId, provisioned.ClientSecret);
        using var token = await http.SendAsync(tokenRequest);
        var release = JsonDocument.Parse(await token.Content.ReadAsStringAsync()).RootElement.GetProperty("vault_release");
        var released = VaultFormat.OpenItem(VaultFormat.UnwrapKey(Base64Url.Decode(release.GetProperty("wrapped").GetString()!), id, 2, agentKey), id, 2,
            Base64Url.Decode(release.GetProperty("ciphertext").GetString()!));
        Assert.Equal(secrets[1], released);
        secrets.AddRange(owner.ItemKeys);
        Assert.Equal(4, secrets.Count);

        using (var unsigned = await http.GetAsync("/authenticator/vault/items"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
        }

        // While the server runs (the WAL holds the recent writes), and again once it has stopped and checkpointed.
        var ciphertext = Base64Url.Decode(release.GetProperty("ciphertext").GetString()!);
        AssertNoneIn(DatabaseFiles(dir), secrets, ciphertext);
        await node.StopAsync();
        AssertNoneIn(DatabaseFiles(dir), secrets, ciphertext);
        var log = node.Output;
        // The log is captured and written at this level: the refused request below is in it.
        Assert.Contains("refused a device-signed request", log, StringComparison.Ordinal);
        var logBytes = Encoding.UTF8.GetBytes(log);
        foreach (var secret in secrets)
        {
            foreach (var spelling in Spellings(secret))
            {
                Assert.True(logBytes.AsSpan().IndexOf(spelling) < 0, "the server's log holds a secret or an item key");
            }
        }
    }

    private static byte[] DatabaseFiles(string dir) =>
        [.. Directory.GetFiles(dir, "assent.db*").Where(f => !f.EndsWith("-shm", StringComparison.Ordinal)).SelectMany(File.ReadAllBytes)];

    private static void AssertNoneIn(byte[] files, List<byte[]> secrets, byte[] ciphertext)
    {
        // The scan reads where the vault's bytes are: the sealed item itself is there.
        Assert.True(files.AsSpan().IndexOf(ciphertext) >= 0, "the scan did not find the stored ciphertext: it reads the wrong files");
        foreach (var secret in secrets)
        {
            foreach (var spelling in Spellings(secret))
            {
                Assert.True(files.AsSpan().IndexOf(spelling) < 0, "the database files hold a secret or an item key");
            }
        }
    }

    /// <summary>Raw bytes, hex (both cases), base64url and base64 (as UTF-8 and as UTF-16, the way SQLite may store text).</summary>
    private static IEnumerable<byte[]> Spellings(byte[] secret)
    {
        yield return secret;
        foreach (var text in new[] { Convert.ToHexString(secret), Convert.ToHexStringLower(secret), Base64Url.Encode(secret), Convert.ToBase64String(secret).TrimEnd('=') })
        {
            yield return Encoding.UTF8.GetBytes(text);
            yield return Encoding.Unicode.GetBytes(text);
        }
    }
}
