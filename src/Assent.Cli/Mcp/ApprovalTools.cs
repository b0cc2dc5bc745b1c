using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Client;
using Assent.Client.Verification;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Assent.Cli.Mcp;

/// <summary>
/// The tools of <c>assent mcp serve</c> (docs/mcp.md §3): <c>request_approval</c> asks a human through Assent as
/// <c>assent approve</c> does, with the same agent credentials; <c>verify_approval</c> checks a token as
/// <c>assent verify</c> does. Refusals are results (<c>approved: false</c>); failures are tool errors
/// (<c>isError: true</c>, MCP 2025-11-25 server/tools "Error Handling") with a sentence saying what to fix.
/// </summary>
internal sealed class ApprovalTools(AssentClientOptions options) : IDisposable
{
    private const string DefaultScope = "approve:action";
    private readonly AssentClient _client = new(options);
    private readonly TokenVerifier _verifier = new(options.Server!.AbsoluteUri.TrimEnd('/'));

    public IEnumerable<McpServerTool> Tools() =>
    [
        McpServerTool.Create(RequestApprovalAsync, new McpServerToolCreateOptions
        {
            Name = "request_approval",
            Description = "Ask a human to approve an action and wait for the decision (they approve on their phone or passkey). "
                + "Returns {approved, status, token, approver, decided_at}; pass the token to whatever performs the action.",
        }),
        McpServerTool.Create(VerifyApprovalAsync, new McpServerToolCreateOptions
        {
            Name = "verify_approval",
            Description = "Verify an approval token from request_approval: issuer signature, that a human's device signed it, and optionally the exact message approved.",
            ReadOnly = true,
        }),
    ];

    private async Task<CallToolResult> RequestApprovalAsync(
        [Description("What the human is asked to approve, shown verbatim (at most 256 characters)")] string message,
        [Description("RFC 9396 authorization_details: a JSON object (or array of objects) each with a \"type\"")] JsonElement? details = null,
        [Description("Scopes to ask for besides openid, space-separated (default approve:action)")] string? scope = null,
        [Description("Seconds to wait for the decision, 1 to 3600 (default 300)")] int? timeout = null,
        CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(message) || message.Length > 256)
        {
            return Error("message must be 1 to 256 characters: it is shown to the human verbatim");
        }
        if (timeout is < 1 or > 3600)
        {
            return Error("timeout must be from 1 to 3600 seconds");
        }
        if (details is { } d && d.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array or JsonValueKind.Null or JsonValueKind.Undefined))
        {
            return Error("details must be a JSON object or an array of objects (RFC 9396 §2)");
        }
        Approval approval;
        try
        {
            approval = await _client.ApproveAsync(message, new ApproveOptions
            {
                Scope = scope ?? DefaultScope,
                Details = details is { ValueKind: JsonValueKind.Object or JsonValueKind.Array } given ? given : null,
                Timeout = TimeSpan.FromSeconds(timeout ?? 300),
            }, ct);
        }
        catch (AssentTimeoutException e)
        {
            return Result(new JsonObject { ["approved"] = false, ["status"] = "timed_out", ["message"] = $"nobody decided within {e.Timeout.TotalSeconds:0} s" });
        }
        catch (AssentUnreachableException e)
        {
            return Error($"cannot reach the Assent server at {e.Server.AbsoluteUri.TrimEnd('/')}: {e.Reason}");
        }
        catch (AssentOAuthException e)
        {
            return Error($"the Assent server refused the request: {e.Message}");
        }
        catch (Exception e) when (e is AssentProtocolException or ArgumentException)
        {
            return Error(e.Message);
        }
        var body = new JsonObject
        {
            ["approved"] = approval.Approved,
            ["status"] = approval.Status.ToString().ToLowerInvariant(),
            ["approver"] = approval.Claims.TryGetValue("sub", out var sub) ? sub.GetString() : options.UserDid,
            ["decided_at"] = DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (approval.Approved)
        {
            body["token"] = approval.AccessToken;
            body["txn"] = approval.Claims.TryGetValue("txn", out var txn) ? txn.GetString() : null;
            body["scope"] = approval.Scope;
            body["expires_in"] = approval.ExpiresIn;
        }
        return Result(body);
    }

    private async Task<CallToolResult> VerifyApprovalAsync(
        [Description("The access token request_approval returned")] string token,
        [Description("When given, the token's binding message must be exactly this")] string? expected_message = null,
        CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(token))
        {
            return Error("token is required: the access token request_approval returned");
        }
        try
        {
            var verified = await _verifier.VerifyAsync(token.Trim(), new VerifyOptions
            {
                Audience = options.ClientId,
                ExpectedBindingMessage = expected_message,
                // This tool attests to a token; it does not act on it, so asking twice is no replay.
                CheckReplay = false,
            }, ct);
            return Result(new JsonObject
            {
                ["valid"] = true,
                ["approver"] = verified.Subject,
                ["txn"] = verified.Transaction,
                ["binding_message"] = verified.BindingMessage,
                ["authorization_details"] = verified.AuthorizationDetails is { } ad ? JsonNode.Parse(ad.GetRawText()) : null,
                ["scope"] = verified.Scope,
                ["device"] = verified.EvidenceDevice,
                ["expires_at"] = verified.ExpiresAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            });
        }
        catch (TokenVerificationException e)
        {
            var result = Result(new JsonObject { ["valid"] = false, ["error"] = e.Code, ["message"] = e.Message });
            result.IsError = true;
            return result;
        }
    }

    // The text content is read by people and models: '+' and non-ASCII stay as they are (it is not embedded in HTML).
    private static readonly JsonSerializerOptions TextOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static CallToolResult Result(JsonObject body) => new()
    {
        Content = [new TextContentBlock { Text = body.ToJsonString(TextOptions) }],
        StructuredContent = JsonDocument.Parse(body.ToJsonString()).RootElement.Clone(),
    };

    private static CallToolResult Error(string text) => new() { IsError = true, Content = [new TextContentBlock { Text = text }] };

    public void Dispose()
    {
        _client.Dispose();
        _verifier.Dispose();
    }
}
