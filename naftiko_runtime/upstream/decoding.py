"""Decode an upstream body with its size capped on the decoded bytes, whatever the encoding.

An upstream answer of 1 MB `Content-Encoding: gzip` can inflate to 1 GiB: a cap on the bytes read
from the socket does not bound memory. A transport therefore receives the body *undecoded* (its
HTTP client's auto-decompression off) and feeds it here chunk by chunk; every decoder is asked for
at most what is left under the cap (zlib/zstd `max_length`, brotli `output_buffer_limit`), so the
answer is refused as soon as the decoded size passes the limit, with memory bounded by the limit.

This is the contract every upstream client behind `Transport` meets (docs/SECURITY.md): raw body
chunks in, `BodyDecoder.feed` / `finish` out. Encodings: gzip (x-gzip), deflate (zlib-wrapped or
raw), br, zstd, identity, and chains of them (`Content-Encoding: gzip, br` decodes br first).
"""

from __future__ import annotations

import sys
import zlib
from typing import Protocol

import brotli

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

# What the runtime asks upstreams for: everything it can decode under the cap.
ACCEPT_ENCODING = "gzip, deflate, br, zstd"
_MAX_MEMBERS = 1024  # concatenated gzip members / zstd frames in one body (real bodies have one)


class TooLarge(Exception):
    """The decoded body passed the limit."""


class BadEncoding(Exception):
    """The body is not what its Content-Encoding says, or the encoding is unknown."""


class _Stage(Protocol):
    def feed(self, data: bytes, room: int) -> bytes: ...

    def finish(self, room: int) -> bytes: ...


class _Zlib:
    """gzip and deflate; a deflate body may be zlib-wrapped (RFC 9110) or raw (common in practice)."""

    def __init__(self, gzip: bool):
        self._wbits = 16 + zlib.MAX_WBITS if gzip else None  # None: decided on the first bytes
        self._d: zlib._Decompress | None = zlib.decompressobj(self._wbits) if gzip else None
        self._members = 0

    def feed(self, data: bytes, room: int) -> bytes:
        if self._d is None:
            if not data:
                return b""
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._wbits = zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS
            self._d = zlib.decompressobj(self._wbits)
        out = self._d.decompress(data, room + 1)
        while self._d.eof and self._d.unused_data and len(out) <= room:  # another gzip member
            self._members += 1
            if self._members > _MAX_MEMBERS:
                raise BadEncoding(f"more than {_MAX_MEMBERS} concatenated members")
            rest = self._d.unused_data
            self._d = zlib.decompressobj(self._wbits)
            out += self._d.decompress(rest, room + 1 - len(out))
        return out

    def finish(self, room: int) -> bytes:
        if self._d is None:
            return b""
        if not self._d.eof:
            raise BadEncoding("the compressed body ends before its end marker")
        return b""


class _Brotli:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()

    def feed(self, data: bytes, room: int) -> bytes:
        out = self._d.process(data, output_buffer_limit=room + 1)
        while len(out) <= room and not self._d.can_accept_more_data():
            out += self._d.process(b"", output_buffer_limit=room + 1 - len(out))
        return out

    def finish(self, room: int) -> bytes:
        if not self._d.is_finished():
            raise BadEncoding("the compressed body ends before its end marker")
        return b""


class _Zstd:
    def __init__(self) -> None:
        self._d = zstd.ZstdDecompressor()
        self._frames = 0

    def feed(self, data: bytes, room: int) -> bytes:
        out = self._d.decompress(data, room + 1)
        while len(out) <= room:
            if self._d.eof and self._d.unused_data:  # another frame
                self._frames += 1
                if self._frames > _MAX_MEMBERS:
                    raise BadEncoding(f"more than {_MAX_MEMBERS} concatenated frames")
                rest = self._d.unused_data
                self._d = zstd.ZstdDecompressor()
                out += self._d.decompress(rest, room + 1 - len(out))
            elif not self._d.eof and not self._d.needs_input:  # output was capped: drain it
                more = self._d.decompress(b"", room + 1 - len(out))
                if not more:
                    break
                out += more
            else:
                break
        return out

    def finish(self, room: int) -> bytes:
        if not self._d.eof:
            raise BadEncoding("the compressed body ends before its end marker")
        return b""


def _stage(name: str) -> _Stage:
    if name in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if name == "deflate":
        return _Zlib(gzip=False)
    if name == "br":
        return _Brotli()
    if name == "zstd":
        return _Zstd()
    raise BadEncoding(f"unsupported content encoding '{name[:40]}'")


_DECODE_ERRORS = (zlib.error, brotli.error, zstd.ZstdError, EOFError)


class BodyDecoder:
    """Decodes one body incrementally; raises TooLarge past `limit` decoded bytes, BadEncoding."""

    __slots__ = ("limit", "size", "_stages", "_chunks")

    def __init__(self, content_encoding: str | None, limit: int):
        self.limit = limit
        self.size = 0
        names = [n.strip().lower() for n in (content_encoding or "").split(",")]
        # applied in the order listed, so decoded in reverse
        self._stages = [_stage(n) for n in reversed(names) if n and n != "identity"]
        self._chunks: list[bytes] = []

    @property
    def identity(self) -> bool:
        return not self._stages

    def feed(self, data: bytes) -> None:
        try:
            for stage in self._stages:
                data = self._bounded(stage.feed(data, self.limit - self.size))
        except _DECODE_ERRORS as exc:
            raise BadEncoding(f"the body is not valid {self._name(exc)}") from None
        self._add(data)

    def finish(self) -> bytes:
        """The whole decoded body, once the last raw chunk was fed."""
        try:
            for i, stage in enumerate(self._stages):
                tail = stage.finish(self.limit - self.size)
                for later in self._stages[i + 1:]:
                    tail = self._bounded(later.feed(tail, self.limit - self.size))
                self._add(tail)
        except _DECODE_ERRORS as exc:
            raise BadEncoding(f"the body is not valid {self._name(exc)}") from None
        return b"".join(self._chunks)

    def _bounded(self, data: bytes) -> bytes:
        """Every stage's output counts against the room left: an inner layer is bounded too."""
        if len(data) > self.limit - self.size:
            raise TooLarge()
        return data

    def _add(self, data: bytes) -> None:
        if data:
            self.size += len(data)
            if self.size > self.limit:
                raise TooLarge()
            self._chunks.append(data)

    def _name(self, exc: BaseException) -> str:
        return {zlib.error: "gzip/deflate data", brotli.error: "brotli data"}.get(type(exc), "compressed data")
