"""Client connection limits, enforced in uvicorn's HTTP protocol before the app sees a request.

uvicorn alone lets a connection that never sends a request live forever, reads a request head of
any size (a 128 MiB header line stalls the event loop for seconds), waits for a slow body without
a deadline, and accepts connections until file descriptors run out. `protocol_class(limits)`
returns a subclass of uvicorn's httptools protocol that closes those holes (docs/RELIABILITY.md):

- head: `--max-head` bytes counted *before* parsing (above: 431), sent within `--header-timeout`
  of the connection opening or of the request's first byte (else closed, 408 if it had started);
- body: no silence longer than `--body-idle-timeout` between chunks, all of it within
  `--body-timeout` (else 408, and the connection is closed);
- connections: at most `--max-clients` per listener. A new connection past the cap evicts the
  oldest idle one (no request in progress); when none is idle, a few more are admitted for the
  health probes only (`PROBE_RESERVE`), and past those the connection gets 503 and is closed;
- WebSocket upgrades get 403 problem+json (nothing here serves WebSockets).

The request's task is `run_request`: uvicorn's `run_asgi` and the listener's `Switch` of versions
(server.py swaps its target at a reload) in one coroutine, and the drain's `Connection: close` and
grace-period 503 are written here too (`drain`, `answer_stopped`).

Per request the cost is a substring search over the head bytes and a clock read: deadlines are
checked by one sweeper task per listener (`_Watchdog`), not by a timer per request. The sweeper
runs only while its listener has connections: the first one starts it, and it ends at the first
tick that finds none. So an idle listener wakes nobody, and a listener closed for good (a reload
that removed its exposure: its drain closes every connection) leaves no task behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from naftiko_runtime.exposes.health import PROBE_PATHS
from naftiko_runtime.settings import size_text

log = logging.getLogger("naftiko.connections")

PROBE_RESERVE = 16  # connections admitted past the cap, for /healthz and /readyz only
FD_RESERVE = 256  # descriptors kept for upstream connections, files and the listening sockets
_HEAD, _BODY, _APP = 0, 1, 2  # where a connection is: reading a head, reading a body, in the app
GRACE_OVER = "grace period over"  # the message of the cancellation that ends a request at the grace period's end


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_idle_timeout: float = 10.0
    body_timeout: float = 60.0
    max_head_bytes: int = 64 << 10
    max_clients: int = 1000


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one where allowed; the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def default_max_clients(fd_limit: int, listeners: int, upstream_slots: int) -> int:
    """Client connections per listener that the descriptors left after upstreams can hold."""
    spare = fd_limit - FD_RESERVE - upstream_slots - listeners * PROBE_RESERVE
    return max(16, spare // max(1, listeners))


def _problem(status: int, reason: str, title: str, detail: str, instance: str | None = None, extra: str = "") -> bytes:
    """A problem+json answer as bytes, closing the connection; `extra`: more header lines."""
    fields = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance is not None:
        fields["instance"] = instance
    body = json.dumps(fields).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n").encode() + body


class _Watchdog:
    """One task per listener with connections: closes those whose head or body is overdue."""

    def __init__(self, protocol: type["LimitedProtocol"], loop: asyncio.AbstractEventLoop):
        limits = protocol.limits
        self.protocol = protocol
        self.interval = max(0.02, min(1.0, limits.header_timeout / 4, limits.body_idle_timeout / 4))
        self.task = loop.create_task(self.run())

    async def run(self) -> None:
        limits = self.protocol.limits
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            if not self.protocol.open:  # nothing to watch: the next connection starts a new watchdog
                self.protocol.watchdog = None
                return
            now = loop.time()
            for conn in list(self.protocol.open):
                if conn.phase == _HEAD:
                    if conn.head_since is not None and now - conn.head_since > limits.header_timeout:
                        conn.expire_head()
                elif conn.phase == _BODY:
                    if now - conn.body_since > limits.body_timeout:
                        conn.expire_body(f"the request body took longer than {limits.body_timeout:g}s (--body-timeout)")
                    elif now - conn.body_last > limits.body_idle_timeout:
                        conn.expire_body(f"no request body data for {limits.body_idle_timeout:g}s (--body-idle-timeout)")


class Switch:
    """What a listener serves: the current version's app, read per request (by `run_request`).

    A reload is `target = (app, version)`: requests that already started keep the app (and
    runtime) they got; the next one gets the new version. `version` counts its running requests
    (`active`, `leave()`: server.py's `Version`), so it is retired once they are done.
    """

    __slots__ = ("target",)

    def __init__(self, app: Any, version: Any):
        self.target = (app, version)


async def run_request(cycle: RequestResponseCycle, switch: Switch) -> None:
    """A request's task: uvicorn's `run_asgi` with the version bookkeeping of the `Switch`.

    One coroutine rather than uvicorn's plus an ASGI middleware: every resumption of a request
    walks its chain of coroutines (bench/instructions.py). A function rather than a subclass of
    uvicorn's cycle: re-classing the cycle it built slowed every attribute read of it.
    """
    app, version = switch.target
    version.active += 1
    try:
        result = await app(cycle.scope, cycle.receive, cycle.send)
    except asyncio.CancelledError as exc:
        if exc.args != (GRACE_OVER,):
            raise
        # the grace period is over: the connection answered 503 if no answer had started, or is
        # closed mid-answer; the request ends here, without a traceback in the log
    except BaseException as exc:  # what uvicorn does: log it, 500 if nothing was sent yet, else close
        cycle.logger.error("Exception in ASGI application\n", exc_info=exc)
        if not cycle.response_started:
            await cycle.send_500_response()
        else:
            cycle.transport.close()
    else:
        if result is not None:
            cycle.logger.error("ASGI callable should return None, but returned '%s'.", result)
            cycle.transport.close()
        elif not cycle.response_started and not cycle.disconnected:
            cycle.logger.error("ASGI callable returned without starting response.")
            await cycle.send_500_response()
        elif not cycle.response_complete and not cycle.disconnected:
            cycle.logger.error("ASGI callable returned without completing response.")
            cycle.transport.close()
    finally:
        version.leave()
        cycle.on_response = lambda: None


class LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of one listener (see the module docstring)."""

    limits: ClassVar[ConnectionLimits]
    open: ClassVar[dict["LimitedProtocol", None]]  # this listener's connections, oldest first
    idle: ClassVar[dict["LimitedProtocol", None]]  # those with no request in progress, oldest first
    watchdog: ClassVar[_Watchdog | None]  # running while this listener has connections
    draining: ClassVar[bool]  # a stop began: every answer from now on closes its connection

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.phase = _HEAD
        self.head_since: float | None = None  # when the current head started (None: not yet)
        self.head_size = 0
        self.head_tail = b""
        self.body_since = self.body_last = 0.0
        self.probe_only = False
        self.refused = False

    # -- connections -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cls = type(self)
        if cls.watchdog is None:
            cls.watchdog = _Watchdog(cls, self.loop)
        if len(cls.open) >= cls.limits.max_clients:
            if cls.idle:
                oldest = next(iter(cls.idle))
                oldest.close_idle()
            elif len(cls.open) >= cls.limits.max_clients + PROBE_RESERVE:
                self.refuse(_problem(503, "Service Unavailable", "Too many connections",
                                     f"this listener holds {cls.limits.max_clients} connections (--max-clients); retry later"))
                return
            else:
                self.probe_only = True
        cls.open[self] = None
        cls.idle[self] = None
        self.head_since = self.loop.time()  # a new connection sends its head within the timeout

    def connection_lost(self, exc: Exception | None) -> None:
        cls = type(self)
        cls.open.pop(self, None)
        cls.idle.pop(self, None)
        super().connection_lost(exc)

    def refuse(self, response: bytes) -> None:
        """Answer `response` and close, reading nothing more from this connection."""
        self.refused = True
        type(self).idle.pop(self, None)
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def close_idle(self) -> None:
        type(self).idle.pop(self, None)
        if self.head_size:
            self.refuse(_problem(408, "Request Timeout", "Request timeout", "the request head was not sent in time"))
        elif not self.transport.is_closing():
            self.refused = True
            self.transport.close()

    @classmethod
    def drain(cls) -> None:
        """A stop began: every answer not yet started on this listener closes its connection, so a
        keep-alive client reconnects (and is refused) instead of sending its next request into a
        socket about to close. Requests running now are marked here, later ones as they arrive."""
        cls.draining = True
        for connection in list(cls.open):
            cycle = connection.cycle
            if cycle is not None and not cycle.response_started:
                cycle.keep_alive = False

    def answer_stopped(self) -> None:
        """The grace period is over and the request in progress is about to be cancelled: if it
        had not started answering, the caller gets a 503 it may retry elsewhere (the app's own
        answer, should it still come, goes nowhere), never a bare 500 or a cut connection."""
        cycle = self.cycle
        if cycle is None or cycle.response_started or self.refused:
            return
        cycle.disconnected = True
        self.refuse(_problem(503, "Service Unavailable", "Shutting down", "the server stopped before this request "
                             "finished; it may be retried", cycle.scope.get("path"), "retry-after: 1\r\n"))

    def expire_head(self) -> None:
        log.debug("closing a connection whose request head did not arrive within %gs", self.limits.header_timeout)
        self.close_idle()

    def expire_body(self, detail: str) -> None:
        log.debug("closing a connection: %s", detail)
        cycle = self.cycle
        self.phase = _APP
        if cycle is not None and not cycle.response_started:
            self.refuse(_problem(408, "Request Timeout", "Request timeout", detail))
        else:
            self.refused = True
            self.transport.close()
        if cycle is not None:  # the app reading the body learns the client is gone
            cycle.disconnected = True
            cycle.message_event.set()

    # -- bytes in --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.phase == _HEAD:
            if not self.head_size and 0 <= data.find(b"\r\n\r\n") <= self.limits.max_head_bytes - 4:
                HttpToolsProtocol.data_received(self, data)  # a whole head within the limit in one read: nothing to track
                return
            if self.head_since is None:
                self.head_since = self.loop.time()
            size = self.head_size + _head_part(self.head_tail, data)
            if size > self.limits.max_head_bytes:
                log.debug("refusing a request head over %d bytes", self.limits.max_head_bytes)
                self.refuse(_problem(431, "Request Header Fields Too Large", "Request head too large",
                                     f"the request line and headers are over the {size_text(self.limits.max_head_bytes)} "
                                     "limit (--max-head)"))
                return
            self.head_size = size
            self.head_tail = data[-3:]
        elif self.phase == _BODY:
            self.body_last = self.loop.time()
        HttpToolsProtocol.data_received(self, data)

    def on_headers_complete(self) -> None:
        type(self).idle.pop(self, None)
        self.phase = _BODY
        self.head_since = None
        self.head_size = 0
        self.head_tail = b""
        self.body_since = self.body_last = self.loop.time()
        if self.parser.should_upgrade() and self._get_upgrade() == b"websocket":
            self.refuse(_problem(403, "Forbidden", "WebSocket not served",
                                 "this server does not serve WebSocket; use plain HTTP requests"))
            return
        if self.probe_only:
            url = self.url.split(b"?", 1)[0]
            if url.decode("latin-1") not in PROBE_PATHS:
                self.refuse(_problem(503, "Service Unavailable", "Too many connections",
                                     f"this listener holds {self.limits.max_clients} connections (--max-clients); retry later"))
                return
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            cycle.transport = _JoinedWrites(self.transport, cycle)
            if type(self).draining:
                cycle.keep_alive = False  # uvicorn writes `Connection: close` on the answer

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """The request's task (`run_request`; no task-local context reset: `reset_contextvars` is
        never set here)."""
        task = self.loop.create_task(run_request(cycle, app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_message_complete(self) -> None:
        if self.cycle is not None and self.cycle.response_complete:  # answered before the body ended (413)
            self._between_requests()
        else:
            self.phase = _APP
        super().on_message_complete()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, _JoinedWrites):
            cycle.transport.flush()  # an answer to HEAD has a head and no body write
        super().on_response_complete()
        if self.phase == _APP:
            self._between_requests()

    def _between_requests(self) -> None:
        if not self.transport.is_closing() and not self.refused:
            self.phase = _HEAD  # the next head's deadline starts with its first byte
            type(self).idle[self] = None

    def _unsupported_upgrade_warning(self) -> None:
        log.debug("ignoring an Upgrade request header")  # served as plain HTTP (RFC 9110 7.8)


class _JoinedWrites:
    """A request cycle's transport that writes an answer's head together with its first body bytes.

    uvicorn writes the head and the body in two `write` calls: two syscalls and two TCP segments
    per answer. An answer of announced length (Content-Length) has its head held until the first
    body write, which carries both; a chunked or streamed answer (SSE) is written as uvicorn
    writes it, so its head is never held back (docs/PERFORMANCE.md). `100 Continue` passes
    through: it is written before the answer starts.
    """

    __slots__ = ("transport", "cycle", "head", "fresh")

    def __init__(self, transport: asyncio.Transport, cycle: Any):
        self.transport = transport
        self.cycle = cycle
        self.head: bytes | None = None
        self.fresh = True  # no write since the answer started

    def write(self, data: bytes) -> None:
        head = self.head
        if head is not None:
            self.head = None
            self.transport.write(head + data)
        elif self.fresh and self.cycle.response_started:
            self.fresh = False
            if self.cycle.chunked_encoding is False and self.cycle.scope["method"] != "HEAD":
                self.head = data
            else:
                self.transport.write(data)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        head = self.head
        if head is not None:
            self.head = None
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


def _head_part(tail: bytes, data: bytes) -> int:
    """How many bytes of `data` belong to the head: up to its blank line, or all of them.
    `tail` is the end of the head read so far (a blank line may straddle two reads)."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    if tail:
        joined = (tail + data[:3]).find(b"\r\n\r\n")
        if joined >= 0:
            return joined + 4 - len(tail)
    return len(data)


def protocol_class(limits: ConnectionLimits) -> type[LimitedProtocol]:
    """A protocol class for one listener (its own connection table and watchdog)."""
    return type("LimitedProtocol", (LimitedProtocol,), {"limits": limits, "open": {}, "idle": {}, "watchdog": None, "draining": False})
