using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Server.Common;

namespace Assent.Server.Push;

/// <summary>
/// Where the server may send a push: the endpoint is chosen by whoever holds a web session, so it is checked like a
/// webhook target (SSRF). An https URL whose host resolves only to public addresses; loopback (and plain http there)
/// only with <see cref="PushOptions.AllowLoopback"/>. The address is checked again when the sender connects, so a
/// name that resolves elsewhere later (DNS rebinding) is refused then.
/// </summary>
internal static class PushTargets
{
    /// <summary>Push services' endpoints are a few hundred characters (FCM, Mozilla autopush, Apple); this leaves room.</summary>
    public const int MaxEndpointLength = 2048;

    /// <summary>RFC 8291 §2: the authentication secret is 16 octets.</summary>
    public const int AuthSecretLength = 16;

    /// <summary>RFC 8291 §3.1 / SEC 1 §2.3.3: an uncompressed P-256 point, 0x04 ‖ X ‖ Y.</summary>
    public const int P256PointLength = 65;

    /// <summary>Null when the endpoint may be stored, else why not.</summary>
    public static string? EndpointProblem(string? endpoint, PushOptions options)
    {
        if (string.IsNullOrEmpty(endpoint) || endpoint.Length > MaxEndpointLength)
        {
            return $"endpoint must be the push subscription's URL, at most {MaxEndpointLength} characters";
        }
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.UserInfo.Length > 0 || uri.Fragment.Length > 0 || uri.Host.Length == 0)
        {
            return "endpoint must be an absolute URL without user info or fragment";
        }
        var loopback = IsLoopbackHost(uri);
        if (loopback && !options.AllowLoopback)
        {
            return "endpoint must not be on a loopback address";
        }
        if (uri.Scheme != Uri.UriSchemeHttps && !(loopback && uri.Scheme == Uri.UriSchemeHttp))
        {
            // RFC 8030 §8: push messages travel over https only.
            return "endpoint must use https";
        }
        if (IPAddress.TryParse(uri.IdnHost, out var literal) && !Allowed(literal, options))
        {
            return "endpoint must not be on a private or reserved address";
        }
        return null;
    }

    /// <summary>Null when the keys are a P-256 public point on the curve and a 16-byte secret, else why not.</summary>
    public static string? KeysProblem(string? p256dh, string? auth, out byte[] point, out byte[] secret)
    {
        point = [];
        secret = [];
        if (p256dh is null || p256dh.Length > 128 || !Base64Url.TryDecode(p256dh, out var p) || p.Length != P256PointLength || p[0] != 0x04)
        {
            return "keys.p256dh must be the browser's P-256 public key: 65 bytes, uncompressed (0x04 ‖ X ‖ Y), base64url";
        }
        try
        {
            // ImportParameters validates that the point is on the curve: a point that is not would make ECDH leak.
            using var ecdh = ECDiffieHellman.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = p[1..33], Y = p[33..] } });
        }
        catch (CryptographicException)
        {
            return "keys.p256dh is not a point on P-256";
        }
        if (auth is null || auth.Length > 32 || !Base64Url.TryDecode(auth, out var a) || a.Length != AuthSecretLength)
        {
            return $"keys.auth must be the subscription's authentication secret: {AuthSecretLength} bytes, base64url (RFC 8291 §2)";
        }
        point = p;
        secret = a;
        return null;
    }

    /// <summary>What logs and the owner's list show of an endpoint: its origin, never the capability path (RFC 8030 §8.4).</summary>
    public static string Origin(string endpoint) =>
        Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Authority) : "(invalid)";

    /// <summary>Whether the sender may connect to this address.</summary>
    public static bool Allowed(IPAddress address, PushOptions options)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (IPAddress.IsLoopback(address))
        {
            return options.AllowLoopback;
        }
        return !Reserved.Any(n => n.Contains(address));
    }

    /// <summary>Private, link-local, shared, multicast and otherwise unroutable ranges (RFC 6890, RFC 4193, RFC 4291).</summary>
    private static readonly IPNetwork[] Reserved =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.0.0.0/24"), IPNetwork.Parse("192.168.0.0/16"), IPNetwork.Parse("198.18.0.0/15"),
        IPNetwork.Parse("224.0.0.0/4"), IPNetwork.Parse("240.0.0.0/4"),
        IPNetwork.Parse("::/128"), IPNetwork.Parse("fc00::/7"), IPNetwork.Parse("fe80::/10"), IPNetwork.Parse("ff00::/8"),
    ];

    private static bool IsLoopbackHost(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.IdnHost, out var a) && IPAddress.IsLoopback(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a));

    /// <summary>
    /// The sender's connection: resolves the host and connects only to an allowed address, so the check above holds
    /// at connect time too.
    /// </summary>
    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, PushOptions options, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        var allowed = addresses.Where(a => Allowed(a, options)).ToArray();
        if (allowed.Length == 0 || allowed.Length != addresses.Length)
        {
            throw new HttpRequestException($"push endpoint host {host} resolves to an address the server does not send to");
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
