using System.Net;

namespace Assent.Client;

/// <summary>The server answered with an error: an RFC 9457 problem (or RFC 6749 error) whose text says what went wrong.</summary>
public sealed class AssentProblemException(HttpStatusCode status, string? title, string detail)
    : Exception($"{(int)status} {title ?? status.ToString()}: {detail}")
{
    public HttpStatusCode Status => status;

    public string? Title => title;

    /// <summary>The human-readable explanation from the server (RFC 9457 <c>detail</c>).</summary>
    public string Detail => detail;
}

/// <summary>The server could not be reached: connection refused, name not resolved, reset, or timed out.</summary>
public sealed class AssentUnreachableException(Uri server, string reason, Exception? inner = null)
    : Exception($"cannot reach the Assent server at {server}: {reason}", inner)
{
    public Uri Server => server;

    public string Reason => reason;
}

/// <summary>The server answered, but with something that is not what the Assent protocol allows.</summary>
public sealed class AssentProtocolException(string message) : Exception(message);
