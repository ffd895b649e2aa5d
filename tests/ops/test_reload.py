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


def test_listeners_removed_by_reloads_leave_no_task_behind(cap_dir: Path):
    """In-process (a `server.Server` on this test's event loop, whose tasks can be listed): each
    cycle adds an exposure on a new port, serves a kept-alive connection there, and removes it
    again; once the removed listener drained, none of its tasks (its uvicorn server, its
    connection watchdog) is left running. The kept listener's watchdog runs while it has a
    connection."""
    import gc

    from naftiko_runtime.build import build_plans
    from naftiko_runtime.connections import _Watchdog
    from naftiko_runtime.server import Server, ServeOptions, layout
    from naftiko_runtime.settings import Settings

    settings = Settings(header_timeout=0.2)  # the watchdog ticks every 0.05 s
    kept = free_port()
    write(cap_dir / "cap.yaml", capability(port=kept))
    options = ServeOptions(grace_period=0.4)  # idle connections of a removed listener close after 0.2 s

    def watchdogs() -> int:
        return sum(1 for t in asyncio.all_tasks() if t.get_coro().__qualname__ == _Watchdog.run.__qualname__)

    async def reload(server: Server) -> None:
        server.reload()
        await server._reloading  # the reload that was asked for, done

    async def scenario() -> list[int]:
        rebuild = lambda: build_plans([cap_dir], settings, quiet=True)  # noqa: E731
        plans = rebuild()
        server = Server(options, lambda listener: None, rebuild=rebuild)
        serving = asyncio.create_task(server.run(plans, layout(plans, options)[0]))
        while not server.lifecycle.listening:
            await asyncio.sleep(0.01)
        counts = []
        async with httpx.AsyncClient() as client:  # keeps its connections alive
            assert (await client.get(f"http://127.0.0.1:{kept}/version")).status_code == 200
            tasks_before = len(asyncio.all_tasks())
            for _ in range(4):
                port = free_port()
                write(cap_dir / "extra.yaml", capability(port=port, namespace="extra"))
                await reload(server)
                assert (await client.get(f"http://127.0.0.1:{port}/version")).status_code == 200
                assert (await client.get(f"http://127.0.0.1:{kept}/version")).status_code == 200
                assert watchdogs() == 2
                (cap_dir / "extra.yaml").unlink()
                await reload(server)
                assert list(server.ports) == [kept]
                while server.closing:  # the removed listener drains (its idle connection closed)
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.15)  # a few watchdog ticks
                counts.append(watchdogs())
            tasks_after = len(asyncio.all_tasks())
        server.stop(signal.SIGTERM)
        assert await serving == 0
        return [*counts, tasks_after - tasks_before]

    try:
        counts = asyncio.run(scenario())
    finally:
        gc.unfreeze()  # Server.run froze this test process's heap
    assert counts == [1, 1, 1, 1, 0]  # one watchdog (the kept listener's), and no task more than before
