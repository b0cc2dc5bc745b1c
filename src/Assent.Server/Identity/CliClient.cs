using Assent.Server.Storage;

namespace Assent.Server.Identity;

/// <summary>
/// The built-in public client of the <c>assent</c> CLI (RFC 6749 §2.1: no secret; it cannot keep one).
/// It may only sign a human in with RFC 8628 and refresh that session; everything it obtains is
/// bound to the human's own device approval.
/// </summary>
internal static class CliClient
{
    public const string Id = "assent-cli";
    public const string Name = "Assent CLI";

    /// <summary>A signed-in human session (the CLI's access token), as opposed to an agent's approval.</summary>
    public const string SessionScope = "session";

    /// <summary>May ask (through the human's device) to register agents: <c>POST /agents</c>.</summary>
    public const string AgentsWriteScope = "agents:write";

    public static readonly string[] Scopes = [Protocol.OAuth.Scopes.OpenId, SessionScope, AgentsWriteScope];

    public static readonly ClientRecord Record = new(Id, [], Name, "", string.Join(' ', Scopes), 0, null);
}
