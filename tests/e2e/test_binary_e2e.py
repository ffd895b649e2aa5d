"""Binary content (beta1) through `naftiko run`: an upstream answering a PNG reaches REST callers as
the same bytes with their media type, MCP clients as base64 image content that decodes to the same
bytes; above `maxBinarySize` the answer is a 502 (an MCP error result) naming the limit. The same
file's MCP exposure sends its `ttlMs`/`cacheScope` (beta4) as the protocol's cache hints."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
from mcp import Client

from tests.support.servers import free_port, http_request, naftiko

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def png(width: int = 4, height: int = 4) -> bytes:
    """A real PNG (with bytes that are not UTF-8: 0x89, NULs), made here rather than shipped."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes((x * 60, y * 60, 200)) * 1 + b"\x00\xff\x80" * (width - 1) for x in range(height) for y in range(1))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png()


@pytest.fixture(scope="module")
def echo_module():
    from tests.support.servers import echo_upstream

    with echo_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def photos(echo_module):
    rest, mcp = free_port(), free_port()
    proc = naftiko(["run", "tests/fixtures/versions/photos-beta4.yaml", "--base-uri", f"photo-library={echo_module.base_url}",
                    "--port", f"photos-api={rest}", "--port", f"photos-mcp={mcp}"], ports_to_wait=[rest, mcp])
    with proc:
        yield f"http://127.0.0.1:{rest}", f"http://127.0.0.1:{mcp}/mcp", echo_module


def test_rest_returns_the_upstream_bytes_with_their_media_type(photos):
    rest, _, echo = photos
    echo.respond_with(200, PNG, headers={"Content-Type": "image/png"})
    r = http_request("GET", f"{rest}/photos/p1/image")
    assert r.status == 200 and r.body == PNG and r.headers["content-type"] == "image/png"
    assert echo.last["raw_path"] == "/photos/p1/binary"
    # `outputMediaType` overrides what the upstream says
    echo.respond_with(200, PNG, headers={"Content-Type": "application/octet-stream"})
    r = http_request("GET", f"{rest}/photos/p1/png")
    assert r.status == 200 and r.body == PNG and r.headers["content-type"] == "image/png"


def test_rest_answer_over_max_binary_size_is_a_502_naming_the_limit(photos):
    rest, _, echo = photos
    echo.respond_with(200, b"\x00" * (64 * 1024 + 1), headers={"Content-Type": "image/png"})
    r = http_request("GET", f"{rest}/photos/big/image")
    assert r.status == 502 and r.headers["content-type"] == "application/problem+json"
    assert "64 KiB maxBinarySize of 'photo-library.download-photo'" in r.json()["detail"]


def test_openapi_advertises_the_binary_media_type(photos):
    rest, _, _ = photos
    doc = http_request("GET", f"{rest}/openapi.json").json()
    content = doc["paths"]["/photos/{id}/image"]["get"]["responses"]["default"]["content"]
    assert content == {"image/png": {"schema": {"type": "string", "format": "binary"}}}


async def test_mcp_returns_base64_image_content_of_the_same_bytes_and_cache_hints(photos):
    _, mcp, echo = photos
    echo.respond_with(200, PNG, headers={"Content-Type": "image/png"})
    async with Client(mcp) as client:
        listing = await client.list_tools()
        assert (listing.ttl_ms, listing.cache_scope) == (60000, "public")
        result = await client.call_tool("get-photo", {"id": "p1"})
        assert not result.is_error
        [content] = result.content
        assert content.type == "image" and content.mime_type == "image/png"
        assert base64.b64decode(content.data) == PNG
        echo.respond_with(200, b"\x00" * (64 * 1024 + 1), headers={"Content-Type": "image/png"})
        result = await client.call_tool("get-photo", {"id": "big"})
        assert result.is_error and "64 KiB maxBinarySize" in result.content[0].text
        # resources: the same cache hints, and a binary resource reads as a base64 blob
        templates = await client.list_resource_templates()
        assert (templates.ttl_ms, templates.cache_scope) == (60000, "public")
        echo.respond_with(200, PNG, headers={"Content-Type": "application/octet-stream"})
        read = await client.read_resource("photos://library/p1/bytes")
        assert (read.ttl_ms, read.cache_scope) == (60000, "public")
        [blob] = read.contents
        assert blob.mime_type == "image/png" and base64.b64decode(blob.blob) == PNG


def test_other_binary_types_are_embedded_blob_resources_never_text():
    from naftiko_runtime.exposes.mcp_tools import binary_content
    from naftiko_runtime.pipeline import Outcome

    pdf = b"%PDF-1.7\n\xe2\xe3\xcf\xd3\n\x00\xff"
    block = binary_content("get-doc", Outcome(200, pdf, "application/pdf; qs=1", binary=True))
    assert block["type"] == "resource" and block["resource"]["mimeType"] == "application/pdf"
    assert block["resource"]["uri"].startswith("naftiko://transient/get-doc/") and base64.b64decode(block["resource"]["blob"]) == pdf
