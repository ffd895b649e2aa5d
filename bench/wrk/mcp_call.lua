-- One JSON-RPC tools/call per request, in the stateless 2026-07-28 MCP revision: no initialize;
-- the protocol version and client capabilities ride in params._meta and the MCP-Protocol-Version,
-- Mcp-Method and Mcp-Name headers repeat them (the SDK rejects a mismatch). The same script drives
-- every MCP server in the benchmark.
--   BENCH_MCP_TOOL  tool name       BENCH_MCP_ARGS  arguments as a JSON object
-- Results that are errors ("isError":true, or a JSON-RPC error) are counted by report.lua's bad
-- marker check when BENCH_BAD_MARKERS is set.

dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local version = "2026-07-28"
local tool = os.getenv("BENCH_MCP_TOOL") or "vapi-sessioncontrollerfindone"
local args = os.getenv("BENCH_MCP_ARGS") or "{}"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = version
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = tool
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool ..
  '","arguments":' .. args .. ',"_meta":{' ..
  '"io.modelcontextprotocol/protocolVersion":"' .. version .. '",' ..
  '"io.modelcontextprotocol/clientCapabilities":{},' ..
  '"io.modelcontextprotocol/clientInfo":{"name":"wrk-bench","version":"1.0"}}}}'
