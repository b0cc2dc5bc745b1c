using System.Net;
using System.Net.Sockets;

namespace Assent.Tests;

/// <summary>
/// The one way tests get a port for a server (in-process Kestrel, an <c>assent server</c> process, PostgreSQL), which must
/// know its port before it binds: the issuer, DIDs and invite links name it.
/// </summary>
internal static class Ports
{
    /// <summary>
    /// A loopback port that stays reserved until a server binds it. Binding port 0 and closing leaves a gap in which the
    /// kernel may hand the same port to anyone else who binds port 0 or connects out. Instead, the port is bound, and one
    /// connection to it is accepted and closed from the accepting side first: that side's end waits in TIME_WAIT on the
    /// port (about a minute), and while it does the kernel picks the port for no automatic bind or outgoing connection,
    /// whereas a server binding it by number with SO_REUSEADDR (Kestrel, as .NET sets it on every TCP socket on Unix;
    /// PostgreSQL) takes it at once, on IPv4 and IPv6 alike.
    /// </summary>
    public static int Reserve()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(endpoint);
        using (var accepted = listener.Accept())
        {
            accepted.Shutdown(SocketShutdown.Both);
        }
        // The client's close answers the accepted side's FIN, which moves that side from FIN_WAIT_2 to TIME_WAIT.
        client.Shutdown(SocketShutdown.Both);
        return endpoint.Port;
    }
}
