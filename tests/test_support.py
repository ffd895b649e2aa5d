"""The test infrastructure itself works, against real servers (tests/support/servers.py)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import Any

import pytest

from tests.support import servers
from tests.support.servers import (
    Proc,
    ServerStartError,
    echo_upstream,
    free_port,
    http_request,
    mcp_interop,
    serve_asgi,
    start_server,
    wait_http,
)

AUTH = {"Authorization": "Bearer test-token"}
SESSION_UUID = "5c3b9868-f632-47a5-9a49-e02899cde960"


# --------------------------------------------------------------------------------------
# Prism on the slim Vapi OpenAPI
# --------------------------------------------------------------------------------------


def test_prism_answers_401_without_bearer(prism_vapi: str) -> None:
    r = http_request("GET", prism_vapi + "/session")
    assert r.status == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers.get("www-authenticate") == "Bearer"
    assert r.json()["type"].endswith("#UNAUTHORIZED")


def test_prism_answers_200_with_bearer(prism_vapi: str) -> None:
    r = http_request("GET", prism_vapi + "/session", headers=AUTH)
    assert r.status == 200, r.text
    assert isinstance(r.json()["results"], list)
    r = http_request("GET", f"{prism_vapi}/session/{SESSION_UUID}", headers=AUTH)
    assert r.status == 200, r.text
    assert "id" in r.json()


def test_prism_answers_422_for_bad_uuid(prism_vapi: str) -> None:
    r = http_request("GET", prism_vapi + "/session/not-a-uuid", headers=AUTH)
    assert r.status == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("#UNPROCESSABLE_ENTITY")
    assert problem["validation"] == [
        {
            "location": ["path", "id"],
            "severity": "Error",
            "code": "format",
            "message": 'Request path parameter id must match format "uuid"',
        }
    ]


def test_prism_checks_auth_before_validation(prism_vapi: str) -> None:
    assert http_request("GET", prism_vapi + "/session/not-a-uuid").status == 401


def test_prism_validates_bodies_and_routes(prism_vapi: str) -> None:
    bad = http_request("POST", prism_vapi + "/session", headers=AUTH, json_body={"name": 5, "status": "nope"})
    assert bad.status == 422, bad.text
    locations = sorted(v["location"] for v in bad.json()["validation"])
    assert locations == [["body", "name"], ["body", "status"]]

    good = http_request("POST", prism_vapi + "/session", headers=AUTH, json_body={"name": "ok"})
    assert good.status == 201, good.text

    missing = http_request("POST", prism_vapi + "/session", headers=AUTH)
    assert missing.status == 422, missing.text

    assert http_request("GET", prism_vapi + "/nope", headers=AUTH).status == 404
    assert http_request("PUT", prism_vapi + "/session", headers=AUTH).status == 405


# --------------------------------------------------------------------------------------
# Echo upstream
# --------------------------------------------------------------------------------------


def test_echo_reports_raw_path_exactly(echo: servers.EchoUpstream) -> None:
    r = http_request("GET", echo.base_url + "/a%2Fb?x=%7B%7B&y=1+2&y=&z")
    assert r.status == 200
    rec = r.json()
    assert rec["raw_path"] == "/a%2Fb?x=%7B%7B&y=1+2&y=&z"
    assert rec["path"] == "/a/b"
    assert rec["query"] == [["x", "{{"], ["y", "1 2"], ["y", ""], ["z", ""]]
    assert echo.received == [rec]


def test_echo_reports_method_headers_cookies_body(echo: servers.EchoUpstream) -> None:
    r = http_request(
        "PATCH",
        echo.base_url + "/things/1",
        headers={"X-Api-Key": "k1", "Cookie": "sid=abc; theme=dark"},
        json_body={"a": [1, 2]},
    )
    rec = r.json()
    assert rec["method"] == "PATCH"
    assert rec["headers"]["x-api-key"] == "k1"
    assert rec["headers"]["content-type"] == "application/json"
    assert rec["cookies"] == {"sid": "abc", "theme": "dark"}
    assert rec["json"] == {"a": [1, 2]}
    assert rec["body"] == '{"a": [1, 2]}'

    text = http_request("POST", echo.base_url + "/t", body="not json", headers={"Content-Type": "text/plain"})
    assert text.json()["body"] == "not json" and text.json()["json"] is None


def test_echo_scripted_answers(echo: servers.EchoUpstream) -> None:
    echo.respond_with(404, {"error": "not found"})
    echo.respond_with(422)  # default body: the echo record
    echo.respond_with(500, "boom", headers={"X-Trace": "t1"}, times=2)
    r1 = http_request("GET", echo.base_url + "/1")
    assert (r1.status, r1.json()) == (404, {"error": "not found"})
    r2 = http_request("GET", echo.base_url + "/2")
    assert r2.status == 422 and r2.json()["raw_path"] == "/2"
    for n in (3, 4):
        r = http_request("GET", f"{echo.base_url}/{n}")
        assert (r.status, r.text, r.headers["x-trace"]) == (500, "boom", "t1")
        assert r.headers["content-type"].startswith("text/plain")
    assert http_request("GET", echo.base_url + "/5").status == 200
    assert [rec["raw_path"] for rec in echo.received] == ["/1", "/2", "/3", "/4", "/5"]

    echo.respond_with(503, {"down": True}, times=None)
    assert [http_request("GET", echo.base_url).status for _ in range(3)] == [503] * 3
    echo.reset()
    assert http_request("GET", echo.base_url).status == 200
    assert len(echo.received) == 1


def test_echo_handles_concurrent_slow_requests(echo: servers.EchoUpstream) -> None:
    echo.respond_with(200, {"slow": True}, delay=1.0, times=4)
    results: list[int] = []

    def call() -> None:
        results.append(http_request("GET", echo.base_url + "/slow").status)

    threads = [threading.Thread(target=call) for _ in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert results == [200] * 4
    assert 1.0 <= elapsed < 2.5, elapsed  # served in parallel, not 4 s in a row


def test_echo_upstream_unpacks_as_url_and_received() -> None:
    with echo_upstream() as (base_url, received):
        http_request("DELETE", base_url + "/x?q=1")
        assert received[0]["method"] == "DELETE"
        assert received[0]["query"] == [["q", "1"]]
    with pytest.raises(OSError):
        http_request("GET", base_url + "/after-close", timeout=2)


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------


def test_start_server_waits_for_port_and_stops() -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with start_server(cmd, ports_to_wait=[port], timeout=15) as proc:
        assert wait_http(f"http://127.0.0.1:{port}/", ok=lambda s: s == 200, proc=proc) == 200
        assert proc.alive
        rc = proc.stop()
    assert rc == -signal.SIGTERM
    assert "GET / HTTP/1.1" in proc.stderr_text()  # captured after stop, too


def test_start_server_fails_fast_with_stderr_when_process_exits() -> None:
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('boom: bad config\\n'); sys.exit(3)"]
    t0 = time.monotonic()
    with pytest.raises(ServerStartError) as ei:
        start_server(cmd, ports_to_wait=[free_port()], timeout=20)
    assert time.monotonic() - t0 < 5
    assert "boom: bad config" in str(ei.value) and "rc=3" in str(ei.value)


def test_proc_stop_kills_after_timeout() -> None:
    code = "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    with Proc([sys.executable, "-c", code]) as proc:
        deadline = time.monotonic() + 10
        while "ready" not in proc.stdout_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        assert proc.stop(timeout=0.5) == -signal.SIGKILL
        assert time.monotonic() - t0 < 5
    assert proc.stdout_text().strip() == "ready"


def test_wait_http_timeout_reports_stderr() -> None:
    with pytest.raises(ServerStartError) as ei:
        wait_http(f"http://127.0.0.1:{free_port()}/", timeout=0.5, stderr="the captured stderr")
    assert "the captured stderr" in str(ei.value)


def test_naftiko_runs_the_module_from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_start_server(cmd, ports_to_wait=(), env=None, cwd=None, **kw):  # type: ignore[no-untyped-def]
        seen.update(cmd=cmd, ports=list(ports_to_wait), env=env, cwd=cwd)
        return "proc"

    monkeypatch.setattr(servers, "start_server", fake_start_server)
    assert servers.naftiko(["run", "cap.yaml"], env={"X": "1"}, ports_to_wait=[1234]) == "proc"
    assert seen["cmd"] == [sys.executable, "-m", "naftiko_runtime", "run", "cap.yaml"]
    assert seen["cwd"] == servers.REPO_ROOT
    assert (servers.REPO_ROOT / "naftiko_runtime").is_dir()
    assert seen["env"]["X"] == "1" and seen["ports"] == [1234]


# --------------------------------------------------------------------------------------
# TypeScript MCP SDK client against a bare mcp 2.x low-level server
# --------------------------------------------------------------------------------------


def _bare_mcp_app() -> Any:
    from mcp import types
    from mcp.server import Server
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    add_tool = types.Tool(
        name="add",
        description="Add two integers.",
        input_schema={
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    )

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[add_tool])

    async def on_call_tool(ctx: Any, params: Any) -> types.CallToolResult:
        if params.name != "add":
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"unknown tool {params.name}")], is_error=True
            )
        total = params.arguments["a"] + params.arguments["b"]
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=str(total))], structured_content={"sum": total}
        )

    server = Server("bare-test", version="0.0.1", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
    manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        async with manager.run():
            yield

    return Starlette(
        routes=[Route("/mcp", endpoint=StreamableHTTPASGIApp(manager), methods=["GET", "POST", "DELETE"])],
        lifespan=lifespan,
    )


@pytest.fixture(scope="module")
def bare_mcp_url() -> Any:
    with serve_asgi(_bare_mcp_app()) as base_url:
        yield base_url + "/mcp"


def test_mcp_interop_lists_and_calls_a_tool(bare_mcp_url: str) -> None:
    out = mcp_interop(bare_mcp_url, "add", {"a": 2, "b": 3})
    assert out["tools"] == ["add"]
    assert out["result"]["content"] == [{"type": "text", "text": "5"}]
    assert out["result"]["structuredContent"] == {"sum": 5}
    assert not out["result"].get("isError")


def test_mcp_interop_reports_tool_errors_and_list_only(bare_mcp_url: str) -> None:
    out = mcp_interop(bare_mcp_url, "nope", {})
    assert out["result"]["isError"] is True
    assert mcp_interop(bare_mcp_url, None) == {"tools": ["add"], "result": None}


def test_mcp_interop_fails_loudly_against_a_non_mcp_server(echo: servers.EchoUpstream) -> None:
    echo.respond_with(404, {"error": "no mcp here"}, times=None)
    with pytest.raises(AssertionError, match="mcp-interop.mjs failed"):
        mcp_interop(echo.base_url + "/mcp", "add", {}, timeout=30)


def test_missing_node_tools_fail_in_ci_and_skip_locally(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(servers, "PRISM_BIN", tmp_path / "no-prism")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match="npm ci --prefix tests/node"):
        servers.prism(servers.VAPI_SLIM_OPENAPI)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="npm ci --prefix tests/node"):
        servers.prism(servers.VAPI_SLIM_OPENAPI)
