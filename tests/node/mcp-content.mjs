#!/usr/bin/env node
// Interop check for MCP resources and prompts with the official TypeScript SDK.
//
// Usage: node mcp-content.mjs <url> <json-plan>
//   plan: {"read": ["<uri>", ...], "prompt": {"name": "...", "arguments": {...}}}
// Prints ONE JSON line: {"capabilities", "resources", "templates", "reads", "prompts", "prompt"}.
// A read or prompt that fails is reported as {"error": {"code", "message"}} in place of its result.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, planJson = "{}"] = process.argv.slice(2);
if (!url) {
  process.stderr.write("usage: node mcp-content.mjs <url> <json-plan>\n");
  process.exit(2);
}
const plan = JSON.parse(planJson);

async function attempt(fn) {
  try {
    return await fn();
  } catch (err) {
    return { error: { code: err.code ?? null, message: String(err.message ?? err) } };
  }
}

async function main() {
  const client = new Client({ name: "naftiko-mcp-content", version: "0.0.1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  try {
    const out = { capabilities: client.getServerCapabilities() };
    out.resources = (await client.listResources()).resources;
    out.templates = (await client.listResourceTemplates()).resourceTemplates;
    out.reads = [];
    for (const uri of plan.read ?? []) out.reads.push(await attempt(() => client.readResource({ uri })));
    out.prompts = (await client.listPrompts()).prompts;
    if (plan.prompt) out.prompt = await attempt(() => client.getPrompt(plan.prompt));
    return out;
  } finally {
    await client.close().catch(() => {});
  }
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0)),
  (err) => {
    process.stderr.write(`mcp-content: ${url}: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
