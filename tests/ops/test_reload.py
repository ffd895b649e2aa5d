"""Hot reload (`--reload`, SIGHUP): a clean new version is swapped in with no failed request, a
broken one keeps the last good version serving, and listeners follow the file's ports."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.reliability.faults import Fault
from tests.support.load import Tally, client, worker
from tests.support.servers import free_port

from .conftest import capability, eventually, get, start, write


def version(port: int) -> str:
    return get(f"http://127.0.0.1:{port}/version").json()["version"]


def test_edit_under_load_swaps_versions_with_zero_failed_requests(cap_dir: Path, upstream):
    port = free_port()
    write(cap_dir / "cap.yaml", capability("v1", port=port))
    proc = start(cap_dir / "cap.yaml", "--reload", "--base-uri", f"echo={upstream.url}", port=port)
    tally = Tally()
    base = f"http://127.0.0.1:{port}"

    async def load() -> None:
        async with client(16) as session:
            budget = [10 ** 9]
            workers = [asyncio.create_task(worker(session, base, tally, budget, False, keep=True,
                                                  request=lambda s, b, n: s.get(f"{b}/items/{n}"))) for _ in range(16)]
            for n in (2, 3, 4):  # three edits, each once the previous one serves
                await asyncio.sleep(0.3)
                write(cap_dir / "cap.yaml", capability(f"v{n}", port=port))
                while f'"v{n}"'.encode() not in (tally.bodies[-1] if tally.bodies else b""):
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            budget[0] = 0
            await asyncio.gather(*workers)

    with proc:
        asyncio.run(asyncio.wait_for(load(), 30))
        seen = {body.split(b'"version":"')[1].split(b'"')[0].decode() for body in tally.bodies}
        assert tally.failures == [] and tally.ok > 100, (tally.failures[:3], tally.ok)  # 16 callers all along: every swap happened under load
        assert seen == {"v1", "v2", "v3", "v4"}
        assert version(port) == "v4"
        assert proc.stop() == 0
    assert proc.stderr_text().count("reloaded: 1 capability") == 3


def test_in_flight_requests_finish_on_the_version_they_started_on(cap_dir: Path, upstream):
    port = free_port()
    write(cap_dir / "cap.yaml", capability("v1", port=port))
    with start(cap_dir / "cap.yaml", "--reload", "--base-uri", f"echo={upstream.url}", port=port) as proc:
        upstream.script(Fault.ok(delay=1.5))
        slow: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: slow.append(get(f"http://127.0.0.1:{port}/items/1")))
        thread.start()
        eventually(lambda: upstream.requests, what="the slow request to reach the upstream")
        write(cap_dir / "cap.yaml", capability("v2", port=port, prefix="/v2"))
        eventually(lambda: version(port) == "v2", what="the new version")
        assert get(f"http://127.0.0.1:{port}/items/2").json() == {"version": "v2", "target": "/v2/items/2"}
        thread.join(10)
        assert slow[0].status_code == 200 and slow[0].json() == {"version": "v1", "target": "/items/1"}
        assert proc.stop() == 0


def test_a_broken_edit_keeps_the_last_good_version_serving(cap_dir: Path, upstream):
    port = free_port()
    write(cap_dir / "cap.yaml", capability("v1", port=port))
    with start(cap_dir / "cap.yaml", "--reload", "--base-uri", f"echo={upstream.url}", port=port) as proc:
        write(cap_dir / "cap.yaml", capability("v2", port=port).replace("call: echo.get-item", "call: echo.get-itme"))
        eventually(lambda: "the last good version keeps serving" in proc.stderr_text(), what="the refusal")
        write(cap_dir / "cap.yaml", capability("v3", port=port) + "  broken: [\n")
        eventually(lambda: proc.stderr_text().count("the last good version keeps serving") == 2, what="the second refusal")
        assert version(port) == "v1"
        assert get(f"http://127.0.0.1:{port}/items/5").json()["version"] == "v1"
        write(cap_dir / "cap.yaml", capability("v4", port=port))
        eventually(lambda: version(port) == "v4", what="the fixed version")
        assert proc.stop() == 0
    log = proc.stderr_text()
    assert "cap.yaml:25:15: error: operation 'GET /items/{id}': call 'echo.get-itme': consumes 'echo' has no operation 'get-itme'" in log
    assert "cap.yaml:39:1: error: invalid YAML" in log
    assert "Traceback" not in log


def test_imported_files_and_bind_files_are_watched(cap_dir: Path, upstream):
    port = free_port()
    shared = cap_dir / "shared.yaml"
    write(shared, "naftiko: 1.0.0-alpha2\nconsumes:\n- type: http\n  namespace: shared\n  baseUri: http://127.0.0.1:9\n"
                  "  resources:\n  - {path: '/one/{{id}}', name: r, operations: [{method: GET, name: get-item, inputParameters: [{name: id, in: path}]}]}\n")
    text = capability("v1", port=port).replace(
        "  - type: http\n    namespace: echo\n", "  - location: ./shared.yaml\n    import: shared\n    as: echo\n  - type: http\n    namespace: unused\n")
    write(cap_dir / "cap.yaml", text)
    with start(cap_dir / "cap.yaml", "--reload", "--base-uri", f"echo={upstream.url}", port=port) as proc:
        assert get(f"http://127.0.0.1:{port}/items/3").json()["target"] == "/one/3"
        write(shared, shared.read_text().replace("/one/", "/two/"))
        eventually(lambda: get(f"http://127.0.0.1:{port}/items/3").json()["target"] == "/two/3", what="the imported file's change")
        write(cap_dir / "settings.env", "EDITION=second\n")
        eventually(lambda: get(f"http://127.0.0.1:{port}/version").json()["edition"] == "second", what="the bind file's change")
        assert proc.stop() == 0


def test_sighup_reloads_and_a_port_change_moves_the_listener(cap_dir: Path, upstream):
    port, other = free_port(), free_port()
    write(cap_dir / "cap.yaml", capability("v1", port=port))
    with start(cap_dir / "cap.yaml", "--base-uri", f"echo={upstream.url}", port=port) as proc:
        write(cap_dir / "cap.yaml", capability("v2", port=port))
        time.sleep(0.3)
        assert version(port) == "v1"  # no --reload: nothing watches the file
        assert get(f"http://127.0.0.1:{port}/items/1").status_code == 200
        connections = upstream.connections
        proc.send_signal(signal.SIGHUP)
        eventually(lambda: version(port) == "v2", what="the SIGHUP reload")
        assert get(f"http://127.0.0.1:{port}/items/2").json()["version"] == "v2"
        assert upstream.connections == connections  # same client settings: the new version kept the pool
        write(cap_dir / "cap.yaml", capability("v3", port=other))
        proc.send_signal(signal.SIGHUP)
        eventually(lambda: version(other) == "v3", what="the new port")
        eventually(lambda: _refused(port), what="the old port to close")
        assert proc.stop() == 0
    assert f"REST 'api' on http://127.0.0.1:{other}" in proc.stderr_text()


def _refused(port: int) -> bool:
    try:
        get(f"http://127.0.0.1:{port}/version")
    except httpx.ConnectError:
        return True
    return False
