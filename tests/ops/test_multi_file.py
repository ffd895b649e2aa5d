"""Several capabilities in one process: `naftiko run A.yaml B.yaml` or a directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.servers import REPO_ROOT, free_port

from .conftest import capability, get, start, write


def run_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "naftiko_runtime", "run", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=30)


def two_capabilities(folder: Path, port_a: int, port_b: int) -> tuple[Path, Path]:
    (folder / "settings.env").write_text("EDITION=shared\n")
    a, b = folder / "a.yaml", folder / "b.yaml"
    write(a, capability("from-a", port=port_a, namespace="api-a"))
    write(b, capability("from-b", port=port_b, namespace="api-b", prefix="/b"))
    return a, b


def test_a_directory_serves_every_capability_in_it_from_one_process(tmp_path: Path, upstream):
    port_a, port_b = free_port(), free_port()
    two_capabilities(tmp_path, port_a, port_b)
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested" / "shared.yaml", "naftiko: 1.0.0-alpha2\nconsumes:\n- {type: http, namespace: other, baseUri: 'http://127.0.0.1:9'}\n")
    with start(tmp_path, "--base-uri", f"echo={upstream.url}", port=port_a) as proc:
        assert get(f"http://127.0.0.1:{port_a}/version").json() == {"version": "from-a", "edition": "shared"}
        assert get(f"http://127.0.0.1:{port_b}/items/4").json() == {"version": "from-b", "target": "/b/items/4"}
        assert get(f"http://127.0.0.1:{port_b}/readyz").status_code == 200
        assert proc.stop() == 0
    log = proc.stderr_text()
    assert f"REST 'api-a' on http://127.0.0.1:{port_a}" in log and f"REST 'api-b' on http://127.0.0.1:{port_b}" in log
    assert "shared.yaml" not in log  # a shared consumes file exposes nothing: not served, not an error


def test_two_exposures_on_one_port_is_a_startup_error_naming_both_files_and_lines(tmp_path: Path):
    port = free_port()
    a, b = two_capabilities(tmp_path, port, port)
    result = run_cli(a, b)
    assert result.returncode == 1
    assert (f"{b}:18:5: REST exposure 'api-b' and {a}:18:5: REST exposure 'api-a' both use port {port}; "
            f"change one `port:` or pass --port api-b=PORT") in result.stderr


def test_every_broken_file_is_reported_at_once(tmp_path: Path):
    a, b = two_capabilities(tmp_path, free_port(), free_port())
    write(a, a.read_text().replace("call: echo.get-item", "call: echo.nope"))
    write(b, b.read_text().replace("location: file:///./settings.env", "location: file:///./missing.env"))
    result = run_cli(tmp_path)
    assert result.returncode == 1
    assert f"{a}:25:15: error: operation 'GET /items/{{id}}': call 'echo.nope': consumes 'echo' has no operation 'nope'" in result.stderr
    assert "1 bind value(s) missing; nothing is served:" in result.stderr
    assert f"missing.env does not exist  (declared at {b}:6:10)" in result.stderr
    assert "Traceback" not in result.stderr
