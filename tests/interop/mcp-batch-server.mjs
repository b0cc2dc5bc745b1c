// A stdio MCP server that speaks only revision 2025-03-26, the one revision whose servers MUST accept JSON-RPC
// batches (2025-03-26 basic, "Batching"; removed in 2025-06-18). Hand-written because the official SDKs dropped
// batches with that revision. tests/Assent.Cli.Tests/McpTests.cs runs it behind `assent mcp gate` to check that a
// batch is relayed (and its gated calls held) when the negotiated revision has batches. Every tool call it runs is
// logged to stderr as "CALLED <tool> <arguments JSON>"; every batch it receives as "BATCH <size>".
import { createInterface } from 'node:readline';

const tools = {
  add: (args) => String(args.a + args.b),
  delete_file: (args) => `deleted ${args.path}`,
};

const handle = (message) => {
  const { id, method, params } = message;
  if (id === undefined) {
    return null; // a notification: never answered
  }
  switch (method) {
    case 'initialize':
      return { jsonrpc: '2.0', id, result: { protocolVersion: '2025-03-26', capabilities: { tools: {} }, serverInfo: { name: 'batch-files', version: '1.0.0' } } };
    case 'tools/list':
      return { jsonrpc: '2.0', id, result: { tools: Object.keys(tools).map((name) => ({ name, inputSchema: { type: 'object' } })) } };
    case 'tools/call': {
      const tool = tools[params?.name];
      if (!tool) {
        return { jsonrpc: '2.0', id, error: { code: -32602, message: `unknown tool ${params?.name}` } };
      }
      console.error(`CALLED ${params.name} ${JSON.stringify(params.arguments ?? {})}`);
      return { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: tool(params.arguments ?? {}) }] } };
    }
    default:
      return { jsonrpc: '2.0', id, error: { code: -32601, message: `no method ${method}` } };
  }
};

console.error('batch-files ready');
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) {
    continue;
  }
  const message = JSON.parse(line);
  if (Array.isArray(message)) {
    // JSON-RPC 2.0 §6: one array of the responses; nothing at all when the batch held only notifications.
    console.error(`BATCH ${message.length}`);
    const responses = message.map(handle).filter((r) => r !== null);
    if (responses.length > 0) {
      process.stdout.write(JSON.stringify(responses) + '\n');
    }
  } else {
    const response = handle(message);
    if (response !== null) {
      process.stdout.write(JSON.stringify(response) + '\n');
    }
  }
}
