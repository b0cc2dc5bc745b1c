using System.Net;
using System.Net.Sockets;

namespace Assent.Server.Webhooks;

/// <summary>
/// Where deliveries may go (docs/webhooks.md §6): http(s) URLs whose host resolves only to public addresses, unless the
/// operator allows private targets. Checked when an endpoint is registered and again on every connection, on the
/// address actually connected to, so a name that later resolves inward (DNS rebinding) is refused too.
/// </summary>
internal sealed class TargetGuard(Common.AssentOptions options)
{
    public const int MaxUrlLength = 2048;

    /// <summary>
    /// Networks no delivery may reach: this host, private networks (RFC 1918, RFC 4193), shared and link-local space,
    /// benchmarking, multicast and reserved ranges (IANA special-purpose registries, RFC 6890).
    /// </summary>
    private static readonly IPNetwork[] NonPublic =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.0.0.0/24"), IPNetwork.Parse("192.0.2.0/24"),
        IPNetwork.Parse("192.168.0.0/16"), IPNetwork.Parse("198.18.0.0/15"), IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("203.0.113.0/24"),
        IPNetwork.Parse("224.0.0.0/4"), IPNetwork.Parse("240.0.0.0/4"),
        IPNetwork.Parse("::/128"), IPNetwork.Parse("::1/128"), IPNetwork.Parse("fc00::/7"), IPNetwork.Parse("fe80::/10"), IPNetwork.Parse("ff00::/8"),
        IPNetwork.Parse("2001:db8::/32"), IPNetwork.Parse("100::/64"),
    ];

    public bool AllowsPrivate => options.Webhooks.AllowPrivateTargets;

    /// <summary>Whether <paramref name="address"/> is outside the public internet. IPv4 inside IPv6 (mapped, NAT64) is judged as IPv4.</summary>
    public static bool IsNonPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        else if (address.AddressFamily == AddressFamily.InterNetworkV6 && IPNetwork.Parse("64:ff9b::/96").Contains(address))
        {
            address = new IPAddress(address.GetAddressBytes()[12..]);
        }
        return NonPublic.Any(n => n.BaseAddress.AddressFamily == address.AddressFamily && n.Contains(address));
    }

    /// <summary>Checks a URL to register: its form, and where its host resolves now. Null when acceptable, else why not.</summary>
    public async Task<string?> ProblemAsync(string url, CancellationToken ct)
    {
        if (url.Length > MaxUrlLength || !Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            return $"url must be an absolute http(s) URL of at most {MaxUrlLength} characters";
        }
        if (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)
        {
            return "url must use https (or http)";
        }
        if (!string.IsNullOrEmpty(uri.UserInfo) || !string.IsNullOrEmpty(uri.Fragment))
        {
            return "url must not carry credentials or a fragment";
        }
        if (AllowsPrivate)
        {
            return null;
        }
        try
        {
            var addresses = IPAddress.TryParse(uri.DnsSafeHost, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(uri.DnsSafeHost, ct);
            if (addresses.Length == 0)
            {
                return $"url: {uri.Host} does not resolve";
            }
            return addresses.FirstOrDefault(IsNonPublic) is { } inward
                ? $"url: {uri.Host} is (or resolves to) {inward}, a loopback, private or reserved address; deliveries go to public addresses only unless the operator sets Assent:Webhooks:AllowPrivateTargets"
                : null;
        }
        catch (SocketException)
        {
            return $"url: {uri.Host} does not resolve";
        }
    }

    /// <summary>
    /// The delivery client's connect step: resolves the host, refuses if any address is non-public (unless allowed),
    /// and connects to the address it checked; no redirect is ever followed (see <see cref="CreateHandler"/>).
    /// </summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        if (!AllowsPrivate && addresses.FirstOrDefault(IsNonPublic) is { } inward)
        {
            throw new HttpRequestException($"refused: {host} resolves to {inward}, a non-public address");
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public SocketsHttpHandler CreateHandler() => new()
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        ConnectCallback = ConnectAsync,
        ConnectTimeout = options.Webhooks.Timeout,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        MaxConnectionsPerServer = options.Webhooks.MaxInFlight,
    };
}
