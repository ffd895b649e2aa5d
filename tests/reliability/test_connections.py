"""Connections that never send, send slowly, or send too much (issue 15, items 2-4, 11, 15).

The Vapi Sessions capability runs with short limits set by flags; attack clients on raw sockets
(tests/reliability/attacks.py) hold connections idle, send heads byte by byte, stall mid-body and
send heads over the size limit. After each attack a normal request succeeds, the health probes
answer throughout, memory stays bounded and the file descriptors return to their baseline.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from .attacks import closed_by_server, connect, exchange, head, read_until_closed, status_of
from .harness import VAPI, Naftiko

HEADER_TIMEOUT = 0.6
BODY_IDLE = 0.6
BODY_TOTAL = 1.5
MAX_CLIENTS = 40


@pytest.fixture(scope="module")
def vapi(upstream):
    runtime = Naftiko(VAPI, "--base-uri", f"sessions-sessions={upstream.url}", "--header-timeout", str(HEADER_TIMEOUT),
                      "--body-idle-timeout", str(BODY_IDLE), "--body-timeout", str(BODY_TOTAL), "--max-head", "16KiB",
                      "--max-clients", str(MAX_CLIENTS))
    yield runtime
    assert runtime.stop() == 0


@pytest.fixture
def baseline(vapi, upstream):
    """Each test ends with a normal request served and the descriptors back where they were."""
    upstream.script()
    vapi.client.close()
    assert normal(vapi) == 200
    fds = vapi.open_fds
    yield
    assert normal(vapi) == 200
    deadline = time.monotonic() + 3
    while vapi.open_fds > fds + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert vapi.open_fds <= fds + 2, f"{vapi.open_fds} descriptors open, {fds} before the attack"
    assert vapi.rss_mb < 200


def normal(vapi) -> int:
    with httpx.Client(base_url=vapi.url, timeout=5) as client:
        return client.get("/v1/session").status_code


def probe(vapi) -> int:
    with httpx.Client(base_url=vapi.url, timeout=2) as client:
        return client.get("/healthz").status_code


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(vapi, baseline):
    with connect(vapi.port) as sock:
        started = time.monotonic()
        assert closed_by_server(sock, 5)
        assert HEADER_TIMEOUT <= time.monotonic() - started < HEADER_TIMEOUT + 1.0


def test_slowloris_gets_408_at_the_header_timeout(vapi, baseline):
    with connect(vapi.port) as sock:
        started = time.monotonic()
        answer = b""
        for byte in head("GET", "/v1/session", {"X-Slow": "x" * 100}):
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.02)
            if time.monotonic() - started > HEADER_TIMEOUT + 1.5:
                break
        answer = read_until_closed(sock, 2)
    assert status_of(answer) == 408 and b"application/problem+json" in answer
    assert time.monotonic() - started < HEADER_TIMEOUT + 2.5


def test_a_head_over_the_limit_is_431_before_it_is_parsed(vapi, baseline):
    answer = exchange(vapi.port, b"GET /v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (1 << 20))
    assert status_of(answer) == 431 and b"16 KiB limit (--max-head)" in answer


def test_a_head_under_the_limit_is_served(vapi, baseline):
    answer = exchange(vapi.port, head("GET", "/v1/session", {"X-Big": "a" * 15000, "Connection": "close"}))
    assert status_of(answer) == 200


def test_a_stalled_body_gets_408_at_the_idle_timeout(vapi, upstream, baseline):
    upstream.script()
    with connect(vapi.port) as sock:
        sock.sendall(head("POST", "/v1/session", {"Content-Type": "application/json", "Content-Length": "100000"}) + b'{"name": "')
        started = time.monotonic()
        answer = read_until_closed(sock, 5)
    assert status_of(answer) == 408 and b"--body-idle-timeout" in answer
    assert BODY_IDLE <= time.monotonic() - started < BODY_IDLE + 1.0
    assert not upstream.requests


def test_a_trickled_body_gets_408_at_the_total_timeout(vapi, upstream, baseline):
    upstream.script()
    with connect(vapi.port) as sock:
        sock.sendall(head("POST", "/v1/session", {"Content-Type": "application/json", "Content-Length": "100000"}))
        started = time.monotonic()
        try:
            while time.monotonic() - started < BODY_TOTAL + 2:
                sock.sendall(b" ")
                time.sleep(BODY_IDLE / 3)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock, 2)
    assert status_of(answer) == 408 and b"--body-timeout" in answer
    assert not upstream.requests


def test_clients_disconnecting_mid_body_log_at_most_one_debug_line_each(vapi, baseline):
    before = len(vapi.log.splitlines())
    for _ in range(20):
        with connect(vapi.port) as sock:
            sock.sendall(head("POST", "/v1/session", {"Content-Type": "application/json", "Content-Length": "5000"}) + b"{" * 100)
            time.sleep(0.01)
    time.sleep(0.3)
    new = vapi.log.splitlines()[before:]
    assert not [line for line in new if "Traceback" in line or "ERROR" in line or "internal error" in line], new[:5]
    assert len([line for line in new if "disconnect" in line]) <= 20
    assert not [line for line in new if "disconnect" in line and "DEBUG" not in line]


def test_idle_connections_past_the_cap_evict_the_oldest_and_probes_answer(vapi, baseline):
    socks = [connect(vapi.port) for _ in range(MAX_CLIENTS * 3)]
    try:
        assert probe(vapi) == 200
        assert normal(vapi) == 200
        closed = sum(closed_by_server(s, 0.01) for s in socks[:MAX_CLIENTS])
        assert closed >= MAX_CLIENTS - 2, f"only {closed} of the oldest idle connections were closed"
    finally:
        for s in socks:
            s.close()


def test_busy_connections_at_the_cap_leave_room_for_probes_only(vapi, upstream, baseline):
    socks = []
    try:
        for _ in range(MAX_CLIENTS):  # each is in the middle of sending a body: not idle
            sock = connect(vapi.port)
            sock.sendall(head("POST", "/v1/session", {"Content-Type": "application/json", "Content-Length": "1000"}) + b"{")
            socks.append(sock)
        time.sleep(0.1)
        assert probe(vapi) == 200
        answer = exchange(vapi.port, head("GET", "/v1/session"), timeout=2)
        assert status_of(answer) == 503 and b"--max-clients" in answer
    finally:
        for s in socks:
            s.close()


def test_a_websocket_upgrade_is_refused_with_403(vapi, baseline):
    answer = exchange(vapi.port, head("GET", "/v1/session", {"Upgrade": "websocket", "Connection": "Upgrade",
                                                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                            "Sec-WebSocket-Version": "13"}))
    assert status_of(answer) == 403 and b"application/problem+json" in answer and b"WebSocket" in answer


def test_probes_on_the_mcp_port_answer_during_a_slowloris_on_rest(vapi, baseline):
    stop = threading.Event()

    def attack():
        socks = [connect(vapi.port) for _ in range(MAX_CLIENTS)]
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"G")
                except OSError:
                    pass
            time.sleep(0.05)
        for s in socks:
            s.close()

    thread = threading.Thread(target=attack)
    thread.start()
    try:
        mcp = f"http://127.0.0.1:{vapi.ports['sessions-sessions-mcp']}"
        for _ in range(5):
            assert httpx.get(f"{mcp}/healthz", timeout=2).status_code == 200
            assert probe(vapi) == 200
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()


def test_no_secret_in_any_log_line_or_body(vapi):
    vapi.assert_no_secret()


# -- one write per answer of known length (connections._JoinedWrites) -----------------------------

class _Recording:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _joined(method: str = "GET"):
    from types import SimpleNamespace

    from naftiko_runtime.connections import _JoinedWrites

    transport = _Recording()
    cycle = SimpleNamespace(response_started=False, chunked_encoding=None, scope={"method": method})
    return transport, cycle, _JoinedWrites(transport, cycle)


def test_an_answer_of_known_length_goes_out_in_one_write_with_its_head():
    transport, cycle, joined = _joined()
    joined.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the answer: at once
    cycle.response_started, cycle.chunked_encoding = True, False
    joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]  # the head waits for the body
    joined.write(b"ok")
    assert transport.writes[1:] == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]


def test_a_streamed_answer_head_is_never_held_and_head_requests_flush():
    transport, cycle, joined = _joined()
    cycle.response_started, cycle.chunked_encoding = True, True  # SSE, chunked: the caller sees the head at once
    joined.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    transport, cycle, joined = _joined("HEAD")
    cycle.response_started, cycle.chunked_encoding = True, False
    joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n"]
    transport, cycle, joined = _joined()
    cycle.response_started, cycle.chunked_encoding = True, False
    joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    joined.close()  # closing writes what was held first
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"] and transport.closed


# -- a request's task (connections.run_request): what a failing app leaves behind -------------------

def test_a_failing_app_answers_500_or_closes_and_its_version_is_left():
    """The listener's task runs the app of the `Switch`: an app that raises before answering gets
    uvicorn's 500, one that returns without answering too, one that fails mid-answer has its
    connection closed; each time the version's count of running requests goes back to zero
    (else a reload would wait for it forever), and the error is logged, never sent."""
    import asyncio

    import uvicorn

    from naftiko_runtime.connections import ConnectionLimits, Switch, protocol_class
    from tests.support.servers import free_port

    class Version:
        active = 0
        left = 0

        def leave(self) -> None:
            self.active -= 1
            self.left += 1

    async def app(scope, receive, send):
        if scope["path"] == "/raise":
            raise RuntimeError("boom: a secret-looking detail")
        if scope["path"] == "/midway":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
            await send({"type": "http.response.body", "body": b"12345", "more_body": True})
            raise RuntimeError("cut")
        if scope["path"] == "/nothing":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    import logging

    class Lines(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.ERROR)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    logged = Lines()
    errors = logging.getLogger("uvicorn.error")  # the cycle's logger (other tests may have configured it)
    before = (errors.level, errors.disabled)
    errors.setLevel(logging.ERROR)
    errors.disabled = False
    errors.addHandler(logged)
    version = Version()
    port = free_port()
    config = uvicorn.Config(Switch(app, version), host="127.0.0.1", port=port, interface="asgi3", lifespan="off", proxy_headers=False,
                            http=protocol_class(ConnectionLimits()), ws="none", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert status_of(exchange(port, head("GET", "/ok", {"Connection": "close"}))) == 200
        raised = exchange(port, head("GET", "/raise"))
        assert status_of(raised) == 500 and b"boom" not in raised
        assert status_of(exchange(port, head("GET", "/nothing"))) == 500
        midway = exchange(port, head("GET", "/midway"))
        assert status_of(midway) == 200 and midway.endswith(b"12345")  # the rest never comes: closed
        deadline = time.monotonic() + 5
        while version.left < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (version.active, version.left) == (0, 4)
        text = "\n".join(logged.lines)
        assert "Exception in ASGI application" in text and "returned without starting response" in text
    finally:
        server.should_exit = True
        thread.join(10)
        errors.removeHandler(logged)
        errors.setLevel(before[0])
        errors.disabled = before[1]
