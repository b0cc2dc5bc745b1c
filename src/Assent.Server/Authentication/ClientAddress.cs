using System.Net;
using System.Net.Sockets;
using Assent.Server.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Authentication;

/// <summary>
/// Where a request comes from, as the per-address limits count it (docs/deployment.md §10): the connection's address,
/// or, behind a proxy listed in <see cref="LimitOptions.TrustedProxies"/>, the address that proxy names in
/// <c>X-Forwarded-For</c> (applied by the framework's forwarded-headers middleware, and only then).
/// </summary>
internal static class ClientAddress
{
    /// <summary>
    /// The partition key: an IPv4 address, or the /64 network of an IPv6 address (RFC 4291 §2.5.4: one subnet, which
    /// one holder usually gets whole, so counting single addresses would give it 2^64 budgets).
    /// </summary>
    public static string Of(HttpContext http)
    {
        var address = http.Connection.RemoteIpAddress;
        if (address is null)
        {
            // No socket address (an in-process test host, say): all such callers share one budget.
            return "unknown";
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    /// <summary>The forwarded-headers settings that trust exactly <see cref="LimitOptions.TrustedProxies"/>; null when none are listed.</summary>
    public static ForwardedHeadersOptions? Forwarding(LimitOptions limits)
    {
        if (limits.TrustedProxies is not { Length: > 0 } proxies)
        {
            return null;
        }
        // Only X-Forwarded-For: the issuer fixes the scheme and host. Without a limit, every hop from the right that is
        // a trusted proxy is stepped over, and the first address that is not one is the caller.
        var forwarded = new ForwardedHeadersOptions { ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor, ForwardLimit = null };
        forwarded.KnownProxies.Clear();
        forwarded.KnownIPNetworks.Clear();
        foreach (var proxy in proxies)
        {
            if (IPAddress.TryParse(proxy, out var address))
            {
                forwarded.KnownProxies.Add(address);
            }
            else
            {
                forwarded.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(proxy));
            }
        }
        return forwarded;
    }
}
