"""A fault-injecting upstream on a real socket (127.0.0.1), for the reliability tests.

Raw asyncio streams rather than an HTTP framework, so it can misbehave the ways real upstreams
do: refuse connections, reset mid-response, never answer, stall between bytes, and send whatever
status, content type or size a test scripts. Each request takes the next scripted `Fault`; with
none left it answers 200 JSON echoing what it received (method, the raw request target, headers,
body), which is what the abuse tests inspect.

In a test: `with FaultServer() as up: up.script(Fault.answer(503), Fault.answer(503))`. As a
process (the load test, so it does not share the client's interpreter):
`python tests/reliability/faults.py [--delay SECONDS]` prints its port and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import socket
import ssl
import struct
import sys
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """What the upstream does with one request."""

    kind: str  # ok | status | reset | hang | slow | garbage
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunked: bool = False
    close_delimited: bool = False  # no Content-Length, no chunking: the body ends when the connection does

    @classmethod
    def ok(cls, delay: float = 0.0) -> "Fault":
        """The echo answer, after `delay` seconds (slow but well-behaved)."""
        return cls("ok", delay=delay)

    @classmethod
    def answer(cls, code: int, body: bytes | str = b'{"error":"scripted"}', content_type: str = "application/json",
               headers: dict[str, str] | None = None, chunked: bool = False, close_delimited: bool = False) -> "Fault":
        data = body.encode() if isinstance(body, str) else body
        return cls("status", code, data, content_type, headers or {}, chunked=chunked, close_delimited=close_delimited)

    @classmethod
    def reset(cls) -> "Fault":
        """Headers and part of the body, then a TCP RST."""
        return cls("reset")

    @classmethod
    def hang(cls) -> "Fault":
        """Read the request, never answer."""
        return cls("hang")

    @classmethod
    def garbage(cls) -> "Fault":
        """Bytes that are not an HTTP response, then close."""
        return cls("garbage", body=b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    @classmethod
    def slow(cls, delay: float) -> "Fault":
        """Headers at once, then silence for `delay` seconds before the body."""
        return cls("slow", delay=delay)


@dataclass
class Seen:
    """One request as it arrived on the wire."""

    method: str
    target: str  # the raw request target, exactly as sent
    headers: dict[str, str]
    body: bytes

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "target": self.target, "headers": self.headers,
                "body": self.body.decode("utf-8", "replace")}


class FaultServer:
    """The upstream, served from its own thread and event loop so tests can stay synchronous."""

    def __init__(self, default_delay: float = 0.0, record: bool = True, loop_factory: Any = asyncio.new_event_loop,
                 ssl_context: Any = None):
        self.default_delay = default_delay
        self.ssl_context = ssl_context  # an `ssl.SSLContext`: serve HTTPS
        self.record = record
        self.requests: list[Seen] = []
        self.connections = 0
        self._faults: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        self._loop = loop_factory()
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-upstream", daemon=True)
        self.port = 0

    # -- control, from the test's thread ---------------------------------------------------------

    def __enter__(self) -> "FaultServer":
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._call(self._close())
        self._call(self._cancel_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def script(self, *faults: Fault) -> None:
        """The next requests get these faults, in order; then the echo again."""
        with self._lock:
            self._faults.clear()
            self._faults.extend(faults)
            self.requests.clear()

    def refuse(self) -> None:
        """Stop listening and drop open connections: connects are refused until `listen`."""
        self._call(self._close())

    def listen(self) -> None:
        self._call(self._listen())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- the server, in its own loop -------------------------------------------------------------

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._connection, sock=sock, backlog=1024, ssl=self.ssl_context)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()

    async def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _next(self) -> Fault:
        with self._lock:
            return self._faults.popleft() if self._faults else Fault.ok(self.default_delay)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            while True:
                seen = await _read_request(reader)
                if seen is None:
                    return
                if self.record:
                    with self._lock:
                        self.requests.append(seen)
                if not await self._answer(self._next(), seen, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ssl.SSLError):
            return
        finally:
            self._open.discard(writer)
            writer.close()

    async def _answer(self, fault: Fault, seen: Seen, writer: asyncio.StreamWriter) -> bool:
        """Act out `fault`; False when the connection must not be reused."""
        if fault.kind == "hang":
            await asyncio.sleep(3600)
            return False
        if fault.kind == "reset":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partial\":")
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            writer.transport.abort()
            return False
        if fault.kind == "garbage":
            writer.write(fault.body)
            await writer.drain()
            return False
        if fault.delay and fault.kind == "ok":
            await asyncio.sleep(fault.delay)
        if fault.kind in ("ok", "slow"):
            status, body, ctype, extra = 200, json.dumps(seen.as_json()).encode(), "application/json", {}
        else:
            status, body, ctype, extra = fault.status, fault.body, fault.content_type, fault.headers
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {ctype}"]
        head += [f"{k}: {v}" for k, v in extra.items()]
        if fault.close_delimited:
            head.append("Connection: close")
        else:
            head.append("Transfer-Encoding: chunked" if fault.chunked else f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8"))  # as servers that write UTF-8 headers do
        if fault.kind == "slow":
            await writer.drain()
            await asyncio.sleep(fault.delay)
        if fault.chunked:
            for i in range(0, len(body), 65536):
                piece = body[i:i + 65536]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(body)
        await writer.drain()
        if fault.close_delimited:
            return False
        return seen.headers.get("connection", "").lower() != "close"


_REASONS = {200: "OK", 201: "Created", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


async def _read_request(reader: asyncio.StreamReader) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return Seen(method, target, headers, body)


def closed_port() -> int:
    """A port nothing listens on (bound, then released): connects to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description="the fault upstream as a process (echo, optional delay)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    server = FaultServer(default_delay=args.delay, record=False, loop_factory=factory)
    with server:
        print(server.port, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    sys.exit(main())
