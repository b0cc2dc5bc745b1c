using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Assent.Cli.Tests;

/// <summary>
/// docs/mcp.md end to end: the official TypeScript MCP client (tests/interop/mcp-client.mjs) drives the sample gated
/// C# server, <c>assent mcp gate</c> around a TypeScript MCP server Assent has never seen, and <c>assent mcp serve</c>
/// over stdio and streamable HTTP; a CLI device approves or denies each request as a human would.
/// </summary>
public sealed class McpTests
{
    private static readonly string Dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    [Fact]
    public async Task Sample_server_runs_an_approved_call_with_its_token_and_answers_a_denial_with_an_error_result()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "Assent.Mcp.Sample.dll")], env),
            ["elicitation"] = true,
            ["list"] = true,
            ["sequential"] = true,
            ["calls"] = new JsonArray(
                Call("deploy", new JsonObject { ["service"] = "api", ["env"] = "production" }, progress: true),
                Call("delete_user", new JsonObject { ["user"] = "alice" }),
                Call("status", new JsonObject())),
        };
        var client = McpClient.Start(plan);
        var approved = await Steps.DecideWhenItArrivesAsync(box);
        var denied = await Steps.DecideWhenItArrivesAsync(box, deny: true);
        var events = await client.FinishAsync();

        Assert.Equal("approve", approved.GetProperty("decision").GetString());
        Assert.Equal("deny", denied.GetProperty("decision").GetString());
        Assert.Equal(["delete_user", "deploy", "status"], events.Single(e => e["event"]!.GetValue<string>() == "tools")["names"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));

        // Approved: the tool ran and saw the verified token, whose details are the call's arguments, canonical.
        var deploy = Result(events, 0);
        Assert.NotEqual(true, deploy["isError"]?.GetValue<bool>());
        var text = Text(deploy);
        Assert.StartsWith("deployed api to production; approved by did:web:", text, StringComparison.Ordinal);
        Assert.Contains("""[{"arguments":{"env":"production","service":"api"},"server":"sample-ops","tool":"deploy","type":"mcp_tool"}]""", text, StringComparison.Ordinal);
        var meta = deploy["_meta"]!["io.assent/approval"]!;
        Assert.Equal("approved", meta["decision"]!.GetValue<string>());
        Assert.Contains($"txn {meta["txn"]!.GetValue<string>()}", text, StringComparison.Ordinal);
        Assert.StartsWith("did:web:", meta["approver"]!.GetValue<string>(), StringComparison.Ordinal);

        // Progress while waiting, for the call that asked for it (MCP 2025-11-25 basic/utilities/progress).
        var progress = events.Where(e => e["event"]!.GetValue<string>() == "progress").ToList();
        Assert.NotEmpty(progress);
        Assert.All(progress, p => Assert.Equal(0, p["call"]!.GetValue<int>()));
        Assert.Contains("Deploy api to production", progress[0]["message"]!.GetValue<string>(), StringComparison.Ordinal);

        // URL-mode elicitation, offered because this client declared it, links to the approver web app.
        var elicitations = events.Where(e => e["event"]!.GetValue<string>() == "elicitation").ToList();
        Assert.Equal(2, elicitations.Count);
        Assert.All(elicitations, e => Assert.Equal("url", e["params"]!["mode"]!.GetValue<string>()));
        Assert.All(elicitations, e => Assert.Equal(box.Url + "/app", e["params"]!["url"]!.GetValue<string>()));
        // Each link's interaction is declared complete once decided (MCP 2025-11-25 client/elicitation, URL mode).
        Assert.Equal(elicitations.Select(e => e["params"]!["elicitationId"]!.GetValue<string>()).Order(StringComparer.Ordinal),
            events.Where(e => e["event"]!.GetValue<string>() == "elicitation_complete").Select(e => e["params"]!["elicitationId"]!.GetValue<string>()).Order(StringComparer.Ordinal));

        // Denied: an error result naming the denial; the tool did not run.
        var delete = Result(events, 1);
        Assert.True(delete["isError"]!.GetValue<bool>());
        Assert.StartsWith("denied:", Text(delete), StringComparison.Ordinal);
        Assert.Equal("denied", delete["_meta"]!["io.assent/approval"]!["decision"]!.GetValue<string>());

        Assert.Contains("RAN deploy api production", client.Stderr, StringComparison.Ordinal);

        // Not gated: runs without asking, and without an approval.
        Assert.Equal("all green", Text(Result(events, 2)));
    }

    [Fact]
    public async Task Sample_server_refuses_calls_it_cannot_put_before_a_human_and_offers_no_link_to_a_client_without_url_elicitation()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "Assent.Mcp.Sample.dll")], env),
            ["sequential"] = true,
            ["calls"] = new JsonArray(
                Call("deploy", new JsonObject { ["service"] = "api" }),
                Call("delete_user", new JsonObject { ["user"] = new string('x', 9000) }),
                Call("deploy", new JsonObject { ["service"] = "web", ["env"] = "staging" })),
        };
        var client = McpClient.Start(plan);
        await Steps.DecideWhenItArrivesAsync(box);
        var events = await client.FinishAsync();

        var missing = Result(events, 0);
        Assert.True(missing["isError"]!.GetValue<bool>());
        Assert.Contains("needs the argument 'env'", Text(missing), StringComparison.Ordinal);
        var oversized = Result(events, 1);
        Assert.True(oversized["isError"]!.GetValue<bool>());
        Assert.Contains("at most 1536", Text(oversized), StringComparison.Ordinal);
        Assert.StartsWith("deployed web to staging", Text(Result(events, 2)), StringComparison.Ordinal);
        Assert.DoesNotContain(events, e => e["event"]!.GetValue<string>() == "elicitation");
    }

    [Fact]
    public async Task Gated_call_with_the_assent_server_unreachable_is_a_clear_error_result_not_a_hang()
    {
        await using var box = new CliSandbox();
        var env = new JsonObject
        {
            ["HOME"] = box.Home,
            ["ASSENT_SERVER"] = $"http://127.0.0.1:{Ports.Reserve()}",
            ["ASSENT_CLIENT_ID"] = "agt_nobody",
            ["ASSENT_CLIENT_SECRET"] = "sec_nothing",
            ["ASSENT_USER_DID"] = "alice",
        };
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "Assent.Mcp.Sample.dll")], env),
            ["calls"] = new JsonArray(Call("deploy", new JsonObject { ["service"] = "api", ["env"] = "production" })),
        };
        var events = await McpClient.Start(plan).FinishAsync();
        var result = Result(events, 0);
        Assert.True(result["isError"]!.GetValue<bool>());
        Assert.Contains("cannot reach the Assent server", Text(result), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gate_forwards_ungated_tools_untouched_and_holds_matching_ones_for_approval()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "assent.dll"), "mcp", "gate", "--tools", "delete_*", "--message", "Delete {path}", "--",
                "node", Path.Combine(InteropDirectory, "mcp-server.mjs")], env),
            ["list"] = true,
            ["sequential"] = true,
            ["calls"] = new JsonArray(
                Call("add", new JsonObject { ["a"] = 2, ["b"] = 3 }),
                Call("delete_file", new JsonObject { ["path"] = "/srv/keep" }, progress: true),
                Call("delete_file", new JsonObject { ["path"] = "/srv/old" })),
        };
        var client = McpClient.Start(plan);
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        var approved = await Steps.DecideWhenItArrivesAsync(box);
        var events = await client.FinishAsync();

        Assert.Equal(["add", "delete_crash", "delete_file"], events.Single(e => e["event"]!.GetValue<string>() == "tools")["names"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal("5", Text(Result(events, 0)));
        var refused = Result(events, 1);
        Assert.True(refused["isError"]!.GetValue<bool>());
        Assert.StartsWith("denied:", Text(refused), StringComparison.Ordinal);
        Assert.Contains("Delete /srv/keep", Text(refused), StringComparison.Ordinal);
        Assert.Contains(events, e => e["event"]!.GetValue<string>() == "progress" && e["call"]!.GetValue<int>() == 1);
        Assert.Equal("deleted /srv/old", Text(Result(events, 2)));

        // The server's stderr passed through; it saw the ungated call and the approved one, never the denied one.
        Assert.Contains("interop-files ready", client.Stderr, StringComparison.Ordinal);
        Assert.Contains("""CALLED add {"a":2,"b":3}""", client.Stderr, StringComparison.Ordinal);
        Assert.Contains("""CALLED delete_file {"path":"/srv/old"}""", client.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("CALLED delete_file {\"path\":\"/srv/keep\"}", client.Stderr, StringComparison.Ordinal);
        Assert.Equal("approve", approved.GetProperty("decision").GetString());
    }

    [Fact]
    public async Task Gate_answers_the_pending_call_and_exits_when_the_server_crashes_mid_call()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "assent.dll"), "mcp", "gate", "--tools", "delete_*", "--",
                "node", Path.Combine(InteropDirectory, "mcp-server.mjs")], env),
            ["calls"] = new JsonArray(Call("delete_crash", new JsonObject { ["path"] = "/srv/x" })),
        };
        var client = McpClient.Start(plan);
        await Steps.DecideWhenItArrivesAsync(box);
        var events = await client.FinishAsync();
        var error = Assert.Single(events, e => e["event"]!.GetValue<string>() == "error");
        Assert.Contains("exited (code 3) before answering", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("assent mcp gate: the MCP server 'node' exited with code 3", client.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sample_server_withdraws_the_approval_request_when_the_client_cancels_the_call()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "Assent.Mcp.Sample.dll")], env),
            // The sample reports progress every half second: the sixth comes about three seconds into the wait.
            ["calls"] = new JsonArray(new JsonObject { ["name"] = "deploy", ["arguments"] = new JsonObject { ["service"] = "api", ["env"] = "prod" }, ["cancelOnProgress"] = 6 }),
            ["lingerMs"] = 3000,
        };
        var client = McpClient.Start(plan);
        // The client aborts the call (AbortSignal: notifications/cancelled); the server withdraws the request, so the
        // human's device has nothing left to approve.
        await client.WaitForEventAsync(e => e["call"]?.GetValue<int>() == 0 && e["event"]!.GetValue<string>() == "error", TimeSpan.FromSeconds(60));
        await AssertWithdrawnAsync(box, env);
        var events = await client.FinishAsync();
        var cancelled = Assert.Single(events, e => e["call"]?.GetValue<int>() == 0 && e["event"]!.GetValue<string>() is "result" or "error");
        Assert.True(cancelled["event"]!.GetValue<string>() == "error", cancelled.ToJsonString() + "\n" + client.Stderr);
        Assert.DoesNotContain("RAN deploy", client.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gate_withdraws_the_approval_request_of_a_held_call_the_host_cancels()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "assent.dll"), "mcp", "gate", "--tools", "delete_*", "--",
                "node", Path.Combine(InteropDirectory, "mcp-server.mjs")], env),
            ["calls"] = new JsonArray(new JsonObject { ["name"] = "delete_file", ["arguments"] = new JsonObject { ["path"] = "/srv/cancelled" }, ["cancelOnProgress"] = 2 }),
            ["lingerMs"] = 3000,
        };
        var client = McpClient.Start(plan);
        // The host cancels on the second progress notification, two seconds into the wait (MCP 2025-11-25
        // basic/utilities/cancellation), time enough for the request to reach the server.
        await client.WaitForEventAsync(e => e["call"]?.GetValue<int>() == 0 && e["event"]!.GetValue<string>() == "error", TimeSpan.FromSeconds(60));
        await AssertWithdrawnAsync(box, env);
        var events = await client.FinishAsync();
        var cancelled = Assert.Single(events, e => e["call"]?.GetValue<int>() == 0 && e["event"]!.GetValue<string>() is "result" or "error");
        Assert.True(cancelled["event"]!.GetValue<string>() == "error", cancelled.ToJsonString() + "\n" + client.Stderr);
        Assert.DoesNotContain("CALLED", client.Stderr, StringComparison.Ordinal);
        Assert.Contains("interop-files ready", client.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_withdraws_the_approval_request_when_the_client_cancels_request_approval()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "assent.dll"), "mcp", "serve"], env),
            ["calls"] = new JsonArray(new JsonObject
            {
                ["name"] = "request_approval",
                ["arguments"] = new JsonObject { ["message"] = "Rotate the database password", ["timeout"] = 120 },
                ["cancelAfterMs"] = 3000,
            }),
            ["lingerMs"] = 3000,
        };
        var client = McpClient.Start(plan);
        await client.WaitForEventAsync(e => e["call"]?.GetValue<int>() == 0 && e["event"]!.GetValue<string>() == "error", TimeSpan.FromSeconds(60));
        await AssertWithdrawnAsync(box, env);
        await client.FinishAsync();
    }

    /// <summary>
    /// The request the cancelled call made is withdrawn at the server: the owner's audit log shows the agent cancelling
    /// it, and the device has nothing left to decide (it would approve a request still pending).
    /// </summary>
    private static async Task AssertWithdrawnAsync(CliSandbox box, JsonObject env)
    {
        var agent = env["ASSENT_CLIENT_ID"]!.GetValue<string>();
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        string audit;
        do
        {
            var export = await box.RunAsync("audit", "export");
            Assert.True(export.ExitCode == 0, export.ToString());
            audit = export.Stdout;
            if (audit.Split('\n').Any(l => l.Contains("approval.cancelled", StringComparison.Ordinal) && l.Contains(agent, StringComparison.Ordinal)))
            {
                break;
            }
            await Task.Delay(200);
        }
        while (DateTime.UtcNow < until);
        Assert.Contains(audit.Split('\n'), l => l.Contains("approval.cancelled", StringComparison.Ordinal) && l.Contains(agent, StringComparison.Ordinal));
        var decided = Steps.SingleJsonObject(await box.RunAsync("device", "approve", "--all", "--yes", "--json")).GetProperty("decided");
        Assert.Equal(0, decided.GetArrayLength());
    }

    [Fact]
    public async Task Gate_answers_malformed_or_ambiguous_json_rpc_itself_and_forwards_none_of_it()
    {
        await using var box = new CliSandbox();
        box.Variables["ASSENT_SERVER"] = $"http://127.0.0.1:{Ports.Reserve()}";
        box.Variables["ASSENT_CLIENT_ID"] = "agt_nobody";
        box.Variables["ASSENT_CLIENT_SECRET"] = "sec_nothing";
        box.Variables["ASSENT_USER_DID"] = "alice";
        using var gate = box.Start(false, "mcp", "gate", "--tools", "delete_*", "--", "node", Path.Combine(InteropDirectory, "mcp-server.mjs"));
        await gate.WaitForAsync("interop-files ready");

        await gate.TypeAsync("{not json\n");
        await gate.WaitForAsync("\"code\":-32700");
        // Two "params": a server taking the second would delete a file while the gate judged the first (an ungated add).
        await gate.TypeAsync("""{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}},"params":{"name":"delete_file","arguments":{"path":"/x"}}}""" + "\n");
        await gate.WaitForAsync("\"code\":-32700", times: 2);
        // Answered by the gate (its message), not by the server after a forward.
        Assert.Equal(2, gate.Count("\"message\":\"Parse error: "));
        // A gated call with the Assent server unreachable: a clear error result at once, nothing forwarded.
        await gate.TypeAsync("""{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/x"}}}""" + "\n");
        await gate.WaitForAsync("cannot reach the Assent server");
        Assert.Contains("\"id\":8", gate.Output, StringComparison.Ordinal);
        Assert.Contains("\"isError\":true", gate.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("CALLED", gate.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gate_relaunches_itself_in_place_with_its_runtime_settings_and_runs_the_server_without_them()
    {
        await using var box = new CliSandbox();
        box.Variables["ASSENT_SERVER"] = $"http://127.0.0.1:{Ports.Reserve()}";
        box.Variables["ASSENT_CLIENT_ID"] = "agt_nobody";
        box.Variables["ASSENT_CLIENT_SECRET"] = "sec_nothing";
        box.Variables["ASSENT_USER_DID"] = "alice";
        var seen = Path.Combine(box.Home, "server-environment");
        // A stand-in server: records its environment, says so on stderr (the gate's), then echoes every line back.
        using var gate = box.Start(false, "mcp", "gate", "--tools", "delete_*", "--", "sh", "-c", $"env > '{seen}'; echo server-started >&2; exec cat");
        await gate.WaitForAsync("server-started");

        // docs/mcp.md §4: the same process (PID), now with the gate's settings; the server got none of them.
        var own = (await File.ReadAllTextAsync($"/proc/{gate.Id}/environ")).Split('\0');
        Assert.Contains("DOTNET_TC_CallCounting=0", own);
        Assert.Contains("DOTNET_TieredPGO=0", own);
        Assert.Contains("ASSENT_MCP_GATE_RUNTIME=DOTNET_TC_CallCounting,DOTNET_TieredPGO", own);
        var server = await File.ReadAllLinesAsync(seen);
        Assert.DoesNotContain(server, v => v.StartsWith("DOTNET_TC_CallCounting=", StringComparison.Ordinal) || v.StartsWith("DOTNET_TieredPGO=", StringComparison.Ordinal) || v.StartsWith("ASSENT_MCP_GATE_RUNTIME=", StringComparison.Ordinal));
        Assert.Contains("ASSENT_CLIENT_ID=agt_nobody", server);
        // And it relays as before.
        await gate.TypeAsync("""{"jsonrpc":"2.0","method":"notifications/relayed"}""" + "\n");
        await gate.WaitForAsync("notifications/relayed");
    }

    [Fact]
    public async Task Gate_leaves_a_runtime_setting_the_user_made_to_the_user_and_passes_it_on()
    {
        await using var box = new CliSandbox();
        box.Variables["ASSENT_SERVER"] = $"http://127.0.0.1:{Ports.Reserve()}";
        box.Variables["ASSENT_CLIENT_ID"] = "agt_nobody";
        box.Variables["ASSENT_CLIENT_SECRET"] = "sec_nothing";
        box.Variables["ASSENT_USER_DID"] = "alice";
        box.Variables["DOTNET_TieredPGO"] = "1";
        var seen = Path.Combine(box.Home, "server-environment");
        using var gate = box.Start(false, "mcp", "gate", "--tools", "delete_*", "--", "sh", "-c", $"env > '{seen}'; echo server-started >&2; exec cat");
        await gate.WaitForAsync("server-started");

        // The user's value stays, for the gate and for the server; only the other setting is the gate's own.
        var own = (await File.ReadAllTextAsync($"/proc/{gate.Id}/environ")).Split('\0');
        Assert.Contains("DOTNET_TieredPGO=1", own);
        Assert.Contains("DOTNET_TC_CallCounting=0", own);
        Assert.Contains("ASSENT_MCP_GATE_RUNTIME=DOTNET_TC_CallCounting", own);
        var server = await File.ReadAllLinesAsync(seen);
        Assert.Contains("DOTNET_TieredPGO=1", server);
        Assert.DoesNotContain(server, v => v.StartsWith("DOTNET_TC_CallCounting=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Gate_keeps_the_runtime_as_it_is_when_told_to()
    {
        await using var box = new CliSandbox();
        box.Variables["ASSENT_SERVER"] = $"http://127.0.0.1:{Ports.Reserve()}";
        box.Variables["ASSENT_CLIENT_ID"] = "agt_nobody";
        box.Variables["ASSENT_CLIENT_SECRET"] = "sec_nothing";
        box.Variables["ASSENT_USER_DID"] = "alice";
        box.Variables["ASSENT_MCP_GATE_RUNTIME"] = "keep";
        var seen = Path.Combine(box.Home, "server-environment");
        using var gate = box.Start(false, "mcp", "gate", "--tools", "delete_*", "--", "sh", "-c", $"env > '{seen}'; echo server-started >&2; exec cat");
        await gate.WaitForAsync("server-started");

        var own = (await File.ReadAllTextAsync($"/proc/{gate.Id}/environ")).Split('\0');
        Assert.DoesNotContain(own, v => v.StartsWith("DOTNET_TC_CallCounting=", StringComparison.Ordinal) || v.StartsWith("DOTNET_TieredPGO=", StringComparison.Ordinal));
        Assert.DoesNotContain(await File.ReadAllLinesAsync(seen), v => v.StartsWith("ASSENT_MCP_GATE_RUNTIME=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Gate_refuses_json_rpc_batches_when_the_negotiated_revision_has_none()
    {
        await using var box = new CliSandbox();
        box.Variables["ASSENT_SERVER"] = $"http://127.0.0.1:{Ports.Reserve()}";
        box.Variables["ASSENT_CLIENT_ID"] = "agt_nobody";
        box.Variables["ASSENT_CLIENT_SECRET"] = "sec_nothing";
        box.Variables["ASSENT_USER_DID"] = "alice";
        using var gate = box.Start(false, "mcp", "gate", "--tools", "delete_*", "--", "node", Path.Combine(InteropDirectory, "mcp-server.mjs"));
        await gate.WaitForAsync("interop-files ready");

        // Before initialization no batch is allowed in any revision (2025-03-26 basic/lifecycle).
        await gate.TypeAsync("""[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}]""" + "\n");
        await gate.WaitForAsync("no JSON-RPC batch before initialization");
        await gate.TypeAsync("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}""" + "\n");
        await gate.WaitForAsync("\"protocolVersion\":\"2025-11-25\"");
        await gate.TypeAsync("""{"jsonrpc":"2.0","method":"notifications/initialized"}""" + "\n");

        // 2025-11-25 has no batches (removed in 2025-06-18): Invalid Request, id null, and nothing reaches the server.
        await gate.TypeAsync("""[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/x"}}}]""" + "\n");
        await gate.WaitForAsync("MCP 2025-11-25 has no JSON-RPC batches");
        Assert.Contains("""{"jsonrpc":"2.0","id":null,"error":{"code":-32600,""", gate.Output, StringComparison.Ordinal);
        // The same calls one by one still work (the add), and the server saw nothing of the batch.
        await gate.TypeAsync("""{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":2}}}""" + "\n");
        await gate.WaitForAsync("\"id\":4");
        Assert.Equal(1, gate.Count("CALLED"));
        Assert.Contains("""CALLED add {"a":2,"b":2}""", gate.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gate_relays_a_batch_to_a_2025_03_26_server_and_holds_its_gated_calls_for_approval()
    {
        await using var box = new CliSandbox();
        foreach (var (name, value) in await AgentWorldAsync(box))
        {
            box.Variables[name] = value!.GetValue<string>();
        }
        using var gate = box.Start(false, "mcp", "gate", "--tools", "delete_*", "--message", "Delete {path}", "--", "node", Path.Combine(InteropDirectory, "mcp-batch-server.mjs"));
        await gate.WaitForAsync("batch-files ready");
        await gate.TypeAsync("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}""" + "\n");
        await gate.WaitForAsync("\"protocolVersion\":\"2025-03-26\"");
        await gate.TypeAsync("""{"jsonrpc":"2.0","method":"notifications/initialized"}""" + "\n");

        // 2025-03-26 servers MUST accept batches: the ungated part goes on as a batch at once; the gated call waits.
        await gate.TypeAsync("""[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/srv/old"}}},{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"x","progress":1}}]""" + "\n");
        await gate.WaitForAsync("""[{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"3"}]}}]""");
        Assert.Contains("BATCH 2", gate.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("CALLED delete_file", gate.Output, StringComparison.Ordinal);

        var approved = await Steps.DecideWhenItArrivesAsync(box);
        Assert.Equal("approve", approved.GetProperty("decision").GetString());
        await gate.WaitForAsync("""{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"deleted /srv/old"}]}}""");

        // A batch of only gated calls: each decided on its own; the denied one never reaches the server.
        await gate.TypeAsync("""[{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/srv/keep"}}}]""" + "\n");
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        await gate.WaitForAsync("denied:");
        Assert.Contains("\"id\":5", gate.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("CALLED delete_file {\"path\":\"/srv/keep\"}", gate.Output, StringComparison.Ordinal);
        Assert.Equal(1, gate.Count("BATCH"));
    }

    [Fact]
    public async Task Serve_over_stdio_requests_an_approval_and_verifies_its_token()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        var plan = new JsonObject
        {
            ["stdio"] = Stdio(box, [Path.Combine(AppContext.BaseDirectory, "assent.dll"), "mcp", "serve"], env),
            ["list"] = true,
            ["sequential"] = true,
            ["calls"] = ServeCalls(),
        };
        var client = McpClient.Start(plan);
        await Steps.DecideWhenItArrivesAsync(box);
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        AssertServeResults(await client.FinishAsync());
    }

    [Fact]
    public async Task Serve_over_streamable_http_requests_an_approval_and_verifies_its_token()
    {
        await using var box = new CliSandbox();
        var env = await AgentWorldAsync(box);
        foreach (var (name, value) in env)
        {
            box.Variables[name] = value!.GetValue<string>();
        }
        var port = Ports.Reserve();
        using var serve = box.Start(false, "mcp", "serve", "--http", $"http://127.0.0.1:{port}");
        await serve.WaitForAsync("listening on");
        var plan = new JsonObject
        {
            ["http"] = $"http://127.0.0.1:{port}/mcp",
            ["list"] = true,
            ["sequential"] = true,
            ["calls"] = ServeCalls(),
        };
        var client = McpClient.Start(plan);
        await Steps.DecideWhenItArrivesAsync(box);
        await Steps.DecideWhenItArrivesAsync(box, deny: true);
        AssertServeResults(await client.FinishAsync());
    }

    private static JsonArray ServeCalls() => new(
        Call("request_approval", new JsonObject
        {
            ["message"] = "Rotate the database password",
            ["details"] = new JsonObject { ["type"] = "action", ["target"] = "db" },
            ["timeout"] = 60,
        }),
        new JsonObject { ["name"] = "verify_approval", ["arguments"] = new JsonObject { ["expected_message"] = "Rotate the database password" }, ["tokenFrom"] = new JsonObject { ["token"] = 0 } },
        new JsonObject { ["name"] = "verify_approval", ["arguments"] = new JsonObject { ["expected_message"] = "Something else" }, ["tokenFrom"] = new JsonObject { ["token"] = 0 } },
        Call("request_approval", new JsonObject { ["message"] = "Drop the production database", ["timeout"] = 60 }));

    private static void AssertServeResults(List<JsonNode> events)
    {
        Assert.Equal(["request_approval", "verify_approval"], events.Single(e => e["event"]!.GetValue<string>() == "tools")["names"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
        var approval = Result(events, 0)["structuredContent"]!;
        Assert.True(approval["approved"]!.GetValue<bool>());
        Assert.StartsWith("did:web:", approval["approver"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(3, approval["token"]!.GetValue<string>().Split('.').Length);
        Assert.NotNull(approval["decided_at"]);

        var verified = Result(events, 1);
        Assert.NotEqual(true, verified["isError"]?.GetValue<bool>());
        Assert.True(verified["structuredContent"]!["valid"]!.GetValue<bool>());
        Assert.Equal(approval["txn"]!.GetValue<string>(), verified["structuredContent"]!["txn"]!.GetValue<string>());
        Assert.Equal("db", verified["structuredContent"]!["authorization_details"]![0]!["target"]!.GetValue<string>());

        var mismatch = Result(events, 2);
        Assert.True(mismatch["isError"]!.GetValue<bool>());
        Assert.Equal("evidence_mismatch", mismatch["structuredContent"]!["error"]!.GetValue<string>());

        var denied = Result(events, 3)["structuredContent"]!;
        Assert.False(denied["approved"]!.GetValue<bool>());
        Assert.Equal("denied", denied["status"]!.GetValue<string>());
        Assert.Null(denied["token"]);
    }

    /// <summary>A server with one enrolled user (this sandbox's CLI device) and an agent; the agent's environment.</summary>
    private static async Task<JsonObject> AgentWorldAsync(CliSandbox box)
    {
        await box.StartServerAsync();
        var device = await Steps.EnrollAsync(box, await Steps.InviteAsync(box, "alice"));
        var agent = await Steps.CreateAgentAsync(box, "alice");
        return new JsonObject
        {
            ["HOME"] = box.Home,
            ["ASSENT_SERVER"] = box.Url,
            ["ASSENT_CLIENT_ID"] = agent.ClientId,
            ["ASSENT_CLIENT_SECRET"] = agent.ClientSecret,
            ["ASSENT_USER_DID"] = device.GetProperty("user_did").GetString(),
        };
    }

    private static JsonObject Stdio(CliSandbox box, string[] args, JsonObject env)
    {
        _ = box;
        return new JsonObject { ["command"] = Dotnet, ["args"] = new JsonArray([.. args.Select(a => (JsonNode)a)]), ["env"] = env.DeepClone() };
    }

    private static JsonObject Call(string name, JsonObject arguments, bool progress = false) =>
        new() { ["name"] = name, ["arguments"] = arguments, ["progress"] = progress };

    private static JsonNode Result(List<JsonNode> events, int call)
    {
        var e = events.FirstOrDefault(e => e["call"]?.GetValue<int>() == call && e["event"]!.GetValue<string>() is "result" or "error");
        Assert.True(e is not null && e["event"]!.GetValue<string>() == "result", $"call {call} did not return a result: {e?.ToJsonString() ?? "nothing"}");
        return e!["result"]!;
    }

    private static string Text(JsonNode result) => result["content"]![0]!["text"]!.GetValue<string>();

    private static string InteropDirectory => Path.Combine(RepoRoot(), "tests", "interop");

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Assent.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("the repository root (Assent.slnx) is not above " + AppContext.BaseDirectory);
    }

    /// <summary>tests/interop/mcp-client.mjs running one plan; its stdout events and its stderr (where the servers' stderr lands).</summary>
    private sealed class McpClient
    {
        private readonly Process _process;
        private readonly Task<string> _stdout;
        private readonly Task<string> _stderr;
        private readonly List<JsonNode> _events = [];
        private readonly SemaphoreSlim _emitted = new(0);

        private McpClient(Process process)
        {
            _process = process;
            _stdout = ReadEventsAsync(process.StandardOutput);
            _stderr = process.StandardError.ReadToEndAsync();
        }

        /// <summary>The whole of stdout, each event line also kept as it comes, for <see cref="WaitForEventAsync"/>.</summary>
        private async Task<string> ReadEventsAsync(StreamReader stdout)
        {
            var all = new StringBuilder();
            while (await stdout.ReadLineAsync() is { } line)
            {
                all.Append(line).Append('\n');
                if (line.StartsWith('{'))
                {
                    lock (_events)
                    {
                        _events.Add(JsonNode.Parse(line)!);
                    }
                    _emitted.Release();
                }
            }
            _emitted.Release();
            return all.ToString();
        }

        /// <summary>Returns once the client has emitted an event matching <paramref name="match"/>; fails after <paramref name="timeout"/> or when it exits first.</summary>
        public async Task WaitForEventAsync(Func<JsonNode, bool> match, TimeSpan timeout)
        {
            using var deadline = new CancellationTokenSource(timeout);
            while (true)
            {
                lock (_events)
                {
                    if (_events.Any(match))
                    {
                        return;
                    }
                }
                Assert.False(_stdout.IsCompleted, "mcp-client.mjs ended without the awaited event");
                await _emitted.WaitAsync(deadline.Token);
            }
        }

        public string Stderr { get; private set; } = "";

        public static McpClient Start(JsonObject plan)
        {
            Assert.True(File.Exists(Path.Combine(InteropDirectory, "node_modules", "@modelcontextprotocol", "sdk", "package.json")),
                "run npm ci in tests/interop first (test.sh does)");
            var info = new ProcessStartInfo("node")
            {
                WorkingDirectory = InteropDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                StandardOutputEncoding = Encoding.UTF8,
                StandardErrorEncoding = Encoding.UTF8,
                UseShellExecute = false,
            };
            info.ArgumentList.Add("mcp-client.mjs");
            info.ArgumentList.Add(plan.ToJsonString());
            return new McpClient(Process.Start(info)!);
        }

        public async Task<List<JsonNode>> FinishAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
            var stdout = await _stdout;
            Stderr = await _stderr;
            Assert.True(_process.ExitCode == 0 && stdout.TrimEnd().EndsWith("DONE", StringComparison.Ordinal),
                $"mcp-client.mjs exit {_process.ExitCode}\n--- stdout\n{stdout}\n--- stderr\n{Stderr}");
            return [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('{')).Select(l => JsonNode.Parse(l)!)];
        }
    }
}
