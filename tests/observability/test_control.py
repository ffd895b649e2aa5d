"""The control port through `naftiko run --control-port`: readiness across startup and drain,
/status, /metrics read with prometheus_client's own parser after known traffic, authentication,
port clashes, and a real Prometheus server scraping it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import MCP_NS, REST_NS, SEED
from tests.support.servers import REPO_ROOT, EchoUpstream, Proc, free_port, http_request, in_ci, naftiko, wait_http

pytestmark = pytest.mark.e2e


def start(*extra: str, env: dict[str, str] | None = None, wait_ready: bool = True) -> tuple[Proc, dict[str, str]]:
    """The seed with a control port: against the in-process fake, or the upstream `--base-uri` names."""
    control, rest, mcp = free_port(), free_port(), free_port()
    mock = [] if any(arg.startswith("sessions-sessions=") for arg in extra) else ["--mock"]
    proc = naftiko(["run", SEED, *mock, "--control-port", str(control), "--port", f"{REST_NS}={rest}",
                    "--port", f"{MCP_NS}={mcp}", *extra], env=env, ports_to_wait=[control])
    urls = {"control": f"http://127.0.0.1:{control}", "rest": f"http://127.0.0.1:{rest}", "mcp": f"http://127.0.0.1:{mcp}/mcp"}
    if wait_ready:
        wait_http(urls["control"] + "/health/ready", ok=lambda s: s == 200, proc=proc)
    return proc, urls


def test_readiness_reports_each_adapter_while_starting_then_up():
    proc, urls = start(wait_ready=False)
    seen: list[tuple[int, str, dict[str, str]]] = []
    with proc:
        assert http_request("GET", urls["control"] + "/health/live").json() == {"status": "UP"}
        deadline = time.monotonic() + 30
        while (not seen or seen[-1][0] != 200) and time.monotonic() < deadline:
            answer = http_request("GET", urls["control"] + "/health/ready")
            body = answer.json()
            seen.append((answer.status, body["status"], {a["type"]: a["state"] for a in body["adapters"]}))
            time.sleep(0.02)
        ready = http_request("GET", urls["control"] + "/health/ready").json()
    # REST serves while the MCP SDK is still importing: readiness says so, then turns UP
    assert (503, "STARTING", {"rest": "started", "mcp": "starting"}) in seen, seen
    assert all(status == 503 and state == "STARTING" for status, state, _ in seen[:-1]) and seen[-1][:2] == (200, "UP")
    assert {(a["type"], a["namespace"], a["state"]) for a in ready["adapters"]} == {("rest", REST_NS, "started"), ("mcp", MCP_NS, "started")}


def test_draining_is_reported_until_in_flight_requests_finish_then_the_port_closes():
    with EchoUpstream() as echo:
        echo.respond_with(200, {"id": "slow"}, delay=1.5)
        proc, urls = start("--base-uri", f"sessions-sessions={echo.base_url}", env={"VAPI_API_KEY": "k"})
        with proc:
            slow: dict[str, int] = {}
            worker = threading.Thread(target=lambda: slow.setdefault("status", http_request("GET", urls["rest"] + "/v1/session/a", timeout=20).status))
            worker.start()
            echo.wait_for(1)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            draining = http_request("GET", urls["control"] + "/health/ready")
            live = http_request("GET", urls["control"] + "/health/live")
            worker.join(20)
            assert proc.wait(20) == 0
    assert draining.status == 503 and draining.json()["status"] == "DRAINING"
    assert {a["state"] for a in draining.json()["adapters"]} == {"draining"} and live.status == 200
    assert slow["status"] == 200  # the in-flight request still finished


def samples(url: str) -> dict[str, list]:
    text = http_request("GET", url + "/metrics").text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(found: dict[str, list], sample: str, **labels: str) -> float:
    family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    return sum(s.value for s in found.get(family, []) if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.mark.anyio
async def test_metrics_count_known_traffic_per_exposure_operation_and_upstream():
    proc, urls = start()
    with proc:
        for i in range(5):
            assert http_request("POST", urls["rest"] + "/v1/session", json_body={"name": f"s{i}"}).status == 201
        assert http_request("GET", urls["rest"] + "/v1/session/does-not-exist").status == 404
        assert http_request("GET", urls["rest"] + "/no/such/route").status == 404
        async with Client(urls["mcp"]) as client:  # the stateless revision: the MCP fast path
            for _ in range(3):
                await client.call_tool("vapi-sessioncontrollerfindallpaginated", {})
            listed = value(samples(urls["control"]), "naftiko_requests_total", operation="tools/list", outcome="ok")
            for _ in range(3):  # the SDK answers the first of a protocol version, the fast path's copy the others
                assert len((await client.list_tools()).tools) > 0
            assert value(samples(urls["control"]), "naftiko_requests_total", operation="tools/list", outcome="ok") == listed + 3
            assert (await client.call_tool("vapi-sessioncontrollerfindone", {})).is_error
        async with Client(urls["mcp"], mode="legacy") as client:  # the handshake: the SDK's handlers
            await client.call_tool("vapi-sessioncontrollerfindallpaginated", {})
        found = samples(urls["control"])
        status = http_request("GET", urls["control"] + "/status")
    rest = {"adapter": "rest", "exposure": REST_NS}
    assert value(found, "naftiko_requests_total", operation="POST /v1/session", outcome="2xx", **rest) == 5
    assert value(found, "naftiko_requests_total", operation="GET /v1/session/{id}", outcome="4xx", **rest) == 1
    assert value(found, "naftiko_requests_total", operation="unmatched", outcome="4xx", **rest) == 1  # the path is no label
    assert value(found, "naftiko_request_duration_seconds_count", operation="POST /v1/session", **rest) == 5
    buckets = [s for s in found["naftiko_request_duration_seconds"] if s.name.endswith("_bucket") and s.labels["operation"] == "POST /v1/session"]
    assert {s.labels["le"] for s in buckets} >= {"0.005", "0.1", "1.0", "+Inf"} and max(s.value for s in buckets) == 5
    mcp = {"adapter": "mcp", "exposure": MCP_NS}
    assert value(found, "naftiko_requests_total", operation="tools/call vapi-sessioncontrollerfindallpaginated", outcome="ok", **mcp) == 4
    assert value(found, "naftiko_requests_total", operation="tools/call vapi-sessioncontrollerfindone", outcome="tool_error", **mcp) == 1
    assert value(found, "naftiko_upstream_requests_total", upstream="sessions-sessions", operation="sessioncontrollercreate", outcome="2xx") == 5
    assert value(found, "naftiko_upstream_requests_total", upstream="sessions-sessions", operation="sessioncontrollerfindone", outcome="4xx") == 1
    assert value(found, "naftiko_upstream_request_duration_seconds_count", upstream="sessions-sessions") == 10
    assert value(found, "naftiko_requests_in_flight", **rest) == 0
    assert "process_resident_memory_bytes" in found and found["naftiko_info"][0].labels["spec_version"] == "1.0.0-alpha2"
    assert status.status == 404  # management.info is off unless the file turns it on


def test_upstream_retries_and_timeouts_are_counted():
    with EchoUpstream() as echo:
        echo.respond_with(503, "busy", times=1).respond_with(200, {"id": "a"}, times=1)
        echo.respond_with(200, {"id": "late"}, delay=2, times=1)
        proc, urls = start("--base-uri", f"sessions-sessions={echo.base_url}", "--timeout", "1", env={"VAPI_API_KEY": "k"})
        with proc:
            assert http_request("GET", urls["rest"] + "/v1/session/a").status == 200
            assert http_request("GET", urls["rest"] + "/v1/session/b").status == 504
            found = samples(urls["control"])
    op = {"upstream": "sessions-sessions", "operation": "sessioncontrollerfindone"}
    assert value(found, "naftiko_upstream_retries_total", **op) == 1
    assert value(found, "naftiko_upstream_requests_total", outcome="2xx", **op) == 1
    assert value(found, "naftiko_upstream_requests_total", outcome="timeout", **op) == 1


CONTROLLED = """\
  - type: control
    port: {port}
    authentication: {{type: bearer, token: "{{{{CONTROL_TOKEN}}}}"}}
    management: {{info: true}}
    observability:
      traces: {{local: {{enabled: false}}}}
"""


def seed_with_control(tmp_path: Path, port: int) -> Path:
    text = (REPO_ROOT / SEED).read_text()
    text = text.replace("binds:\n", "binds:\n- namespace: control-env\n  keys: {CONTROL_TOKEN: CONTROL_TOKEN}\n", 1) if "binds:\n" in text else text
    assert "  exposes:\n" in text
    path = tmp_path / "seed-control.yaml"
    path.write_text(text.replace("  exposes:\n", "  exposes:\n" + CONTROLLED.format(port=port), 1))
    return path


def test_a_declared_control_exposure_guards_all_but_health_and_serves_status(tmp_path):
    control, rest, mcp = free_port(), free_port(), free_port()
    path = seed_with_control(tmp_path, control)
    env = {"CONTROL_TOKEN": "ctl-secret-9", "VAPI_API_KEY": "k"}
    with naftiko(["run", path, "--mock", "--port", f"{REST_NS}={rest}", "--port", f"{MCP_NS}={mcp}"], env=env, ports_to_wait=[control]) as proc:
        url = f"http://127.0.0.1:{control}"
        wait_http(url + "/health/ready", ok=lambda s: s == 200, proc=proc)
        denied = http_request("GET", url + "/metrics")
        auth = {"Authorization": "Bearer ctl-secret-9"}
        metrics = http_request("GET", url + "/metrics", headers=auth)
        status = http_request("GET", url + "/status", headers=auth).json()
        traces = http_request("GET", url + "/traces", headers=auth)
        rebound = http_request("GET", url + "/metrics", headers={**auth, "Host": f"evil.example:{control}"})
        foreign = http_request("GET", url + "/metrics", headers={**auth, "Origin": "http://evil.example"})
        live = http_request("GET", url + "/health/live", headers={"Host": f"10.0.0.7:{control}"})  # probes by pod IP
    assert denied.status == 401 and denied.headers["www-authenticate"].startswith("Bearer")
    assert metrics.status == 200 and "naftiko_info" in metrics.text
    assert status["capability"]["specVersion"] == "1.0.0-alpha2" and status["state"] == "UP"
    assert status["observability"]["metrics"] is True and status["observability"]["traces"] == "inactive"
    assert {a["type"] for a in status["adapters"]} == {"rest", "mcp"}
    assert traces.status == 404  # traces.local.enabled: false
    assert "ctl-secret-9" not in json.dumps(status)
    assert (rebound.status, foreign.status, live.status) == (421, 403, 200)  # loopback listener: Host/Origin checked, health open


def test_a_control_port_used_by_another_exposure_is_a_startup_error_naming_both():
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "naftiko_runtime", "run", SEED, "--mock", "--control-port", str(port),
                             "--port", f"{REST_NS}={port}", "--port", f"{MCP_NS}=0"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 1
    assert f"REST exposure '{REST_NS}' and --control-port: control exposure 'control' both use port {port}" in result.stderr


PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def prometheus_binary() -> str:
    if PROMETHEUS is None:
        if in_ci():
            raise RuntimeError("the `prometheus` binary is missing (Debian package prometheus; .ci/run installs it)  [CI=true: refusing to skip]")
        pytest.skip("the `prometheus` binary is not installed (apt-get install prometheus)")
    return PROMETHEUS


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_control_port(prometheus_binary):
    proc, urls = start()
    with proc, tempfile.TemporaryDirectory(prefix="prometheus-") as data:
        for i in range(7):
            assert http_request("POST", urls["rest"] + "/v1/session", json_body={"name": f"p{i}"}).status == 201
        target = urls["control"].removeprefix("http://")
        config = Path(data, "prometheus.yml")
        config.write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: naftiko\n  static_configs:\n  - targets: ['{target}']\n")
        port = free_port()
        server = Proc([prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={data}/tsdb",
                       f"--web.listen-address=127.0.0.1:{port}"], name="prometheus")
        with server:
            api = f"http://127.0.0.1:{port}/api/v1"
            query = 'naftiko_requests_total{operation="POST /v1/session",outcome="2xx"}'
            deadline, up, count = time.monotonic() + 45, None, None
            while time.monotonic() < deadline and (up != "1" or count != "7"):
                time.sleep(0.5)
                try:
                    up = _instant(api, 'up{job="naftiko"}')
                    count = _instant(api, query)
                except OSError:
                    continue
            assert (up, count) == ("1", "7"), server.stderr_text()[-2000:]
            targets = http_request("GET", api + "/targets").json()["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"] and targets[0]["lastError"] == ""


def _instant(api: str, query: str) -> str | None:
    from urllib.parse import quote

    result = http_request("GET", f"{api}/query?query={quote(query)}", timeout=5).json()["data"]["result"]
    return result[0]["value"][1] if result else None
