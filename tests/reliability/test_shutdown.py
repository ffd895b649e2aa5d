"""SIGTERM with slow requests in flight: they all finish, new connections are refused, exit 0.

Each test starts its own `naftiko run` against the fault upstream, holds requests in flight with
slow upstream answers, and signals the process.
"""

from __future__ import annotations

import errno
import http.client
import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from .faults import Fault
from .harness import VAPI, Naftiko

SLOW = 1.5


def start(upstream, *args: str) -> Naftiko:
    return Naftiko(VAPI, "--base-uri", f"sessions-sessions={upstream.url}", *args)


def fetch(port: int, path: str = "/v1/session") -> tuple[int, bytes]:
    """One request on its own connection: (status, body), or raises what the client saw."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until(predicate, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


def test_in_flight_requests_finish_after_sigterm_and_new_ones_are_refused(upstream):
    runtime = start(upstream)
    upstream.script(*[Fault.ok(delay=SLOW)] * 10)
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(fetch, runtime.port, f"/v1/session?name=n{i}") for i in range(10)]
        wait_until(lambda: len(upstream.requests) == 10)
        signalled = time.monotonic()
        runtime.signal(signal.SIGTERM)
        wait_until(lambda: refused(runtime.port), timeout=0.5)  # the listener closes at the signal
        results = [f.result() for f in futures]
    assert [status for status, _ in results] == [200] * 10
    assert sorted(json.loads(body)["target"] for _, body in results) == sorted(f"/session?name=n{i}" for i in range(10))
    assert runtime.wait(10) == 0
    assert time.monotonic() - signalled < SLOW + 2
    runtime.assert_no_secret()


def fetch_keeping(port: int, path: str = "/v1/session") -> tuple[int, str | None]:
    """One request on its own keep-alive connection: (status, its Connection header)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("connection")
    finally:
        conn.close()


def test_requests_running_at_the_signal_and_arriving_during_the_drain_answer_with_connection_close(upstream):
    runtime = start(upstream)
    keep = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    keep.request("GET", "/readyz")
    keep.getresponse().read()  # an idle keep-alive connection, opened before the stop
    upstream.script(Fault.ok(delay=0.7), Fault.ok(delay=0.2))  # both answered before the drain's 1 s idle linger
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(fetch_keeping, runtime.port)
        wait_until(lambda: len(upstream.requests) == 1)
        runtime.signal(signal.SIGTERM)
        time.sleep(0.2)
        keep.request("GET", "/v1/session")  # arrives while draining, within the idle linger
        arriving = keep.getresponse()
        arriving.read()
        assert (arriving.status, arriving.getheader("connection")) == (200, "close")
        assert running.result() == (200, "close")  # started before the stop, answered during it
    keep.close()
    assert runtime.wait(10) == 0


def test_readiness_turns_503_while_draining_and_connections_close(upstream):
    runtime = start(upstream)
    keep = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    keep.request("GET", "/readyz")
    ready = keep.getresponse()
    assert (ready.status, json.loads(ready.read())) == (200, {"status": "ready"})
    upstream.script(Fault.ok(delay=SLOW))
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(fetch, runtime.port)
        wait_until(lambda: len(upstream.requests) == 1)
        runtime.signal(signal.SIGTERM)
        time.sleep(0.2)
        keep.request("GET", "/readyz")  # on the idle keep-alive connection, within the linger
        draining = keep.getresponse()
        assert (draining.status, json.loads(draining.read())) == (503, {"status": "draining"})
        assert draining.getheader("connection") == "close"
        assert slow.result()[0] == 200
    keep.close()
    assert runtime.wait(10) == 0


def test_grace_period_bounds_the_wait(upstream):
    runtime = start(upstream, "--grace-period", "1")
    upstream.script(Fault.ok(delay=30))
    with ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(fetch, runtime.port)
        wait_until(lambda: len(upstream.requests) == 1)
        signalled = time.monotonic()
        runtime.signal(signal.SIGTERM)
        assert runtime.wait(10) == 0
        assert time.monotonic() - signalled < 3
        status, body = stuck.result()
    assert status == 503 and json.loads(body)["title"] == "Shutting down"
    assert "grace period of 1s over: cancelling 1 unfinished request(s)" in runtime.log


def test_a_second_signal_stops_at_once(upstream):
    runtime = start(upstream)
    upstream.script(Fault.hang())
    with ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(fetch, runtime.port)
        wait_until(lambda: len(upstream.requests) == 1)
        runtime.signal(signal.SIGTERM)
        time.sleep(0.3)
        signalled = time.monotonic()
        runtime.signal(signal.SIGINT)
        assert runtime.wait(10) == 0
        assert time.monotonic() - signalled < 2
        assert stuck.result()[0] == 503


def test_idle_process_stops_at_once(upstream):
    runtime = start(upstream)
    assert fetch(runtime.port)[0] == 200  # its connection is closed again by `fetch`
    signalled = time.monotonic()
    runtime.signal(signal.SIGTERM)
    assert runtime.wait(10) == 0
    assert time.monotonic() - signalled < 1.5
