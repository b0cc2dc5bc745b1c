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

/// <summary>
/// The OAuth server refused the request with an RFC 6749 §5.2 / CIBA Core §13 error, such as
/// <c>invalid_client</c>, <c>invalid_scope</c> or <c>unknown_user_id</c>. Denied and expired
/// approvals are not errors: they come back as an <see cref="Approval"/> result.
/// </summary>
public sealed class AssentOAuthException(string error, string? description, HttpStatusCode status)
    : Exception(description is null ? error : $"{error}: {description}")
{
    /// <summary>The OAuth error code (see <see cref="Protocol.OAuth.OAuthErrors"/>).</summary>
    public string Error => error;

    /// <summary>The server's <c>error_description</c>, when it gave one.</summary>
    public string? Description => description;

    /// <summary>The HTTP status the error came with.</summary>
    public HttpStatusCode Status => status;
}

/// <summary>No decision arrived within the caller's timeout; the request may still be pending at the server.</summary>
public sealed class AssentTimeoutException(TimeSpan timeout, string? authReqId)
    : Exception($"no decision within {timeout.TotalSeconds:0.#} s")
{
    /// <summary>How long the caller was willing to wait.</summary>
    public TimeSpan Timeout => timeout;

    /// <summary>The CIBA request that is still undecided, when one was created.</summary>
    public string? AuthReqId => authReqId;
}
