"""The built-in HTTP/1.1 client (upstream/h1.py) on real loopback sockets: keep-alive, connections
an upstream closes, interim answers, HEAD, flow control, byte-exact targets, and which namespaces
it serves (plain `http://` without a proxy; TLS and proxies stay with pyreqwest).

The fault, bomb, limit, wire and forward suites run through it too (every `http://` upstream of
the test suite is served by it); these tests cover what only a hand-written client can get wrong.
"""

from __future__ import annotations

import asyncio
import hashlib

import anyio
import pytest

from naftiko_runtime.errors import InputError, UpstreamBadResponse
from naftiko_runtime.settings import Settings
from naftiko_runtime.upstream import h1
from naftiko_runtime.upstream.client import HttpTransport
from naftiko_runtime.upstream.request import AuthPlan, Prepared, Upstream
from tests.reliability.faults import FaultServer


def transport_for(url: str, **settings) -> HttpTransport:
    upstream = Upstream("up", url, AuthPlan(None, None, "up"), Settings(**{"retries": 0, **settings}))  # type: ignore[arg-type]
    return HttpTransport(upstream)


def request(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Prepared:
    return Prepared(method, url, headers or {}, body, [], False)


class Scripted:
    """A loopback upstream whose every connection runs `handler(reader, writer, seen)`."""

    def __init__(self, handler):
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []  # request heads, as received
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "Scripted":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        return head


OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def test_connections_are_kept_alive_and_reused():
    with FaultServer() as server:
        transport = transport_for(server.url)

        async def go():
            try:
                for _ in range(20):
                    assert (await transport.send(request("GET", server.url + "/a"))).status == 200
                answers = await asyncio.gather(*(transport.send(request("GET", server.url + "/b")) for _ in range(10)))
                assert {a.status for a in answers} == {200}
            finally:
                await transport.close()

        anyio.run(go)
        assert len(server.requests) == 30 and server.connections <= 10  # 20 calls in a row on one connection


def test_a_transport_serves_one_event_loop_after_another():
    with FaultServer() as server:
        transport = transport_for(server.url)

        async def one():
            assert (await transport.send(request("GET", server.url + "/a"))).status == 200

        anyio.run(one)  # its connection belongs to a loop that is then closed
        anyio.run(one)
        anyio.run(transport.close)
        assert len(server.requests) == 2


def test_a_connection_the_upstream_closed_while_idle_is_not_used_again():
    async def answer_then_close_soon(reader, writer, upstream):
        await upstream.read_request(reader)
        writer.write(OK)  # HTTP/1.1, no `Connection: close`: looks reusable
        await writer.drain()
        await asyncio.sleep(0.05)  # then the upstream's idle timeout closes it (Node's default is 5 s)

    async def go():
        async with Scripted(answer_then_close_soon) as upstream:
            transport = transport_for(upstream.url)
            try:
                assert (await transport.send(request("GET", upstream.url + "/a"))).status == 200
                await asyncio.sleep(0.3)
                answer = await transport.send(request("POST", upstream.url + "/b", b"{}"))
                assert answer.status == 200 and answer.body == b"ok"
            finally:
                await transport.close()
            assert upstream.connections == 2 and len(upstream.requests) == 2  # the POST was sent once

    anyio.run(go)


def test_a_kept_alive_connection_closed_as_it_is_reused_is_retried_once_on_a_new_one():
    async def one_answer_per_connection(reader, writer, upstream):
        await upstream.read_request(reader)
        writer.write(OK)
        await writer.drain()
        await upstream.read_request(reader)  # the second request on this connection: closed unanswered

    async def go():
        async with Scripted(one_answer_per_connection) as upstream:
            transport = transport_for(upstream.url)  # retries=0: the policy does not retry
            try:
                for _ in range(3):
                    answer = await transport.send(request("GET", upstream.url + "/a"))
                    assert answer.status == 200 and answer.body == b"ok"
            finally:
                await transport.close()
            assert upstream.connections == 3

    anyio.run(go)


def test_a_connection_idle_past_the_limit_is_not_used_again(monkeypatch):
    monkeypatch.setattr(h1, "IDLE_MAX", 0.2)  # 90 s in production: NAT gateways drop idle connections silently
    with FaultServer() as server:
        transport = transport_for(server.url)

        async def go():
            try:
                for pause in (0.0, 0.05, 0.4):
                    await asyncio.sleep(pause)
                    assert (await transport.send(request("GET", server.url + "/a"))).status == 200
            finally:
                await transport.close()

        anyio.run(go)
        assert server.connections == 2  # the second call reused the first connection, the third did not


def test_interim_answers_are_skipped():
    async def early_hints(reader, writer, upstream):
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        await writer.drain()
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\n")
        await writer.drain()

    async def go():
        async with Scripted(early_hints) as upstream:
            transport = transport_for(upstream.url)
            try:
                answer = await transport.send(request("POST", upstream.url + "/a", b"{}"))
            finally:
                await transport.close()
            assert answer.status == 201 and answer.body == b'{"id":"x"}\n' and "link" not in answer.headers

    anyio.run(go)


def test_an_answer_to_head_ends_at_its_head():
    async def head_then_get(reader, writer, upstream):
        while True:
            head = await upstream.read_request(reader)
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n")
            else:
                writer.write(OK)
            await writer.drain()

    async def go():
        async with Scripted(head_then_get) as upstream:
            transport = transport_for(upstream.url, timeout=5.0)
            try:
                with anyio.fail_after(2):  # not the 5 s timeout: no body is awaited
                    head = await transport.send(request("HEAD", upstream.url + "/a"))
                    get = await transport.send(request("GET", upstream.url + "/a"))
            finally:
                await transport.close()
            assert head.status == 200 and head.body == b"" and head.headers["content-length"] == "1000"
            assert get.status == 200 and get.body == b"ok"

    anyio.run(go)


@pytest.mark.parametrize("head, fragment", [
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (4 << 20), "head is over 256 KiB"),  # one endless header line
    (b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 1000 + b"Content-Length: 2\r\n\r\nok", "over 256 header lines"),
], ids=["huge-line", "many-lines"])
def test_an_oversized_answer_head_is_a_502_not_a_memory_sink(head, fragment):
    async def oversized(reader, writer, upstream):
        await upstream.read_request(reader)
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(1)

    async def go():
        async with Scripted(oversized) as upstream:
            transport = transport_for(upstream.url)
            try:
                with anyio.fail_after(5):
                    with pytest.raises(UpstreamBadResponse, match=fragment):
                        await transport.send(request("GET", upstream.url + "/a"))
            finally:
                await transport.close()

    anyio.run(go)


def test_the_target_goes_out_byte_for_byte_and_a_broken_header_is_never_sent():
    with FaultServer() as server:
        transport = transport_for(server.url)
        target = "/a/%2E%2e/b/%2f/%5C?q=%27&r=a%20b"

        async def go():
            try:
                assert (await transport.send(request("GET", server.url + target))).status == 200
                with pytest.raises(InputError, match="a header value holds a character HTTP does not allow"):
                    await transport.send(request("GET", server.url + "/x", headers={"X-A": "a\r\nX-Injected: 1"}))
            finally:
                await transport.close()

        anyio.run(go)
        assert [r.target for r in server.requests] == [target]  # the second request never reached the wire


def test_every_request_sends_its_own_header_values_past_the_written_out_sets():
    """What a set of header names implies is worked out once (h1.Pool._names): values that vary with
    every request go out each as sent, also past the sets a pool remembers, and a broken value is
    refused even under names seen before."""
    count = h1.NAME_SETS_MAX + 20
    with FaultServer() as server:
        transport = transport_for(server.url)

        async def go():
            try:
                for i in range(count):
                    headers = {"Authorization": "Bearer k", "X-Trace": f"t-{i}", f"X-Name-{i}": "v"}
                    assert (await transport.send(request("GET", server.url + f"/x/{i}", headers=headers))).status == 200
                with pytest.raises(InputError, match="a header value holds a character HTTP does not allow"):
                    await transport.send(request("GET", server.url + "/y", headers={"Authorization": "Bearer k", "X-Trace": "a\nb"}))
            finally:
                await transport.close()

        anyio.run(go)
        assert [(r.target, r.headers.get("x-trace")) for r in server.requests] == [(f"/x/{i}", f"t-{i}") for i in range(count)]
        assert all(r.headers.get("authorization") == "Bearer k" for r in server.requests)


def test_a_slow_reader_holds_the_upstream_back_and_gets_the_answer_whole():
    size = 48 << 20  # more than loopback's socket buffers can hold (tcp_rmem + tcp_wmem maxima)
    payload = hashlib.sha256(b"seed").digest() * (size // 32)
    progress = {"sent": 0}

    async def big(reader, writer, upstream):
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size)
        for i in range(0, size, 1 << 20):
            writer.write(payload[i:i + (1 << 20)])
            await writer.drain()  # blocks while the runtime does not read
            progress["sent"] = i + (1 << 20)

    async def go():
        async with Scripted(big) as upstream:
            transport = transport_for(upstream.url, max_response_bytes=64 << 20)
            got = hashlib.sha256()
            try:
                async with transport.stream(request("GET", upstream.url + "/f"), None) as answer:
                    assert answer.status == 200
                    first = True
                    async for chunk in answer.chunks:
                        got.update(chunk)
                        if first:  # a caller that stops reading for a while
                            await asyncio.sleep(0.5)
                            held_back = progress["sent"] < size // 2
                            first = False
            finally:
                await transport.close()
            assert held_back, f"the upstream sent {progress['sent']:,} bytes nobody read: they were buffered in memory"
            assert got.digest() == hashlib.sha256(payload).digest()

    anyio.run(go)


@pytest.mark.parametrize("url, env, builtin", [
    ("http://127.0.0.1:9/api", {}, True),
    ("http://[::1]:8080", {}, True),
    ("https://127.0.0.1:9/api", {}, False),  # TLS (and HTTP/2 by ALPN): pyreqwest
    ("http://127.0.0.1:9/api", {"HTTP_PROXY": "http://proxy:3128"}, False),  # a proxy: pyreqwest applies it and NO_PROXY
    ("http://user:secret@127.0.0.1:9/api", {}, False),
])
def test_which_client_serves_a_namespace(monkeypatch, url, env, builtin):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert (transport_for(url)._pool is not None) is builtin
