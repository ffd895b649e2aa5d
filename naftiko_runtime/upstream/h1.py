"""A pooled HTTP/1.1 client on the event loop's own thread, for plain-text upstreams.

Why by hand: pyreqwest hands every request to its tokio thread and back (futex and eventfd
wake-ups, ~80k instructions a request); this client parses answers with httptools (llhttp, the
parser uvicorn already uses) inside the loop's `data_received` and costs a fraction of that
(docs/PERFORMANCE.md, "The built-in HTTP/1.1 client"). Its scope is what it can do exactly:
`http://` upstreams reached without a proxy. TLS, HTTP/2 and proxies stay with pyreqwest
(upstream/client.py picks the engine per namespace).

The request target is written as the plan encoded it, byte for byte: no URL is parsed here.
Failures are `Failed(kind)` values that client.py turns into the runtime's errors, so both
engines report a fault in the same words.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import socket
from typing import Any, AsyncIterable, Awaitable, Iterator, Literal, NamedTuple

import httptools

Kind = Literal["busy", "connect-timeout", "read-timeout", "total-timeout", "connect", "lost", "cut", "bad", "header"]
IDLE_MAX = 90.0  # seconds a kept-alive connection may wait for reuse (hyper's default): NAT gateways and
# firewalls drop idle connections without a FIN, and a request sent into one would wait out the read timeout
MAX_HEAD = 256 << 10  # bytes of an answer's status line and headers (hyper allows ~400 KiB, nginx 4-8 KiB per line)
MAX_FIELDS = 256  # header lines of one answer (hyper: 100)
NAME_SETS_MAX = 256  # distinct sets of header names a pool remembers (`Pool._names`)
HIGH_WATER = 256 << 10  # bytes buffered before the socket stops being read (the reader is slow)
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[^\t\x20-\x7e]")  # what pyreqwest refuses too: controls, CR/LF, non-ASCII
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class Failed(Exception):
    """One failed exchange: its `kind` and a short cause without URLs."""

    def __init__(self, kind: Kind, cause: str = ""):
        super().__init__(kind, cause)
        self.kind = kind
        self.cause = cause


class _TooManyFields(Exception):
    pass


class Headers:
    """An answer's headers, read the way pyreqwest's `HeaderMap` reads (client.py serves both):
    names case-insensitive, a value outside visible ASCII raises ValueError when read."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map: dict[str, list[bytes]] = {}

    def __getitem__(self, name: str) -> str:
        return _text(self._map[name.lower()][0])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._map.get(name.lower())
        return _text(values[0]) if values is not None else default

    def getall(self, name: str) -> list[str]:
        return [_text(v) for v in self._map.get(name.lower(), ())]

    def keys(self) -> list[str]:
        return list(self._map)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter([(k, _text(v)) for k, values in self._map.items() for v in values])


def _text(value: bytes) -> str:
    text = value.decode("latin-1")
    if not _visible(text):
        raise ValueError("a header value outside visible ASCII")
    return text


def _visible(text: str) -> bool:
    """Visible ASCII, spaces and tabs: what a header value may hold (two C calls in the common
    case, the regular expression only for a value with a tab or worse)."""
    return (text.isascii() and text.isprintable()) or not _BAD_VALUE.search(text)


class Connection(asyncio.Protocol):
    """One keep-alive connection, and the answer it is reading (one at a time: no pipelining)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.last = loop.time()  # of the last byte received: the read timeout measures silence, the pool idleness
        self._reset()

    def _reset(self) -> None:
        """Ready for the next exchange on this connection."""
        self.head: asyncio.Future[Connection] | None = None
        self.headers = Headers()
        self.status = 0
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.done = False  # the whole answer arrived
        self.error: Failed | None = None
        self.received = False  # a byte of the answer arrived
        self.head_size = 0  # bytes read before the answer's head was complete
        self.fields = 0
        self.until_eof = False  # no length, not chunked: the body ends with the connection
        self.no_body = False  # an answer to HEAD: llhttp cannot be told, so the head ends it
        self.keep = True
        self.drain: asyncio.Future[None] | None = None
        self.whole = False  # the reader takes the body whole (its size is known and under the cap): no pausing

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.head is None or self.done:  # bytes nobody asked for: the connection cannot be trusted
            self.keep = False
            self.transport.close()  # type: ignore[union-attr]
            return
        self.received = True
        self.last = self.loop.time()
        if not self.status:  # still in the head: bounded (httptools would buffer a header line of any size)
            if self.head_size > MAX_HEAD:  # the reads before this one held no end of the head
                self._fail(Failed("bad", f"its head is over {MAX_HEAD >> 10} KiB"))
                return
            self.head_size += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Failed("bad", "a protocol upgrade"))
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _TooManyFields):
                self._fail(Failed("bad", f"over {MAX_FIELDS} header lines"))
            else:
                self._fail(Failed("bad", str(exc).split(":")[0][:80] or "unparseable"))

    def eof_received(self) -> bool:
        return False  # close: a half-closed upstream sends nothing more

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.keep = False
        if self.head is not None and not self.done and self.error is None:
            if self.until_eof and self.status:
                self.done = True  # the normal end of a close-delimited body
                self._wake()
            elif self.status:
                self._fail(Failed("cut"))
            else:
                self._fail(Failed("lost", _strerror(exc) if exc is not None else "closed by the upstream"))
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)  # a writer waiting wakes and finds `error` (a future nobody awaits must not hold one)

    def pause_writing(self) -> None:
        if self.drain is None or self.drain.done():
            self.drain = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise _TooManyFields()
        key = name.decode("latin-1").lower()  # Headers.add, inline: called for every header line
        values = self.headers._map.get(key)
        if values is None:
            self.headers._map[key] = [value]
        else:
            values.append(value)

    def on_headers_complete(self) -> None:
        if self.done:  # a second answer to one request
            self.keep = False
            return
        status = self.parser.get_status_code()
        if status < 200:  # 1xx: an interim answer, the real one follows
            self.headers = Headers()
            return
        self.status = status
        self.keep = self.parser.should_keep_alive()
        framed = "content-length" in self.headers or "transfer-encoding" in self.headers
        self.until_eof = not framed and status not in (204, 304)
        if self.no_body:
            self.done = True
            self.keep = False  # llhttp still expects the body the head announced
        if self.head is not None and not self.head.done():
            self.head.set_result(self)
        if self.no_body:
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.done:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.whole and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:  # the end of a 1xx
            return
        if not self.done:
            self.done = True
            self._wake()

    # -- the reader's side
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, failure: Failed) -> None:
        if self.error is not None or self.done:
            return
        self.error = failure
        self.keep = False
        if self.head is not None and not self.head.done():
            self.head.set_exception(failure)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)
        if self.transport is not None:
            self.transport.close()

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.buffered <= HIGH_WATER // 4 and self.transport is not None and not self.closed:
                    self.transport.resume_reading()
                return chunk
            if self.error is not None:
                raise self.error
            if self.done:
                return None
            self.waiter = self.loop.create_future()
            await self.waiter

    async def bytes(self) -> bytes:
        """The whole body (the caller checked its announced length against the cap)."""
        self.whole = True
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()
        while not self.done:
            if self.error is not None:
                raise self.error
            self.waiter = self.loop.create_future()
            await self.waiter
        if self.error is not None:
            raise self.error
        body = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        return body

    def received_body(self, limit: int) -> bytes | None:
        """The whole body when the answer is complete already (it mostly arrives with its head)
        and nothing is left to check or decode: a Content-Length within `limit`, no
        Content-Encoding. Taken without a coroutine; None otherwise (the caller reads it)."""
        if not self.done or self.error is not None:
            return None
        fields = self.headers._map
        length = fields.get("content-length")
        if length is None or "content-encoding" in fields or not length[0].isdigit() or int(length[0]) > limit:
            return None
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        return body

    @property
    def body_reader(self) -> "Connection":
        return self


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return type(exc).__name__


class Exchange:
    """One request and its answer on a pooled connection.

    The hot path awaits no coroutine of its own: `begin()` hands back the connection's head future
    when a slot and an idle connection are free and the body is bytes, so the caller's coroutine
    waits on the socket directly (every coroutine between a task and its future is walked at each
    resumption). `again()` sends once more when that kept-alive connection turned out closed;
    `end()` returns the connection to the pool, `abort()` closes it. `async with` wraps the four
    for callers that stream (`forward`).
    """

    __slots__ = ("pool", "method", "head", "body", "budget", "conn", "timer", "deadline", "writing", "slot")

    def __init__(self, pool: "Pool", method: str, head: bytes, body: bytes | AsyncIterable[bytes] | None, budget: float):
        self.pool = pool
        self.method = method
        self.head = head
        self.body = body
        self.budget = budget
        self.conn: Connection | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.writing = False
        self.slot = False  # a connection slot is held (given back by `end` or `abort`)

    def begin(self) -> Awaitable[Connection]:
        """The connection once the answer's head arrived (its `status` and `headers` set)."""
        pool = self.pool
        loop = pool.loop
        if loop is None or loop.is_closed():
            loop = pool.start()
        now = loop.time()
        self.deadline = now + self.budget
        body = self.body
        if pool.free_slots > 0 and not pool.waiters and pool.idle and (body is None or isinstance(body, bytes)):
            conn = pool.reuse(now)
            if conn is not None:  # the common case: no coroutine, the head future itself
                pool.free_slots -= 1
                self.slot = True
                self._start(conn)
                return conn.head  # type: ignore[return-value]
        return self._connect(now)

    async def _connect(self, now: float) -> Connection:
        """`begin` when a slot must be waited for, a connection opened or a body streamed."""
        pool = self.pool
        if pool.free_slots > 0 and not pool.waiters:
            pool.free_slots -= 1
        else:
            await pool.wait_slot(min(pool.connect, self.budget))
        self.slot = True
        conn = pool.reuse(now) or await pool.open(self.deadline)
        if self._start(conn):
            await self._stream(conn)
        return await conn.head  # type: ignore[misc]

    async def again(self, failure: Failed) -> Connection:
        """After `failure` of the head: a kept-alive connection the upstream had closed as it was
        reused, before one byte of the answer, gets the request once more on a new connection
        (a body of bytes only); any other failure is raised."""
        conn = self.conn
        resendable = self.body is None or isinstance(self.body, bytes)
        if not (resendable and conn is not None and conn.reused and failure.kind == "lost" and not conn.received):
            raise failure
        self._stop(conn)
        conn = await self.pool.open(self.deadline)
        self._start(conn)
        return await conn.head  # type: ignore[misc]

    def end(self) -> None:
        """The answer was read whole: its connection goes back to the pool (if it can be reused)."""
        conn = self.conn
        if conn is None or not conn.done or conn.error is not None or not conn.keep or conn.closed or conn.chunks:
            self.abort()
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        conn._reset()
        conn.reused = True
        self.pool.idle.append(conn)
        self.slot = False  # held: a connection is only started once a slot is
        self.pool.free()

    def abort(self) -> None:
        """The exchange failed or its caller left: the connection is closed, the slot given back."""
        conn = self.conn
        self._stop(conn)
        if conn is not None and conn.transport is not None:
            conn.transport.close()
        self._release()

    def _release(self) -> None:
        if self.slot:
            self.slot = False
            self.pool.free()

    async def __aenter__(self) -> Connection:
        try:
            try:
                return await self.begin()
            except Failed as failure:
                return await self.again(failure)
        except BaseException:
            self.abort()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.end()
        else:
            self.abort()

    def _stop(self, conn: Connection | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if conn is None:
            return
        if conn.head is not None and conn.head.done() and not conn.head.cancelled():
            conn.head.exception()  # retrieved: a failure after the exchange gave up is not logged by asyncio
        if conn is self.conn and (conn.error is not None or not conn.done):
            conn.keep = False
            if conn.transport is not None:
                conn.transport.close()

    def _start(self, conn: Connection) -> bool:
        """Write the head (and a body of bytes) on `conn`; True when a streamed body is still to send."""
        self.conn = conn
        loop = conn.loop
        conn.head = loop.create_future()
        conn.no_body = self.method == "HEAD"
        conn.last = now = loop.time()
        self.timer = loop.call_at(min(self.deadline, now + self.pool.read), self._check)
        transport = conn.transport
        assert transport is not None
        body = self.body
        if body is None or isinstance(body, bytes):
            transport.write(self.head + body if body else self.head)
            return False
        self.writing = True
        transport.write(self.head)
        return True

    async def _stream(self, conn: Connection) -> None:
        """A streamed body (`forward`): chunked, or as it is under the caller's Content-Length."""
        transport, body = conn.transport, self.body
        assert transport is not None and body is not None and not isinstance(body, bytes)
        sized = isinstance(body, _Sized)
        async for chunk in body:
            if chunk:
                transport.write(chunk if sized else b"%x\r\n%b\r\n" % (len(chunk), chunk))
                if conn.drain is not None and not conn.drain.done():
                    await conn.drain
            if conn.error is not None:
                raise conn.error
            if conn.closed:  # the upstream answered early (a 413) and closed: the rest goes nowhere
                break
        if not sized:
            transport.write(b"0\r\n\r\n")
        self.writing = False
        conn.last = conn.loop.time()

    def _check(self) -> None:
        """The exchange's one timer: the total budget, and the upstream's silence while it answers."""
        conn = self.conn
        self.timer = None
        if conn is None or conn.done or conn.error is not None:
            return
        now = conn.loop.time()
        if now >= self.deadline - 0.001:
            conn._fail(Failed("total-timeout"))
        elif not self.writing and now - conn.last >= self.pool.read - 0.001:
            conn._fail(Failed("read-timeout"))
        else:
            when = self.deadline if self.writing else min(self.deadline, conn.last + self.pool.read)
            self.timer = conn.loop.call_at(when, self._check)
        if conn.error is not None and conn.drain is not None and not conn.drain.done():
            conn.drain.set_result(None)  # the writer wakes and raises `error`


class Pool:
    """The connections to one upstream (`host:port`), at most `limit` in use at once."""

    def __init__(self, host: str, port: int, limit: int, connect: float, read: float, defaults: dict[str, str]):
        self.host, self.port = host, port
        self.limit, self.connect, self.read = limit, connect, read
        self.free_slots = limit
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.idle: list[Connection] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        authority = host if ":" not in host else f"[{host}]"
        self.host_line = f"Host: {authority}{'' if port == 80 else f':{port}'}\r\n"
        self.defaults = defaults  # User-Agent, Accept-Encoding: sent unless the request sets them
        self.names: dict[tuple[str, ...], _Names] = {}  # sets of header names -> what they imply (`_names`)

    def start(self) -> asyncio.AbstractEventLoop:
        """Bind the pool to the running loop: at first use, and again if the loop it knew was
        closed (a CLI or a test running several loops in turn); what belonged to the old loop is dropped."""
        self.loop = asyncio.get_running_loop()
        self.idle.clear()
        self.waiters.clear()
        self.free_slots = self.limit
        return self.loop

    def exchange(self, method: str, target: str, headers: dict[str, str], body: bytes | AsyncIterable[bytes] | None,
                 budget: float) -> Exchange:
        """One request; raises Failed("header") before anything is sent when a header cannot be written."""
        names = tuple(headers)
        known = self.names.get(names) or self._names(names)
        lines = [method, " ", target, " HTTP/1.1\r\n"]
        for name, value in headers.items():
            if not _visible(value):
                raise Failed("header")
            lines += (name, ": ", value, "\r\n")
        lines.append(known.lines)
        if isinstance(body, bytes) or body is None:
            if body or (method not in _NO_BODY_METHODS and not known.announced):
                lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
        elif not known.announced:
            lines.append("Transfer-Encoding: chunked\r\n")
        else:  # a forwarded body of announced length goes out as it is
            body = _Sized(body)
        lines.append("\r\n")
        return Exchange(self, method, "".join(lines).encode("latin-1"), body, budget)

    def _names(self, names: tuple[str, ...]) -> "_Names":
        """What a set of header names implies, worked out once per set (most operations send the
        same few every time): the names checked, the Host and default lines the request does not
        set itself, whether it announces a Content-Length. Names only: no value is kept."""
        lowered = set()
        for name in names:
            if not _FIELD_NAME.fullmatch(name):
                raise Failed("header")
            lowered.add(name.lower())
        extra = ([self.host_line] if "host" not in lowered else []) + [line for name, line in self.defaults.items() if name not in lowered]
        known = _Names("".join(extra), "content-length" in lowered)
        if len(self.names) >= NAME_SETS_MAX:  # names are the plan's, but `forward` passes callers' on: bounded
            self.names.clear()
        self.names[names] = known
        return known

    async def wait_slot(self, timeout: float) -> None:
        """One of `limit` slots when none is free: a queue, first come first served, or
        Failed("busy") after `timeout`. (A free slot is taken by `Exchange` without a coroutine.)"""
        waiter = self.loop.create_future()  # type: ignore[union-attr]
        self.waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise Failed("busy") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.free()  # handed a slot just as the caller left: pass it on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            try:
                self.waiters.remove(waiter)
            except ValueError:
                pass

    def free(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free_slots += 1

    def reuse(self, now: float) -> Connection | None:
        """The most recently used idle connection still open and not idle too long, if any."""
        while self.idle:
            conn = self.idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.last > IDLE_MAX:  # `last`: its answer's last byte
                conn.transport.close()
                continue
            return conn
        return None

    async def open(self, deadline: float) -> Connection:
        """A new connection within the connect timeout (and what is left of the budget)."""
        loop = self.loop
        assert loop is not None
        timeout = min(self.connect, deadline - loop.time())
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: Connection(loop), self.host, self.port)
        except TimeoutError:
            raise Failed("connect-timeout" if timeout >= self.connect - 0.001 else "total-timeout") from None
        except socket.gaierror:
            raise Failed("connect", "the host name did not resolve") from None
        except OSError as exc:
            raise Failed("connect", _strerror(exc)) from None
        sock = conn.transport.get_extra_info("socket")  # type: ignore[union-attr]
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    async def close(self) -> None:
        if self.loop is not None and self.loop.is_closed():  # its connections went with their loop
            self.idle.clear()
            return
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


class _Names(NamedTuple):
    lines: str  # Host and the default headers the request does not set, written out
    announced: bool  # the request sets its own Content-Length


class _Sized:
    """A forwarded body sent with the caller's Content-Length: the chunks as they are, no framing."""

    __slots__ = ("body",)

    def __init__(self, body: AsyncIterable[bytes]):
        self.body = body

    def __aiter__(self) -> Any:
        return self.body.__aiter__()
