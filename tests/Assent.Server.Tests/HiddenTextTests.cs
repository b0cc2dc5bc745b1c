using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;

namespace Assent.Server.Tests;

/// <summary>
/// Nothing a human is shown before approving may hide or reorder what they read: binding messages,
/// every string of authorization_details, agent names and device names (Protocol's DisplayText rule).
/// </summary>
[Collection(SharedServerCollection.Name)]
public sealed class HiddenTextTests(SharedServer shared)
{
    private TestServer Server => shared.Server;

    private async Task<(TestDevice Device, TestAgent Agent)> SetupAsync()
    {
        var device = await Server.UserWithDeviceAsync();
        return (device, await Server.AgentAsync(device.Handle));
    }

    /// <summary>Posts a CIBA request that must be refused; returns error and error_description, and checks nothing was created.</summary>
    private async Task<(string Error, string Description)> RefusedAsync(TestDevice device, TestAgent agent, Dictionary<string, string> form)
    {
        form["scope"] = "openid approve:action";
        form["login_hint"] = agent.Owner;
        using var response = await Server.BcAuthorizeAsync(agent, form);
        var (status, body) = await TestServer.ReadAsync(response);
        Assert.True(status == HttpStatusCode.BadRequest, body.ToString());
        Assert.Empty(await device.PendingAsync());
        return (body.GetProperty("error").GetString()!, body.GetProperty("error_description").GetString()!);
    }

    // A NUL in a form body never gets this far: ASP.NET Core's form reader refuses it (invalid_request).
    [Theory]
    [InlineData("\u001B[2J", "U+001B (control character)")]
    [InlineData("\u0085", "U+0085 (control character)")]
    [InlineData("\u202E", "U+202E (bidi override)")]
    [InlineData("\u2066", "U+2066 (bidi isolate)")]
    [InlineData("\u061C", "U+061C (bidi mark)")]
    [InlineData("\u200B", "U+200B (invisible format character)")]
    [InlineData("\u200F", "U+200F (bidi mark)")]
    [InlineData("\uFEFF", "U+FEFF (invisible format character)")]
    [InlineData("\u00AD", "U+00AD (invisible format character)")]
    [InlineData("\u2060", "U+2060 (invisible format character)")]
    [InlineData("\u2028", "U+2028 (line separator)")]
    [InlineData("\u2029", "U+2029 (paragraph separator)")]
    [InlineData("\u3164", "U+3164 (default-ignorable character)")]
    [InlineData("\uE000", "U+E000 (private use character)")]
    [InlineData("\u0378", "U+0378 (unassigned code point)")]
    [InlineData("\U000E0041", "U+E0041 (tag character)")]
    public async Task A_binding_message_with_a_character_that_hides_or_reorders_text_is_invalid_binding_message(string hidden, string named)
    {
        var (device, agent) = await SetupAsync();

        var (error, description) = await RefusedAsync(device, agent, new() { ["binding_message"] = "Pay ACME " + hidden + "125.00 EUR" });

        Assert.Equal("invalid_binding_message", error);
        Assert.Equal("binding_message contains " + named, description);
    }

    [Theory]
    // JSON escapes and raw characters alike; in values at any depth and in member names.
    [InlineData("""[{"type":"payment","amount":"\u202e00.521","currency":"EUR"}]""", "authorization_details[0].amount contains U+202E (bidi override)")]
    [InlineData("[{\"type\":\"payment\",\"amount\":\"\u202E00.521\"}]", "authorization_details[0].amount contains U+202E (bidi override)")]
    [InlineData("""[{"type":"payment","memo":"a\u0000b"}]""", "authorization_details[0].memo contains U+0000 (control character)")]
    [InlineData("""[{"type":"payment","memo":"\u001b[31mred"}]""", "authorization_details[0].memo contains U+001B (control character)")]
    [InlineData("""[{"type":"payment"},{"type":"action","target":{"hosts":["db-1","db\u202e-2"]}}]""",
        "authorization_details[1].target.hosts[1] contains U+202E (bidi override)")]
    [InlineData("""[{"type":"payment","to":{"\u202eeman":"ACME"}}]""", "authorization_details[0].to has a member name that contains U+202E (bidi override)")]
    [InlineData("""[{"type":"payment","recipient":"AC\u200bME"}]""", "authorization_details[0].recipient contains U+200B (invisible format character)")]
    [InlineData("""[{"type":"payment","recipient":"ACME\u2028Ltd"}]""", "authorization_details[0].recipient contains U+2028 (line separator)")]
    [InlineData("""[{"type":"payment","recipient":"\u3164"}]""", "authorization_details[0].recipient contains U+3164 (default-ignorable character)")]
    [InlineData("""[{"type":"payment","recipient":"ACME\udb40\udc41"}]""", "authorization_details[0].recipient contains U+E0041 (tag character)")]
    [InlineData("""[{"type":"payment","recipient":"\ud800"}]""", "authorization_details[0].recipient contains an unpaired surrogate")]
    [InlineData("""[{"type":"pay\u200bment"}]""", "authorization_details[0].type contains U+200B (invisible format character)")]
    public async Task Authorization_details_with_hidden_text_in_any_value_or_member_name_are_invalid_authorization_details(string details, string description)
    {
        var (device, agent) = await SetupAsync();

        var refused = await RefusedAsync(device, agent, new() { ["binding_message"] = "Pay ACME", ["authorization_details"] = details });

        Assert.Equal(("invalid_authorization_details", description), refused);
    }

    [Fact]
    public async Task An_agent_name_that_hides_or_reorders_text_is_refused_by_post_agents_and_by_the_operator_command()
    {
        var device = await Server.UserWithDeviceAsync();
        var access = (await Session.SignInAsync(Server, device)).GetProperty("access_token").GetString()!;

        foreach (var (name, named) in new[] { ("pay\u202Eevil", "U+202E (bidi override)"), ("bot\u200B", "U+200B (invisible format character)"),
                     ("\u3164", "U+3164 (default-ignorable character)"), ("bot\U000E0041", "U+E0041 (tag character)") })
        {
            using var response = await Server.Http.SendAsync(Session.Bearer(HttpMethod.Post, "/agents", access, new { name, scopes = "approve:action" }));
            var (status, body) = await TestServer.ReadAsync(response);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("name contains " + named, body.GetProperty("detail").GetString());

            var e = await Assert.ThrowsAsync<ArgumentException>(() =>
                Server.Admin.CreateAgentAsync(device.Handle, name, "approve:action", CancellationToken.None));
            Assert.Equal("the agent name contains " + named, e.Message);
        }
        Assert.Empty(await device.PendingAsync());
        // Any script and emoji (with its presentation selector) are fine.
        var created = await Server.Admin.CreateAgentAsync(device.Handle, "Zoë's bot ❤️ 送金", "approve:action", CancellationToken.None);
        Assert.Equal("Zoë's bot ❤️ 送金", created.Name);
    }

    [Fact]
    public async Task A_device_name_that_hides_or_reorders_text_is_refused_at_enrolment_and_rename()
    {
        var invite = await Server.InviteAsync("names-" + Guid.NewGuid().ToString("N")[..6]);
        var seed = Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed));
        using (var enroll = await Server.Http.PostAsync("/authenticator/enroll", TestDevice.JsonBody(new Dictionary<string, string>
        {
            ["code"] = invite.Code, ["public_key"] = publicKey, ["name"] = "phone\u202Eenohp",
            ["proof"] = Base64Url.Encode(Ed25519.Sign(seed, DeviceSignatures.EnrollmentSigningInput(invite.Code, publicKey))),
        })))
        {
            var (status, body) = await TestServer.ReadAsync(enroll);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("name contains U+202E (bidi override)", body.GetProperty("detail").GetString());
        }
        // The code was not spent: the same device enrols under a plain name.
        var device = await Server.EnrollAsync(invite.Code, "Zoë's phone 📱");

        foreach (var (name, named) in new[] { ("laptop\u0000", "U+0000 (control character)"), ("lap\u2028top", "U+2028 (line separator)"),
                     ("\u3164\u3164", "U+3164 (default-ignorable character)") })
        {
            var path = $"/authenticator/devices/{device.DeviceId}";
            using var rename = await Server.Http.SendAsync(device.Signed(HttpMethod.Patch, path, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { name }))));
            var (status, body) = await TestServer.ReadAsync(rename);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("name contains " + named, body.GetProperty("detail").GetString());
        }
        var stored = await Server.Store.Devices.FindAsync(device.DeviceId, default);
        Assert.Equal("Zoë's phone 📱", stored!.Name);
    }
}
