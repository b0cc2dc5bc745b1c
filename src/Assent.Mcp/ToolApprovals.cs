using System.Text;
using System.Text.Json;
using Assent.Client;
using Assent.Client.Verification;

namespace Assent.Mcp;

/// <summary>How a gated call ended.</summary>
public enum ToolDecision
{
    /// <summary>A human approved, and the token verified: the tool may run.</summary>
    Approved,

    /// <summary>The human denied the request.</summary>
    Denied,

    /// <summary>Nobody decided before the request expired.</summary>
    Expired,

    /// <summary>The gate stopped waiting before anyone decided.</summary>
    TimedOut,

    /// <summary>The approval could not be asked for or its token did not verify; the message says why.</summary>
    Failed,
}

/// <summary>The outcome of asking for one tool call.</summary>
/// <param name="Decision">How it ended.</param>
/// <param name="Message">A sentence for the tool's caller naming the decision (never a secret).</param>
/// <param name="Token">The verified token when approved.</param>
/// <param name="AccessToken">The access token itself when approved.</param>
public sealed record ToolApprovalOutcome(ToolDecision Decision, string Message, VerifiedToken? Token = null, string? AccessToken = null)
{
    /// <summary>True when the tool may run.</summary>
    public bool Approved => Decision == ToolDecision.Approved && Token is not null;
}

/// <summary>
/// Asks Assent to approve one MCP tool call and verifies the answer (docs/mcp.md §2), for the C# filter and for
/// <c>assent mcp gate</c> alike: the request's <c>authorization_details</c> is
/// <c>[{"type":"mcp_tool","server","tool","arguments"}]</c> with the arguments canonical (RFC 8785), and the
/// returned token must verify (SDK <see cref="TokenVerifier"/>, evidence included) with exactly that binding
/// message and those details before the call may run.
/// </summary>
internal sealed class ToolApprover(AssentClient client, TokenVerifier verifier, string clientId, string? user, TimeSpan timeout, int maxArgumentsLength)
{
    /// <summary>The <c>authorization_details</c> type of a gated tool call (docs/mcp.md §2).</summary>
    public const string DetailsType = "mcp_tool";

    public Uri Server => client.Server;

    public string? User => user;

    /// <summary>The one-element <c>authorization_details</c> array for a call, canonical JSON throughout.</summary>
    /// <exception cref="ArgumentException">The arguments are not canonicalisable or larger than the limit.</exception>
    public JsonElement Details(string server, string tool, IEnumerable<KeyValuePair<string, JsonElement>>? arguments)
    {
        var args = ArgumentsObject(arguments);
        var canonical = CanonicalJson.Serialize(args);
        var bytes = Encoding.UTF8.GetByteCount(canonical);
        if (bytes > maxArgumentsLength)
        {
            throw new ArgumentException($"the arguments are {bytes} bytes as canonical JSON; at most {maxArgumentsLength} can be put before a human for approval");
        }
        var sb = new StringBuilder("[{\"arguments\":").Append(canonical)
            .Append(",\"server\":").Append(CanonicalJson.Serialize(JsonSerializer.SerializeToElement(server, McpJson.Default.String)))
            .Append(",\"tool\":").Append(CanonicalJson.Serialize(JsonSerializer.SerializeToElement(tool, McpJson.Default.String)))
            .Append(",\"type\":\"").Append(DetailsType).Append("\"}]");
        using var doc = JsonDocument.Parse(sb.ToString());
        return doc.RootElement.Clone();
    }

    /// <summary>The call's arguments as one JSON object (none: <c>{}</c>).</summary>
    internal static JsonElement ArgumentsObject(IEnumerable<KeyValuePair<string, JsonElement>>? arguments)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            foreach (var (name, value) in arguments ?? [])
            {
                writer.WritePropertyName(name);
                value.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        using var doc = JsonDocument.Parse(stream.ToArray());
        return doc.RootElement.Clone();
    }

    /// <summary>Asks, waits, verifies. Transport failures and refusals become a <see cref="ToolDecision.Failed"/> outcome with a clear message.</summary>
    public async Task<ToolApprovalOutcome> ApproveAsync(string message, JsonElement details, string scope, CancellationToken ct)
    {
        // While the human decides, the verifier fetches what the token's verification will need (the issuer's keys, the
        // approver's DID document), so an approval does not wait for them once it arrives (docs/mcp.md §4).
        _ = verifier.PrepareAsync(user is not null && user.StartsWith("did:web:", StringComparison.Ordinal) ? user : null, ct);
        Approval approval;
        try
        {
            approval = await client.ApproveAsync(message, new ApproveOptions { Scope = scope, Details = details, User = user, Timeout = timeout }, ct);
        }
        catch (AssentTimeoutException e)
        {
            return new(ToolDecision.TimedOut, $"timed out: nobody decided within {e.Timeout.TotalSeconds:0} s; the tool did not run");
        }
        catch (AssentUnreachableException e)
        {
            return new(ToolDecision.Failed, $"approval unavailable: cannot reach the Assent server at {e.Server.AbsoluteUri.TrimEnd('/')} ({e.Reason}); the tool did not run");
        }
        catch (AssentOAuthException e)
        {
            return new(ToolDecision.Failed, $"approval refused by the Assent server: {e.Message}; the tool did not run");
        }
        catch (AssentProtocolException e)
        {
            return new(ToolDecision.Failed, $"approval failed: {e.Message}; the tool did not run");
        }
        var whom = user is null ? "the approver" : $"the approver ({user})";
        switch (approval.Status)
        {
            case ApprovalStatus.Denied:
                return new(ToolDecision.Denied, $"denied: {whom} refused \"{message}\"; the tool did not run");
            case ApprovalStatus.Expired:
                return new(ToolDecision.Expired, $"expired: {whom} did not decide \"{message}\" in time; the tool did not run");
        }
        try
        {
            // The token must say that a human approved exactly this call: same binding message, same details
            // (docs/mcp.md §2), with the device's signature over them checked against the DID document.
            var verified = await verifier.VerifyAsync(approval.AccessToken!, new VerifyOptions
            {
                Audience = clientId,
                Scope = scope,
                ExpectedBindingMessage = message,
                ExpectedAuthorizationDetails = details,
            }, ct);
            return new(ToolDecision.Approved, $"approved by {verified.Subject}", verified, approval.AccessToken);
        }
        catch (TokenVerificationException e)
        {
            return new(ToolDecision.Failed, $"the approval token did not verify ({e.Code}: {e.Message}); the tool did not run");
        }
    }
}
