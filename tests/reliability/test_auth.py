"""Authentication on the REST exposure: bearer, apikey (header, query) and basic, from binds.

In process (the guard is plain ASGI): every refusal is a 401 problem+json with a
`WWW-Authenticate` challenge and never a trace of the expected value; probes stay open;
`/openapi.json` is guarded like the API it describes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.exposes.rest import build_app
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_text

TOKEN = "tok-9f8e7d6c5b4a"
USER, PASSWORD = "ops", "pa:ss-wörd"

CAP = """naftiko: 1.0.0-alpha2
binds:
- namespace: env
  keys: {{API_TOKEN: API_TOKEN, API_USER: API_USER, API_PASSWORD: API_PASSWORD}}
capability:
  consumes:
  - namespace: api
    type: http
    baseUri: https://api.example.com
    resources:
    - name: things
      path: /things
      operations:
      - {{name: list, method: GET}}
  exposes:
  - type: rest
    namespace: web
    port: 8080
    authentication: {auth}
    resources:
    - path: /things
      operations:
      - {{method: GET, name: list, call: api.list}}
"""


def engine_for(auth: str | None, monkeypatch, token: str = TOKEN) -> Runtime:
    """The capability with `auth` as its exposure's authentication (None: no authentication)."""
    for name, value in (("API_TOKEN", token), ("API_USER", USER), ("API_PASSWORD", PASSWORD)):
        monkeypatch.setenv(name, value)
    d = Diagnostics()
    text = CAP.format(auth=auth) if auth is not None else CAP.replace("    authentication: {auth}\n", "").format()
    cap = load_text(text, "cap.yaml", None, d)
    assert not d.errors, [str(x) for x in d.errors]
    return Runtime(compile_plan(cap, resolve_binds(cap, Path.cwd(), allow_missing=True), mock=True))


def client_for(auth: str, monkeypatch, **kw) -> httpx.Client:
    engine = engine_for(auth, monkeypatch, **kw)
    engine.lifecycle.listening = True
    return _SyncASGI(build_app(engine, engine.plan.rest[0]))


class _SyncASGI:
    """A synchronous face over httpx's ASGI transport, for short tests."""

    def __init__(self, app):
        self.app = app

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        import anyio

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://127.0.0.1") as c:
                response = await c.request(method, path, **kwargs)
                await response.aread()
                return response

        return anyio.run(go)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)


def refused(response: httpx.Response, scheme: str, *secrets: str) -> dict:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith(scheme)
    assert response.headers["cache-control"] == "no-store"
    for secret in secrets:
        assert secret not in response.text and secret not in str(response.headers)
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    return body


BEARER = '{type: bearer, token: "{{API_TOKEN}}"}'


def test_bearer_accepts_the_bound_token_case_insensitively(monkeypatch):
    client = client_for(BEARER, monkeypatch)
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert client.get("/things", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
                                    "Bearer {{API_TOKEN}}", f"Token {TOKEN}"])
def test_bearer_refusals(monkeypatch, header):
    client = client_for(BEARER, monkeypatch)
    response = client.get("/things", headers={"Authorization": header} if header is not None else {})
    body = refused(response, 'Bearer realm="naftiko"', TOKEN)
    missing = header in (None, "", f"Basic {TOKEN}", f"Token {TOKEN}")
    assert ('error="invalid_token"' in response.headers["www-authenticate"]) is not missing
    assert ("requires a bearer token" in body["detail"]) is missing


def test_openapi_is_guarded_and_probes_are_open(monkeypatch):
    client = client_for(BEARER, monkeypatch)
    refused(client.get("/openapi.json"), "Bearer", TOKEN)
    assert client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready"}
    refused(client.get("/nope"), "Bearer", TOKEN)  # no route map for strangers either: 401 before 404
    refused(client.request("POST", "/healthz"), "Bearer", TOKEN)


def test_apikey_in_a_header(monkeypatch):
    client = client_for('{type: apikey, key: X-API-Key, value: "{{API_TOKEN}}", placement: header}', monkeypatch)
    assert client.get("/things", headers={"x-api-key": TOKEN}).status_code == 200
    response = client.get("/things", headers={"X-API-Key": "wrong"})
    refused(response, 'ApiKey realm="naftiko", in="header", name="X-API-Key"', TOKEN)
    refused(client.get("/things", params={"X-API-Key": TOKEN}), "ApiKey", TOKEN)


def test_apikey_in_the_query(monkeypatch):
    client = client_for('{type: apikey, key: api_key, value: "{{API_TOKEN}}", placement: query}', monkeypatch)
    assert client.get("/things", params={"api_key": TOKEN}).status_code == 200
    refused(client.get("/things", params={"api_key": TOKEN + "0"}), 'ApiKey realm="naftiko", in="query"', TOKEN)
    refused(client.get("/things", headers={"api_key": TOKEN}), "ApiKey", TOKEN)


NON_ASCII = "clé-secrète-ü€"


@pytest.mark.parametrize("auth, present", [
    (BEARER, lambda c: c.get("/things", headers={"Authorization": b"Bearer " + NON_ASCII.encode()})),
    ('{type: apikey, key: X-API-Key, value: "{{API_TOKEN}}", placement: header}',
     lambda c: c.get("/things", headers={"X-API-Key": NON_ASCII.encode()})),
    ('{type: apikey, key: api_key, value: "{{API_TOKEN}}", placement: query}', lambda c: c.get("/things", params={"api_key": NON_ASCII})),
], ids=["bearer", "apikey-header", "apikey-query"])
def test_non_ascii_tokens_match_as_the_bytes_that_arrive(monkeypatch, auth, present):
    client = client_for(auth, monkeypatch, token=NON_ASCII)
    assert present(client).status_code == 200
    assert client.get("/things", headers={"Authorization": b"Bearer " + NON_ASCII.encode("latin-1", "replace"),
                                          "X-API-Key": NON_ASCII.encode("utf-16")}).status_code == 401


BASIC = '{type: basic, username: "{{API_USER}}", password: "{{API_PASSWORD}}"}'


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_accepts_the_bound_pair_with_colons_and_utf8(monkeypatch):
    assert client_for(BASIC, monkeypatch).get("/things", headers=basic(USER, PASSWORD)).status_code == 200


@pytest.mark.parametrize("headers", [basic(USER, "wrong"), basic("root", PASSWORD), basic(USER, ""), {"Authorization": "Basic !!notbase64"},
                                     {"Authorization": "Basic " + base64.b64encode(USER.encode()).decode()}, {}])
def test_basic_refusals(monkeypatch, headers):
    response = client_for(BASIC, monkeypatch).get("/things", headers=headers)
    refused(response, 'Basic realm="naftiko", charset="UTF-8"', PASSWORD)


def test_blank_expected_value_refuses_everyone(monkeypatch):
    client = client_for(BEARER, monkeypatch, token="")
    refused(client.get("/things", headers={"Authorization": "Bearer "}), "Bearer")
    refused(client.get("/things", headers={"Authorization": "Bearer x"}), "Bearer")


@pytest.mark.parametrize("auth, fragment", [
    ('{type: bearer, token: "{{NOT_BOUND}}"}', "uses {{NOT_BOUND}} in its token, which no bind declares"),
    ('{type: apikey, key: k, value: "{{rest.k}}", placement: header}', "which no bind declares"),
    ('{type: apikey, key: k, value: "{{API_TOKEN}}", placement: cookie}', "placement 'cookie'"),
    ('{type: oauth2, authorizationServerUri: "https://idp.example", resource: "https://api.example", tokenValidation: introspection}', "`tokenValidation: introspection` is not supported"),
    ('{type: oauth2, authorizationServerUri: "https://idp.example", resource: "https://api.example", algorithms: [none]}', "algorithm(s) none are refused"),
    ('{type: digest, username: a, password: b}', "'digest' on exposure 'web' is not supported"),
])
def test_unusable_exposure_auth_stops_startup(monkeypatch, auth, fragment):
    with pytest.raises(CapabilityError) as err:
        engine_for(auth, monkeypatch)
    messages = [str(d) for d in err.value.diagnostics]
    assert any(fragment in m for m in messages), messages
    assert all(TOKEN not in m for m in messages)


def test_no_auth_declared_means_open(monkeypatch):
    engine = engine_for(None, monkeypatch)
    assert engine.plan.rest[0].guard is None
    assert _SyncASGI(build_app(engine, engine.plan.rest[0])).get("/things").status_code == 200


def test_openapi_declares_the_scheme(monkeypatch):
    client = client_for('{type: apikey, key: X-API-Key, value: "{{API_TOKEN}}", placement: header}', monkeypatch)
    document = client.get("/openapi.json", headers={"X-API-Key": TOKEN}).json()
    assert document["components"]["securitySchemes"] == {"apikey_X-API-Key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    assert document["security"] == [{"apikey_X-API-Key": []}]
    assert "401" in document["paths"]["/things"]["get"]["responses"]
    assert TOKEN not in json.dumps(document)
