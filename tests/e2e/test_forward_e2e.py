"""End to end: a `forward` resource served by `naftiko run`, proxying to an upstream on a real socket.

Trusted headers pass and others do not, the consumed namespace's credentials and fixed headers are
applied, the query string goes along, operations on the resource win, no path climbs out of the
upstream's base path, and a 5 MiB body is streamed both ways: the upstream sees the upload begin
before the caller has finished sending it, and the caller reads the download while the upstream is
still holding the rest back (a proxy that buffered either body whole would hang both tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import threading
from typing import Iterator

import pytest

from tests.support.servers import RoutesUpstream, free_port, http_request, naftiko

pytestmark = [pytest.mark.e2e]
TOKEN = "tok-backend-72d1"
SIZE = 5 << 20
DOWNLOAD = os.urandom(SIZE)


class Streaming:
    """Upstream handlers that take and give 5 MiB piece by piece, and wait for the test between pieces."""

    def __init__(self) -> None:
        self.upload_started = threading.Event()  # the upstream has bytes of the upload
        self.release_download = threading.Event()  # the caller has bytes of the download

    async def upload(self, request):
        from aiohttp import web

        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            self.upload_started.set()
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"bytes": size, "sha256": digest.hexdigest(), "contentLength": request.headers.get("Content-Length"),
                                  "contentType": request.headers.get("Content-Type")})

    async def download(self, request):
        from aiohttp import web

        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "Content-Length": str(SIZE)})
        await response.prepare(request)
        half = SIZE // 2
        await response.write(DOWNLOAD[:half])
        released = await asyncio.get_running_loop().run_in_executor(None, self.release_download.wait, 20)
        if released:
            await response.write(DOWNLOAD[half:])
        await response.write_eof()
        return response


STREAMING = Streaming()


@pytest.fixture(scope="module")
def backend() -> Iterator[RoutesUpstream]:
    routes = {("PUT", "/api/files/upload"): STREAMING.upload, ("GET", "/api/files/download"): STREAMING.download}
    with RoutesUpstream(routes) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(backend: RoutesUpstream) -> Iterator[int]:
    port = free_port()
    proc = naftiko(["run", "tests/fixtures/orchestration/forward.yaml", "--base-uri", f"backend={backend.base_url}/api",
                    "--port", f"gateway={port}", "--max-body", "8MiB"], env={"BACKEND_TOKEN": TOKEN}, ports_to_wait=[port])
    with proc:
        yield port


def test_method_path_query_body_and_only_trusted_headers_go_upstream_with_its_credentials(gateway, backend):
    backend.respond_with(201, headers={"ETag": '"v7"', "X-Upstream": "yes"})
    response = http_request("POST", f"http://127.0.0.1:{gateway}/proxy/v1/pages/a%2Fb?filter=x%20y&filter=z",
                            json_body={"title": "hello"},
                            headers={"X-Request-Id": "req-1", "X-Internal": "secret", "Authorization": "Bearer caller-token", "Accept": "application/json"})
    assert response.status == 201 and response.headers["etag"] == '"v7"' and response.headers["x-upstream"] == "yes"
    seen = backend.last
    assert (seen["method"], seen["raw_path"]) == ("POST", "/api/v1/pages/a%2Fb?filter=x%20y&filter=z")
    assert seen["json"] == {"title": "hello"}
    headers = seen["headers"]
    assert headers["x-request-id"] == "req-1" and headers["accept"] == "application/json"  # trusted (any case)
    assert "x-internal" not in headers
    assert headers["authorization"] == f"Bearer {TOKEN}"  # the namespace's credentials, never the caller's
    assert headers["x-api-version"] == "2024-01"  # the namespace's fixed header
    assert TOKEN not in response.text and "Bearer ***" in response.text  # an echoed credential is masked


def test_operations_on_the_resource_win_and_the_rest_of_the_exposure_is_unchanged(gateway, backend):
    backend.reset()
    refused = http_request("DELETE", f"http://127.0.0.1:{gateway}/proxy/v1/pages/1")
    assert refused.status == 200 and refused.json() == {"refused": "deletes are not forwarded"}
    assert backend.received == []
    status = http_request("GET", f"http://127.0.0.1:{gateway}/status")
    assert status.status == 200 and backend.last["raw_path"] == "/api/status"
    base = http_request("GET", f"http://127.0.0.1:{gateway}/proxy")
    assert base.status == 200 and backend.last["raw_path"] == "/api"


def test_the_forwarded_routes_are_in_the_openapi_document(gateway):
    paths = http_request("GET", f"http://127.0.0.1:{gateway}/openapi.json").json()["paths"]
    proxy = paths["/proxy/{path}"]
    assert sorted(proxy) == ["delete", "get", "patch", "post", "put"]
    assert proxy["delete"]["operationId"] == "no_deletes"  # the resource's own operation, not forwarded
    assert proxy["get"]["summary"] == "Forwarded to upstream 'backend'" and proxy["get"]["parameters"][0]["name"] == "path"
    assert "requestBody" in proxy["put"] and "requestBody" not in proxy["get"]
    assert sorted(paths["/proxy"]) == ["delete", "get", "patch", "post", "put"] and paths["/proxy"]["get"]["parameters"] == []
    assert list(paths["/status"]) == ["get"]


@pytest.mark.parametrize("path", ["/proxy/..%2f..%2fadmin", "/proxy/%2e%2e/admin", "/proxy/v1/../../admin", "/proxy/v1/%2E./x"])
def test_no_path_climbs_out_of_the_upstream_base_path(gateway, backend, path):
    backend.reset()
    response = http_request("GET", f"http://127.0.0.1:{gateway}{path}")
    assert response.status == 400 and "is not allowed as a path value (a '.' or '..' segment)" in response.json()["detail"]
    assert backend.received == []


def test_a_body_over_the_cap_is_refused_before_anything_is_sent(gateway, backend):
    backend.reset()
    response = http_request("PUT", f"http://127.0.0.1:{gateway}/proxy/files/upload", body=b"x" * (9 << 20))
    assert response.status == 413 and backend.received == []


def test_five_mib_are_streamed_up_and_down(gateway, backend):
    body = os.urandom(SIZE)
    conn = http.client.HTTPConnection("127.0.0.1", gateway, timeout=30)
    conn.putrequest("PUT", "/proxy/files/upload")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(SIZE))
    conn.endheaders()
    conn.send(body[: SIZE // 2])
    assert STREAMING.upload_started.wait(15), "the upstream saw nothing of the upload before the caller finished it"
    conn.send(body[SIZE // 2:])
    answer = conn.getresponse()
    assert answer.status == 200
    import json

    assert json.loads(answer.read()) == {"bytes": SIZE, "sha256": hashlib.sha256(body).hexdigest(), "contentLength": str(SIZE),
                                         "contentType": "application/octet-stream"}
    conn.close()

    conn = http.client.HTTPConnection("127.0.0.1", gateway, timeout=30)
    conn.request("GET", "/proxy/files/download")
    answer = conn.getresponse()
    assert answer.status == 200 and answer.getheader("Content-Length") == str(SIZE)
    first = answer.read(SIZE // 4)  # arrives while the upstream still holds back its second half
    STREAMING.release_download.set()
    rest = answer.read()
    assert hashlib.sha256(first + rest).digest() == hashlib.sha256(DOWNLOAD).digest()
    conn.close()
