using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Client;
using Assent.Client.Verification;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Assent.Mcp;

/// <summary><c>.WithAssentApproval(...)</c> on an MCP server builder (docs/mcp.md §2).</summary>
public static class AssentMcpServerBuilderExtensions
{
    /// <summary>
    /// Gates tools on a human approval through Assent: methods marked <see cref="RequiresApprovalAttribute"/> and
    /// tools whose names match <see cref="AssentApprovalOptions.Tools"/>. A gated call asks, reports progress while it
    /// waits, offers the approval link by URL-mode elicitation where the client supports it, and runs the tool only
    /// with a verified token (available through <see cref="AssentApprovalAccessor"/>); otherwise it answers a tool
    /// error result naming the decision.
    /// </summary>
    public static IMcpServerBuilder WithAssentApproval(this IMcpServerBuilder builder, Action<AssentApprovalOptions>? configure = null)
    {
        builder.Services.AddOptions<AssentApprovalOptions>().Configure(o => configure?.Invoke(o));
        builder.Services.AddSingleton<AssentApprovalAccessor>();
        builder.Services.AddSingleton<ToolGate>();
        builder.WithRequestFilters(filters => filters.AddCallToolFilter(next => (context, ct) =>
            (context.Services ?? context.Server.Services!).GetRequiredService<ToolGate>().InvokeAsync(context, next, ct)));
        return builder;
    }
}

/// <summary>The call-tool filter of <see cref="AssentMcpServerBuilderExtensions.WithAssentApproval"/>.</summary>
internal sealed class ToolGate : IDisposable
{
    /// <summary>The <c>_meta</c> key under which a gated result names its approval (docs/mcp.md §2).</summary>
    public const string MetaKey = "io.assent/approval";

    private readonly AssentApprovalOptions _options;
    private readonly AssentApprovalAccessor _accessor;
    private readonly ToolPatterns _patterns;
    private readonly Lazy<(AssentClient Client, TokenVerifier Verifier, ToolApprover Approver)> _assent;

    public ToolGate(IOptions<AssentApprovalOptions> options, AssentApprovalAccessor accessor)
    {
        _options = options.Value;
        _accessor = accessor;
        _patterns = new ToolPatterns(_options.Tools);
        // Built on first use, so a server whose environment lacks the credentials still starts and lists its tools;
        // a gated call then answers the configuration error as a tool error.
        _assent = new(() =>
        {
            var clientOptions = _options.Client ?? AssentClientOptions.FromEnvironment();
            var client = new AssentClient(clientOptions);
            var verifier = new TokenVerifier(client.Server.AbsoluteUri.TrimEnd('/'), _options.Verifier);
            return (client, verifier, new ToolApprover(client, verifier, clientOptions.ClientId!, clientOptions.UserDid ?? clientOptions.LoginHint,
                _options.Timeout, _options.MaxArgumentsLength));
        });
    }

    public async ValueTask<CallToolResult> InvokeAsync(RequestContext<CallToolRequestParams> context, McpRequestHandler<CallToolRequestParams, CallToolResult> next,
        CancellationToken ct)
    {
        var call = context.Params!;
        var attribute = context.MatchedPrimitive is McpServerTool tool ? tool.Metadata.OfType<RequiresApprovalAttribute>().FirstOrDefault() : null;
        if (attribute is null && !_patterns.Matches(call.Name))
        {
            return await next(context, ct);
        }
        var server = _options.ServerName ?? context.Server.ServerOptions.ServerInfo?.Name ?? "mcp";
        var scope = attribute?.Scope ?? _options.Scope;
        ToolApprover approver;
        string message;
        JsonElement details;
        try
        {
            approver = _assent.Value.Approver;
            var arguments = call.Arguments is null ? null : new Dictionary<string, JsonElement>(call.Arguments, StringComparer.Ordinal);
            message = (attribute?.Message ?? _options.Message) is { } template
                ? ApprovalTemplate.Fill(template, arguments)
                : $"Run {call.Name} on {server}";
            details = approver.Details(server, call.Name, arguments);
        }
        catch (ArgumentException e)
        {
            return Error($"cannot ask for approval: {e.Message}; the tool did not run");
        }

        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var progress = ReportProgressAsync(context, message, waiting.Token);
        var elicitationId = Guid.NewGuid().ToString("n");
        var offered = _options.OfferApprovalLink && context.Server.ClientCapabilities?.Elicitation?.Url is not null;
        var link = offered ? OfferLinkAsync(context, approver, message, elicitationId, waiting.Token) : Task.CompletedTask;
        ToolApprovalOutcome outcome;
        try
        {
            outcome = await approver.ApproveAsync(message, details, scope, ct);
        }
        finally
        {
            await waiting.CancelAsync();
            await progress;
            await link;
            if (offered)
            {
                await CompleteLinkAsync(context, elicitationId);
            }
        }
        if (!outcome.Approved)
        {
            return Error(outcome.Message, outcome.Decision);
        }
        var previous = _accessor.Current;
        _accessor.Current = new AssentToolApproval(outcome.Token!, outcome.AccessToken!);
        context.Items[MetaKey] = _accessor.Current;
        try
        {
            var result = await next(context, ct);
            result.Meta ??= [];
            result.Meta[MetaKey] = new JsonObject
            {
                ["txn"] = outcome.Token!.Transaction,
                ["approver"] = outcome.Token.Subject,
                ["decision"] = "approved",
            };
            return result;
        }
        finally
        {
            _accessor.Current = previous;
        }
    }

    /// <summary>
    /// MCP 2025-11-25 basic/utilities/progress: progress notifications only when the request carried a
    /// <c>progressToken</c>, with a value that increases each time (here: seconds waited).
    /// </summary>
    private async Task ReportProgressAsync(RequestContext<CallToolRequestParams> context, string message, CancellationToken ct)
    {
        if (context.Params?.ProgressToken is not { } token)
        {
            return;
        }
        var started = DateTimeOffset.UtcNow;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var waited = (DateTimeOffset.UtcNow - started).TotalSeconds;
                await context.Server.NotifyProgressAsync(token, new ProgressNotificationValue
                {
                    Progress = (float)Math.Round(waited, 1) + 0.1f,
                    Message = $"waiting for a human to approve \"{message}\"",
                }, cancellationToken: ct);
                await Task.Delay(_options.ProgressInterval, ct);
            }
        }
        catch (OperationCanceledException)
        {
            // The decision arrived.
        }
        catch (Exception e) when (e is McpException or IOException or InvalidOperationException)
        {
            // A progress notification that cannot be sent changes nothing about the approval.
        }
    }

    /// <summary>
    /// MCP 2025-11-25 client/elicitation, URL mode: offered only when the client declared
    /// <c>capabilities.elicitation.url</c>; the link opens the approver web app, where the human approves with a
    /// passkey. The result is not awaited for the decision (the approval may arrive from a phone instead); the
    /// request is cancelled once the decision is in.
    /// </summary>
    private static async Task OfferLinkAsync(RequestContext<CallToolRequestParams> context, ToolApprover approver, string message, string id, CancellationToken ct)
    {
        try
        {
            await context.Server.ElicitAsync(new ElicitRequestParams
            {
                Mode = "url",
                Message = $"Approve \"{message}\" in Assent",
                Url = approver.Server.AbsoluteUri.TrimEnd('/') + "/app",
                ElicitationId = id,
            }, ct);
        }
        catch (OperationCanceledException)
        {
            // The decision arrived first.
        }
        catch (Exception e) when (e is McpException or IOException or InvalidOperationException)
        {
            // The client declined or failed the elicitation: the human can still decide on a device.
        }
    }

    /// <summary>
    /// MCP 2025-11-25 client/elicitation, URL mode "Completion Notifications": once decided, the out-of-band interaction
    /// the link started is over, and the client may close what it opened for it.
    /// </summary>
    private static async Task CompleteLinkAsync(RequestContext<CallToolRequestParams> context, string id)
    {
        try
        {
            await context.Server.SendNotificationAsync(NotificationMethods.ElicitationCompleteNotification,
                new ElicitationCompleteNotificationParams { ElicitationId = id }, McpJsonUtilities.DefaultOptions, CancellationToken.None);
        }
        catch (Exception e) when (e is McpException or IOException or InvalidOperationException)
        {
            // The client is gone; nothing to complete.
        }
    }

    /// <summary>MCP 2025-11-25 server/tools "Error Handling": a refusal is a tool result with <c>isError: true</c>, not a protocol error.</summary>
    private static CallToolResult Error(string text, ToolDecision decision = ToolDecision.Failed) => new()
    {
        IsError = true,
        Content = [new TextContentBlock { Text = text }],
        Meta = new JsonObject { [MetaKey] = new JsonObject { ["decision"] = DecisionName(decision) } },
    };

    /// <summary>The decision as the <c>_meta</c> of a result names it: approved, denied, expired, timed_out, failed.</summary>
    public static string DecisionName(ToolDecision decision) => decision switch
    {
        ToolDecision.TimedOut => "timed_out",
        _ => decision.ToString().ToLowerInvariant(),
    };

    public void Dispose()
    {
        if (_assent.IsValueCreated)
        {
            _assent.Value.Client.Dispose();
            _assent.Value.Verifier.Dispose();
        }
    }
}
