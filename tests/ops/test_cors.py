"""CORS per REST exposure (`cors` block): preflights, headers only for allowed origins, credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_text
from tests.support.servers import free_port

from .conftest import capability, get, start, write
from .test_multi_file import run_cli

CORS = """    authentication: {type: bearer, token: '{{EDITION}}'}
    cors:
      allowedOrigins: [https://portal.example.com, 'https://*.dev.example.com']
      allowedHeaders: [Authorization, Content-Type]
      exposedHeaders: [X-Request-Id]
      allowCredentials: true
      maxAge: 600
"""
TOKEN = {"Authorization": "Bearer first"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, upstream):
    folder = tmp_path_factory.mktemp("cors")
    (folder / "settings.env").write_text("EDITION=first\n")
    port, open_port = free_port(), free_port()
    write(folder / "cap.yaml", capability(port=port, extra=CORS))
    write(folder / "open.yaml", capability(port=open_port, namespace="open", extra="    cors: {origins: '*', methods: [GET]}\n"))
    with start(folder, "--base-uri", f"echo={upstream.url}", port=port) as proc:
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{open_port}"
        assert proc.stop() == 0


def preflight(url: str, origin: str, method: str = "GET", headers: str | None = None):
    extra = {"Access-Control-Request-Headers": headers} if headers else {}
    return get_or_options("OPTIONS", url, {"Origin": origin, "Access-Control-Request-Method": method, **extra})


def get_or_options(method: str, url: str, headers: dict[str, str]):
    import httpx

    return httpx.request(method, url, headers=headers, timeout=10)


def cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def test_an_allowed_origin_gets_the_cors_headers(served):
    url, _ = served
    for origin in ("https://portal.example.com", "https://api.team.dev.example.com"):
        response = get(f"{url}/version", headers={"Origin": origin, **TOKEN})
        assert response.status_code == 200
        assert cors_headers(response) == {"access-control-allow-origin": origin, "access-control-allow-credentials": "true",
                                          "access-control-expose-headers": "X-Request-Id"}
        assert response.headers["vary"] == "Origin"


def test_a_disallowed_origin_gets_no_cors_header_at_all(served):
    url, _ = served
    for origin in ("https://evil.example", "https://dev.example.com", "http://portal.example.com", "null"):
        response = get(f"{url}/version", headers={"Origin": origin, **TOKEN})
        assert response.status_code == 403 and cors_headers(response) == {}  # a loopback listener refuses other pages
        assert response.json()["title"] == "Cross-origin request refused"
    for origin in ("http://localhost:3000", "http://127.0.0.1:5173"):  # a local page: served, without CORS headers
        response = get(f"{url}/version", headers={"Origin": origin, **TOKEN})
        assert response.status_code == 200 and cors_headers(response) == {} and response.headers["vary"] == "Origin"
    assert get(f"{url}/version", headers=TOKEN).headers["vary"] == "Origin"  # caches must key on Origin


def test_preflights_are_answered_before_authentication(served):
    url, _ = served
    ok = preflight(f"{url}/items/1", "https://portal.example.com", "GET", "authorization, content-type")
    assert ok.status_code == 204
    assert cors_headers(ok) == {"access-control-allow-origin": "https://portal.example.com",
                                "access-control-allow-methods": "GET, HEAD",
                                "access-control-allow-headers": "authorization, content-type",
                                "access-control-allow-credentials": "true", "access-control-max-age": "600"}
    for origin, method, headers, detail in [
        ("https://evil.example", "GET", None, "requests from web pages of other origins are not served"),  # loopback check
        ("https://portal.example.com", "DELETE", None, "method DELETE is not allowed for cross-origin requests; allowed: GET, HEAD"),
        ("https://portal.example.com", "GET", "x-debug", "request header(s) x-debug not allowed for cross-origin requests; allowed: authorization, content-type"),
    ]:
        refused = preflight(f"{url}/items/1", origin, method, headers)
        assert refused.status_code == 403 and cors_headers(refused) == {}
        assert refused.headers["content-type"] == "application/problem+json" and refused.json()["detail"] == detail


def test_a_401_is_readable_by_an_allowed_page(served):
    url, _ = served
    response = get(f"{url}/version", headers={"Origin": "https://portal.example.com"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "https://portal.example.com"


def test_any_origin_without_credentials(served):
    _, url = served
    response = get(f"{url}/version", headers={"Origin": "https://anyone.example"})
    assert cors_headers(response) == {"access-control-allow-origin": "*"} and "vary" not in response.headers
    ok = preflight(f"{url}/version", "https://anyone.example", "GET", "x-anything")
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "*"
    assert ok.headers["access-control-allow-headers"] == "x-anything" and "access-control-allow-credentials" not in ok.headers


def read(block: str) -> Diagnostics:
    diagnostics = Diagnostics()
    load_text(capability(extra=block), "cap.yaml", Path("."), diagnostics)
    return diagnostics


def test_a_wildcard_origin_with_credentials_is_refused_at_startup(cap_dir: Path):
    write(cap_dir / "cap.yaml", capability(extra="    cors: {allowedOrigins: ['*'], allowCredentials: true}\n"))
    result = run_cli(cap_dir / "cap.yaml")
    assert result.returncode == 1
    assert (f"{cap_dir / 'cap.yaml'}:21:53: error: exposure 'api': cors: `allowCredentials: true` with the origin '*' "
            "would let every website call this API with its visitors' cookies and credentials; list the origins allowed instead") in result.stderr


def test_cors_mistakes_are_errors_with_positions():
    block = ("    cors:\n      origins: [https://ok.example, 'https://x.example/path', 'null']\n      allowedMethod: [GET]\n"
             "      methods: [GET, FETCH]\n      maxAge: soon\n      credentials: yes please\n")
    errors = [str(d) for d in read(block).errors]
    assert errors == [
        "cap.yaml:23:7: error: unknown key `allowedMethod` in a `cors` block; did you mean `allowedMethods`? As written it is ignored [key-typo]",
        "cap.yaml:22:37: error: exposure 'api': cors: origin 'https://x.example/path' must be scheme://host[:port] (no path), e.g. https://portal.example.com or https://*.example.com [cors]",
        "cap.yaml:22:63: error: exposure 'api': cors: the 'null' origin is sent by sandboxed iframes and local files, so allowing it allows any page [cors]",
        "cap.yaml:24:22: error: exposure 'api': cors: 'FETCH' is not an HTTP method; use some of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or '*' [cors]",
        "cap.yaml:26:20: error: exposure 'api': cors: `credentials` must be true or false [cors]",
        "cap.yaml:25:15: error: exposure 'api': cors: `maxAge` must be a whole number of seconds >= 0, got 'soon' [cors]",
    ]


def test_on_a_published_listener_other_origins_are_served_without_cors_headers():
    """With --host (no loopback checks) the CORS middleware alone decides: a request of another
    origin is served without `Access-Control-*` headers, its preflight refused naming the origin."""
    import asyncio

    import httpx

    from naftiko_runtime.capability.model import Cors
    from naftiko_runtime.capability.diagnostics import Pos
    from naftiko_runtime.exposes.cors import CorsMiddleware, CorsPolicy

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    policy = CorsPolicy(Cors(origins=["https://portal.example.com"], pos=Pos("cap.yaml")), {"GET"})

    async def calls():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(CorsMiddleware(app, policy)), base_url="http://gw") as client:
            served = await client.get("/x", headers={"Origin": "https://evil.example"})
            refused = await client.options("/x", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
            return served, refused

    served, refused = asyncio.run(calls())
    assert served.status_code == 200 and cors_headers(served) == {} and served.headers["vary"] == "Origin"
    assert refused.status_code == 403 and cors_headers(refused) == {}
    assert refused.json()["detail"] == "origin https://evil.example is not allowed to call this API from a browser"
