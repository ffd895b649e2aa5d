"""Secrets in every form and place: response headers, JSON-escaped and percent-encoded echoes, the
access log, and the base64 the runtime computes for HTTP Basic (issue 15, items 5, 6, 8).

The Vapi Sessions capability runs with an upstream key full of characters that change on the wire
(`/`, `+`, `=`) against the fault upstream, which reflects it in the ways real upstreams do. Its
REST exposure takes an API key in the query string, which clients must percent-encode.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import anyio
import pytest

from .faults import Fault
from .harness import VAPI, Naftiko

KEY = "sk/secret+XYZ="  # the upstream credential
EXPOSE_KEY = "ex/pose+K3y=ü"  # the exposure's API key, sent by clients in the query string


def spellings(secret: str) -> set[str]:
    """How the wire spells a secret: what must appear nowhere."""
    escaped = json.dumps(secret)[1:-1]
    lower_hex = re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe=""))
    return {secret, quote(secret, safe=""), lower_hex, quote_plus(secret), quote(secret, safe="/"),
            escaped, escaped.replace("/", "\\/"), secret.replace("+", " ")}


@pytest.fixture(scope="module")
def vapi(upstream, tmp_path_factory):
    text = VAPI.read_text()
    text = text.replace("    VAPI_API_KEY: VAPI_API_KEY\n", "    VAPI_API_KEY: VAPI_API_KEY\n    EXPOSE_KEY: EXPOSE_KEY\n", 1)
    text = text.replace("    namespace: sessions-sessions-rest\n", "    namespace: sessions-sessions-rest\n"
                        "    authentication: {type: apikey, key: api_key, value: '{{EXPOSE_KEY}}', placement: query}\n", 1)
    path = tmp_path_factory.mktemp("cap") / "vapi-keys.yaml"
    path.write_text(text)
    runtime = Naftiko(path, "--base-uri", f"sessions-sessions={upstream.url}", "--retries", "0",
                      env={"VAPI_API_KEY": KEY, "EXPOSE_KEY": EXPOSE_KEY})
    yield runtime
    assert runtime.stop() == 0


def get(vapi, path="/v1/session"):
    return vapi.request("GET", path, params={"api_key": EXPOSE_KEY})


def test_the_upstream_gets_the_key_and_the_client_never_sees_it(vapi, upstream):
    upstream.script()
    response = get(vapi)
    assert response.status_code == 200, response.text
    assert upstream.requests[0].headers["authorization"].endswith(KEY)
    assert response.json()["headers"]["authorization"].endswith("***")


@pytest.mark.parametrize("name, value", [("Content-Type", f"application/json; charset={KEY}"),
                                         ("Retry-After", KEY), ("Retry-After", f"120, {KEY}")])
def test_reflected_response_headers_are_masked(vapi, upstream, name, value):
    fault = Fault.answer(429, b'{"error":"slow down"}', headers={name: value}) if name == "Retry-After" \
        else Fault.answer(200, b"{}", content_type=value)
    upstream.script(fault)
    response = vapi.request("POST", "/v1/session", params={"api_key": EXPOSE_KEY}, json={"name": "x"})
    assert response.status_code == (429 if name == "Retry-After" else 200)
    # masked, or (Retry-After) not passed on at all: what is not seconds or a date is not a Retry-After
    assert response.headers.get(name, "***").endswith("***"), response.headers
    for form in spellings(KEY):
        assert form not in str(response.headers)


@pytest.mark.parametrize("form", sorted(spellings(KEY)))
def test_every_spelling_of_the_key_in_a_body_is_masked(vapi, upstream, form):
    upstream.script(Fault.answer(200, json.dumps({"echo": f"Bearer {form}"}).replace("\\\\/", "\\/")))
    response = get(vapi)
    assert response.status_code == 200
    assert response.json() == {"echo": "Bearer ***"}, response.text


def test_the_json_escaped_echo_of_the_issue(vapi, upstream):
    upstream.script(Fault.answer(200, b'{"authorization":"Bearer sk\\/secret+XYZ="}', headers={"X-Echo": "sk%2Fsecret%2BXYZ%3D"}))
    response = get(vapi)
    assert response.content == b'{"authorization":"Bearer ***"}'


def test_mcp_results_are_masked(vapi, upstream):
    from mcp import Client

    upstream.script(Fault.answer(200, b'{"a":"sk\\/secret+XYZ=","b":"q=sk%2Fsecret%2BXYZ%3D"}'))

    async def go():
        async with Client(f"http://127.0.0.1:{vapi.ports['sessions-sessions-mcp']}/mcp") as client:
            return await client.call_tool("vapi-sessioncontrollerfindallpaginated", {})

    result = anyio.run(go)
    text = "".join(getattr(c, "text", "") for c in result.content)
    vapi.keep(text.encode())
    assert json.loads(text) == {"a": "***", "b": "q=***"}


@pytest.mark.parametrize("encode", [lambda k: quote(k, safe=""), quote_plus, lambda k: quote(k, safe="/="),
                                    lambda k: re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(k, safe=""))], ids=["%2F", "plus", "partly", "lower-hex"])
def test_the_exposure_key_never_reaches_the_access_log(vapi, upstream, encode):
    upstream.script()
    response = vapi.client.get(f"/v1/session?api_key={encode(EXPOSE_KEY)}&name=n")
    assert response.status_code == 200, response.text
    lines = [line for line in vapi.log.splitlines() if "GET /v1/session?" in line]
    assert lines and "api_key=***" in lines[-1], lines[-1:]


def test_a_raw_plus_is_a_space_so_the_key_is_wrong_and_still_masked(vapi):
    response = vapi.client.get(f"/v1/session?api_key={quote(EXPOSE_KEY, safe='/+=')}")
    assert response.status_code == 401
    lines = [line for line in vapi.log.splitlines() if "GET /v1/session?" in line]
    assert "api_key=*** " in lines[-1], lines[-1]


def test_no_spelling_of_either_key_in_any_log_line_or_body(vapi):
    log = vapi.log
    assert len(log.splitlines()) > 10
    for secret in (KEY, EXPOSE_KEY):
        for form in spellings(secret):
            assert form not in log, f"{form!r} in the log"
            assert not [b for b in vapi.bodies if form.encode() in b], f"{form!r} in a body"


def test_basic_credentials_are_masked_in_the_form_the_runtime_encoded(monkeypatch, tmp_path):
    from naftiko_runtime import redact
    from naftiko_runtime.build import build_plan
    from naftiko_runtime.runtime import Runtime

    text = VAPI.read_text().replace("      type: bearer\n      key: Authorization\n      value: 'Bearer {{env.VAPI_API_KEY}}'\n",
                                    "      type: basic\n      username: operator\n      password: '{{env.VAPI_API_KEY}}'\n", 1)
    path = tmp_path / "basic.yaml"
    path.write_text(text)
    monkeypatch.setenv("VAPI_API_KEY", "basic-pass-0x9")
    Runtime(build_plan(path))
    encoded = base64.b64encode(b"operator:basic-pass-0x9").decode()
    echo = json.dumps({"authorization": f"Basic {encoded}"}).replace("/", "\\/").encode()
    assert redact.REGISTRY.credentials.mask_bytes(echo) == b'{"authorization": "Basic ***"}'
