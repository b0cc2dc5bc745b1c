using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Mcp;

namespace Assent.Cli.Mcp;

/// <summary>
/// <c>assent mcp gate</c> (docs/mcp.md §4): runs a stdio MCP server as a child process and relays JSON-RPC between
/// it and the host, one message per line both ways (MCP 2025-11-25 basic/transports "stdio": newline-delimited,
/// no embedded newlines). Everything passes untouched, ids included, except a <c>tools/call</c> of a matching
/// tool, which is held until a human approves it: then it is forwarded as it came; otherwise the host gets a tool
/// error result (<c>isError: true</c>) for that id and the server never sees the call. The child's stderr is
/// the gate's own (inherited), so its logs pass through.
/// </summary>
internal sealed class McpGate(ToolApprover approver, ToolPatterns patterns, string? template, string scope, string? serverName, ProcessStartInfo child,
    TextWriter log)
{
    /// <summary>JSON-RPC 2.0 §5.1 error codes.</summary>
    private const int ParseError = -32700;
    private const int InternalError = -32603;
    private const int InvalidRequest = -32600;

    /// <summary>The MCP revision that removed JSON-RPC batching (MCP 2025-06-18 changelog).</summary>
    private const string FirstWithoutBatches = "2025-06-18";

    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false, MaxDepth = 64 };
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(2);

    private readonly SemaphoreSlim _toHost = new(1, 1);
    private readonly SemaphoreSlim _toChild = new(1, 1);
    private readonly ConcurrentDictionary<string, string> _forwarded = new();
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _held = new();
    private readonly List<Task> _gating = [];
    private volatile string? _childName;
    private volatile string? _protocolVersion;
    private Process? _process;
    private TextWriter _host = TextWriter.Null;

    public async Task<int> RunAsync(TextReader hostIn, TextWriter hostOut, CancellationToken ct)
    {
        _host = hostOut;
        child.RedirectStandardInput = true;
        child.RedirectStandardOutput = true;
        child.RedirectStandardError = false;
        child.UseShellExecute = false;
        child.StandardInputEncoding = new UTF8Encoding(false);
        child.StandardOutputEncoding = new UTF8Encoding(false);
        try
        {
            _process = Process.Start(child) ?? throw new CliException(ExitCodes.Usage, $"could not start {child.FileName}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw CliException.Usage($"cannot start the MCP server '{child.FileName}': {e.Message}");
        }
        using var process = _process;
        var fromChild = RelayFromChildAsync(process.StandardOutput);
        var hostClosed = RelayFromHostAsync(hostIn, ct);
        var finished = await Task.WhenAny(fromChild, hostClosed);
        if (finished == hostClosed)
        {
            // MCP 2025-11-25 basic/lifecycle "Shutdown", stdio: close the server's input, wait for it to exit, then SIGTERM/SIGKILL.
            foreach (var held in _held.Values)
            {
                await held.CancelAsync();
            }
            await AwaitGatingAsync();
            try
            {
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // It is gone already.
            }
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
            }
            await fromChild;
            return ExitCodes.Success;
        }
        // The server's output ended: it exited (or closed stdout). Every call it had not answered gets an error.
        await process.WaitForExitAsync(CancellationToken.None);
        foreach (var held in _held.Values)
        {
            await held.CancelAsync();
        }
        foreach (var id in _forwarded.Values)
        {
            await WriteHostAsync(ErrorResponse(id, InternalError, $"the MCP server exited (code {process.ExitCode}) before answering"));
        }
        await log.WriteLineAsync($"assent mcp gate: the MCP server '{child.FileName}' exited with code {process.ExitCode}");
        return process.ExitCode == 0 ? ExitCodes.Success : ExitCodes.DeniedOrInvalid;
    }

    private async Task AwaitGatingAsync()
    {
        Task[] tasks;
        lock (_gating)
        {
            tasks = [.. _gating];
        }
        await Task.WhenAll(tasks);
    }

    private async Task RelayFromHostAsync(TextReader hostIn, CancellationToken ct)
    {
        try
        {
            while (await hostIn.ReadLineAsync(ct) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }
                await HandleFromHostAsync(line);
            }
        }
        catch (OperationCanceledException)
        {
            // Interrupted: shut down as when the host closes.
        }
        catch (IOException)
        {
            // The child's stdin broke: the server is gone, which the other relay reports.
        }
    }

    private async Task HandleFromHostAsync(string line)
    {
        JsonDocument document;
        try
        {
            // Duplicate member names are refused: a server whose parser took the other copy could run a call
            // other than the one approved (RFC 8259 §4 leaves duplicates to the implementation). One read-only
            // parse per message, from pooled memory: what passes through is only classified, never rebuilt.
            document = JsonDocument.Parse(line, Strict);
        }
        catch (JsonException e)
        {
            // JSON-RPC 2.0 §5: Parse error, id null; nothing is forwarded.
            await WriteHostAsync(ErrorResponse(null, ParseError, $"Parse error: {e.Message}"));
            return;
        }
        using var parsed = document;
        var message = document.RootElement;
        switch (message.ValueKind)
        {
            case JsonValueKind.Object:
                if (IsMatchingCall(message) && !message.TryGetProperty("id", out _))
                {
                    // A tools/call without an id is a notification (JSON-RPC 2.0 §4.1): nobody could be answered, and a
                    // lenient server might still run it, so a matching one is dropped, never forwarded.
                    await log.WriteLineAsync("assent mcp gate: dropped a tools/call notification (no id) for a gated tool");
                    return;
                }
                if (IsGatedCall(message))
                {
                    Hold(message, line);
                    return;
                }
                if (IsCancellationOfHeld(message))
                {
                    return;
                }
                await ForwardAsync(message, line);
                return;
            case JsonValueKind.Array:
                if (BatchRefusal(message.GetArrayLength()) is { } refusal)
                {
                    // JSON-RPC 2.0 §5.1/§6: Invalid Request, id null (no single id to answer); nothing is forwarded.
                    await WriteHostAsync(ErrorResponse(null, InvalidRequest, refusal));
                    return;
                }
                // JSON-RPC 2.0 §6 batches, part of MCP 2025-03-26: the gated calls are taken out and decided one by
                // one, answered as single messages (clients match responses by id, §6); the rest goes on as a batch.
                var rest = new List<JsonElement>();
                foreach (var item in message.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.Object && IsGatedCall(item))
                    {
                        Hold(item, item.GetRawText());
                    }
                    else if (item.ValueKind == JsonValueKind.Object && IsMatchingCall(item))
                    {
                        await log.WriteLineAsync("assent mcp gate: dropped a tools/call notification (no id) for a gated tool");
                    }
                    else if (!(item.ValueKind == JsonValueKind.Object && IsCancellationOfHeld(item)))
                    {
                        rest.Add(item);
                    }
                }
                if (rest.Count == message.GetArrayLength())
                {
                    await ForwardAsync(message, line);
                }
                else if (rest.Count > 0)
                {
                    // The members as they came, byte for byte.
                    await ForwardAsync(message, "[" + string.Join(',', rest.Select(i => i.GetRawText())) + "]", rest);
                }
                return;
            default:
                await ForwardAsync(message, line);
                return;
        }
    }

    /// <summary>
    /// Why a batch is not relayed, or null when it is. MCP 2025-03-26 basic ("Batching") made receiving JSON-RPC
    /// batches a MUST; 2025-06-18 removed batching (changelog, "Remove support for JSON-RPC batching") and 2025-11-25
    /// keeps it out: a stdio message is then a single request, notification or response (basic/transports). So a
    /// batch passes only once the server has answered initialize with a revision before 2025-06-18; before that the
    /// initialize request itself may not be batched (2025-03-26 basic/lifecycle).
    /// </summary>
    private string? BatchRefusal(int count)
    {
        if (count == 0)
        {
            return "Invalid Request: an empty batch (JSON-RPC 2.0 §6)";
        }
        var version = _protocolVersion;
        if (version is null)
        {
            return "Invalid Request: no JSON-RPC batch before initialization is complete (MCP 2025-03-26 basic/lifecycle)";
        }
        return string.CompareOrdinal(version, FirstWithoutBatches) >= 0
            ? $"Invalid Request: MCP {version} has no JSON-RPC batches (removed in {FirstWithoutBatches}); send each message on its own line"
            : null;
    }

    private bool IsGatedCall(JsonElement message) => IsMatchingCall(message) && message.TryGetProperty("id", out _);

    private bool IsMatchingCall(JsonElement message) =>
        message.TryGetProperty("method", out var method) && method.ValueKind == JsonValueKind.String && method.ValueEquals("tools/call")
        && message.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Object
        && p.TryGetProperty("name", out var tool) && tool.ValueKind == JsonValueKind.String && patterns.Matches(tool.GetString()!);

    /// <summary>MCP 2025-11-25 basic/utilities/cancellation: a cancelled held call stops waiting and gets no response.</summary>
    private bool IsCancellationOfHeld(JsonElement message)
    {
        if (message.TryGetProperty("method", out var method) && method.ValueKind == JsonValueKind.String && method.ValueEquals("notifications/cancelled")
            && message.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("requestId", out var requestId)
            && _held.TryRemove(Key(requestId), out var held))
        {
            held.Cancel();
            return true;
        }
        return false;
    }

    private void Hold(JsonElement call, string raw)
    {
        // Cloned: the call outlives the document it was read from while it waits.
        call = call.Clone();
        var id = call.GetProperty("id");
        var key = Key(id);
        var cts = new CancellationTokenSource();
        if (!_held.TryAdd(key, cts))
        {
            // JSON-RPC 2.0 §4: an id in use twice is the host's error; answered without asking anyone.
            cts.Dispose();
            _ = WriteHostAsync(ErrorResponse(id.GetRawText(), InvalidRequest, "Invalid Request: a request with this id is already waiting for approval"));
            return;
        }
        // Started on the reading thread, not queued to the thread pool: it runs until its authorize request is sent (the
        // first wait), and only then does the relay read on. One thread-pool hop less per gated call (docs/mcp.md §4).
        var task = GateAsync(call, raw, id, key, cts);
        lock (_gating)
        {
            _gating.RemoveAll(t => t.IsCompleted);
            _gating.Add(task);
        }
    }

    private async Task GateAsync(JsonElement call, string raw, JsonElement id, string key, CancellationTokenSource cts)
    {
        using var _ = cts;
        var p = call.GetProperty("params");
        var tool = p.GetProperty("name").GetString()!;
        var server = serverName ?? _childName ?? Path.GetFileName(child.FileName);
        string message;
        JsonElement details;
        try
        {
            Dictionary<string, JsonElement>? arguments = null;
            if (p.TryGetProperty("arguments", out var args) && args.ValueKind == JsonValueKind.Object)
            {
                arguments = args.EnumerateObject().ToDictionary(m => m.Name, m => m.Value, StringComparer.Ordinal);
            }
            else if (args.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
            {
                throw new ArgumentException("arguments must be a JSON object (MCP 2025-11-25 server/tools)");
            }
            message = template is null ? $"Run {tool} on {server}" : ApprovalTemplate.Fill(template, arguments);
            details = approver.Details(server, tool, arguments);
        }
        catch (ArgumentException e)
        {
            _held.TryRemove(key, out var _1);
            await WriteHostAsync(ToolError(id, $"cannot ask for approval: {e.Message}; the tool did not run", ToolDecision.Failed));
            return;
        }
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var progress = p.TryGetProperty("_meta", out var meta) && meta.ValueKind == JsonValueKind.Object && meta.TryGetProperty("progressToken", out var token)
            ? ReportProgressAsync(JsonNode.Parse(token.GetRawText())!, message, waiting.Token)
            : Task.CompletedTask;
        ToolApprovalOutcome outcome;
        try
        {
            outcome = await approver.ApproveAsync(message, details, scope, cts.Token);
        }
        catch (OperationCanceledException)
        {
            // Cancelled by the host (or the gate is shutting down): no response (MCP 2025-11-25
            // basic/utilities/cancellation); the SDK has withdrawn the approval request (docs/mcp.md §4).
            return;
        }
        finally
        {
            await waiting.CancelAsync();
            await progress;
        }
        if (!_held.TryRemove(key, out var _2))
        {
            return; // cancelled while the answer was on its way
        }
        if (outcome.Approved)
        {
            await log.WriteLineAsync($"assent mcp gate: {tool} {outcome.Message} (txn {outcome.Token!.Transaction})");
            await ForwardAsync(call, raw);
        }
        else
        {
            await log.WriteLineAsync($"assent mcp gate: {tool} {outcome.Decision.ToString().ToLowerInvariant()}");
            await WriteHostAsync(ToolError(id, outcome.Message, outcome.Decision));
        }
    }

    /// <summary>MCP 2025-11-25 basic/utilities/progress: only for a request that carried a progressToken, increasing each time.</summary>
    private async Task ReportProgressAsync(JsonNode token, string message, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var notification = new JsonObject
                {
                    ["jsonrpc"] = "2.0",
                    ["method"] = "notifications/progress",
                    ["params"] = new JsonObject
                    {
                        ["progressToken"] = token.DeepClone(),
                        ["progress"] = Math.Round(Stopwatch.GetElapsedTime(started).TotalSeconds, 1) + 0.1,
                        ["message"] = $"waiting for a human to approve \"{message}\"",
                    },
                };
                await WriteHostAsync(notification.ToJsonString());
                await Task.Delay(ProgressInterval, ct);
            }
        }
        catch (OperationCanceledException)
        {
            // Decided.
        }
    }

    /// <param name="message">What is forwarded (for a batch with members taken out, the original array).</param>
    /// <param name="raw">The line to write.</param>
    /// <param name="members">A batch's members when not all of <paramref name="message"/> is forwarded.</param>
    private async Task ForwardAsync(JsonElement message, string raw, List<JsonElement>? members = null)
    {
        // Requests the server must answer: if it exits first, the gate answers them (RunAsync).
        if (message.ValueKind == JsonValueKind.Object)
        {
            Track(message);
        }
        else if (message.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in members ?? (IEnumerable<JsonElement>)message.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.Object)
                {
                    Track(item);
                }
            }
        }
        await _toChild.WaitAsync();
        try
        {
            await _process!.StandardInput.WriteAsync(raw + "\n");
            await _process.StandardInput.FlushAsync();
        }
        finally
        {
            _toChild.Release();
        }
    }

    private void Track(JsonElement request)
    {
        if (request.TryGetProperty("method", out _) && request.TryGetProperty("id", out var id))
        {
            _forwarded[Key(id)] = id.GetRawText();
        }
    }

    private async Task RelayFromChildAsync(StreamReader fromChild)
    {
        while (await fromChild.ReadLineAsync() is { } line)
        {
            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                if (root.ValueKind == JsonValueKind.Object)
                {
                    Answered(root);
                }
                else if (root.ValueKind == JsonValueKind.Array)
                {
                    foreach (var item in root.EnumerateArray())
                    {
                        if (item.ValueKind == JsonValueKind.Object)
                        {
                            Answered(item);
                        }
                    }
                }
            }
            catch (JsonException)
            {
                // Relayed as it is; the host judges it.
            }
            await WriteHostAsync(line);
        }
    }

    private void Answered(JsonElement response)
    {
        if (response.TryGetProperty("method", out _) || !response.TryGetProperty("id", out var id))
        {
            return;
        }
        _forwarded.TryRemove(Key(id), out var _);
        if (_childName is null && response.TryGetProperty("result", out var result) && result.ValueKind == JsonValueKind.Object
            && result.TryGetProperty("serverInfo", out var info) && info.ValueKind == JsonValueKind.Object
            && info.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
        {
            // MCP 2025-11-25 basic/lifecycle: the initialize result names the server; the details say which server ran the tool.
            _childName = name.GetString();
            if (result.TryGetProperty("protocolVersion", out var negotiated) && negotiated.ValueKind == JsonValueKind.String)
            {
                // The revision both sides now speak (basic/lifecycle "Version Negotiation"): it decides whether batches exist.
                _protocolVersion = negotiated.GetString();
            }
        }
    }

    private async Task WriteHostAsync(string line)
    {
        await _toHost.WaitAsync();
        try
        {
            // Written on this thread: the gate's stdout is a console stream, whose WriteAsync is a synchronous write queued
            // to the thread pool, i.e. one thread-pool hop per message for nothing. A host not reading holds this thread as
            // it held the queued one; everyone else waits on the semaphore without a thread (docs/mcp.md §4).
            _host.Write(line);
            _host.Write('\n');
            _host.Flush();
        }
        finally
        {
            _toHost.Release();
        }
    }

    /// <summary>
    /// A JSON-RPC id as a lookup key, the same however it was spelled: a string by its value (<c>"a"</c> and
    /// <c>"\u0061"</c> are one id), a number by its text.
    /// </summary>
    private static string Key(JsonElement id) => id.ValueKind == JsonValueKind.String ? "s:" + id.GetString() : "n:" + id.GetRawText();

    private static string ErrorResponse(string? idJson, int code, string message) => new JsonObject
    {
        ["jsonrpc"] = "2.0",
        ["id"] = idJson is null ? null : JsonNode.Parse(idJson),
        ["error"] = new JsonObject { ["code"] = code, ["message"] = message },
    }.ToJsonString();

    /// <summary>MCP 2025-11-25 server/tools "Error Handling": a tool execution failure is a result with isError true.</summary>
    private static string ToolError(JsonElement id, string text, ToolDecision decision) => new JsonObject
    {
        ["jsonrpc"] = "2.0",
        ["id"] = JsonNode.Parse(id.GetRawText()),
        ["result"] = new JsonObject
        {
            ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = text }),
            ["isError"] = true,
            ["_meta"] = new JsonObject { ["io.assent/approval"] = new JsonObject { ["decision"] = ToolGate.DecisionName(decision) } },
        },
    }.ToJsonString();
}
