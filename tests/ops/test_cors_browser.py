"""CORS in a real browser: headless Chromium (Debian `chromium`, driven by Playwright) loads a page
from a tiny HTTP server on its own port and calls `fetch()` on `naftiko run` REST exposures with
`cors` blocks, on default (loopback) listeners.

The page is served under four origins (Chromium resolves `portal.test` and `evil.test` to
127.0.0.1, so nothing leaves the machine): a loopback origin and a named one the `cors` blocks
allow, and a loopback origin and a named one they do not. The named origins are not loopback
names, so they also go through the loopback Origin check of exposes/hosts.py, which lets the
origins a `cors` block allows pass (docs/cors.md, docs/SECURITY.md).
"""

from __future__ import annotations

import http.server
import itertools
import re
import threading
from typing import Any, Iterator

import pytest

from tests.e2e.test_docs_page import CHROMIUM, CHROMIUM_FLAGS, _browser_or_skip
from tests.support.servers import free_port

from .conftest import capability, eventually, start, write

PAGE = b"<!doctype html><title>portal</title><p>a page of another origin"
FETCH = """async ([url, init]) => {
  try {
    const r = await fetch(url, init);
    return {status: r.status, body: await r.json()};
  } catch (e) {
    return {error: `${e.name}: ${e.message}`};
  }
}"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_server() -> Iterator[int]:
    """The pages' origin: a real HTTP server on its own loopback port (any Host gets the page)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def exposures(tmp_path_factory, upstream, page_server) -> Iterator[tuple[str, str, Any]]:
    """`api` (bearer authentication, credentials allowed) and `open` (credentials not allowed),
    both allowing the pages at http://127.0.0.1:PAGE and http://portal.test:PAGE; with the access
    log, which shows what the server answered to each request the browser sent."""
    folder = tmp_path_factory.mktemp("cors-browser")
    (folder / "settings.env").write_text("EDITION=first\n")
    allowed = f"[http://127.0.0.1:{page_server}, 'http://portal.test:{page_server}']"
    port, open_port = free_port(), free_port()
    write(folder / "api.yaml", capability(port=port, extra=(
        "    authentication: {type: bearer, token: '{{EDITION}}'}\n"
        f"    cors: {{allowedOrigins: {allowed}, allowedHeaders: [Authorization], allowCredentials: true}}\n")))
    write(folder / "open.yaml", capability(port=open_port, namespace="open", extra=f"    cors: {{allowedOrigins: {allowed}}}\n"))
    with start(folder, "--base-uri", f"echo={upstream.url}", "--access-log", port=port) as proc:
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{open_port}", proc
        assert proc.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Chromium resolves the named origins to loopback itself (no DNS, no other address).
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            *CHROMIUM_FLAGS, "--host-resolver-rules=MAP portal.test 127.0.0.1, MAP evil.test 127.0.0.1"])
        try:
            yield browser
        finally:
            browser.close()


_ids = itertools.count(100)


def item() -> str:
    """A path no other call of the module uses, so its access-log lines are its own."""
    return f"/items/{next(_ids)}"


class Tab:
    """A page of one origin. `fetch` runs `fetch()` in it; `sent` and `cors_errors` are what
    Chromium's network layer reports (DevTools protocol): requests sent, CORS failures by URL."""

    def __init__(self, browser: Any, origin: str):
        self.page = browser.new_page()
        self.urls: dict[str, str] = {}
        self.sent: list[tuple[str, str]] = []
        self.cors_errors: dict[str, str] = {}
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.loadingFailed", self._failed)
        cdp.send("Network.enable")
        self.page.goto(origin + "/")

    def _sent(self, event: dict[str, Any]) -> None:
        self.urls[event["requestId"]] = event["request"]["url"]
        self.sent.append((event["request"]["method"], event["request"]["url"]))

    def _failed(self, event: dict[str, Any]) -> None:
        if "corsErrorStatus" in event:
            self.cors_errors[self.urls.get(event["requestId"], "?")] = event["corsErrorStatus"]["corsError"]

    def fetch(self, url: str, **init: Any) -> dict[str, Any]:
        return self.page.evaluate(FETCH, [url, init])

    def cors_error(self, url: str) -> str:
        """Chromium's reason for refusing the answer of `url` to the page (events arrive while
        Playwright is called, hence the waits in the page)."""
        for _ in range(100):
            if url in self.cors_errors:
                return self.cors_errors[url]
            self.page.wait_for_timeout(50)
        raise AssertionError(f"Chromium reported no CORS failure for {url}: {self.cors_errors}")

    def __enter__(self) -> "Tab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.page.close()


def answered(proc: Any, path: str, count: int) -> list[tuple[str, int]]:
    """(method, status) of the access-log lines of `path`, once there are `count` of them."""
    def lines() -> list[tuple[str, int]]:
        found = [(m, int(s)) for m, s in re.findall(rf'"(\w+) {re.escape(path)} HTTP/1.1" (\d+)', proc.stderr_text())]
        return found if len(found) >= count else []
    return eventually(lines, timeout=5, what=f"{count} access-log line(s) for {path}")


ALLOWED = ["http://127.0.0.1:{port}", "http://portal.test:{port}"]  # a loopback origin, and one that is not
REFUSED = ["http://localhost:{port}", "http://evil.test:{port}"]
BEARER = {"Authorization": "Bearer first"}


@pytest.mark.e2e
@pytest.mark.parametrize("origin", ALLOWED, ids=["loopback", "named"])
def test_an_allowed_page_reads_answers_and_passes_preflights(browser, page_server, exposures, upstream, origin):
    api, open_, proc = exposures
    with Tab(browser, origin.format(port=page_server)) as tab:
        simple = item()  # a GET without custom headers: no preflight
        assert tab.fetch(open_ + simple) == {"status": 200, "body": {"version": "v1", "target": simple}}
        assert answered(proc, simple, 1) == [("GET", 200)]
        upstream.script()
        custom = item()  # `Authorization` is not a CORS-safelisted header: the browser asks first
        assert tab.fetch(api + custom, headers=BEARER) == {"status": 200, "body": {"version": "v1", "target": custom}}
        assert ("OPTIONS", api + custom) in tab.sent
        assert answered(proc, custom, 2) == [("OPTIONS", 204), ("GET", 200)]
        assert [r.target for r in upstream.requests] == [custom]
        unauthorized = tab.fetch(api + item())  # the page can read why it was refused
        assert unauthorized["status"] == 401 and unauthorized["body"]["status"] == 401


@pytest.mark.e2e
def test_credentialed_calls_only_where_the_block_allows_credentials(browser, page_server, exposures):
    api, open_, proc = exposures
    with Tab(browser, ALLOWED[1].format(port=page_server)) as tab:
        allowed = item()
        assert tab.fetch(api + allowed, headers=BEARER, credentials="include")["status"] == 200
        refused = item()
        assert tab.fetch(open_ + refused, credentials="include") == {"error": "TypeError: Failed to fetch"}
        assert answered(proc, refused, 1) == [("GET", 200)]  # answered, without `Allow-Credentials: true`
        assert tab.cors_error(open_ + refused) == "InvalidAllowCredentials"


@pytest.mark.e2e
@pytest.mark.parametrize("origin", REFUSED, ids=["loopback", "named"])
def test_a_disallowed_page_reads_nothing(browser, page_server, exposures, upstream, origin):
    api, open_, proc = exposures
    with Tab(browser, origin.format(port=page_server)) as tab:
        upstream.script()
        simple = item()
        assert tab.fetch(open_ + simple) == {"error": "TypeError: Failed to fetch"}
        assert tab.cors_error(open_ + simple) == "MissingAllowOriginHeader"  # no Access-Control-* header came back
        if "localhost" in origin:  # a loopback page passes the loopback checks: served, unreadable (CORS is no access control)
            assert answered(proc, simple, 1) == [("GET", 200)] and [r.target for r in upstream.requests] == [simple]
        else:  # any other page is refused by the loopback Origin check before the upstream is called
            assert answered(proc, simple, 1) == [("GET", 403)] and upstream.requests == []
        upstream.script()
        custom = item()
        assert tab.fetch(api + custom, headers=BEARER) == {"error": "TypeError: Failed to fetch"}
        assert answered(proc, custom, 1) == [("OPTIONS", 403)]  # the preflight refused: the call itself is never sent
        assert upstream.requests == []
