"""`naftiko run --workers N`: N processes on the same port, load spread over them, a killed worker
restarted, readiness only when every worker serves, SIGTERM drains them all, reloads reach all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.faults import Fault
from tests.support.load import Tally, client, worker
from tests.support.servers import free_port

from .conftest import capability, eventually, get, start, write

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_two_workers_share_the_load_restart_when_killed_and_drain_on_sigterm(cap_dir: Path, upstream):
    port = free_port()
    write(cap_dir / "cap.yaml", capability(port=port))
    proc = start(cap_dir / "cap.yaml", "--workers", "2", "--base-uri", f"echo={upstream.url}", port=port)
    with proc:
        workers = children(proc.pid)
        assert len(workers) == 2
        before = {pid: cpu_ticks(pid) for pid in workers}

        tally = Tally()

        async def load() -> None:
            async with client(32) as session:
                budget = [3000]
                await asyncio.gather(*(worker(session, f"http://127.0.0.1:{port}", tally, budget, False,
                                              request=lambda s, b, n: s.get(f"{b}/items/{n}")) for _ in range(32)))

        asyncio.run(load())
        assert tally.failures == [] and tally.ok == 3000
        used = {pid: cpu_ticks(pid) - before[pid] for pid in workers}
        assert all(ticks > 0 for ticks in used.values()), f"a worker served nothing: {used}"

        # a killed worker is restarted, and logged; readiness waits for it
        os.kill(workers[0], signal.SIGKILL)
        eventually(lambda: len(children(proc.pid)) == 2 and workers[0] not in children(proc.pid), what="the restart")
        eventually(lambda: get(f"http://127.0.0.1:{port}/readyz").status_code == 200, what="readiness after the restart")
        restarted = next(pid for pid in children(proc.pid) if pid not in workers)
        os.kill(restarted, signal.SIGKILL)  # died right after starting: restarted after a delay, not at once
        statuses = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and statuses != {503, 200}:
            answer = get(f"http://127.0.0.1:{port}/readyz")
            statuses.add(answer.status_code)
            if answer.status_code == 503:
                assert answer.json() == {"status": "starting"}
            time.sleep(0.02)
        assert statuses == {503, 200}, "readiness must be 503 while a worker is missing, 200 once every worker serves"

        # SIGTERM: slow requests in flight on both workers finish, then every process exits 0
        upstream.script(*[Fault.ok(delay=1.0)] * 8)
        results: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda i=i: results.append(get(f"http://127.0.0.1:{port}/items/{i}"))) for i in range(8)]
        for thread in threads:
            thread.start()
        eventually(lambda: len(upstream.requests) == 8, what="8 requests in flight")
        serving = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(10)
        assert [r.status_code for r in results] == [200] * 8
        assert proc.wait(10) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in serving)
    log = proc.stderr_text()
    assert f"worker 0 (pid {workers[0]}) died (signal SIGKILL)" in log and "restarting it" in log
    assert "restarting it in 1s" in log
    assert "2 workers serving" in log and "Traceback" not in log


def test_a_reload_reaches_every_worker(cap_dir: Path, upstream):
    port = free_port()
    write(cap_dir / "cap.yaml", capability("v1", port=port))
    with start(cap_dir / "cap.yaml", "--workers", "2", "--reload", "--base-uri", f"echo={upstream.url}", port=port) as proc:
        write(cap_dir / "cap.yaml", capability("v2", port=port) + "  broken: [\n")
        eventually(lambda: "the last good version keeps serving" in proc.stderr_text(), what="the refusal")
        write(cap_dir / "cap.yaml", capability("v3", port=port))
        # every worker answers v3 on new connections (each lands on either worker)
        eventually(lambda: {json.loads(get(f"http://127.0.0.1:{port}/version").content)["version"] for _ in range(20)} == {"v3"},
                   what="every worker on v3")
        assert proc.stop() == 0
    log = proc.stderr_text()
    assert log.count("the last good version keeps serving") == 1  # checked once, by the supervisor
    assert log.count("reloaded: 1 capability") == 2  # then loaded by each worker
    # each worker's lines name it; the supervisor's name the workers they are about
    assert {re.search(r"\[worker (\d)\] naftiko: reloaded", line).group(1) for line in log.splitlines() if "reloaded:" in line} == {"0", "1"}
    assert re.search(r"INFO    naftiko: 2 workers serving", log) and "] naftiko: reload refused" not in log


def test_worker_log_records_carry_the_worker_number(cap_dir: Path, upstream):
    """`--log-format json --workers 2`: every line parses; the access-log records of each worker
    carry `worker`, the supervisor's records do not; with one worker no record has the field."""
    port = free_port()
    write(cap_dir / "cap.yaml", capability(port=port))
    for count in (2, 1):
        args = (cap_dir / "cap.yaml", "--workers", count, "--log-format", "json", "--access-log", "--base-uri", f"echo={upstream.url}")
        with start(*args, port=port) as proc:
            seen: set[int] = set()

            def both() -> bool:  # a new connection lands on either worker
                get(f"http://127.0.0.1:{port}/version")
                seen.update(r.get("worker", -1) for r in map(json.loads, proc.stderr_text().splitlines()) if r["logger"] == "uvicorn.access")
                return len(seen) == count

            eventually(both, what=f"access-log records of {count} worker(s)")
            assert proc.stop() == 0
        records = [json.loads(line) for line in proc.stderr_text().splitlines()]
        serving = [r for r in records if r["message"].startswith("2 workers serving")]
        if count == 2:
            assert seen == {0, 1} and len(serving) == 1 and "worker" not in serving[0]
        else:
            assert seen == {-1} and not any("worker" in r for r in records)


def in_flight(upstream, port: int, delay: float, count: int = 4):
    """`count` requests the upstream answers after `delay` s, in flight once this returns; the
    function returned waits for them and gives their statuses."""
    upstream.script(*[Fault.ok(delay=delay)] * count)
    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(get(f"http://127.0.0.1:{port}/items/{i}").status_code))
               for i in range(count)]
    for thread in threads:
        thread.start()
    eventually(lambda: len(upstream.requests) == count, what=f"{count} requests in flight")

    def finish() -> list[int]:
        for thread in threads:
            thread.join(10)
        return results

    return finish


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "group-sigterm"])
def test_a_signal_to_the_whole_process_group_drains_once(cap_dir: Path, upstream, signum):
    """Ctrl-C in a terminal, or SIGTERM from systemd / `timeout` / `kill -- -PGID`, reaches every
    worker directly as well as through the supervisor: that is still one stop (a drain), not the
    "second signal" that stops at once. A second signal to the supervisor does stop at once."""
    port = free_port()
    write(cap_dir / "cap.yaml", capability(port=port))
    with start(cap_dir / "cap.yaml", "--workers", "2", "--base-uri", f"echo={upstream.url}", port=port) as proc:
        finish = in_flight(upstream, port, delay=1.0)
        os.killpg(proc.pid, signum)  # the group: the supervisor and both workers
        assert finish() == [200] * 4
        assert proc.wait(10) == 0
    log = proc.stderr_text()
    assert "cancelling" not in log and "at once" not in log


def test_a_second_signal_stops_the_workers_at_once(cap_dir: Path, upstream):
    port = free_port()
    write(cap_dir / "cap.yaml", capability(port=port))
    with start(cap_dir / "cap.yaml", "--workers", "2", "--base-uri", f"echo={upstream.url}", port=port) as proc:
        finish = in_flight(upstream, port, delay=5.0)
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C twice
        assert finish() == [503] * 4 and time.monotonic() - started < 3
        assert proc.wait(10) == 0
    log = proc.stderr_text()
    assert "received SIGQUIT: stopping at once" in log and "stopping at once: cancelling" in log  # (a worker with nothing in flight may be gone already)
