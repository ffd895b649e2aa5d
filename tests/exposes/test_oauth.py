"""OAuth 2.1 on exposures: an authorization server on a real socket (metadata, JWKS, token
endpoint), tokens signed in the test with keys made in the test; the REST exposure served by
uvicorn; the MCP exposure by `naftiko run`, reached by the MCP Python SDK's client-credentials
flow, which reads the protected resource metadata after its first 401."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_text
from naftiko_runtime.binds import BoundValues
from naftiko_runtime.exposes import oauth
from naftiko_runtime.exposes.rest import build_app
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.runtime import Runtime
from tests.support.servers import LOOPBACK, free_port, http_request, naftiko, serve_asgi

pytestmark = pytest.mark.anyio

RESOURCE = "https://orders.example.com/api"


class AuthorizationServer:
    """Issuer metadata, a JWK set whose keys can be rotated, and a client-credentials token endpoint."""

    def __init__(self):
        self.keys = [self.new_key("k1")]
        self.url = ""
        self.jwks_reads = 0
        self.token_requests: list[dict[str, str]] = []
        self.audience = RESOURCE

    @staticmethod
    def new_key(kid: str) -> tuple[str, Any]:
        return kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": out}

    def token(self, key_index: int = -1, **claims: Any) -> str:
        kid, key = self.keys[key_index]
        now = int(time.time())
        body = {"iss": self.url, "aud": self.audience, "sub": "client-1", "iat": now, "exp": now + 300, "scope": "orders.read orders.write"}
        body.update(claims)
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid})

    async def start(self) -> web.AppRunner:
        async def metadata(request: web.Request) -> web.Response:
            return web.json_response({"issuer": self.url, "jwks_uri": f"{self.url}/jwks", "token_endpoint": f"{self.url}/token",
                                      "authorization_endpoint": f"{self.url}/authorize", "response_types_supported": ["code"],
                                      "grant_types_supported": ["client_credentials"],
                                      "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

        async def keys(request: web.Request) -> web.Response:
            self.jwks_reads += 1
            return web.json_response(self.jwks())

        async def token(request: web.Request) -> web.Response:
            form = dict(await request.post())
            self.token_requests.append(form)
            user, _, secret = base64.b64decode(request.headers["Authorization"].split()[1]).decode().partition(":")
            if (user, secret) != ("client-1", "client-secret"):
                return web.json_response({"error": "invalid_client"}, status=401)
            return web.json_response({"access_token": self.token(scope=form.get("scope", "")), "token_type": "Bearer", "expires_in": 300})

        app = web.Application()
        app.add_routes([web.get("/.well-known/oauth-authorization-server", metadata), web.get("/jwks", keys), web.post("/token", token)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        self.url = f"http://{LOOPBACK}:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return runner


@pytest.fixture
async def issuer():
    server = AuthorizationServer()
    runner = await server.start()
    yield server
    await runner.cleanup()


CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: orders
    baseUri: https://orders.internal
    resources:
    - name: orders
      path: /orders
      operations:
      - {{name: list-orders, method: GET}}
  exposes:
  - type: {kind}
    namespace: api
    port: {port}
    authentication:
      type: oauth2
      authorizationServerUri: {issuer}
      resource: {resource}
      scopes: [orders.read]
{body}
"""
REST_BODY = """\
    resources:
    - path: /orders
      operations:
      - {method: GET, name: list, call: orders.list-orders}"""
MCP_BODY = """\
    tools:
    - {name: list-orders, description: List orders, call: orders.list-orders}"""


@pytest.fixture
async def rest(issuer, monkeypatch):
    monkeypatch.setattr(oauth, "REFETCH_AFTER", 0.0)  # rotations are picked up at once here
    d = Diagnostics()
    cap = load_text(CAPABILITY.format(kind="rest", port=8080, issuer=issuer.url, resource=RESOURCE, body=REST_BODY), "cap.yaml", None, d)
    assert not d.errors, [str(x) for x in d]
    runtime = Runtime(compile_plan(cap, BoundValues(), mock=True))
    runtime.lifecycle.listening = True
    with serve_asgi(build_app(runtime, runtime.plan.rest[0], LOOPBACK)) as url:
        yield url, issuer


async def get(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await asyncio.to_thread(http_request, "GET", url, headers=headers)


async def test_a_valid_token_is_let_through(rest):
    url, issuer = rest
    r = await get(f"{url}/orders", issuer.token())
    assert r.status == 200, r.text


@pytest.mark.parametrize("claims,why", [
    ({"exp": int(time.time()) - 120}, "the token has expired"),
    ({"aud": "https://other.example.com"}, "the token is not meant for this server (aud)"),
    ({"iss": "https://impostor.example.com"}, "the token was issued by another authorization server (iss)"),
    ({"exp": None}, "the token is not a valid signed JWT"),
])
async def test_bad_tokens_are_401_naming_why(rest, claims, why):
    url, issuer = rest
    r = await get(f"{url}/orders", issuer.token(**claims))
    assert r.status == 401 and r.headers["content-type"] == "application/problem+json"
    assert json.loads(r.text)["detail"] == why
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="naftiko", resource_metadata="') and 'error="invalid_token"' in challenge


async def test_a_missing_scope_is_403_insufficient_scope(rest):
    url, issuer = rest
    r = await get(f"{url}/orders", issuer.token(scope="orders.write"))
    assert r.status == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert json.loads(r.text)["detail"] == "the token lacks the scope(s) orders.read"
    assert (await get(f"{url}/orders", issuer.token(scope=None, scp=["orders.read"]))).status == 200  # `scp` lists count too


async def test_no_token_is_401_pointing_at_the_metadata(rest):
    url, issuer = rest
    r = await get(f"{url}/orders")
    assert r.status == 401 and "error=" not in r.headers["www-authenticate"]
    metadata_url = r.headers["www-authenticate"].split('resource_metadata="')[1].split('"')[0]
    assert metadata_url == f"{url}/.well-known/oauth-protected-resource/api"
    doc = json.loads((await get(metadata_url)).text)
    assert doc == {"resource": RESOURCE, "authorization_servers": [issuer.url], "bearer_methods_supported": ["header"],
                   "resource_name": "api", "scopes_supported": ["orders.read"]}


async def test_alg_none_and_forged_signatures_are_refused(rest):
    url, issuer = rest
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    r = await get(f"{url}/orders", unsigned)
    assert r.status == 401 and json.loads(r.text)["detail"] == "tokens signed with this algorithm are not accepted"
    _, other = AuthorizationServer.new_key("k1")  # same kid, a key the issuer never published
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"})
    assert (await get(f"{url}/orders", forged)).status == 401
    hs = jwt.encode(claims, "secret-guess-that-is-long-enough", algorithm="HS256", headers={"kid": "k1"})
    assert (await get(f"{url}/orders", hs)).status == 401


async def test_rotated_keys_are_picked_up(rest):
    url, issuer = rest
    assert (await get(f"{url}/orders", issuer.token())).status == 200
    reads = issuer.jwks_reads
    issuer.keys.append(AuthorizationServer.new_key("k2"))  # the issuer rotates: new tokens name k2
    assert (await get(f"{url}/orders", issuer.token())).status == 200
    assert issuer.jwks_reads == reads + 1  # fetched again once for the unknown key id
    assert (await get(f"{url}/orders", issuer.token(key_index=0))).status == 200  # old tokens still verify
    assert issuer.jwks_reads == reads + 1


async def test_mcp_sdk_client_reads_the_metadata_after_a_401_and_gets_a_token(issuer, tmp_path):
    import httpx2
    from mcp import Client
    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
    from mcp.client.streamable_http import streamable_http_client

    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    issuer.audience = resource
    path = tmp_path / "cap.yaml"
    path.write_text(CAPABILITY.format(kind="mcp", port=port, issuer=issuer.url, resource=resource, body=MCP_BODY))

    class Memory:
        tokens = client = None

        async def get_tokens(self):
            return self.tokens

        async def set_tokens(self, tokens):
            self.tokens = tokens

        async def get_client_info(self):
            return self.client

        async def set_client_info(self, info):
            self.client = info

    proc = await asyncio.to_thread(naftiko, ["run", path, "--mock"], None, [port])
    try:
        r = await asyncio.to_thread(http_request, "POST", resource, json_body={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status == 401 and f'resource_metadata="http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"' in r.headers["www-authenticate"]
        provider = ClientCredentialsOAuthProvider(server_url=resource, storage=Memory(), client_id="client-1",
                                                  client_secret="client-secret", scope="orders.read", issuer=issuer.url)
        async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
            async with Client(streamable_http_client(resource, http_client=http)) as client:
                tools = await client.list_tools()
        assert [t.name for t in tools.tools] == ["list-orders"]
        assert len(issuer.token_requests) == 1 and issuer.token_requests[0]["grant_type"] == "client_credentials"
    finally:
        await asyncio.to_thread(proc.__exit__, None, None, None)
