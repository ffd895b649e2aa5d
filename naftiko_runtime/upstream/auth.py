"""Upstream credentials that change per request: AWS SigV4 signatures, OAuth 2 client-credentials
tokens, HTTP Digest answers.

Static credentials (bearer, API keys, Basic) are rendered once into the request plan
(request.AuthPlan). These cannot be: a signature covers the final method, URL, headers and body;
a token expires; a digest answers the server's nonce. The plan holds a frozen configuration
(`SigV4Config`, `OAuth2Config`, `DigestConfig`) with the bind values already in it; each process
starts its own `Authenticator` from it (`Runtime`), which `Runtime.send` applies to every request
just before the transport sends it, whatever HTTP client the transport uses:

    request = await authenticator.apply(request)
    response = await transport.send(request)
    if response.status == 401 and await authenticator.retry(request, response):  # at most once
        response = await transport.send(await authenticator.apply(request))

The OAuth 2 authenticator fetches its token through the same transport (`Send`), so the token
endpoint gets the upstream's timeouts, TLS material and error mapping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
import urllib.request
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Awaitable, Callable, ClassVar, Protocol
from urllib.parse import quote, urlencode, urlsplit

from naftiko_runtime import redact
from naftiko_runtime.errors import CompileError, UpstreamBadResponse

if TYPE_CHECKING:
    from naftiko_runtime.upstream.client import Response
    from naftiko_runtime.upstream.request import Prepared

log = logging.getLogger("naftiko.upstream")

Send = Callable[["Prepared"], Awaitable["Response"]]
AWS_EXTRA = "naftiko-runtime[aws]"


class Authenticator(Protocol):
    async def apply(self, request: Prepared) -> Prepared:
        """The request with this attempt's credentials."""
        ...

    async def retry(self, request: Prepared, response) -> bool:
        """After a 401: whether to apply again and resend once (a refreshed token, a new nonce)."""
        ...


def _with_headers(request: Prepared, headers: dict[str, str]) -> Prepared:
    return replace(request, headers={**request.headers, **headers})


# ------------------------------------------------------------------------------ AWS SigV4

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")


def infer_aws_scope(url: str) -> tuple[str | None, str | None]:
    """(service, region) from an AWS endpoint host: `ec2.us-west-2.amazonaws.com` -> (ec2,
    us-west-2), `abc.execute-api.eu-west-1.amazonaws.com` -> (execute-api, eu-west-1),
    `iam.amazonaws.com` -> (iam, us-east-1). (None, None) for other hosts."""
    host = (urlsplit(url).hostname or "").lower()
    for suffix in (".amazonaws.com.cn", ".amazonaws.com", ".api.aws"):
        if host.endswith(suffix):
            labels = host[: -len(suffix)].split(".")
            break
    else:
        return None, None
    labels = [label for label in labels if label not in ("dualstack", "fips")]
    if len(labels) >= 2 and _REGION.match(labels[-1]):
        return labels[-2], labels[-1]
    if labels and _REGION.match(labels[-1]):
        return None, labels[-1]
    return (labels[-1] if labels else None), "us-east-1"


@dataclass(frozen=True)
class SigV4Config:
    """`forward` cannot use it (`streams`): the signature covers a hash of the whole body."""

    title: ClassVar[str] = "AWS Signature V4"
    streams: ClassVar[bool] = False
    access_key: str
    secret_key: str
    session_token: str
    region: str
    service: str

    @classmethod
    def compile(cls, fields: dict[str, str], base_url: str, namespace: str) -> "SigV4Config":
        try:
            import botocore.auth  # noqa: F401 - checked here, so a missing extra stops startup
        except ImportError:
            raise CompileError(f"consumes '{namespace}' signs its requests with AWS Signature V4, which needs botocore: "
                               f"pip install '{AWS_EXTRA}'", "auth-extra-missing") from None
        service, region = infer_aws_scope(base_url)
        service, region = fields.get("service") or service, fields.get("region") or region
        missing = [k for k, v in (("region", region), ("service", service)) if not v]
        if missing:
            raise CompileError(f"consumes '{namespace}': AWS Signature V4 needs {' and '.join(f'`{m}`' for m in missing)} "
                               f"(the host of {base_url or 'its baseUri'} does not say); add it to `authentication`", "auth-incomplete")
        return cls(fields["accessKeyId"], fields["secretAccessKey"], fields.get("sessionToken", ""), str(region), str(service))

    def start(self, send: Send, previous: Authenticator | None = None) -> "SigV4":
        return SigV4(self)


class SigV4:
    """Signs each request with botocore's SigV4 signer (the algorithm AWS's SDKs use)."""

    def __init__(self, config: SigV4Config):
        from botocore.auth import SigV4Auth
        from botocore.credentials import Credentials

        logging.getLogger("botocore").setLevel(logging.WARNING)  # its debug lines quote signed headers
        credentials = Credentials(config.access_key, config.secret_key, config.session_token or None)
        self._signer = SigV4Auth(credentials, config.service, config.region)

    async def apply(self, request: Prepared) -> Prepared:
        from botocore.awsrequest import AWSRequest

        aws = AWSRequest(method=request.method, url=request.url, data=request.body or b"", headers=dict(request.headers))
        self._signer.add_auth(aws)
        return replace(request, headers=dict(aws.headers.items()))

    async def retry(self, request: Prepared, response) -> bool:
        return False  # a refused signature is the answer: the keys or the clock are wrong


# ------------------------------------------------------------------------------ OAuth 2

@dataclass(frozen=True)
class OAuth2Config:
    """`forward` can use it (`streams`): the token is a header, known before the body is sent."""

    title: ClassVar[str] = "OAuth 2 client credentials"
    streams: ClassVar[bool] = True
    namespace: str
    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    audience: str
    client_auth: str  # basic | body

    @classmethod
    def compile(cls, fields: dict, namespace: str) -> "OAuth2Config":
        client_auth = str(fields.get("clientAuthentication") or "basic").lower()
        if client_auth not in ("basic", "body"):
            raise CompileError(f"consumes '{namespace}': `clientAuthentication: {client_auth}` is not one of basic, body", "auth-incomplete")
        scopes = fields.get("scopes") or ()
        return cls(namespace, fields["tokenEndpoint"], fields["clientId"], fields["clientSecret"],
                   tuple(scopes if isinstance(scopes, list) else str(scopes).split()), fields.get("audience") or "", client_auth)

    def token_request(self) -> Prepared:
        from naftiko_runtime.upstream.request import Prepared

        form = {"grant_type": "client_credentials"}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if self.audience:
            form["audience"] = self.audience
        if self.client_auth == "basic":  # RFC 6749 2.3.1: form-encoded, then Basic
            pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        return Prepared("POST", self.token_url, headers, urlencode(form).encode(), [], False, masked=False)

    def start(self, send: Send, previous: Authenticator | None = None) -> "OAuth2ClientCredentials":
        """`previous`: this namespace's authenticator in the version a reload replaces; its cached
        token is kept when this configuration is the same (same endpoint, client, secret, scopes)."""
        kept = previous._token if isinstance(previous, OAuth2ClientCredentials) and previous.config == self else None
        return OAuth2ClientCredentials(self, send, token=kept)


# Refresh this long before the token expires (never more than a tenth of its life), so a request
# never leaves with a token that expires on the way.
REFRESH_MARGIN = 30.0


class _Token:
    """The cached token of one OAuth2Config. A reload that leaves the configuration unchanged
    hands it to the new version's authenticator: both versions then share it (and its one fetch)."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.refresh_at = 0.0
        self.lock = asyncio.Lock()


class OAuth2ClientCredentials:
    """A cached client-credentials token: one fetch however many callers wait for it, refreshed
    shortly before it expires, and once more when the upstream answers 401 to it."""

    def __init__(self, config: OAuth2Config, send: Send, clock: Callable[[], float] = time.monotonic,
                 token: _Token | None = None):
        self.config = config
        self._send = send
        self._clock = clock
        self._token = token or _Token()

    async def apply(self, request: Prepared) -> Prepared:
        return _with_headers(request, {"Authorization": f"Bearer {await self.token()}"})

    async def retry(self, request: Prepared, response) -> bool:
        cached = self._token
        used = cached.value
        async with cached.lock:
            if cached.value == used:  # nobody refreshed since: this token is refused, fetch another
                cached.refresh_at = 0.0
        return True

    async def token(self) -> str:
        cached = self._token
        if cached.value is not None and self._clock() < cached.refresh_at:
            return cached.value
        async with cached.lock:  # concurrent callers wait for the one fetch
            if cached.value is None or self._clock() >= cached.refresh_at:
                await self._fetch()
        assert cached.value is not None
        return cached.value

    async def _fetch(self) -> None:
        ns = self.config.namespace
        response = await self._send(self.config.token_request())
        try:
            data = json.loads(response.body) if response.body else {}
        except ValueError:
            data = {}
        if response.status != 200 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            error = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), str) else None
            raise UpstreamBadResponse(ns, f"its OAuth 2 token endpoint answered HTTP {response.status}"
                                      + (f" ({error[:60]})" if error else "") + " instead of an access token")
        lifetime = data.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else 3600.0
        token = self._token
        token.value = data["access_token"]
        redact.register(token.value)  # a credential like the bound ones: masked in answers and logs
        token.refresh_at = self._clock() + lifetime - min(REFRESH_MARGIN, lifetime / 10)
        log.debug("upstream '%s': OAuth 2 token fetched, valid %.0fs", ns, lifetime)


# ------------------------------------------------------------------------------ Digest

@dataclass(frozen=True)
class DigestConfig:
    """`forward` cannot use it (`streams`): the answer to the challenge needs a second attempt."""

    title: ClassVar[str] = "HTTP Digest"
    streams: ClassVar[bool] = False
    username: str
    password: str

    def start(self, send: Send, previous: Authenticator | None = None) -> "Digest":
        return Digest(self)


class _DigestRules(urllib.request.AbstractDigestAuthHandler):
    """The standard library's RFC 2617 digest (nonce counts, cnonce, qop), plus the RFC 7616
    SHA-256 algorithms servers now offer."""

    def get_algorithm_impls(self, algorithm):
        names = {"SHA-256": hashlib.sha256, "SHA-512-256": lambda b: hashlib.new("sha512_256", b)}
        if algorithm not in names:
            return super().get_algorithm_impls(algorithm)
        digest = names[algorithm]
        H = lambda x: digest(x.encode("utf-8")).hexdigest()  # noqa: E731
        return H, (lambda s, d: H(f"{s}:{d}"))


class _Password(urllib.request.HTTPPasswordMgr):
    """The one username and password of a consumes namespace, whatever realm the server names."""

    def __init__(self, username: str, password: str):
        super().__init__()
        self.pair = (username, password)

    def find_user_password(self, realm, uri):
        return self.pair


class Digest:
    """Sends without credentials until the server's 401 names a nonce, then answers it on every
    request (the nonce count increases) until the server asks again."""

    def __init__(self, config: DigestConfig):
        self._rules = _DigestRules(_Password(config.username, config.password))
        self._challenge: dict[str, str] | None = None

    async def apply(self, request: Prepared) -> Prepared:
        if self._challenge is None:
            return request
        req = urllib.request.Request(request.url, data=request.body, method=request.method)
        answer = self._rules.get_authorization(req, self._challenge)
        return _with_headers(request, {"Authorization": f"Digest {answer}"}) if answer else request

    async def retry(self, request: Prepared, response) -> bool:
        challenge = _digest_challenge(response.headers)
        if challenge is None or (self._challenge is not None and challenge.get("nonce") == self._challenge.get("nonce")
                                 and challenge.get("stale", "").lower() != "true"):
            return False  # no digest asked, or our answer to this very nonce was refused: wrong password
        self._challenge = challenge
        return True


def _digest_challenge(headers) -> dict[str, str] | None:
    try:  # every value of a repeated header where the client's mapping keeps them (pyreqwest, multidict)
        values = list(headers.getall("WWW-Authenticate")) if hasattr(headers, "getall") else [headers.get("WWW-Authenticate", "")]
    except KeyError:
        return None
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() == "digest":
            return urllib.request.parse_keqv_list(urllib.request.parse_http_list(rest))
    return None


DynamicAuth = SigV4Config | OAuth2Config | DigestConfig
