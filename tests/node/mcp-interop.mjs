#!/usr/bin/env node
// Interop check with the official TypeScript MCP SDK (Client + StreamableHTTPClientTransport).
//
// Usage: node mcp-interop.mjs <url> <tool-name|-> [<json-arguments>]
//
// Connects to <url>, lists all tools (following pagination), calls <tool-name> with the JSON
// arguments (default {}), and prints ONE JSON line on stdout:
//   {"tools": ["name", ...], "result": <CallToolResult as returned by the SDK>}
// With tool name "-" no tool is called and "result" is null.
// A tool result with isError=true is still a successful run (exit 0): the caller inspects it.
// On any failure (connect, protocol, JSON-RPC error): message on stderr, exit code 1.
// Usage errors: exit code 2.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

function usage(msg) {
  process.stderr.write(`mcp-interop: ${msg}\nusage: node mcp-interop.mjs <url> <tool-name|-> [<json-arguments>]\n`);
  process.exit(2);
}

const [url, toolName, argsJson = "{}"] = process.argv.slice(2);
if (!url || !toolName) usage("missing arguments");

let args;
try {
  args = JSON.parse(argsJson);
} catch (e) {
  usage(`arguments are not valid JSON: ${e.message}`);
}
if (args === null || typeof args !== "object" || Array.isArray(args)) usage("arguments must be a JSON object");

async function main() {
  const client = new Client({ name: "naftiko-mcp-interop", version: "0.0.1" });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  try {
    const tools = [];
    let cursor;
    do {
      const page = await client.listTools(cursor ? { cursor } : undefined);
      for (const t of page.tools) tools.push(t.name);
      cursor = page.nextCursor;
    } while (cursor);

    let result = null;
    if (toolName !== "-") {
      result = await client.callTool({ name: toolName, arguments: args });
    }
    return { tools, result };
  } finally {
    await client.close().catch(() => {});
  }
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
  },
  (err) => {
    const detail = err && err.stack ? err.stack : String(err);
    process.stderr.write(`mcp-interop: ${url} ${toolName}: ${detail}\n`);
    process.exit(1);
  },
);
