"""Send prepared requests: one pooled aiohttp session per consumes namespace.

aiohttp rather than httpx: on this machine a Starlette proxy answers ~4-5k req/s with aiohttp and
~500 with httpx 0.28 (docs/ARCHITECTURE.md, bench/). The session lives for the whole process, so
connections are reused across requests. URLs are passed pre-encoded (yarl `encoded=True`): what
the request plan encoded is exactly what goes on the wire.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from yarl import URL

from naftiko_runtime import __version__
from naftiko_runtime.errors import UpstreamFailure
from naftiko_runtime.upstream.request import Prepared

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE = 10 * 1024 * 1024
USER_AGENT = f"naftiko-runtime/{__version__}"


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    async def send(self, request: Prepared) -> Response: ...

    async def close(self) -> None: ...


@dataclass
class ClientSettings:
    timeout: float = DEFAULT_TIMEOUT  # whole-request budget
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE
    max_connections: int = 100


class HttpTransport:
    """The real upstream: a pooled aiohttp session, created lazily inside the running loop."""

    def __init__(self, namespace: str, settings: ClientSettings):
        self.namespace = namespace
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=s.timeout, connect=s.connect_timeout, sock_read=s.read_timeout)
        connector = aiohttp.TCPConnector(limit=s.max_connections, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=True,
            headers={"User-Agent": USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def send(self, request: Prepared) -> Response:
        session = self._session or self._open()
        try:
            async with session.request(
                request.method, URL(request.url, encoded=True), headers=request.headers,
                data=request.body, allow_redirects=False,
            ) as resp:
                body = await self._read(resp)
                return Response(resp.status, body, resp.headers.get("Content-Type"), dict(resp.headers))
        except UpstreamFailure:
            raise
        except asyncio.TimeoutError:
            raise UpstreamFailure(self.namespace, "timeout", f"no answer within {self.settings.timeout:g}s", 504) from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise UpstreamFailure(self.namespace, "unreachable", _describe(exc)) from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailure(self.namespace, "bad-response", _describe(exc)) from None

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.settings.max_response_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise UpstreamFailure(self.namespace, "too-large", f"{resp.content_length} bytes, limit {limit}")
        chunks, size = [], 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise UpstreamFailure(self.namespace, "too-large", f"over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(exc: BaseException) -> str:
    """A short cause without URLs or headers (they may carry credentials in a query)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection failed ({exc.os_error.strerror or type(exc.os_error).__name__})" if exc.os_error else "connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response body was cut off"
    return type(exc).__name__
