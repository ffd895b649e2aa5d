"""Send prepared requests: one pooled aiohttp session per consumes namespace, resilient to faults.

aiohttp rather than httpx: on this machine a Starlette proxy answers ~4-5k req/s with aiohttp and
~500 with httpx 0.28 (docs/ARCHITECTURE.md, bench/). The session lives for the whole process, so
connections are reused across requests. URLs are passed pre-encoded (yarl `encoded=True`): what
the request plan encoded is exactly what goes on the wire.

Every call is bounded (docs/RELIABILITY.md): a connect timeout, a read timeout (silence between
bytes), and a total budget that includes retries and their waits. Idempotent methods are retried
on connection faults and on 429/502/503/504 with full-jitter exponential backoff, honoring
`Retry-After`; POST and PATCH never are, because the upstream may already have acted. A per-upstream
slot limit keeps a slow upstream from holding every connection, and a caller that cannot get a
slot in time gets a 503 instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Mapping, Protocol

import aiohttp
from yarl import URL

from naftiko_runtime import __version__
from naftiko_runtime.binds import redactable
from naftiko_runtime.errors import (
    UpstreamBadResponse,
    UpstreamBusy,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from naftiko_runtime.settings import Settings, size_text
from naftiko_runtime.upstream.decoding import ACCEPT_ENCODING, BadEncoding, BodyDecoder, TooLarge
from naftiko_runtime.upstream.request import Prepared

log = logging.getLogger("naftiko.upstream")

BACKOFF_BASE = 0.1  # seconds; attempt n waits uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**n))
BACKOFF_CAP = 2.0
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = f"naftiko-runtime/{__version__}"


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict)  # the upstream's own (case-insensitive) headers


class Transport(Protocol):
    async def send(self, request: Prepared) -> Response: ...

    async def close(self) -> None: ...


def retry_delay(method: str, outcome: Response | UpstreamFailure, attempt: int, settings: Settings,
                remaining: float, now: float | None = None) -> float | None:
    """Seconds to wait before the next attempt, or None when `outcome` is final.

    `attempt` counts from 0. A `Retry-After` the budget cannot honor ends the retries: the caller
    gets the upstream's own answer (or the failure) rather than a guess.
    """
    if method not in IDEMPOTENT or attempt >= settings.retries:
        return None
    if isinstance(outcome, UpstreamFailure):
        if not outcome.retryable:
            return None
        delay = _backoff(attempt)
    else:
        if outcome.status not in RETRY_STATUSES:
            return None
        after = parse_retry_after(_header(outcome.headers, "Retry-After"), now)
        delay = after if after is not None else _backoff(attempt)
    return delay if delay < remaining else None


def _backoff(attempt: int) -> float:
    """Full jitter (AWS architecture blog): spreads retries of many callers over the whole window."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # aiohttp's headers are case-insensitive already
    if value is not None:
        return value
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


class HttpTransport:
    """The real upstream: a pooled aiohttp session, created lazily inside the running loop."""

    def __init__(self, namespace: str, settings: Settings, redact: list[str] | None = None):
        self.namespace = namespace
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(settings.max_connections)
        # the first attempt's timeouts are the same for every call: built once, not per request
        self._first_timeout = aiohttp.ClientTimeout(total=settings.timeout, connect=settings.connect, sock_read=settings.read)
        # credentials this transport sends: an upstream that echoes them back must not leak them
        self._redact = [s.encode() for s in redactable(redact or [])]

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.settings.max_connections, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            # bodies are decoded by upstream/decoding.py, whose cap counts decoded bytes
            connector=connector, auto_decompress=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}, cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def send(self, request: Prepared) -> Response:
        """One call: attempts until an answer is final, the retries are spent, or the budget is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        attempt = 0
        while True:
            outcome: Response | UpstreamFailure
            try:
                remaining = deadline - loop.time()
                outcome = await self._attempt(request, remaining, self._first_timeout if attempt == 0 else None)
            except UpstreamFailure as exc:
                outcome = exc
            delay = retry_delay(request.method, outcome, attempt, self.settings, deadline - loop.time())
            if delay is None:
                if isinstance(outcome, UpstreamFailure):
                    raise outcome
                return outcome
            attempt += 1
            what = outcome.message if isinstance(outcome, UpstreamFailure) else f"HTTP {outcome.status}"
            log.info("upstream '%s': %s; retrying %s (attempt %d of %d) in %.2fs",
                     self.namespace, what, request.method, attempt + 1, self.settings.retries + 1, delay)
            await asyncio.sleep(delay)

    async def _attempt(self, request: Prepared, remaining: float, timeout: aiohttp.ClientTimeout | None = None) -> Response:
        s = self.settings
        if remaining <= 0:
            raise UpstreamTimeout(self.namespace, f"no complete answer within {s.timeout:g}s (total timeout)")
        await self._acquire(min(s.connect, remaining))
        try:
            session = self._session or self._open()
            if timeout is None:  # a retry: what is left of the budget
                timeout = aiohttp.ClientTimeout(total=remaining, connect=min(s.connect, remaining), sock_read=s.read)
            async with session.request(
                request.method, URL(request.url, encoded=True), headers=request.headers,
                data=request.body, allow_redirects=False, timeout=timeout,
            ) as resp:
                body = await self._read(resp)
                return Response(resp.status, self._scrub(body), resp.headers.get("Content-Type"), resp.headers)
        except UpstreamFailure:
            raise
        except aiohttp.ConnectionTimeoutError:
            raise UpstreamTimeout(self.namespace, f"no connection within {s.connect:g}s (connect timeout)", retryable=True) from None
        except aiohttp.SocketTimeoutError:
            raise UpstreamTimeout(self.namespace, f"no data for {s.read:g}s (read timeout)") from None
        except asyncio.TimeoutError:
            raise UpstreamTimeout(self.namespace, f"no complete answer within {s.timeout:g}s (total timeout)") from None
        except aiohttp.ClientPayloadError:
            raise UpstreamBadResponse(self.namespace, "the response body was cut off", retryable=True) from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise UpstreamUnreachable(self.namespace, _describe(exc), retryable=True) from None
        except aiohttp.ClientError as exc:  # an answer that is not HTTP (bad status line, headers...)
            raise UpstreamBadResponse(self.namespace, f"not a valid HTTP response ({type(exc).__name__})") from None
        finally:
            self._slots.release()

    async def _acquire(self, wait: float) -> None:
        """A slot among `max_connections`; waiting is bounded like a connect (503 when it runs out)."""
        if not self._slots.locked():  # the common case: no timer to arm
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            n = self.settings.max_connections
            raise UpstreamBusy(self.namespace, f"all {n} connection slot(s) stayed in use for {wait:g}s") from None

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        """The decoded body, refused as soon as it passes the cap (decoded bytes, any encoding)."""
        limit = self.settings.max_response_bytes
        over = f"over the {size_text(limit)} limit"
        if resp.content_length is not None and resp.content_length > limit:
            raise UpstreamTooLarge(self.namespace, f"{resp.content_length:,} bytes, {over}")
        try:
            decoder = BodyDecoder(resp.headers.get("Content-Encoding"), limit)
            if decoder.identity and resp.content_length is not None:  # the common case: one read
                return await resp.read()
            async for chunk in resp.content.iter_chunked(65536):
                decoder.feed(chunk)
            return decoder.finish()
        except TooLarge:
            what = "decoded " if not decoder.identity else ""
            raise UpstreamTooLarge(self.namespace, f"{what}body {over}") from None
        except BadEncoding as exc:
            raise UpstreamBadResponse(self.namespace, str(exc)) from None

    def _scrub(self, body: bytes) -> bytes:
        for secret in self._redact:
            if secret in body:
                body = body.replace(secret, b"***")
        return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(exc: BaseException) -> str:
    """A short cause without URLs, addresses or headers (a query may carry credentials)."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before answering"
    os_error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    reason = os.strerror(os_error.errno) if isinstance(os_error, OSError) and os_error.errno else type(os_error).__name__
    return f"connection failed ({reason.lower()})" if isinstance(exc, aiohttp.ClientConnectorError) else f"connection lost ({reason.lower()})"
