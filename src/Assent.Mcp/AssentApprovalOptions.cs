using Assent.Client;
using Assent.Client.Verification;

namespace Assent.Mcp;

/// <summary>What <see cref="AssentMcpServerBuilderExtensions.WithAssentApproval"/> gates and how it asks (docs/mcp.md §2).</summary>
public sealed class AssentApprovalOptions
{
    /// <summary>The agent's server and credentials; by default read from the <c>ASSENT_*</c> environment variables.</summary>
    public AssentClientOptions? Client { get; set; }

    /// <summary>Tool-name patterns (<see cref="ToolPatterns"/>) gated besides the methods marked <see cref="RequiresApprovalAttribute"/>.</summary>
    public IList<string> Tools { get; } = [];

    /// <summary>The binding-message template for pattern-gated tools; null for <c>Run {tool} on {server}</c> with the names filled in.</summary>
    public string? Message { get; set; }

    /// <summary>The scopes asked for besides <c>openid</c>.</summary>
    public string Scope { get; set; } = "approve:action";

    /// <summary>The <c>server</c> member of the details; null for the MCP server's own name (its <c>serverInfo.name</c>).</summary>
    public string? ServerName { get; set; }

    /// <summary>How long a call waits for the human; the request expires then too.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often a waiting call reports progress, when the caller asked for progress.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Offer the approver web app's link by URL-mode elicitation when the client declares it (on by default).</summary>
    public bool OfferApprovalLink { get; set; } = true;

    /// <summary>
    /// The largest arguments object, in UTF-8 bytes of canonical JSON, put before a human. The server refuses
    /// <c>authorization_details</c> above 2048 bytes unless configured otherwise (docs/http-api.md), and the token carries them.
    /// </summary>
    public int MaxArgumentsLength { get; set; } = DefaultMaxArgumentsLength;

    /// <summary>The default of <see cref="MaxArgumentsLength"/>: room in 2048 bytes for the server and tool names too.</summary>
    public const int DefaultMaxArgumentsLength = 1536;

    /// <summary>Settings of the token verifier (HttpClient, clock, replay cache).</summary>
    public TokenVerifierOptions? Verifier { get; set; }
}
