using System.Text.Encodings.Web;
using System.Text.Json;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Protocol.Jose;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Assent.Server.Authentication;

/// <summary>
/// The device API's authentication (docs/http-api.md §3.3): every call is signed with the device key over method,
/// path, timestamp, nonce and body hash (see <see cref="DeviceSignatures"/>). Checked here: a fresh timestamp, an
/// active device, a valid Ed25519 signature, an unused nonce. The device holds no bearer secret.
/// A refused request writes one line, at Information (docs/deployment.md §12), instead of the base class's two.
/// </summary>
internal sealed class DeviceSignatureHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    IdentityDirectory directory, IDeviceStore devices, TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, NullLoggerFactory.Instance, encoder)
{
    private readonly ILogger _log = logger.CreateLogger<DeviceSignatureHandler>();

    /// <summary>Signed bodies are small JSON documents; a larger one is refused before it is hashed.</summary>
    public const int MaxSignedBody = 16 * 1024;

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!DeviceSignatures.TryParseHeader(Request.Headers.Authorization.ToString(), out var header))
        {
            return AuthenticateResult.Fail("sign the request with the device key: Authorization: AssentDevice id=…, ts=…, nonce=…, sig=…");
        }
        var now = time.GetUtcNow();
        if (Math.Abs(now.ToUnixTimeSeconds() - header!.Timestamp) > DeviceSignatures.MaxClockSkew.TotalSeconds)
        {
            return AuthenticateResult.Fail("the request timestamp is too far from the server clock; check the device's time");
        }
        var device = header.DeviceId.Length <= 64 ? await directory.FindDeviceAsync(header.DeviceId, Context.RequestAborted) : null;
        if (device is null || !device.Active)
        {
            return AuthenticateResult.Fail("unknown or revoked device");
        }
        var jwk = JsonSerializer.Deserialize(device.PublicJwk, JwkJson.Default.Jwk);
        if (jwk is null || !jwk.TryGetEd25519(out var publicKey))
        {
            return AuthenticateResult.Fail("this device signs with a passkey, not an Ed25519 key");
        }
        var body = await ReadBodyAsync();
        if (body is null)
        {
            return AuthenticateResult.Fail(new BodyTooLarge());
        }
        var input = DeviceSignatures.RequestSigningInput(Request.Method, Request.Path + Request.QueryString, header.Timestamp, header.Nonce, body);
        if (!Ed25519.Verify(publicKey, input, header.Signature))
        {
            return AuthenticateResult.Fail("the request signature does not verify");
        }
        // A captured request cannot be replayed within the skew window, on this node or any other:
        // the nonce is stored until the request's timestamp can no longer pass the check above.
        var expiresAt = (header.Timestamp + (long)DeviceSignatures.MaxClockSkew.TotalSeconds + 1) * 1000;
        if (!await devices.TryUseNonceAsync(device.Id, header.Nonce, expiresAt, Context.RequestAborted))
        {
            return AuthenticateResult.Fail("this request was already used (replayed nonce)");
        }
        var user = await directory.FindUserAsync(device.UserId, Context.RequestAborted);
        return user is null
            ? AuthenticateResult.Fail("the device's user no longer exists")
            : Approver.Authenticated(Context, new Approver(user, device.Id), Scheme.Name);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure;
        _log.LogInformation("refused a device-signed request to {Endpoint}: {Reason}", Context.GetEndpoint()?.DisplayName, failure?.Message);
        await (failure is BodyTooLarge
            ? Common.Problem.Make(StatusCodes.Status413PayloadTooLarge, "Payload too large", "the body is larger than a signed request may be")
            : Common.Problem.Unauthorized(failure?.Message ?? "sign the request with the device key")).ExecuteAsync(Context);
    }

    /// <summary>
    /// The whole body, handed on to the endpoint as a copy in memory; null when it is larger than <see cref="MaxSignedBody"/>.
    /// Read here rather than through <c>EnableBuffering</c>, whose limit throws an IOException (a 500) on a long chunked body.
    /// </summary>
    private async Task<byte[]?> ReadBodyAsync()
    {
        if (Request.ContentLength is 0 || (Request.ContentLength is null && HttpMethods.IsGet(Request.Method)))
        {
            return [];
        }
        // An endpoint that declares a larger limit (the vault's PUT, docs/vault.md §6) takes bodies up to that limit.
        var max = Context.GetEndpoint()?.Metadata.GetMetadata<Microsoft.AspNetCore.Http.Metadata.IRequestSizeLimitMetadata>()?.MaxRequestBodySize is { } declared &&
                  declared > MaxSignedBody ? declared : MaxSignedBody;
        if (Request.ContentLength > max)
        {
            return null;
        }
        // One byte more than a signed body may have: reading it tells a body that is too large.
        var buffer = new byte[(Request.ContentLength ?? max) + 1];
        var length = 0;
        int n;
        while (length < buffer.Length && (n = await Request.Body.ReadAsync(buffer.AsMemory(length), Context.RequestAborted)) > 0)
        {
            length += n;
        }
        if (length > max)
        {
            return null;
        }
        var body = buffer[..length];
        Request.Body = new MemoryStream(body, writable: false);
        return body;
    }

    private sealed class BodyTooLarge() : Exception("the body is larger than a signed request may be");
}
