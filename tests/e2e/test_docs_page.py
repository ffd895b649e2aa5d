"""`/docs`: the interactive API page, in a real headless Chromium (Debian `chromium`, driven by
Playwright), on the seed with `--mock`; and its HTTP behaviour (offline assets, auth, --no-docs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest
from starlette.testclient import TestClient

from naftiko_runtime.capability.load import load_text
from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.exposes.rest import build_app
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.runtime import Runtime
from tests.e2e.conftest import start_seed
from tests.support.servers import REPO_ROOT, http_request, in_ci

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SCREENSHOT = REPO_ROOT / "docs" / "images" / "api-docs.png"


def _browser_or_skip() -> None:
    missing = []
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        if in_ci():
            raise RuntimeError(f"headless browser test needs {', '.join(missing)}  [CI=true: refusing to skip]")
        pytest.skip(f"needs {', '.join(missing)}")


@pytest.fixture(scope="module")
def seed_mock() -> Iterator[str]:
    proc, url = start_seed("--mock", env={"VAPI_API_KEY": None})
    with proc:
        yield url


@pytest.mark.e2e
def test_docs_page_lists_the_operations_and_try_it_creates(seed_mock, tmp_path):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(seed_mock) else None)
            page.goto(seed_mock + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            operations = [(o.locator(".opblock-summary-method").inner_text(), o.locator(".opblock-summary-path").inner_text())
                          for o in page.locator(".opblock").all()]
            assert operations == [("POST", "/v1/session"), ("GET", "/v1/session"), ("GET", "/v1/session/{id}"),
                                  ("PATCH", "/v1/session/{id}"), ("DELETE", "/v1/session/{id}")]
            create = page.locator(".opblock-post").first
            create.locator(".opblock-summary").click()
            create.locator("button.try-out__btn").click()
            create.locator("textarea.body-param__text").fill('{"name": "from the docs page"}')
            create.locator("button.execute").click()
            status = create.locator(".live-responses-table tbody .response-col_status")
            status.wait_for(timeout=30_000)
            assert status.inner_text().strip() == "201"
            assert "from the docs page" in create.locator(".live-responses-table .microlight").first.inner_text()
            page.screenshot(path=str(tmp_path / "api-docs.png"))
            if os.environ.get("UPDATE_SCREENSHOTS"):
                SCREENSHOT.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert outside == []  # no CDN, no font host: everything came from the exposure
        finally:
            browser.close()
    listed = http_request("GET", seed_mock + "/v1/session").json()
    assert [s["name"] for s in listed] == ["from the docs page"]  # the try-it request reached the exposure


@pytest.mark.e2e
def test_no_docs_flag():
    proc, url = start_seed("--mock", "--no-docs", env={"VAPI_API_KEY": None})
    with proc:
        assert http_request("GET", url + "/docs").status == 404
        assert http_request("GET", url + "/openapi.json").status == 200
    assert "docs at" not in proc.stderr_text()


GUARDED = """\
naftiko: 1.0.0-alpha2
binds:
- namespace: env
  keys: {EXPOSURE_TOKEN: EXPOSURE_TOKEN}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://127.0.0.1:9
    resources:
    - name: things
      path: /things
      operations:
      - {name: list, method: GET}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    authentication: {type: bearer, token: "{{EXPOSURE_TOKEN}}"}
    resources:
    - path: /things
      operations:
      - {method: GET, name: list, call: up.list}
"""


def test_docs_are_behind_the_exposure_authentication_and_serve_offline_assets(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPOSURE_TOKEN", "s3cret-token")
    cap = load_text(GUARDED, "guarded.yaml", tmp_path)
    plan = compile_plan(cap, resolve_binds(cap, tmp_path))
    client = TestClient(build_app(Runtime(plan), plan.rest[0]), base_url="http://127.0.0.1")  # a loopback Host, as a browser sends
    assert client.get("/docs").status_code == 401
    assert client.get("/docs/swagger-ui-bundle.js").status_code == 401
    auth = {"Authorization": "Bearer s3cret-token"}
    page = client.get("/docs", headers=auth)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"] and "<script>" not in page.text
    bundle = client.get("/docs/swagger-ui-bundle.js", headers=auth)
    assert bundle.status_code == 200 and len(bundle.content) > 500_000 and b"SwaggerUIBundle" in bundle.content
    assert client.get("/docs/init.js", headers=auth).text.count('url: "/openapi.json"') == 1
    assert client.get("/docs/../../etc/passwd", headers=auth).status_code == 404
    assert client.post("/docs", headers=auth).status_code == 405
    assert client.get("/docs", headers=auth, params={"x": "1"}).status_code == 200
    without = TestClient(build_app(Runtime(plan), plan.rest[0], docs=False), base_url="http://127.0.0.1")
    assert without.get("/docs", headers=auth).status_code == 404
