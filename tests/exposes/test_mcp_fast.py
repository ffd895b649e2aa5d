"""The MCP fast path (exposes/mcp_fast.py) answers exactly as the SDK would, and only what it should.

The seed capability runs in process against the echo upstream (deterministic answers), served by
uvicorn on a real socket. Each request is sent twice: as is (the fast path takes it) and with a
progress token in `_meta` (which the fast path leaves to the SDK, and which the SDK ignores in
JSON-response mode); both answers must be equal. A counter on the SDK app shows who answered.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any, Iterator

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.load import load_capability
from naftiko_runtime.exposes.mcp_http import build_app
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.runtime import Runtime
from tests.e2e.conftest import SEED
from tests.support.servers import REPO_ROOT, echo_upstream, http_request, serve_asgi

VERSION = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": VERSION, "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}


class Seed:
    def __init__(self, url: str, fast: Any):
        self.url, self.fast, self.sdk_calls = url, fast, 0
        sdk = fast.sdk_app

        async def counted(scope, receive, send):
            if scope["type"] == "http":
                self.sdk_calls += 1
            await sdk(scope, receive, send)

        fast.sdk_app = counted

    def post(self, method: str, params: dict[str, Any], *, headers: dict[str, str] | None = None, meta: dict | None = None,
             request_id: Any = 1) -> tuple[int, Any]:
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta or META}}
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "MCP-Protocol-Version": VERSION, "Mcp-Method": method}
        if "name" in params:
            h["Mcp-Name"] = params["name"]
        sent = {name: value for name, value in {**h, **(headers or {})}.items() if value is not None}  # None: not sent
        r = http_request("POST", self.url + "/mcp", json_body=body, headers=sent)
        try:
            return r.status, r.json()
        except ValueError:
            return r.status, None

    def both(self, method: str, params: dict[str, Any]) -> tuple[Any, Any]:
        """(fast answer, SDK answer) for the same request; checks who answered."""
        before = self.sdk_calls
        fast = self.post(method, params)
        taken = self.sdk_calls == before
        slow = self.post(method, params, meta={**META, "progressToken": "p1"})
        assert self.sdk_calls == before + 1 + (0 if taken else 1)
        return fast, slow


@pytest.fixture(scope="module")
def seed() -> Iterator[Seed]:
    with echo_upstream() as echo:
        cap = load_capability(REPO_ROOT / SEED)
        plan = compile_plan(cap, resolve_binds(cap, REPO_ROOT, allow_missing=True), base_uris={"sessions-sessions": echo.base_url})
        runtime = Runtime(plan)
        app = build_app(runtime, plan.mcp[0], "127.0.0.1")
        with serve_asgi(app) as url:
            yield Seed(url, app.app)


@pytest.mark.parametrize("method, params", [
    ("tools/call", {"name": "vapi-sessioncontrollerfindone", "arguments": {"id": "a/b"}}),
    ("tools/call", {"name": "vapi-sessioncontrollerfindallpaginated", "arguments": {"limit": 3}}),
    ("tools/call", {"name": "vapi-sessioncontrollercreate", "arguments": {"body": {"name": "x", "n": [1, 2.5, None, True]}}}),
    ("tools/call", {"name": "vapi-sessioncontrollerfindone", "arguments": {}}),  # missing argument: isError
    ("tools/call", {"name": "vapi-sessioncontrollerfindone", "arguments": {"id": 5}}),  # wrong type: isError
    ("tools/call", {"name": "vapi-sessioncontrollerfindone"}),
])
def test_tool_calls_answer_as_the_sdk_does(seed, method, params):
    (status, fast), (slow_status, slow) = seed.both(method, params)
    assert status == slow_status == 200
    assert fast == slow, (fast, slow)
    assert fast["result"]["resultType"] == "complete" and "io.modelcontextprotocol/serverInfo" in fast["result"]["_meta"]


def test_tools_list_is_the_sdks_listing(seed):
    first = seed.post("tools/list", {})  # learned from the SDK on first use
    calls = seed.sdk_calls
    second = seed.post("tools/list", {}, request_id="abc")
    assert seed.sdk_calls == calls  # then served by the fast path
    assert first[0] == second[0] == 200 and first[1]["result"] == second[1]["result"] and second[1]["id"] == "abc"
    assert [t["name"] for t in second[1]["result"]["tools"]][0] == "vapi-sessioncontrollercreate"


@pytest.mark.parametrize("change", [
    {"headers": {"Mcp-Name": "other"}},  # header and body disagree
    {"headers": {"Mcp-Name": None}},  # no Mcp-Name: the SDK's -32020
    {"headers": {"Mcp-Name": "=?base64?" + base64.b64encode(b"vapi-sessioncontrollerfindone").decode() + "?="}},  # encoded: the SDK decodes it
    {"headers": {"Mcp-Method": "tools/list"}},
    {"headers": {"MCP-Protocol-Version": "2025-11-25"}},  # the handshake era
    {"headers": {"MCP-Protocol-Version": "2099-01-01"}},  # unsupported
    {"headers": {"Host": "evil.example"}},  # DNS rebinding
    {"headers": {"Origin": "http://evil.example"}},
    {"headers": {"Content-Type": "text/plain"}},
    {"headers": {"Accept": "text/html"}},
    {"headers": {"Mcp-Param-Id": "x"}},
    {"meta": {"io.modelcontextprotocol/protocolVersion": VERSION}},  # envelope without capabilities
    {"meta": {**META, "io.modelcontextprotocol/clientCapabilities": "none"}},  # an envelope the SDK's validator refuses
    {"request_id": None},
    {"name": "nope"},  # unknown tool: the SDK's -32602
])
def test_everything_else_is_left_to_the_sdk(seed, change):
    params = {"name": change.pop("name", "vapi-sessioncontrollerfindone"), "arguments": {"id": "x"}}
    headers = change.pop("headers", None)
    before = seed.sdk_calls
    status, answer = seed.post("tools/call", params, headers=headers, **change)
    assert seed.sdk_calls == before + 1, "the fast path answered a request it must leave to the SDK"
    assert status in (200, 400, 403, 404, 406, 421), (status, answer)


def test_a_body_over_the_limit_is_the_sdks_413(seed):
    big = {"name": "vapi-sessioncontrollercreate", "arguments": {"body": {"x": "y" * (2 << 20)}}}
    before = seed.sdk_calls
    status, _ = seed.post("tools/call", big)
    assert status == 413 and seed.sdk_calls == before + 1


LAZY_SDK = r"""
import json, sys
from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.load import load_capability
from naftiko_runtime.exposes.mcp_http import build_app
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.runtime import Runtime
from tests.support.servers import REPO_ROOT, http_request, serve_asgi

cap = load_capability(REPO_ROOT / sys.argv[1])
plan = compile_plan(cap, resolve_binds(cap, REPO_ROOT, allow_missing=True), mock=True)
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}
with serve_asgi(build_app(Runtime(plan), plan.mcp[0], "127.0.0.1")) as url:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "vapi-sessioncontrollerfindallpaginated", "arguments": {}, "_meta": META}}
    r = http_request("POST", url + "/mcp", json_body=call, headers={
        "Content-Type": "application/json", "Accept": "application/json", "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call", "Mcp-Name": "vapi-sessioncontrollerfindallpaginated"})
    print(json.dumps({"call": r.status, "result": "result" in r.json(), "sdk_after_call": "mcp" in sys.modules}))
    init = {"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = http_request("POST", url + "/mcp", json_body=init, headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    print(json.dumps({"init": r.status, "server": r.json()["result"]["serverInfo"]["name"], "sdk_after_init": "mcp" in sys.modules}))
"""


def test_tool_calls_do_not_load_the_sdk_and_the_first_initialize_does():
    """Memory (docs/PERFORMANCE.md): the SDK is imported on the first request the fast path leaves to it."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LAZY_SDK, str(SEED)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    call, init = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert call == {"call": 200, "result": True, "sdk_after_call": False}
    assert init == {"init": 200, "server": "sessions-sessions-mcp", "sdk_after_init": True}
