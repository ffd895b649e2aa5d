"""Traces through `naftiko run`: spans exported over OTLP/HTTP to a receiver on a real socket (decoded
with opentelemetry-proto), W3C and B3 propagation to the upstream, sampling, and `/traces`."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.e2e.conftest import MCP_NS, REST_NS, SEED
from tests.support.servers import REPO_ROOT, EchoUpstream, free_port, http_request, naftiko, wait_http

pytestmark = pytest.mark.e2e

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint: decodes every export into spans (with their service name)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        self.content_types: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.content_types.add(self.headers.get("Content-Type", ""))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
                    for scope_spans in resource_spans.scope_spans:
                        receiver.spans.extend((service, span) for span in scope_spans.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def trace(self, trace_id: str, count: int, timeout: float = 15) -> list[Span]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for _, s in self.spans if s.trace_id.hex() == trace_id]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(found)} span(s) of trace {trace_id} exported, expected {count}: {[s.name for _, s in self.spans]}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver()
    yield otlp
    otlp.server.shutdown()


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    with EchoUpstream() as upstream:
        yield upstream


def run_seed(echo: EchoUpstream, receiver: OtlpReceiver, path: Path | str = SEED, *extra: str):
    rest, mcp = free_port(), free_port()
    env = {"VAPI_API_KEY": "k", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    proc = naftiko(["run", path, "--base-uri", f"sessions-sessions={echo.base_url}", "--port", f"{REST_NS}={rest}",
                    "--port", f"{MCP_NS}={mcp}", *extra], env=env, ports_to_wait=[rest, mcp])
    return proc, f"http://127.0.0.1:{rest}", f"http://127.0.0.1:{mcp}/mcp"


@pytest.fixture(scope="module")
def seed(echo, receiver) -> Iterator[tuple[str, str]]:
    proc, rest, mcp = run_seed(echo, receiver)
    with proc:
        yield rest, mcp


def header(record: dict[str, Any], name: str) -> str | None:
    return record["headers"].get(name)


def test_a_rest_call_continues_the_callers_trace_to_the_upstream(seed, echo, receiver):
    rest, _ = seed
    echo.reset()
    response = http_request("GET", f"{rest}/v1/session/s-1", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=x"})
    assert response.status == 200
    server, client = _server_client(receiver.trace(TRACE_ID, 2))
    assert server.name == "GET /v1/session/{id}" and server.parent_span_id.hex() == PARENT_ID
    assert client.kind == Span.SPAN_KIND_CLIENT and client.parent_span_id == server.span_id
    assert client.name == "GET sessions-sessions.sessioncontrollerfindone"
    sent = header(echo.last, "traceparent")
    assert sent is not None
    version, trace_id, parent_id, flags = sent.split("-")
    assert (trace_id, parent_id) == (TRACE_ID, client.span_id.hex()) and int(flags, 16) & 1  # same trace, sampled, a new parent
    assert parent_id != PARENT_ID and header(echo.last, "tracestate") == "vendor=x"
    attributes = {a.key: a.value for a in server.attributes}
    assert attributes["http.route"].string_value == "/v1/session/{id}" and attributes["http.response.status_code"].int_value == 200
    assert receiver.content_types == {"application/x-protobuf"}


def _server_client(spans: list[Span]) -> tuple[Span, Span]:
    by_kind = {s.kind: s for s in spans}
    return by_kind[Span.SPAN_KIND_SERVER], by_kind[Span.SPAN_KIND_CLIENT]


@pytest.mark.anyio
async def test_an_mcp_tool_call_joins_the_trace_of_its_http_request(seed, echo, receiver):
    _, mcp = seed
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    echo.reset()
    http = create_mcp_http_client(headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    async with http, Client(streamable_http_client(mcp, http_client=http)) as client:
        result = await client.call_tool("vapi-sessioncontrollerfindone", {"id": "s-2"})
    assert not result.is_error
    spans = receiver.trace(trace_id, 3)  # every request of the session carried the header (discovery, tools/list, the call)
    [server] = [s for s in spans if s.name == "tools/call vapi-sessioncontrollerfindone"]
    [client_span] = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert server.kind == Span.SPAN_KIND_SERVER and server.parent_span_id.hex() == "b7ad6b7169203331"
    assert client_span.parent_span_id == server.span_id
    assert header(echo.last, "traceparent").split("-")[1:3] == [trace_id, client_span.span_id.hex()]


CONTROL = """\
  - type: control
    port: {port}
    observability:
      traces:
        sampling: {sampling}
        propagation: {propagation}
"""


def seed_with(tmp_path: Path, **config: Any) -> tuple[Path, int]:
    port = free_port()
    text = (REPO_ROOT / SEED).read_text().replace("  exposes:\n", "  exposes:\n" + CONTROL.format(port=port, **config), 1)
    path = tmp_path / "seed-traced.yaml"
    path.write_text(text)
    return path, port


def test_b3_propagation_reads_and_writes_b3_headers(tmp_path, echo, receiver):
    path, control = seed_with(tmp_path, sampling=1.0, propagation="b3")
    trace_id = "80f198ee56343ba864fe8b2a57d3eff7"
    proc, rest, _ = run_seed(echo, receiver, path)
    with proc:
        echo.reset()
        assert http_request("GET", f"{rest}/v1/session/s-3", headers={"b3": f"{trace_id}-e457b5a2e4d86bd1-1"}).status == 200
        server, client = _server_client(receiver.trace(trace_id, 2))
        sent = echo.last["headers"]
    assert server.parent_span_id.hex() == "e457b5a2e4d86bd1"
    assert sent["b3"].split("-")[:3] == [trace_id, client.span_id.hex(), "1"] and "traceparent" not in sent


def test_sampling_is_honored_and_traces_are_kept_for_the_control_port(tmp_path, echo, receiver):
    path, control = seed_with(tmp_path, sampling=0.0, propagation="w3c")
    proc, rest, _ = run_seed(echo, receiver, path)
    with proc:
        wait_http(f"http://127.0.0.1:{control}/health/ready", ok=lambda s: s == 200, proc=proc)
        echo.reset()
        assert http_request("GET", f"{rest}/v1/session/unsampled").status == 200
        unsampled = header(echo.last, "traceparent")
        sampled_id = "5b8efff798038103d269b633813fc60c"
        echo.respond_with(500, {"error": "boom"})
        assert http_request("GET", f"{rest}/v1/session/sampled", headers={"traceparent": f"00-{sampled_id}-eee19b7ec3c1b174-01"}).status == 500
        receiver.trace(sampled_id, 2)  # a sampled caller is followed (parent-based sampling)
        listed = http_request("GET", f"http://127.0.0.1:{control}/traces").json()
        errors = http_request("GET", f"http://127.0.0.1:{control}/traces?status=error&operation=/v1/session").json()
        detail = http_request("GET", f"http://127.0.0.1:{control}/traces/{sampled_id}").json()
        missing = http_request("GET", f"http://127.0.0.1:{control}/traces/{'0' * 32}")
    assert int(unsampled.split("-")[3], 16) & 1 == 0  # not sampled at rate 0, and the upstream is told so
    assert unsampled.split("-")[1] not in {s.trace_id.hex() for _, s in receiver.spans}
    assert [t["traceId"] for t in listed["traces"]] == [sampled_id] and listed["bufferSize"] == 100
    assert [t["traceId"] for t in errors["traces"]] == [sampled_id] and errors["traces"][0]["status"] == "ERROR"
    assert [s["kind"] for s in detail["spans"]] == ["SERVER", "CLIENT"] and detail["operation"] == "GET /v1/session/{id}"
    assert detail["spans"][1]["parentSpanId"] == detail["spans"][0]["spanId"] and missing.status == 404


STEPS = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
  - namespace: registry
    type: http
    baseUri: http://127.0.0.1:9
    resources:
    - {name: ship, path: "/ships/{{imo_number}}", operations: [{name: get-ship, method: GET}]}
    - {name: crew, path: /crew, operations: [{name: list-crew, method: GET}]}
  exposes:
  - type: control
    port: {control}
  - type: rest
    namespace: fleet
    port: {rest}
    resources:
    - path: /ships/{{imo}}/manifest
      operations:
      - method: GET
        name: manifest
        steps:
        - {name: get-ship, type: call, call: registry.get-ship, with: {imo_number: "{{imo}}"}}
        - {name: list-crew, type: call, call: registry.list-crew}
        mappings:
        - {targetName: ship, value: $.get-ship.path}
        - {targetName: crew, value: $.list-crew.path}
"""


def test_orchestration_steps_get_spans_and_durations(tmp_path, echo):
    control, rest = free_port(), free_port()
    path = tmp_path / "steps.yaml"
    path.write_text(STEPS.replace("{control}", str(control)).replace("{rest}", str(rest)))
    with naftiko(["run", path, "--base-uri", f"registry={echo.base_url}"], ports_to_wait=[control, rest]) as proc:
        base = f"http://127.0.0.1:{control}"
        wait_http(base + "/health/ready", ok=lambda s: s == 200, proc=proc)
        echo.reset()
        answer = http_request("GET", f"http://127.0.0.1:{rest}/ships/IMO-4/manifest")
        assert answer.status == 200 and answer.json() == {"ship": "/ships/IMO-4", "crew": "/crew"}
        [summary] = http_request("GET", base + "/traces?operation=manifest").json()["traces"]
        detail = http_request("GET", f"{base}/traces/{summary['traceId']}").json()
        metrics = http_request("GET", base + "/metrics").text
    spans = {s["name"]: s for s in detail["spans"]}
    server = spans["GET /ships/{imo}/manifest"]
    for step, call in (("get-ship", "GET registry.get-ship"), ("list-crew", "GET registry.list-crew")):
        assert spans[f"step {step}"]["kind"] == "INTERNAL" and spans[f"step {step}"]["parentSpanId"] == server["spanId"]
        assert spans[call]["parentSpanId"] == spans[f"step {step}"]["spanId"]
    assert 'naftiko_step_duration_seconds_count{outcome="ok",step="get-ship"} 1.0' in metrics
    assert all(r["headers"]["traceparent"].split("-")[1] == summary["traceId"] for r in echo.received)


def test_a_forwarded_request_is_counted_and_traced_like_an_upstream_call(echo, receiver):
    gateway, control = free_port(), free_port()
    env = {"BACKEND_TOKEN": "t", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with naftiko(["run", REPO_ROOT / "tests/fixtures/orchestration/forward.yaml", "--base-uri", f"backend={echo.base_url}",
                  "--port", f"gateway={gateway}", "--control-port", str(control)], env=env, ports_to_wait=[gateway, control]) as proc:
        wait_http(f"http://127.0.0.1:{control}/health/ready", ok=lambda s: s == 200, proc=proc)
        echo.reset()
        trace_id = "0af7651916cd43dd8448eb211c80319c"
        answer = http_request("GET", f"http://127.0.0.1:{gateway}/proxy/a/b?x=1", headers={"traceparent": f"00-{trace_id}-{PARENT_ID}-01"})
        assert answer.status == 200 and answer.json()["path"] == "/a/b"  # --base-uri replaces the file's /api base
        echo.respond_with(503, "down")
        assert http_request("PUT", f"http://127.0.0.1:{gateway}/proxy/c", json_body={"a": 1}).status == 503
        metrics = http_request("GET", f"http://127.0.0.1:{control}/metrics").text
    server, client = _server_client(receiver.trace(trace_id, 2))
    assert server.name == "GET /proxy/{path}" and client.kind == Span.SPAN_KIND_CLIENT and client.parent_span_id == server.span_id
    assert client.name == "GET backend.forward /proxy/{path}"
    assert {a.key: a.value.int_value for a in client.attributes if a.key == "http.response.status_code"} == {"http.response.status_code": 200}
    _, sent_trace, sent_parent, _ = header(echo.received[0], "traceparent").split("-")
    assert (sent_trace, sent_parent) == (trace_id, client.span_id.hex())  # the upstream continues the trace under the client span
    forward = 'operation="forward /proxy/{path}",outcome="%s",upstream="backend"'
    assert f'naftiko_upstream_requests_total{{{forward % "2xx"}}} 1.0' in metrics
    assert f'naftiko_upstream_requests_total{{{forward % "5xx"}}} 1.0' in metrics
    assert f'naftiko_upstream_request_duration_seconds_count{{{forward % "2xx"}}} 1.0' in metrics
    assert 'naftiko_requests_total{adapter="rest",exposure="gateway",operation="PUT /proxy/{path}",outcome="5xx"} 1.0' in metrics
