// A stdio MCP server written only with the official TypeScript SDK, which Assent has never seen: the server that
// tests/Assent.Cli.Tests/McpTests.cs runs behind `assent mcp gate`. Every tool call it receives is logged to stderr
// as "CALLED <tool> <arguments JSON>", so a test can tell what reached it.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'interop-files', version: '1.0.0' });
const called = (tool, args) => console.error(`CALLED ${tool} ${JSON.stringify(args)}`);

server.registerTool('add', { description: 'Add two numbers', inputSchema: { a: z.number(), b: z.number() } }, async (args) => {
  called('add', args);
  return { content: [{ type: 'text', text: String(args.a + args.b) }] };
});
server.registerTool('delete_file', { description: 'Delete a file', inputSchema: { path: z.string() } }, async (args) => {
  called('delete_file', args);
  return { content: [{ type: 'text', text: `deleted ${args.path}` }] };
});
server.registerTool('delete_crash', { description: 'Crash mid-call', inputSchema: { path: z.string() } }, async (args) => {
  called('delete_crash', args);
  process.exit(3);
});
server.registerResource('readme', 'file:///readme', { mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, text: 'hello' }] }));

console.error('interop-files ready');
await server.connect(new StdioServerTransport());
