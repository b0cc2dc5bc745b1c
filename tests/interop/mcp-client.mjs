// An MCP client built only on the official TypeScript SDK (@modelcontextprotocol/sdk), run by
// tests/Assent.Cli.Tests/McpTests.cs against Assent's MCP servers and gate.
//
//   node mcp-client.mjs PLAN_JSON
//
// PLAN_JSON: {"stdio": {"command", "args", "env"}} or {"http": URL}, "elicitation": true to declare URL-mode
// elicitation (MCP 2025-11-25 client/elicitation), "calls": [{"name", "arguments", "progress": bool,
// "cancelAfterMs": N, "cancelOnProgress": N to cancel on the Nth progress notification, "tokenFrom": {"arg": i} to pass call i's structured token}], "lingerMs": N to stay connected N ms after the calls, "sequential": true to make
// the calls one after another, "list": true to list tools first. stdout, one JSON object a line:
// {"event":"tools","names":[…]}, {"event":"progress","call":i,…}, {"event":"elicitation","params":{…}},
// {"event":"elicitation_complete","params":{…}}, {"event":"result","call":i,"result":{…}}, {"event":"error","call":i,"code","message"}; then "DONE" (exit 0).
// The server's stderr (stdio) is inherited: it appears on this process's stderr.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema, ElicitationCompleteNotificationSchema, CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

const plan = JSON.parse(process.argv[2] ?? 'null');
if (!plan) {
  console.error('usage: node mcp-client.mjs PLAN_JSON');
  process.exit(64);
}
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const capabilities = plan.elicitation ? { elicitation: { url: {} } } : {};
const client = new Client({ name: 'assent-interop', version: '1.0.0' }, { capabilities });
if (plan.elicitation) {
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    emit({ event: 'elicitation', params: request.params });
    // The human would open the link; this client just acknowledges it.
    return { action: 'accept' };
  });
  client.setNotificationHandler(ElicitationCompleteNotificationSchema, (notification) => {
    emit({ event: 'elicitation_complete', params: notification.params });
  });
}

const transport = plan.http
  ? new StreamableHTTPClientTransport(new URL(plan.http))
  : new StdioClientTransport({
    command: plan.stdio.command,
    args: plan.stdio.args ?? [],
    env: { ...getDefaultEnvironment(), ...(plan.stdio.env ?? {}) },
    stderr: 'inherit',
  });

try {
  await client.connect(transport);
  if (plan.list) {
    const tools = await client.listTools();
    emit({ event: 'tools', names: tools.tools.map((t) => t.name) });
  }
  const results = [];
  const run = async (call, i) => {
    const controller = new AbortController();
    let progressSeen = 0;
    if (call.cancelAfterMs) {
      setTimeout(() => controller.abort('cancelled by the test'), call.cancelAfterMs);
    }
    const args = { ...(call.arguments ?? {}) };
    for (const [name, from] of Object.entries(call.tokenFrom ?? {})) {
      args[name] = results[from]?.structuredContent?.token;
    }
    try {
      const result = await client.callTool({ name: call.name, arguments: args }, CallToolResultSchema, {
        timeout: 120000,
        resetTimeoutOnProgress: true,
        signal: controller.signal,
        onprogress: call.progress || call.cancelOnProgress ? (p) => {
          emit({ event: 'progress', call: i, ...p });
          if (call.cancelOnProgress && ++progressSeen >= call.cancelOnProgress) {
            controller.abort('cancelled by the test');
          }
        } : undefined,
      });
      results[i] = result;
      emit({ event: 'result', call: i, result });
    } catch (error) {
      emit({ event: 'error', call: i, code: error?.code ?? null, message: String(error?.message ?? error) });
    }
  };
  if (plan.sequential) {
    for (const [i, call] of (plan.calls ?? []).entries()) {
      await run(call, i);
    }
  } else {
    await Promise.all((plan.calls ?? []).map(run));
  }
  if (plan.lingerMs) {
    // Stay connected, so whatever the server would still send (or run) after the calls shows.
    await new Promise((resolve) => setTimeout(resolve, plan.lingerMs));
  }
  process.stdout.write('DONE\n');
  await client.close();
} catch (error) {
  console.error(`${error?.name ?? 'Error'}: ${error?.message ?? error}`);
  process.exitCode = 1;
}
