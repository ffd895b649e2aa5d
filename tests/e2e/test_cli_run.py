"""`naftiko run` as a user runs it: the Quickstart, missing secrets, broken files, shutdown."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import SEED, start_seed
from tests.support.servers import REPO_ROOT, free_port, http_request, naftiko


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    import os

    full_env = {k: v for k, v in os.environ.items() if k != "VAPI_API_KEY"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "naftiko_runtime", *args], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_quickstart_mock_as_written_in_the_readme():
    readme = (REPO_ROOT / "README.md").read_text()
    command = re.search(r"pip install -e \. && (naftiko run [^\n]+--mock)", readme).group(1)
    args = command.split()[1:]
    rest_port = 8080
    if not _port_free(8080) or not _port_free(9090):  # someone else holds the file's ports: same command, free ports
        rest_port = free_port()
        args += ["--port", f"sessions-sessions-rest={rest_port}", "--port", f"sessions-sessions-mcp={free_port()}"]
    proc = naftiko(args, env={"VAPI_API_KEY": None}, ports_to_wait=[rest_port])
    with proc:
        url = f"http://127.0.0.1:{rest_port}"
        created = http_request("POST", f"{url}/v1/session", json_body={"name": "demo"})
        assert created.status == 201
        sid = created.json()["id"]
        assert [s["id"] for s in http_request("GET", f"{url}/v1/session").json()] == [sid]
        assert http_request("GET", f"{url}/v1/session/{sid}").json()["name"] == "demo"
        assert http_request("PATCH", f"{url}/v1/session/{sid}", json_body={"name": "x"}).json()["name"] == "x"
        assert http_request("DELETE", f"{url}/v1/session/{sid}").status == 200
        assert http_request("GET", f"{url}/v1/session/{sid}").status == 404
        assert proc.stop(signal.SIGINT) == 0
    out = proc.stderr_text()
    assert f"REST 'sessions-sessions-rest' on {url}" in out and "mock upstream" in out


def test_missing_secret_stops_startup_and_names_it():
    result = run_cli("run", SEED)
    assert result.returncode == 1
    assert "VAPI_API_KEY: environment variable 'VAPI_API_KEY' is not set" in result.stderr
    assert "capabilities/vapi-sessions.yaml:13:5" in result.stderr
    assert "nothing is served" in result.stderr and "Traceback" not in result.stderr


def test_env_file_provides_the_secret(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("VAPI_API_KEY=from-env-file\n")
    rest = free_port()
    proc = naftiko(["run", SEED, "--env-file", str(env_file), "--port", f"sessions-sessions-rest={rest}",
                    "--port", f"sessions-sessions-mcp={free_port()}"], env={"VAPI_API_KEY": None}, ports_to_wait=[rest])
    with proc:
        assert http_request("GET", f"http://127.0.0.1:{rest}/openapi.json").status == 200


def test_broken_yaml_names_file_line_col(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("naftiko: 1.0.0-alpha2\ncapability:\n  exposes:\n  - type: rest\n    namespace: x: y\n")
    result = run_cli("run", str(bad))
    assert result.returncode == 1
    assert re.search(r"bad\.yaml:5:17: error: invalid YAML: mapping values are not allowed in this context \(a value containing ': ' must be quoted", result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_call_is_a_startup_error_with_known_names(tmp_path: Path):
    text = (REPO_ROOT / SEED).read_text().replace("call: sessions-sessions.sessioncontrollerremove", "call: sessions-sessions.sessioncontrollerdelete", 1)
    cap = tmp_path / "cap.yaml"
    cap.write_text(text)
    result = run_cli("run", str(cap), "--mock")
    assert result.returncode == 1
    assert "call 'sessions-sessions.sessioncontrollerdelete': consumes 'sessions-sessions' has no operation 'sessioncontrollerdelete'; did you mean" in result.stderr
    assert "sessioncontrollerremove" in result.stderr and re.search(r"cap\.yaml:\d+:\d+: error", result.stderr)


def test_usage_errors_exit_2():
    assert run_cli("run", SEED, "--port", "nope").returncode == 2
    assert run_cli("run", SEED, "--mock", "--base-uri", "unknown-ns=http://x").returncode == 2


def test_sigterm_finishes_in_flight_requests_and_exits_0(echo):
    proc, url = start_seed("--base-uri", f"sessions-sessions={echo.base_url}")
    with proc:
        echo.respond_with(200, delay=1.5)
        import threading

        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("r", http_request("GET", f"{url}/v1/session/slow", timeout=10)))
        worker.start()
        echo.wait_for(1)
        assert proc.stop(signal.SIGTERM, timeout=15) == 0
        worker.join()
    assert result["r"].status == 200


def test_access_log_prints_one_line_per_request_at_the_default_level():
    proc, url = start_seed("--mock", "--access-log")
    with proc:
        assert http_request("GET", f"{url}/v1/session?limit=2").status == 200
        deadline = time.monotonic() + 5
        while "GET /v1/session?limit=2" not in proc.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "GET /v1/session?limit=2 HTTP/1.1\" 200" in proc.stderr_text()
