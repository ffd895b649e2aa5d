"""Compressed upstream answers: the response cap counts decoded bytes, for every encoding.

A fault upstream sends bodies that inflate 64-fold past the cap (`--max-response 1MiB`), gzip,
deflate (zlib-wrapped and raw), br and zstd, each with a Content-Length, chunked, and delimited by
closing the connection. Each is a 502 naming the limit; the process's memory stays bounded; the
next request succeeds. Bodies under the cap are decoded and served as before.
"""

from __future__ import annotations

import functools
import json
import zlib

import anyio
import brotli
import pytest
try:
    from compression import zstd
except ImportError:
    from backports import zstd

from .faults import Fault
from .harness import VAPI, Naftiko

CAP = 1 << 20
BOMB = 64 << 20  # decoded size of every bomb: 64 times the cap


def _zlib(wbits: int, data_mib: int) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    block = b"\0" * (1 << 20)
    return b"".join(c.compress(block) for _ in range(data_mib)) + c.flush()


@functools.cache
def bomb(encoding: str) -> bytes:
    mib = BOMB >> 20
    if encoding == "gzip":
        return _zlib(31, mib)
    if encoding == "deflate":
        return _zlib(15, mib)
    if encoding == "deflate-raw":
        return _zlib(-15, mib)
    block = b"\0" * (1 << 20)
    if encoding == "br":
        c = brotli.Compressor(quality=5)
        return b"".join(c.process(block) for _ in range(mib)) + c.finish()
    c = zstd.ZstdCompressor()
    return b"".join(c.compress(block) for _ in range(mib)) + c.flush()


def encode(encoding: str, data: bytes) -> bytes:
    return {"gzip": lambda d: zlib.compress(d, wbits=31), "deflate": zlib.compress,
            "deflate-raw": lambda d: zlib.compress(d, wbits=-15), "br": brotli.compress,
            "zstd": zstd.compress}[encoding](data)


ENCODINGS = ["gzip", "deflate", "deflate-raw", "br", "zstd"]
FRAMINGS = {"content-length": {}, "chunked": {"chunked": True}, "close": {"close_delimited": True}}


@pytest.fixture(scope="module")
def vapi(upstream):
    runtime = Naftiko(VAPI, "--base-uri", f"sessions-sessions={upstream.url}", "--max-response", "1MiB",
                      "--retries", "0", "--timeout", "10")
    yield runtime
    assert runtime.stop() == 0


def recovers(vapi, upstream):
    upstream.script()
    response = vapi.request("GET", "/v1/session")
    assert response.status_code == 200, response.text
    assert response.json()["target"] == "/session"


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_bomb_is_502_naming_the_limit(vapi, upstream, encoding, framing):
    name = "deflate" if encoding == "deflate-raw" else encoding
    upstream.script(Fault.answer(200, bomb(encoding), headers={"Content-Encoding": name}, **FRAMINGS[framing]))
    response = vapi.request("GET", "/v1/session")
    assert response.status_code == 502, response.text[:300]
    body = response.json()
    assert body["upstream"] == "sessions-sessions" and "over the 1 MiB limit" in body["detail"], body
    assert vapi.rss_mb < 200, f"RSS {vapi.rss_mb:.0f} MB after a {BOMB >> 20} MiB bomb"
    recovers(vapi, upstream)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compressed_answers_under_the_cap_are_decoded(vapi, upstream, encoding):
    data = json.dumps({"items": ["x" * 100] * 5000}).encode()  # ~500 KB decoded
    name = "deflate" if encoding == "deflate-raw" else encoding
    upstream.script(Fault.answer(200, encode(encoding, data), headers={"Content-Encoding": name}, chunked=True))
    response = vapi.request("GET", "/v1/session")
    assert response.status_code == 200 and response.content == data
    assert "content-encoding" not in response.headers


def test_the_runtime_asks_for_the_encodings_it_can_bound(vapi, upstream):
    upstream.script()
    response = vapi.request("GET", "/v1/session")
    assert response.json()["headers"]["accept-encoding"] == "gzip, deflate, br, zstd"


@pytest.mark.parametrize("headers, body, fragment", [
    ({"Content-Encoding": "gzip"}, b"not gzip at all", "not valid"),
    ({"Content-Encoding": "gzip"}, zlib.compress(b"x" * 1000, wbits=31)[:-12], "ends before"),
    ({"Content-Encoding": "compress"}, b"x", "unsupported content encoding 'compress'"),
], ids=["garbage", "truncated", "unknown"])
def test_a_body_that_does_not_decode_is_502(vapi, upstream, headers, body, fragment):
    upstream.script(Fault.answer(200, body, headers=headers))
    response = vapi.request("GET", "/v1/session")
    assert response.status_code == 502 and fragment in response.json()["detail"], response.text
    recovers(vapi, upstream)


def test_mcp_bomb_is_an_error_result(vapi, upstream):
    from mcp import Client

    upstream.script(Fault.answer(200, bomb("gzip"), headers={"Content-Encoding": "gzip"}, chunked=True))

    async def go():
        async with Client(f"http://127.0.0.1:{vapi.ports['sessions-sessions-mcp']}/mcp") as client:
            return await client.call_tool("vapi-sessioncontrollerfindallpaginated", {})

    result = anyio.run(go)
    text = "".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error and "over the 1 MiB limit" in text, text
    assert vapi.rss_mb < 200
    recovers(vapi, upstream)


def test_no_secret_in_any_log_line_or_body(vapi):
    vapi.assert_no_secret()
