using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Assent.Protocol;
using Assent.Protocol.Devices;
using Assent.Server.Authentication;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>
/// The device API's request signatures (docs/http-api.md §3.3), one refusal at a time: each is a 401 whose detail says
/// what to fix, the clock skew is allowed up to its limit in both directions and no further, a signed body is capped
/// at <see cref="DeviceSignatureHandler.MaxSignedBody"/> whether or not its length is announced, and a nonce is kept
/// as long as its request's timestamp passes.
/// </summary>
[Collection(SharedServerCollection.Name)]
public sealed class DeviceAuthenticationTests(SharedServer shared)
{
    private const string Approvals = "/authenticator/approvals";

    private TestServer Server => shared.Server;

    private static readonly long Skew = (long)DeviceSignatures.MaxClockSkew.TotalSeconds;

    private static HttpRequestMessage WithHeader(HttpMethod method, string path, string authorization, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        return request;
    }

    private HttpRequestMessage SignedAt(TestDevice device, DateTimeOffset at, string path = Approvals) =>
        WithHeader(HttpMethod.Get, path, DeviceSignatures.SignRequest(device.DeviceId, device.Seed, "GET", path, [], at));

    private static async Task<string> RefusedAsync(TestServer server, HttpRequestMessage request, HttpStatusCode status = HttpStatusCode.Unauthorized)
    {
        using var response = await server.Http.SendAsync(request);
        var (actual, body) = await TestServer.ReadAsync(response);
        Assert.Equal(status, actual);
        return body.GetProperty("detail").GetString()!;
    }

    private async Task AssertAcceptedAsync(HttpRequestMessage request)
    {
        using var response = await Server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_missing_or_unparseable_header_asks_for_a_device_signature()
    {
        const string detail = "sign the request with the device key: Authorization: AssentDevice id=…, ts=…, nonce=…, sig=…";

        Assert.Equal(detail, await RefusedAsync(Server, new HttpRequestMessage(HttpMethod.Get, Approvals)));
        Assert.Equal(detail, await RefusedAsync(Server, WithHeader(HttpMethod.Get, Approvals, "AssentDevice id=\"dev_x\"")));
        Assert.Equal(detail, await RefusedAsync(Server, WithHeader(HttpMethod.Get, Approvals, "Bearer abc")));
    }

    [Fact]
    public async Task A_timestamp_is_accepted_up_to_the_skew_either_side_and_refused_one_second_beyond()
    {
        var device = await Server.UserWithDeviceAsync();
        // Whole seconds, as the header carries them: the server compares against its clock's whole second.
        var now = DateTimeOffset.FromUnixTimeSeconds(Server.Clock.GetUtcNow().ToUnixTimeSeconds());
        const string detail = "the request timestamp is too far from the server clock; check the device's time";

        await AssertAcceptedAsync(SignedAt(device, now.AddSeconds(-Skew)));
        await AssertAcceptedAsync(SignedAt(device, now.AddSeconds(Skew)));
        Assert.Equal(detail, await RefusedAsync(Server, SignedAt(device, now.AddSeconds(-Skew - 1))));
        Assert.Equal(detail, await RefusedAsync(Server, SignedAt(device, now.AddSeconds(Skew + 1))));
    }

    [Fact]
    public async Task Unknown_revoked_overlong_and_passkey_devices_are_refused_by_name()
    {
        var device = await Server.UserWithDeviceAsync();
        var now = Server.Clock.GetUtcNow();
        string Header(string id) => DeviceSignatures.SignRequest(id, device.Seed, "GET", Approvals, [], now);

        Assert.Equal("unknown or revoked device", await RefusedAsync(Server, WithHeader(HttpMethod.Get, Approvals, Header("dev_unknown"))));
        Assert.Equal("unknown or revoked device", await RefusedAsync(Server, WithHeader(HttpMethod.Get, Approvals, Header(new string('d', 65)))));

        // A passkey signs WebAuthn assertions, not device API requests: its id with an Ed25519 signature is refused as such.
        var passkeyId = "dev_pk" + Guid.NewGuid().ToString("N")[..10];
        await Server.Store.Devices.AddAsync(new DeviceRecord(passkeyId, device.UserId, DeviceKinds.WebAuthn, "passkey",
            """{"kty":"EC","crv":"P-256","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}""",
            System.Security.Cryptography.RandomNumberGenerator.GetBytes(16), 0, now.ToUnixTimeMilliseconds(), null),
            new AuditEvent(AuditTypes.DeviceEnrolled, device.UserId, passkeyId, passkeyId), default);
        Assert.Equal("this device signs with a passkey, not an Ed25519 key",
            await RefusedAsync(Server, WithHeader(HttpMethod.Get, Approvals, Header(passkeyId))));

        var second = await Server.EnrollAsync((await Server.InviteAsync(device.Handle)).Code, "second");
        using (var revoke = await Server.Http.SendAsync(device.Signed(HttpMethod.Delete, $"/authenticator/devices/{second.DeviceId}")))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }
        Assert.Equal("unknown or revoked device", await RefusedAsync(Server, second.Signed(HttpMethod.Get, Approvals)));
    }

    [Fact]
    public async Task A_signature_by_another_key_or_over_another_body_does_not_verify_and_a_replay_is_refused()
    {
        var device = await Server.UserWithDeviceAsync();
        var other = await Server.UserWithDeviceAsync();
        const string invalid = "the request signature does not verify";

        var forged = DeviceSignatures.SignRequest(device.DeviceId, other.Seed, "GET", Approvals, [], Server.Clock.GetUtcNow());
        Assert.Equal(invalid, await RefusedAsync(Server, WithHeader(HttpMethod.Get, Approvals, forged)));

        var path = $"/authenticator/devices/{device.DeviceId}";
        var signed = device.Signed(HttpMethod.Patch, path, "{\"name\":\"signed\"}"u8.ToArray());
        var swapped = WithHeader(HttpMethod.Patch, path, signed.Headers.GetValues("Authorization").Single(), Json("{\"name\":\"swapped\"}"));
        Assert.Equal(invalid, await RefusedAsync(Server, swapped));

        using (var renamed = await Server.Http.SendAsync(signed))
        {
            Assert.Equal(HttpStatusCode.NoContent, renamed.StatusCode);
        }
        Assert.Equal("signed", (await Server.Store.Devices.FindAsync(device.DeviceId, default))!.Name);
        var replay = WithHeader(HttpMethod.Patch, path, signed.Headers.GetValues("Authorization").Single(), Json("{\"name\":\"signed\"}"));
        Assert.Equal("this request was already used (replayed nonce)", await RefusedAsync(Server, replay));
    }

    private static ByteArrayContent Json(string body) => Json(Encoding.UTF8.GetBytes(body));

    private static ByteArrayContent Json(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    /// <summary>A body sent chunked: its length is not announced.</summary>
    private sealed class Chunked(byte[] body) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(body).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>A rename whose JSON is padded with whitespace to exactly <paramref name="size"/> bytes, signed over all of it.</summary>
    private static HttpRequestMessage PaddedRename(TestDevice device, string name, int size, bool chunked)
    {
        var json = $"{{\"name\":\"{name}\"}}";
        var body = Encoding.UTF8.GetBytes(json + new string(' ', size - json.Length));
        var path = $"/authenticator/devices/{device.DeviceId}";
        var request = device.Signed(HttpMethod.Patch, path, body);
        if (chunked)
        {
            request.Content = new Chunked(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        return request;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_signed_body_of_the_limit_reaches_the_endpoint_and_one_byte_more_is_413(bool chunked)
    {
        var device = await Server.UserWithDeviceAsync();
        const int limit = DeviceSignatureHandler.MaxSignedBody;
        Assert.Equal(16 * 1024, limit);

        using (var tooBig = await Server.Http.SendAsync(PaddedRename(device, "too big", limit + 1, chunked)))
        {
            var (status, problem) = await TestServer.ReadAsync(tooBig);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
            Assert.Equal("Payload too large", problem.GetProperty("title").GetString());
            Assert.Equal("the body is larger than a signed request may be", problem.GetProperty("detail").GetString());
        }
        Assert.Equal("test device", (await Server.Store.Devices.FindAsync(device.DeviceId, default))!.Name);

        using (var renamed = await Server.Http.SendAsync(PaddedRename(device, "at the limit", limit, chunked)))
        {
            Assert.Equal(HttpStatusCode.NoContent, renamed.StatusCode);
        }
        Assert.Equal("at the limit", (await Server.Store.Devices.FindAsync(device.DeviceId, default))!.Name);
        using (var small = await Server.Http.SendAsync(PaddedRename(device, "small", 40, chunked)))
        {
            Assert.Equal(HttpStatusCode.NoContent, small.StatusCode);
        }
        Assert.Equal("small", (await Server.Store.Devices.FindAsync(device.DeviceId, default))!.Name);
    }

    [Fact]
    public async Task An_empty_body_with_a_length_of_zero_is_signed_as_empty()
    {
        var device = await Server.UserWithDeviceAsync();
        var second = await Server.EnrollAsync((await Server.InviteAsync(device.Handle)).Code, "second");
        var path = $"/authenticator/devices/{second.DeviceId}";
        var request = device.Signed(HttpMethod.Delete, path);
        request.Content = new ByteArrayContent([]);

        using var response = await Server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.False((await Server.Store.Devices.FindAsync(second.DeviceId, default))!.Active);
    }

    [Fact]
    public async Task A_nonce_is_kept_for_as_long_as_its_timestamp_passes()
    {
        // Moves the clock: its own server.
        await using var server = await TestServer.StartAsync();
        var device = await server.UserWithDeviceAsync();
        var signed = device.Signed(HttpMethod.Get, Approvals);
        var header = signed.Headers.GetValues("Authorization").Single();
        using (var first = await server.Http.SendAsync(signed))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        // The last moment the timestamp passes; expired rows are pruned at that moment.
        server.Clock.Advance(TimeSpan.FromSeconds(Skew));
        await server.Store.PruneExpiredAsync(server.Clock.GetUtcNow().ToUnixTimeMilliseconds(), default);

        Assert.Equal("this request was already used (replayed nonce)", await RefusedAsync(server, WithHeader(HttpMethod.Get, Approvals, header)));
        server.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("the request timestamp is too far from the server clock; check the device's time",
            await RefusedAsync(server, WithHeader(HttpMethod.Get, Approvals, header)));
    }
}
