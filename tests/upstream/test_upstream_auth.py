"""Upstream authentication that changes per request, against servers on real sockets: AWS SigV4
(AWS's published test vector and an independent implementation of the algorithm), OAuth 2 client
credentials (a token server counting its requests), client certificates (a TLS upstream that
requires one) and HTTP Digest (an upstream that checks the answer to its nonce)."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import json
import secrets
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from aiohttp import web

from naftiko_runtime import redact
from naftiko_runtime.binds import BoundValues
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.upstream.auth import infer_aws_scope
from naftiko_runtime.upstream.request import Prepared
from tests.support.servers import LOOPBACK, naftiko, free_port, http_request

pytestmark = pytest.mark.anyio

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # AWS's test suite credentials


def capability(auth: str, base: str = "https://example.amazonaws.com", path: str = "/", method: str = "GET", extra_ops: str = "") -> str:
    return f"""\
naftiko: 1.0.0-alpha2
binds:
- namespace: env
  keys: {{AK: AK, SK: SK, ST: ST, SECRET: SECRET, USER: USER, PASS: PASS, CERT: CERT, KEY: KEY, KEY_PASS: KEY_PASS, CA: CA}}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: {base}
    authentication: {auth}
    resources:
    - name: r
      path: {path}
      operations:
      - name: call
        method: {method}
        inputParameters:
        - {{name: q, in: query}}
{extra_ops}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /call
      operations:
      - {{method: {method}, name: call, call: up.call}}
"""


def compiled(tmp_path: Path, text: str, binds: dict[str, str], base_uri: str | None = None):
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    d = Diagnostics()
    cap = load_capability(path, d)
    assert cap is not None and not d.errors, [str(x) for x in d]
    values = BoundValues(dict(binds), {"env": dict(binds)})
    return compile_plan(cap, values, base_uris={"up": base_uri} if base_uri else None)


async def call(plan, runtime: Runtime, **args: Any):
    return await plan.rest[0].routes[0].invocation.invoke(args, runtime)


# --------------------------------------------------------------------------------- SigV4

def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(method: str, raw_path: str, headers: dict[str, str], body: bytes, signed: list[str],
                       secret: str, region: str, service: str) -> str:
    """AWS Signature V4 as the AWS documentation defines it, written independently of the runtime."""
    path, _, query = raw_path.partition("?")
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(query, keep_blank_values=True))
    canonical = "\n".join([
        method,
        quote(path, safe="/~"),  # each segment encoded again (every service but S3)
        "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed),
        ";".join(signed),
        hashlib.sha256(body).hexdigest(),
    ])
    date = headers["x-amz-date"]
    scope = f"{date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def parse_authorization(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    assert scheme == "AWS4-HMAC-SHA256"
    return dict(part.strip().split("=", 1) for part in rest.split(","))


SIGV4 = "{type: aws-sig-v4, accessKeyId: '{{AK}}', secretAccessKey: '{{SK}}', region: us-east-1, service: service}"


async def test_sigv4_matches_the_published_get_vanilla_vector(tmp_path, monkeypatch):
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.datetime(2015, 8, 30, 12, 36, 0))
    plan = compiled(tmp_path, capability(SIGV4), {"AK": ACCESS_KEY, "SK": SECRET_KEY})
    runtime = Runtime(plan)
    vanilla = Prepared("GET", "https://example.amazonaws.com/", {}, None, [], False)  # GET / with Host only
    signed = await runtime.authenticators["up"].apply(vanilla)
    assert signed.headers["X-Amz-Date"] == "20150830T123600Z"
    assert signed.headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def test_region_and_service_are_inferred_from_aws_hosts():
    assert infer_aws_scope("https://ec2.us-west-2.amazonaws.com/") == ("ec2", "us-west-2")
    assert infer_aws_scope("https://abc123.execute-api.eu-west-1.amazonaws.com/prod") == ("execute-api", "eu-west-1")
    assert infer_aws_scope("https://iam.amazonaws.com") == ("iam", "us-east-1")
    assert infer_aws_scope("https://api.example.com") == (None, None)


def test_sigv4_without_region_on_a_foreign_host_names_what_to_add(tmp_path):
    auth = "{type: aws-sigv4, accessKeyId: '{{AK}}', secretAccessKey: '{{SK}}'}"
    with pytest.raises(CapabilityError) as err:
        compiled(tmp_path, capability(auth, base="https://api.example.com"), {"AK": "a", "SK": "b"})
    [d] = err.value.diagnostics
    assert d.rule == "auth-incomplete" and "needs `region` and `service`" in d.message


def test_sigv4_without_botocore_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.setitem(sys.modules, "botocore.auth", None)
    with pytest.raises(CapabilityError) as err:
        compiled(tmp_path, capability(SIGV4), {"AK": ACCESS_KEY, "SK": SECRET_KEY})
    [d] = err.value.diagnostics
    assert d.rule == "auth-extra-missing" and "pip install 'naftiko-runtime[aws]'" in d.message


def test_an_echo_upstream_sees_a_valid_sigv4_signature(tmp_path, echo):
    """`naftiko run` against an echo upstream: the request as received verifies under the algorithm."""
    auth = "{type: aws-sig-v4, accessKeyId: '{{AK}}', secretAccessKey: '{{SK}}', sessionToken: '{{ST}}', region: eu-west-1, service: execute-api}"
    cap = tmp_path / "cap.yaml"
    cap.write_text(capability(auth, path="/items/{{id}}", method="POST"))
    port = free_port()
    env = {"AK": ACCESS_KEY, "SK": SECRET_KEY, "ST": "session-token-77", **{k: "unused" for k in ("SECRET", "USER", "PASS", "CERT", "KEY", "KEY_PASS", "CA")}}
    with naftiko(["run", cap, "--port", f"api={port}", "--base-uri", f"up={echo.base_url}/prod"], env=env, ports_to_wait=[port]):
        r = http_request("POST", f"http://127.0.0.1:{port}/call/a%20b?q=x%2Fy&q2=1", json_body={"name": "Zoë"})
        assert r.status == 200, r.text
    got = echo.last
    headers = got["headers"]
    fields = parse_authorization(headers["authorization"])
    assert fields["Credential"].startswith(f"{ACCESS_KEY}/") and fields["Credential"].endswith("/eu-west-1/execute-api/aws4_request")
    assert headers["x-amz-security-token"] == "session-token-77" and len(headers["x-amz-date"]) == 16
    signed = fields["SignedHeaders"].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token", "content-type"} <= set(signed)
    body = got["body"].encode()
    assert fields["Signature"] == expected_signature("POST", got["raw_path"], headers, body, signed, SECRET_KEY, "eu-west-1", "execute-api")
    assert SECRET_KEY not in json.dumps(got)


# --------------------------------------------------------------------------------- OAuth 2

class TokenServer:
    """An OAuth 2 token endpoint on a real socket that counts the tokens it hands out."""

    def __init__(self, lifetime: float = 3600, delay: float = 0.05):
        self.lifetime, self.delay = lifetime, delay
        self.requests: list[dict[str, Any]] = []
        self.issued: list[str] = []  # random like real tokens (the runtime masks every token it was given)
        self.revoke_into: set[str] | None = None  # a set every token issued from now on is added to
        self.suffix = ""  # appended to each token

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append({"form": form, "authorization": request.headers.get("Authorization")})
        self.issued.append(f"tok-{secrets.token_hex(8)}{self.suffix}")
        if self.revoke_into is not None:
            self.revoke_into.add(self.issued[-1])
        await asyncio.sleep(self.delay)  # long enough for concurrent callers to pile up
        return web.json_response({"access_token": self.issued[-1], "token_type": "Bearer", "expires_in": self.lifetime})


class Upstream:
    """An API on a real socket that records the bearer token of each call; `refuse` answers 401 to those tokens."""

    def __init__(self):
        self.seen: list[str] = []
        self.refuse: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "")
        self.seen.append(token)
        if token.removeprefix("Bearer ") in self.refuse:
            return web.json_response({"error": "expired"}, status=401)
        return web.json_response({"ok": True})


async def serve(routes: list[web.RouteDef], ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"{'https' if ssl_context else 'http'}://{LOOPBACK}:{port}"


OAUTH2 = "{{type: oauth2, tokenEndpoint: '{token}/oauth/token', clientId: app-1, clientSecret: '{{{{SECRET}}}}', scopes: [read, write], audience: https://api.example.com}}"


@pytest.fixture
async def oauth2_servers():
    tokens, upstream = TokenServer(), Upstream()
    token_runner, token_url = await serve([web.post("/oauth/token", tokens.token)])
    api_runner, api_url = await serve([web.get("/{tail:.*}", upstream.handle)])
    yield tokens, upstream, token_url, api_url
    await token_runner.cleanup()
    await api_runner.cleanup()


async def test_one_token_for_100_concurrent_calls(tmp_path, oauth2_servers):
    tokens, upstream, token_url, api_url = oauth2_servers
    plan = compiled(tmp_path, capability(OAUTH2.format(token=token_url)), {"SECRET": "s3cr3t-value"}, base_uri=api_url)
    runtime = Runtime(plan)
    try:
        outcomes = await asyncio.gather(*(call(plan, runtime) for _ in range(100)))
    finally:
        await runtime.close()
    assert all(o.status == 200 for o in outcomes)
    assert len(tokens.requests) == 1 and set(upstream.seen) == {f"Bearer {tokens.issued[0]}"}
    [sent] = tokens.requests
    assert sent["form"] == {"grant_type": "client_credentials", "scope": "read write", "audience": "https://api.example.com"}
    assert sent["authorization"] == "Basic YXBwLTE6czNjcjN0LXZhbHVl"  # app-1:s3cr3t-value


async def test_one_refresh_after_a_401(tmp_path, oauth2_servers):
    tokens, upstream, token_url, api_url = oauth2_servers
    plan = compiled(tmp_path, capability(OAUTH2.format(token=token_url)), {"SECRET": "s3cr3t-value"}, base_uri=api_url)
    runtime = Runtime(plan)
    try:
        assert (await call(plan, runtime)).status == 200
        upstream.refuse.add(tokens.issued[0])  # revoked upstream before it expired
        outcomes = await asyncio.gather(*(call(plan, runtime) for _ in range(10)))
        assert all(o.status == 200 for o in outcomes)
        assert len(tokens.requests) == 2 and upstream.seen[-1] == f"Bearer {tokens.issued[1]}"
        upstream.refuse.add(tokens.issued[1])
        tokens.revoke_into = upstream.refuse  # the next token is refused too: one refresh, then the 401 is the answer
        assert (await call(plan, runtime)).status == 401
        assert len(tokens.requests) == 3
    finally:
        await runtime.close()


async def test_a_token_holding_another_credentials_bytes_is_sent_whole(tmp_path, oauth2_servers):
    """Credentials are masked in relayed answers by substring; the token endpoint's answer is read
    by the runtime only, so another secret inside a fresh token must not garble it."""
    tokens, upstream, token_url, api_url = oauth2_servers
    other = f"key{secrets.token_hex(4)}"
    redact.register(other)  # a credential of this process (another namespace's API key, say)
    tokens.suffix = other
    plan = compiled(tmp_path, capability(OAUTH2.format(token=token_url)), {"SECRET": "s3cr3t-value"}, base_uri=api_url)
    runtime = Runtime(plan)
    try:
        assert (await call(plan, runtime)).status == 200
    finally:
        await runtime.close()
    assert upstream.seen == [f"Bearer {tokens.issued[0]}"] and tokens.issued[0].endswith(other)


async def test_the_token_is_refreshed_before_it_expires(tmp_path, oauth2_servers):
    tokens, upstream, token_url, api_url = oauth2_servers
    tokens.lifetime = 1  # refreshed a tenth of its life before expiry
    plan = compiled(tmp_path, capability(OAUTH2.format(token=token_url)), {"SECRET": "s3cr3t-value"}, base_uri=api_url)
    runtime = Runtime(plan)
    try:
        assert (await call(plan, runtime)).status == 200
        await asyncio.sleep(0.95)  # still valid for 50 ms: too close, a new one is fetched first
        assert (await call(plan, runtime)).status == 200
    finally:
        await runtime.close()
    assert len(tokens.requests) == 2 and upstream.seen == [f"Bearer {t}" for t in tokens.issued]


async def test_a_reload_keeps_the_token_of_an_unchanged_namespace(tmp_path, oauth2_servers):
    """A reload builds the new version's runtime with `previous=` (server.py): an unrelated edit
    keeps the cached token; a rotated secret or another client id fetches a new one."""
    tokens, upstream, token_url, api_url = oauth2_servers
    auth = OAUTH2.format(token=token_url)
    versions = [
        (capability(auth), "s3cr3t-value"),
        (capability(auth, path="/v2"), "s3cr3t-value"),  # unrelated edit: same token
        (capability(auth, path="/v3"), "s3cr3t-value"),  # and again
        (capability(auth, path="/v3"), "rotated-s3cr3t"),  # the secret changed: a new token
        (capability(auth.replace("app-1", "app-2"), path="/v3"), "rotated-s3cr3t"),  # another client: a new token
    ]
    runtime = None
    fetched = []
    for text, secret in versions:
        plan = compiled(tmp_path, text, {"SECRET": secret}, base_uri=api_url)
        previous, runtime = runtime, Runtime(plan, previous=runtime)
        if previous is not None:
            await previous.close()  # the replaced version retires
        assert (await call(plan, runtime)).status == 200
        fetched.append(len(tokens.requests))
    await runtime.close()
    assert fetched == [1, 1, 1, 2, 3]
    assert upstream.seen == [f"Bearer {tokens.issued[i]}" for i in (0, 0, 0, 1, 2)]
    assert [r["authorization"] for r in tokens.requests] == [
        "Basic YXBwLTE6czNjcjN0LXZhbHVl", "Basic YXBwLTE6cm90YXRlZC1zM2NyM3Q=", "Basic YXBwLTI6cm90YXRlZC1zM2NyM3Q="]


async def test_a_failing_token_endpoint_is_a_502_naming_the_upstream(tmp_path, oauth2_servers):
    from naftiko_runtime.errors import UpstreamFailure

    tokens, upstream, token_url, api_url = oauth2_servers
    plan = compiled(tmp_path, capability(OAUTH2.format(token=token_url + "/missing")), {"SECRET": "s3cr3t-value"}, base_uri=api_url)
    runtime = Runtime(plan)
    try:
        with pytest.raises(UpstreamFailure) as err:
            await call(plan, runtime)
    finally:
        await runtime.close()
    assert err.value.status == 502 and "'up'" in err.value.message and "token endpoint answered HTTP 404" in err.value.message
    assert "s3cr3t" not in err.value.message and upstream.seen == []


# --------------------------------------------------------------------------------- mTLS

@pytest.fixture
def pki(tmp_path):
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("naftiko-client")
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"key-passphrase"))
    (tmp_path / "client.pem").write_bytes(b"".join(c.bytes() for c in client.cert_chain_pems))
    (tmp_path / "client-key.pem").write_bytes(encrypted)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no handshake
    return ca, context


MTLS = "{type: certificate, certificate: client.pem, privateKey: '{{KEY}}', passphrase: '{{KEY_PASS}}', caBundle: '{{CA}}'}"


async def test_a_tls_upstream_requiring_a_client_certificate_accepts_the_runtime(tmp_path, pki):
    ca, context = pki
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") or {}
        seen.append(" ".join(value for _, value in peer.get("subjectAltName", ())))
        return web.json_response({"ok": True})

    runner, url = await serve([web.get("/{tail:.*}", handle)], ssl_context=context)
    binds = {"KEY": (tmp_path / "client-key.pem").read_text(), "KEY_PASS": "key-passphrase", "CA": ca.cert_pem.bytes().decode()}
    try:
        plan = compiled(tmp_path, capability(MTLS), binds, base_uri=url)
        runtime = Runtime(plan)
        try:
            outcome = await call(plan, runtime)
        finally:
            await runtime.close()
        assert outcome.status == 200 and seen == ["naftiko-client"], seen
        # the same upstream refuses a client that presents no certificate
        plain = compiled(tmp_path, capability("{type: bearer, token: '{{SECRET}}'}"), {"SECRET": "x"}, base_uri=url)
        runtime = Runtime(plain)
        from naftiko_runtime.errors import UpstreamFailure

        try:
            with pytest.raises(UpstreamFailure):
                await call(plain, runtime)
        finally:
            await runtime.close()
        assert len(seen) == 1
    finally:
        await runner.cleanup()


def test_a_wrong_passphrase_is_a_startup_error(tmp_path, pki):
    ca, _ = pki
    binds = {"KEY": str(tmp_path / "client-key.pem"), "KEY_PASS": "wrong", "CA": ca.cert_pem.bytes().decode()}
    with pytest.raises(CapabilityError) as err:
        compiled(tmp_path, capability(MTLS), binds, base_uri="https://127.0.0.1:1")
    [d] = err.value.diagnostics
    assert d.rule == "auth-certificate" and "wrong `passphrase`" in d.message and "wrong" not in d.message.split("(")[0]


# --------------------------------------------------------------------------------- Digest

class DigestServer:
    """An upstream that answers 401 with a Digest challenge and checks the answer (RFC 7616)."""

    def __init__(self, algorithm: str, user: str, password: str):
        self.algorithm, self.user, self.password = algorithm, user, password
        self.nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
        self.statuses: list[int] = []

    def h(self, text: str) -> str:
        return hashlib.new({"MD5": "md5", "SHA-256": "sha256"}[self.algorithm], text.encode()).hexdigest()

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        ok = False
        if header.startswith("Digest "):
            import urllib.request

            p = urllib.request.parse_keqv_list(urllib.request.parse_http_list(header[7:]))
            ha1 = self.h(f"{self.user}:realm@test:{self.password}")
            ha2 = self.h(f"{request.method}:{p['uri']}")
            expected = self.h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
            ok = p["response"] == expected and p["username"] == self.user and p["uri"] == request.raw_path
        self.statuses.append(200 if ok else 401)
        if ok:
            return web.json_response({"ok": True})
        challenge = f'Digest realm="realm@test", qop="auth", algorithm={self.algorithm}, nonce="{self.nonce}", opaque="5ccc069c"'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
async def test_digest_answers_the_challenge_and_reuses_it(tmp_path, algorithm):
    server = DigestServer(algorithm, "Mufasa", "Circle of Life")
    runner, url = await serve([web.get("/{tail:.*}", server.handle)])
    try:
        plan = compiled(tmp_path, capability("{type: digest, username: '{{USER}}', password: '{{PASS}}'}", path="/dir/index.html"),
                        {"USER": "Mufasa", "PASS": "Circle of Life"}, base_uri=url)
        runtime = Runtime(plan)
        try:
            assert (await call(plan, runtime, q="a b")).status == 200
            assert (await call(plan, runtime)).status == 200
        finally:
            await runtime.close()
        assert server.statuses == [401, 200, 200]  # one challenge, then answered up front
        wrong = compiled(tmp_path, capability("{type: digest, username: '{{USER}}', password: '{{PASS}}'}"), {"USER": "Mufasa", "PASS": "nope"}, base_uri=url)
        runtime = Runtime(wrong)
        try:
            assert (await call(wrong, runtime)).status == 401  # answered once, refused: the 401 is passed on
        finally:
            await runtime.close()
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------------- forward

def forwarding(auth: str) -> str:
    """The capability above with a `forward` resource proxying `/proxy/...` to the same namespace."""
    return capability(auth) + """    - path: /proxy/{rest}
      forward: {targetNamespace: up}
"""


@pytest.mark.parametrize("auth, title", [(SIGV4, "AWS Signature V4"), ("{type: digest, username: '{{USER}}', password: '{{PASS}}'}", "HTTP Digest")])
def test_forward_to_a_namespace_signed_per_body_is_a_startup_error(tmp_path, auth, title):
    with pytest.raises(CapabilityError) as err:
        compiled(tmp_path, forwarding(auth), {"AK": "AKID", "SK": "secret-key", "USER": "u", "PASS": "p"})
    [error] = err.value.diagnostics
    assert error.rule == "forward-auth-dynamic" and title in error.message and "as operations" in error.message
    assert "forward:" in (tmp_path / "cap.yaml").read_text().splitlines()[error.pos.line - 1]


async def test_forward_carries_the_oauth2_token(tmp_path, oauth2_servers):
    tokens, upstream, token_url, api_url = oauth2_servers
    plan = compiled(tmp_path, forwarding(OAUTH2.format(token=token_url)), {"SECRET": "s3cr3t-value"}, base_uri=api_url)
    runtime = Runtime(plan)
    try:
        forward = plan.rest[0].forwards[0].plan
        async with runtime.stream("up", forward.prepare("GET", ["things", "1"], "", []), None) as answer:
            body = b"".join([chunk async for chunk in answer.chunks])
    finally:
        await runtime.close()
    assert answer.status == 200 and json.loads(body) == {"ok": True}
    assert upstream.seen == [f"Bearer {tokens.issued[0]}"] and len(tokens.requests) == 1
