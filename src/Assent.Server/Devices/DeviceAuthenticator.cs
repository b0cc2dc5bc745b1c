using System.Text.Json;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Server.Approvals;
using Assent.Server.Http;
using Assent.Server.Storage;
using Assent.Server.Users;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Devices;

/// <summary>
/// Checks the per-request device signature (see <see cref="DeviceSignatures"/>): fresh timestamp,
/// unseen nonce, active device, valid Ed25519 signature over method, path, time, nonce and body hash.
/// </summary>
internal sealed class DeviceAuthenticator(IdentityDirectory directory, IAssentStore store, TimeProvider time)
{
    public sealed record Outcome(DeviceRecord? Device, UserRecord? User, IResult? Error);

    public async Task<Outcome> AuthenticateAsync(HttpRequest request, byte[] body, CancellationToken ct)
    {
        if (!DeviceSignatures.TryParseHeader(request.Headers.Authorization.ToString(), out var header))
        {
            return Fail("sign the request with the device key: Authorization: AssentDevice id=…, ts=…, nonce=…, sig=…");
        }
        var now = time.GetUtcNow();
        if (Math.Abs(now.ToUnixTimeSeconds() - header!.Timestamp) > DeviceSignatures.MaxClockSkew.TotalSeconds)
        {
            return Fail("the request timestamp is too far from the server clock; check the device's time");
        }
        var device = header.DeviceId.Length <= 64 ? await directory.FindDeviceAsync(header.DeviceId, ct) : null;
        if (device is null || !device.Active)
        {
            return Fail("unknown or revoked device");
        }
        var jwk = JsonSerializer.Deserialize(device.PublicJwk, JwkJson.Default.Jwk);
        if (jwk is null || !jwk.TryGetEd25519(out var publicKey))
        {
            return Fail("this device signs with a passkey, not an Ed25519 key");
        }
        var input = DeviceSignatures.RequestSigningInput(request.Method, request.Path + request.QueryString, header.Timestamp, header.Nonce, body);
        if (!Ed25519.Verify(publicKey, input, header.Signature))
        {
            return Fail("the request signature does not verify");
        }
        // A captured request cannot be replayed within the skew window, on this node or any other:
        // the nonce is stored until the request's timestamp can no longer pass the check above.
        var expiresAt = (header.Timestamp + (long)DeviceSignatures.MaxClockSkew.TotalSeconds + 1) * 1000;
        if (!await store.TryUseDeviceNonceAsync(device.Id, header.Nonce, expiresAt, ct))
        {
            return Fail("this request was already used (replayed nonce)");
        }
        var user = await directory.FindUserAsync(device.UserId, ct);
        return user is null ? Fail("the device's user no longer exists") : new Outcome(device, user, null);
    }

    private static Outcome Fail(string detail) => new(null, null, Problem.Unauthorized(detail));
}
