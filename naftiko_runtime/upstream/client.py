"""Send prepared requests: one pooled client per consumes namespace, resilient to faults.

Two engines behind one policy. A plain `http://` upstream reached without a proxy is served by the
built-in HTTP/1.1 client (upstream/h1.py: asyncio protocol + httptools on the event loop's own
thread), every other one by pyreqwest (Rust: reqwest, hyper, rustls): TLS with custom CAs and
client certificates, HTTP/2 by ALPN, proxies from `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`.
Against the same upstream at 32 concurrent callers, a request costs ~25% less CPU on the built-in
client than on pyreqwest, which itself costs ~half of aiohttp and ~2% of httpx (docs/PERFORMANCE.md).
Pools live for the whole process, so connections are reused across requests; trusted CAs come from
the system store (`SSL_CERT_FILE`, `SSL_CERT_DIR`) plus the upstream's own (`TlsPlan`); redirects
are never followed (a 3xx passes through).

The URL that goes out is the one the request plan encoded, byte for byte: the built-in client
writes the plan's request target as it is; pyreqwest parses URLs the WHATWG way (`/a/../b` ->
`/b`, `%2e%2e` is `..`, `\\` is `/`), so the plan percent-encodes the file's constant URL parts in
that form at load and refuses `.`/`..` values (upstream/request.py), and `_exchange` refuses to
send a URL the parser would still change.

Every call is bounded (docs/RELIABILITY.md): a connect timeout, a read timeout (silence between
bytes), and a total budget that includes retries and their waits. Idempotent methods are retried
on connection faults and on 429/502/503/504 with full-jitter exponential backoff, honoring
`Retry-After`; POST and PATCH never are, because the upstream may already have acted. At most
`max_connections` calls run at once per upstream, and a caller that cannot get a slot within the
connect timeout gets a 503 instead of waiting forever. A response body is read up to
`max_response_bytes` after decoding (`_read`, upstream/decoding.py), never further.

Another client fits behind the same `Transport` protocol: `_exchange` opens one try on it (an
answer with `status`, `headers` and a `body_reader`), `_failure` maps its errors onto errors.py's
`UpstreamFailure` subclasses, and the retry policy, caps and masking are inherited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit
from typing import Any, AsyncContextManager, AsyncIterable, AsyncIterator, Callable, Iterator, Mapping, Protocol

from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.http import HeaderMap, Url

from naftiko_runtime import __version__, redact
from naftiko_runtime.errors import (
    InputError,
    UpstreamBadResponse,
    UpstreamBusy,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from naftiko_runtime.settings import Settings, size_text
from naftiko_runtime.upstream import h1
from naftiko_runtime.upstream.decoding import ACCEPT_ENCODING, BadEncoding, BodyDecoder, TooLarge
from naftiko_runtime.upstream.request import Limit, Prepared, Upstream

log = logging.getLogger("naftiko.upstream")

BACKOFF_BASE = 0.1  # seconds; attempt n waits uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**n))
BACKOFF_CAP = 2.0
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = f"naftiko-runtime/{__version__}"
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict)  # the upstream's own (case-insensitive) headers


@dataclass
class Streamed:
    """An answer whose body is passed on chunk by chunk (`forward`), never held whole.

    `chunks` stops with UpstreamTooLarge past `max_response_bytes`; `headers` are the upstream's,
    as (lower-case name, value) pairs, less `content-length` when the body is rewritten on the way.
    """

    status: int
    headers: list[tuple[str, str]]
    chunks: AsyncIterator[bytes]


class UpstreamHeaders(Mapping[str, str]):
    """An upstream's response headers as the runtime reads them: a value is masked (redact.py) when
    it is read, and one that does not read as text (bytes outside visible ASCII) is absent. Reading
    them all for every answer cost ~5 µs a request, when the runtime reads at most two of them."""

    __slots__ = ("_raw",)

    def __init__(self, raw: HeaderMap):
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        try:
            value = self._raw[name]
        except ValueError:
            raise KeyError(name) from None
        return redact.REGISTRY.credentials.mask_text(value)

    def __iter__(self) -> Iterator[str]:
        return (name for name in dict.fromkeys(self._raw.keys()) if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Transport(Protocol):
    async def send(self, request: Prepared) -> Response: ...

    def stream(self, request: Prepared, body: AsyncIterable[bytes] | None) -> AsyncContextManager[Streamed]:
        """One attempt (a streamed body cannot be sent twice), its body streamed both ways."""
        ...

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
    from email.utils import parsedate_to_datetime  # here: the email package costs every start ~10 ms

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # the client's header maps are case-insensitive already
    if value is not None:
        return value
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


class HttpTransport:
    """The real upstream: a pooled pyreqwest client, created lazily inside the running loop."""

    def __init__(self, upstream: Upstream):
        self.namespace = upstream.namespace
        self.settings = upstream.settings
        self.upstream = upstream
        self._client: Client | None = None
        self._origin, self._pool = _plain_pool(upstream)  # http:// without a proxy: upstream/h1.py
        self.on_retry: Callable[[str, Prepared], None] | None = None  # observability counts retries

    def _open(self) -> Client:
        s, tls = self.settings, self.upstream.tls
        builder = (
            ClientBuilder()
            .user_agent(USER_AGENT)
            .follow_redirects(False).referer(False)  # a 3xx is the upstream's answer, passed on
            .timeout(timedelta(seconds=s.timeout))  # the first attempt's budget; retries set their own
            .connect_timeout(timedelta(seconds=s.connect))
            .read_timeout(timedelta(seconds=s.read))
            .max_connections(s.max_connections)
            .pool_timeout(timedelta(seconds=s.connect))  # waiting for a slot counts as connecting
            .http2(True)  # when a TLS upstream offers it; plain-text upstreams stay on HTTP/1.1
            # bodies are decoded by upstream/decoding.py, whose cap counts decoded bytes
            .gzip(False).deflate(False).brotli(False).zstd(False)
            .default_headers({"Accept-Encoding": ACCEPT_ENCODING})
        )
        if tls is not None:
            for pem in tls.ca_pems:
                builder = builder.add_root_certificate_pem(pem)
            if tls.identity_pem:
                builder = builder.identity_pem(tls.identity_pem)
        self._client = builder.build()
        return self._client

    async def send(self, request: Prepared) -> Response:
        """One call: attempts until an answer is final, the retries are spent, or the budget is.

        An attempt on the built-in client is written out here rather than in a coroutine of its
        own: this coroutine awaits the connection's future directly (bench/instructions.py)."""
        deadline = time.monotonic() + self.settings.timeout  # not loop.time(): getting the loop is a getpid() call
        pool = self._pool
        attempt = 0
        while True:
            outcome: Response | UpstreamFailure
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise self._failed("total-timeout")
                budget = self.settings.timeout if attempt == 0 else remaining  # a retry gets what is left of the budget
                if pool is not None and request.url.startswith(self._origin):
                    exchange = self._exchange(request, request.body, budget)
                    try:
                        try:
                            conn = await exchange.begin()
                        except h1.Failed as failure:
                            conn = await exchange.again(failure)
                        headers = conn.headers
                        body = conn.received_body(self._cap(request.limit))
                        if body is None:
                            body = await self._read(headers, conn, request.limit)
                        outcome = self._answer(conn.status, body, headers, request.masked)
                    except h1.Failed as exc:
                        exchange.abort()
                        raise self._failed(exc.kind, exc.cause) from None
                    except BaseException:
                        exchange.abort()
                        raise
                    exchange.end()
                else:
                    outcome = await self._attempt(request, budget, attempt == 0)
                if outcome.status not in RETRY_STATUSES:  # the common case: final, no retry bookkeeping
                    return outcome
            except UpstreamFailure as exc:
                outcome = exc
            delay = retry_delay(request.method, outcome, attempt, self.settings, deadline - time.monotonic())
            if delay is None:
                if isinstance(outcome, UpstreamFailure):
                    raise outcome
                return outcome
            attempt += 1
            if self.on_retry is not None:
                self.on_retry(self.namespace, request)
            # a failure's message names the upstream already
            what = outcome.message if isinstance(outcome, UpstreamFailure) else f"upstream '{self.namespace}' answered HTTP {outcome.status}"
            log.info("%s; retrying %s (attempt %d of %d) in %.2fs", what, request.method, attempt + 1, self.settings.retries + 1, delay)
            await asyncio.sleep(delay)

    async def _attempt(self, request: Prepared, budget: float, first: bool) -> Response:
        """One attempt on pyreqwest."""
        exchange = self._exchange(request, request.body, budget, first)
        started = time.monotonic()
        try:
            async with exchange as resp:
                headers = resp.headers
                body = await self._read(headers, resp, request.limit)
                return self._answer(resp.status, body, headers, request.masked)
        except rq.RequestError as exc:
            raise self._failure(exc, time.monotonic() - started, budget) from None

    def _exchange(self, request: Prepared, body: bytes | AsyncIterable[bytes] | None, budget: float,
                  first: bool = True) -> AsyncContextManager[Any]:
        """One request on the namespace's engine, its answer streamed: `status`, `headers` (a
        `HeaderMap` or `h1.Headers`) and a `body_reader`. Nothing is sent until it is entered."""
        pool = self._pool
        if pool is not None and request.url.startswith(self._origin):
            try:
                return pool.exchange(request.method, request.url[len(self._origin):] or "/", request.headers, body, budget)
            except h1.Failed:
                raise _bad_header() from None
        try:
            builder = (self._client or self._open()).request(request.method, _wire_url(request.url)).headers(request.headers)
        except ValueError:  # its message quotes the value, which may be a credential
            raise _bad_header() from None
        if isinstance(body, bytes):
            builder = builder.body_bytes(body)
        elif body is not None:
            builder = builder.body_stream(body)
        if not first:  # the first attempt uses the client's own timeout
            builder = builder.timeout(timedelta(seconds=budget))
        return builder.build_streamed()

    def _failed(self, kind: h1.Kind, cause: str = "") -> UpstreamFailure:
        """A failed exchange in the runtime's words, whichever engine saw it."""
        s = self.settings
        if kind == "busy":
            return UpstreamBusy(self.namespace, f"all {s.max_connections} connection slot(s) stayed in use for {s.connect:g}s")
        if kind == "total-timeout":
            return UpstreamTimeout(self.namespace, f"no complete answer within {s.timeout:g}s (total timeout)")
        if kind == "connect-timeout":
            return UpstreamTimeout(self.namespace, f"no connection within {s.connect:g}s (connect timeout)", retryable=True)
        if kind == "read-timeout":
            return UpstreamTimeout(self.namespace, f"no data for {s.read:g}s (read timeout)")
        if kind == "cut":
            return UpstreamBadResponse(self.namespace, "the response body was cut off", retryable=True)
        if kind == "connect":
            return UpstreamUnreachable(self.namespace, f"connection failed ({cause})", retryable=True)
        if kind == "lost":
            return UpstreamUnreachable(self.namespace, f"connection lost ({cause})", retryable=True)
        return UpstreamBadResponse(self.namespace, f"not a valid HTTP response ({cause})")  # bad status line, headers...

    def _failure(self, exc: rq.RequestError | h1.Failed, elapsed: float, budget: float) -> UpstreamFailure:
        """The client's error as the runtime's, naming the upstream (and never its URL)."""
        if isinstance(exc, h1.Failed):
            return self._failed(exc.kind, exc.cause)
        if isinstance(exc, rq.PoolTimeoutError):
            return self._failed("busy")
        if isinstance(exc, rq.RequestTimeoutError):
            if elapsed >= budget - 0.01:
                return self._failed("total-timeout")
            return self._failed("connect-timeout" if _connecting(exc) else "read-timeout")
        if isinstance(exc, rq.ReadError):
            return self._failed("cut")
        if isinstance(exc, rq.ConnectError):
            return self._failed("connect", _cause(exc))
        if isinstance(exc, (rq.NetworkError, rq.ClientClosedError)):
            return self._failed("lost", _cause(exc))
        return self._failed("bad", _cause(exc))

    @contextlib.asynccontextmanager
    async def stream(self, request: Prepared, body: AsyncIterable[bytes] | None) -> AsyncIterator[Streamed]:
        """One attempt with the request body streamed up and the answer streamed back (no retry:
        the body is gone once sent). The total timeout covers the whole exchange."""
        exchange = self._exchange(request, body, self.settings.timeout)
        started = time.monotonic()
        try:
            async with exchange as resp:
                try:
                    pairs = list(resp.headers.items())
                except ValueError:  # a value outside visible ASCII
                    pairs = list(self._readable(resp.headers).items())
                matcher = redact.REGISTRY.credentials
                headers = [(k.lower(), matcher.mask_text(v) if matcher else v) for k, v in pairs]
                length = next((v for k, v in headers if k == "content-length"), None)
                if length is not None and length.isdigit() and int(length) > self.settings.max_response_bytes:
                    raise UpstreamTooLarge(self.namespace, f"{int(length):,} bytes, over the {size_text(self.settings.max_response_bytes)} limit")
                scrub = bool(matcher) and _textual(headers)
                if scrub:  # masking a credential changes the length
                    headers = [(k, v) for k, v in headers if k != "content-length"]
                yield Streamed(resp.status, headers, self._chunks(resp, matcher if scrub else None))
        except (rq.RequestError, h1.Failed) as exc:
            raise self._failure(exc, time.monotonic() - started, self.settings.timeout) from None

    async def _chunks(self, resp: Any, matcher: redact.Matcher | None) -> AsyncIterator[bytes]:
        """The body as it arrives, under the cap; credentials masked even across chunk boundaries
        (the last `matcher.span` bytes wait for the next chunk: a secret may straddle two)."""
        limit, size = self.settings.max_response_bytes, 0
        held = b""
        reader = resp.body_reader
        while (chunk := await reader.read_chunk()) is not None:
            size += len(chunk)
            if size > limit:
                raise UpstreamTooLarge(self.namespace, f"body over the {size_text(limit)} limit")
            if matcher is None:
                yield bytes(chunk)
                continue
            held = matcher.mask_bytes(held + bytes(chunk))
            if len(held) > matcher.span:
                out, held = held[: len(held) - matcher.span], held[len(held) - matcher.span:]
                yield out
        if held:
            yield held

    def _cap(self, cap: Limit | None) -> int:
        """Bytes a response body may hold: a binary answer's `maxBinarySize`, else `max_response_bytes`."""
        return cap.bytes if cap is not None else self.settings.max_response_bytes

    async def _read(self, headers: Mapping[str, str], resp: Any, cap: Limit | None = None) -> bytes:
        """The decoded body, refused as soon as it passes the cap (decoded bytes, any encoding).

        The client hands over the body as sent (its decompression is off); upstream/decoding.py
        decodes it chunk by chunk under the cap. This is the one place a response body is read.
        """
        limit = self._cap(cap)
        length = headers.get("content-length")
        size = int(length) if length is not None and length.isdigit() else None
        if size is not None and size > limit:
            raise UpstreamTooLarge(self.namespace, f"{size:,} bytes, {_over(limit, cap)}")
        encoding = headers.get("content-encoding")
        if encoding is None and size is not None:  # the common case: one read of a known size, nothing to decode
            return bytes(await resp.bytes())
        decoder = None
        try:
            decoder = BodyDecoder(encoding, limit)
            reader = resp.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                decoder.feed(bytes(chunk))
            return decoder.finish()
        except TooLarge:
            what = "decoded " if decoder is not None and not decoder.identity else ""
            raise UpstreamTooLarge(self.namespace, f"{what}body {_over(limit, cap)}") from None
        except BadEncoding as exc:
            raise UpstreamBadResponse(self.namespace, str(exc)) from None

    def _answer(self, status: int, body: bytes, headers: HeaderMap, masked: bool = True) -> Response:
        """The answer with every credential masked, in the body and in every header read (an
        upstream that echoes a request must not hand the key to a client through either; redact.py).
        An answer only the runtime reads (`masked=False`: a token endpoint's) is left whole: masking
        matches by substring, and another credential's bytes inside a fresh token would break it."""
        try:
            content_type = headers.get("content-type")
        except ValueError:  # outside visible ASCII: the answer cannot be labelled
            raise UpstreamBadResponse(self.namespace, "its Content-Type header holds characters outside visible ASCII") from None
        if not masked:
            return Response(status, body, content_type, UpstreamHeaders(headers))
        matcher = redact.REGISTRY.credentials
        return Response(status, matcher.mask_bytes(body), matcher.mask_text(content_type) if content_type else None,
                        UpstreamHeaders(headers))

    def _readable(self, headers: HeaderMap) -> HeaderMap:
        """The headers that read as text; an unreadable Content-Type is a 502 (the answer cannot be
        labelled), any other unreadable header is dropped."""
        kept = HeaderMap()
        for name in headers.keys():
            try:
                for value in headers.getall(name):
                    kept.append(name, value)
            except ValueError:
                if name == "content-type":
                    raise UpstreamBadResponse(self.namespace, "its Content-Type header holds characters outside "
                                              "visible ASCII") from None
                log.debug("upstream '%s': dropping the %s header (characters outside visible ASCII)", self.namespace, name)
        return kept

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._client is not None:
            await self._client.close()
            self._client = None


def _over(limit: int, cap: Limit | None) -> str:
    return f"over the {size_text(limit)} {cap.name} limit" if cap is not None else f"over the {size_text(limit)} limit"


_TEXT_TYPES = re.compile(r"^(text/|application/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded)\b)", re.IGNORECASE)


def _textual(headers: list[tuple[str, str]]) -> bool:
    """Whether a streamed answer is text an echoed credential could be read in: not encoded
    (compressed bytes are passed as they are) and of a text media type. Other bodies (files,
    images) pass byte for byte, with their length."""
    kind = next((v for k, v in headers if k == "content-type"), "")
    encoded = any(k == "content-encoding" and v.strip().lower() != "identity" for k, v in headers)
    return not encoded and bool(_TEXT_TYPES.match(kind.strip()))


def _bad_header() -> InputError:
    return InputError.one("headers", "header", "a header value holds a character HTTP does not allow; nothing was sent")


_PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def _plain_pool(upstream: Upstream) -> tuple[str, h1.Pool | None]:
    """The built-in HTTP/1.1 client's pool for an `http://` upstream reached directly, with the
    URL prefix its requests start with; ("", None) when pyreqwest serves the namespace (TLS and
    HTTP/2, a proxy from the environment, credentials in the URL)."""
    parts = urlsplit(upstream.base_url)
    if parts.scheme.lower() != "http" or "@" in parts.netloc or not parts.hostname or any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return "", None
    try:
        port = parts.port or 80
    except ValueError:
        return "", None
    s = upstream.settings
    defaults = {"user-agent": f"User-Agent: {USER_AGENT}\r\n", "accept-encoding": f"Accept-Encoding: {ACCEPT_ENCODING}\r\n"}
    return f"{parts.scheme}://{parts.netloc}", h1.Pool(parts.hostname, port, s.max_connections, s.connect, s.read, defaults)


def _wire_url(text: str) -> Url:
    """The parsed URL, refused when parsing would change a byte of its path or query.

    The plan's URLs are already in the parser's form, so this only guards what the plan did not
    build itself (and any case it missed): the upstream must never see a path nobody wrote.
    """
    url = Url(text)
    if str(url) != text and _target(str(url)) != _target(text):
        raise InputError.one("path", "path", "the upstream URL would be rewritten by the HTTP client (a '.' or '..' "
                             "segment, or a character it re-encodes); nothing was sent")
    return url


def _target(url: str) -> str:
    """Path and query of an absolute URL (what follows the authority)."""
    start = url.find("/", url.find("//") + 2)
    return url[start:] if start >= 0 else "/"


def _connecting(exc: rq.RequestError) -> bool:
    """Whether a timeout hit while connecting (reqwest names the phase in the error's causes)."""
    return any("(Connect)" in c["message"] for c in exc.details.get("causes") or ())


def _cause(exc: rq.RequestError) -> str:
    """The innermost cause, short and without URLs (a query may carry credentials)."""
    causes = [c["message"] for c in exc.details.get("causes") or () if "://" not in c["message"]]
    if not causes:
        return type(exc).__name__
    text = causes[-1]
    found = _OS_ERROR.search(text)
    if found:
        return os.strerror(int(found.group(1))).lower()
    return text[:120]
