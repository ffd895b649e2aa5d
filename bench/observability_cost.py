"""What observability adds to one request, measured in process (robust to a busy machine).

The seed's REST app (`GET /v1/session/{id}`) and MCP tool call are driven directly through ASGI,
without a network or an HTTP server, against the in-process fake upstream (`--mock`), with
observability off, metrics on, and metrics plus tracing (sampling 1.0, spans kept for /traces and
exported over OTLP/HTTP to a local sink in another process); and metrics kept in the cells the
workers of `--workers N` share. It prints the process CPU time per
request of each (median of rounds, interleaved) and the difference to off: the runtime's own
cost of observing, which bench.py's req/s ratios express against a whole request (HTTP server
and upstream client included).

    python bench/observability_cost.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from naftiko_runtime.build import build_plan  # noqa: E402
from naftiko_runtime.observability import Observability  # noqa: E402
from naftiko_runtime.observability.series import SharedSeries  # noqa: E402
from naftiko_runtime.runtime import Runtime  # noqa: E402

SEED = ROOT / "capabilities" / "vapi-sessions.yaml"
CONTROL = """\
  - type: control
    port: 1
    observability:
      traces:
        sampling: {sampling}
        local: {{enabled: {traces}}}
{exporter}"""


def capability(tmp: Path, name: str, traces: bool, otlp: str | None, sampling: float = 1.0) -> Path:
    exporter = f'      exporters: {{otlp: {{endpoint: "{otlp}"}}}}\n' if otlp else ""
    path = tmp / f"{name}.yaml"
    block = CONTROL.format(traces="true" if traces else "false", exporter=exporter, sampling=sampling)
    path.write_text(SEED.read_text().replace("  exposes:\n", "  exposes:\n" + block, 1))
    return path


async def drive(app: Any, scope: dict[str, Any], body: bytes, count: int) -> float:
    """CPU seconds for `count` requests through `app`."""
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    start = time.process_time()
    for _ in range(count):
        await app(dict(scope), receive, send)
    return time.process_time() - start


def scope_for(path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:8080"), *(headers or [])], "scheme": "http", "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 5555), "http_version": "1.1", "asgi": {"version": "3.0"}, "root_path": ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import tempfile

    logging.disable(logging.WARNING)  # the seed's own warnings, once per variant
    tmp = Path(tempfile.mkdtemp(prefix="obs-cost-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sink_port = s.getsockname()[1]
    sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "otlp_sink.py"), "--port", str(sink_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(measure(tmp, sink_port, args.requests, args.rounds))
    finally:
        sink.terminate()
        sink.wait(10)


async def measure(tmp: Path, sink_port: int, requests: int, rounds: int) -> int:
    from naftiko_runtime.exposes.mcp_http import build_app as build_mcp
    from naftiko_runtime.exposes.rest import build_app as build_rest

    sink = f"http://127.0.0.1:{sink_port}"
    variants = {
        "off": SEED,
        "metrics": capability(tmp, "metrics", False, None),
        "metrics, workers": capability(tmp, "metrics", False, None),  # the cells --workers shares (series.py)
        "+traces local": capability(tmp, "local", True, None),
        "+traces 0.1 OTLP": capability(tmp, "sampled", True, sink, 0.1),
        "+traces 1.0 OTLP": capability(tmp, "traced", True, sink),
    }
    apps: dict[str, dict[str, Any]] = {}
    observers = []
    for name, path in variants.items():
        plan = build_plan(path, mock=True)
        shared = SharedSeries(2).worker(0, lambda slot: True) if name == "metrics, workers" else None
        obs = Observability.for_plans([plan], shared) if name != "off" else None
        if obs is not None:
            observers.append(obs)
        runtime = Runtime(plan, observability=obs)
        rest_api = plan.rest[0]
        rest = build_rest(runtime, rest_api)
        mcp_api = plan.mcp[0]
        mcp = build_mcp(runtime, mcp_api)
        if obs is not None:
            rest = obs.wrap_app(rest, "rest", rest_api.exposure.namespace)
            mcp = obs.wrap_app(mcp, "mcp", mcp_api.exposure.namespace)
        apps[name] = {"rest": rest, "mcp": mcp}
    # the REST read needs a session in the fake upstream; the MCP call reads it through the fast path
    body = json.dumps({"name": "bench"}).encode()
    created: dict[str, str] = {}

    async def capture_id(app: Any) -> str:
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope_for("/v1/session", "POST", [(b"content-type", b"application/json")]), receive, send)
        return json.loads(b"".join(chunks))["id"]

    for name in apps:
        created[name] = await capture_id(apps[name]["rest"])
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "vapi-sessioncontrollerfindone", "arguments": {"id": ""},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
                  "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}}}}
    mcp_headers = [(b"content-type", b"application/json"), (b"accept", b"application/json, text/event-stream"),
                   (b"mcp-protocol-version", b"2026-07-28"), (b"mcp-method", b"tools/call"), (b"mcp-name", b"vapi-sessioncontrollerfindone")]
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, pair in apps.items():
            rest_scope = scope_for(f"/v1/session/{created[name]}")
            seconds = await drive(pair["rest"], rest_scope, b"", requests)
            results.setdefault(("rest", name), []).append(seconds / requests * 1e6)
            call["params"]["arguments"]["id"] = created[name]
            seconds = await drive(pair["mcp"], scope_for("/mcp", "POST", mcp_headers), json.dumps(call).encode(), requests // 2)
            results.setdefault(("mcp", name), []).append(seconds / (requests // 2) * 1e6)
    for obs in observers:
        obs.shutdown()
    print(f"{'kind':<5} {'variant':<18} {'CPU us/request':>15} {'added':>8}   (median of {rounds} interleaved rounds of {requests:,} requests)")
    for kind in ("rest", "mcp"):
        off = statistics.median(results[(kind, "off")])
        for name in apps:
            value = statistics.median(results[(kind, name)])
            print(f"{kind:<5} {name:<18} {value:>15.1f} {value - off:>+8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
