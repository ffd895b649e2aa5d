"""OAuth 2.1 on exposures: bearer JWTs checked against the issuer's published keys, and the
protected resource metadata (RFC 9728) MCP clients read to find the authorization server.

```yaml
authentication:
  type: oauth2
  authorizationServerUri: https://login.example.com        # the issuer (`iss`)
  resource: https://mcp.example.com/mcp                     # this server; the expected `aud` by default
  audience: api://orders                                    # optional: the expected `aud` instead
  scopes: [orders.read]                                     # optional: every one is required
  jwksUri: https://login.example.com/keys                   # optional: else from the issuer's metadata
```

Signatures are checked by PyJWT; nothing here parses or verifies a signature by hand. Per
request: the token's header names an allowed asymmetric algorithm (never `none`, never HMAC, whose
"key" would be public), its `kid` names a key of the issuer's JWK set (fetched once, cached, fetched
again when a token names an unknown key, at most every `REFETCH_AFTER` seconds, so rotated keys are
picked up and a flood of made-up kids costs nothing), then `iss`, `aud`, `exp` (with `leeway`) and
the scopes. A missing or bad token is a 401 whose `WWW-Authenticate` points at the metadata
document (`resource_metadata=`, as the MCP authorization specification asks); a valid token without
a required scope is a 403 `insufficient_scope`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.types import Scope

from naftiko_runtime.errors import CompileError

log = logging.getLogger("naftiko.auth")

METADATA_PATH = "/.well-known/oauth-protected-resource"
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REFETCH_AFTER = 30.0  # seconds between two fetches of the key set (unknown key ids, an unreachable issuer)
KEYS_MAX_AGE = 3600.0  # a key set older than this is fetched again before it is used
FETCH_TIMEOUT = 10.0

Verdict = Literal["ok", "missing", "invalid", "forbidden"]


@dataclass(frozen=True)
class OAuthGuard:
    """One exposure's bearer JWT check, as compiled (see the module docstring); `start` gives the
    per-process verifier that holds the issuer's keys."""

    namespace: str
    issuer: str
    audience: str
    resource: str  # "" when not configured: the metadata names the URL the client used
    scopes: tuple[str, ...]
    jwks_uri: str  # "" when the issuer's metadata says where the keys are
    algorithms: tuple[str, ...]
    leeway: float

    scheme = "oauth2"

    @classmethod
    def compile(cls, fields: dict[str, Any], namespace: str) -> "OAuthGuard":
        validation = str(fields.get("tokenValidation") or "jwks").lower()
        if validation != "jwks":
            raise CompileError(f"exposure '{namespace}': `tokenValidation: {validation}` is not supported by this runtime (jwks is)", "unsupported-auth")
        algorithms = tuple(fields.get("algorithms") or ALGORITHMS)
        weak = [a for a in algorithms if a not in ALGORITHMS]
        if weak:
            raise CompileError(f"exposure '{namespace}': algorithm(s) {', '.join(weak)} are refused (only asymmetric signatures "
                               f"can be checked against published keys: {', '.join(ALGORITHMS)})", "exposure-auth")
        try:
            leeway = float(fields.get("leeway", 30))
        except ValueError:
            raise CompileError(f"exposure '{namespace}': `leeway` must be a number of seconds", "exposure-auth") from None
        resource = str(fields.get("resource") or "")
        scopes = fields.get("scopes") or ()
        return cls(namespace, str(fields["authorizationServerUri"]).rstrip("/"), str(fields.get("audience") or resource), resource,
                   tuple(scopes if isinstance(scopes, list) else str(scopes).split()), str(fields.get("jwksUri") or ""),
                   algorithms, leeway)

    def start(self) -> "JwtVerifier":
        return JwtVerifier(self)

    # ------------------------------------------------------------------ answers

    def metadata_url(self, scope: Scope) -> str:
        """Where this resource's metadata is: the well-known path, then the resource's own path."""
        path = urlsplit(self.resource).path.rstrip("/") if self.resource else _mount_path(scope)
        return f"{_origin(scope)}{METADATA_PATH}{path}"

    def metadata(self, scope: Scope) -> dict[str, Any]:
        """RFC 9728 protected resource metadata."""
        out: dict[str, Any] = {
            "resource": self.resource or f"{_origin(scope)}{_mount_path(scope)}",
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": self.namespace,
        }
        if self.scopes:
            out["scopes_supported"] = list(self.scopes)
        return out

    def challenge(self, verdict: str, why: str, scope: Scope) -> str:
        parts = ['Bearer realm="naftiko"', f'resource_metadata="{self.metadata_url(scope)}"']
        if self.scopes:
            parts.append(f'scope="{" ".join(self.scopes)}"')
        if verdict == "invalid":
            parts += ['error="invalid_token"', f'error_description="{why}"']
        elif verdict == "forbidden":
            parts.append('error="insufficient_scope"')
        return ", ".join(parts)

    def detail(self, verdict: str, why: str) -> str:
        if verdict == "missing":
            return f"this API requires an OAuth 2 bearer token from {self.issuer} in the Authorization header"
        return why

    def security_schemes(self) -> dict[str, dict[str, str]]:
        return {"oauth2": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": f"An access token from {self.issuer}" + (f" with scope(s) {' '.join(self.scopes)}" if self.scopes else "")}}


class JwtVerifier:
    """One process's view of the issuer's signing keys, and the per-request token check."""

    def __init__(self, guard: OAuthGuard):
        self.guard = guard
        self.jwks_uri = guard.jwks_uri
        self._keys: dict[str, Any] = {}
        self._fetched_at = self._tried_at = -KEYS_MAX_AGE  # when the keys were read; when that was last tried
        self._lock = asyncio.Lock()

    async def verify(self, scope: Scope) -> tuple[Verdict, str]:
        """The verdict and, when refused, why (never anything from the token's content)."""
        import jwt

        g = self.guard
        token = _bearer(scope)
        if token is None:
            return "missing", ""
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg not in g.algorithms:
                return "invalid", "tokens signed with this algorithm are not accepted"
            key = await self._key(str(header.get("kid") or ""))
            if key is None:
                return "invalid", "the token is signed with a key the issuer does not publish"
            claims = jwt.decode(token, key, algorithms=[alg], audience=g.audience, issuer=g.issuer, leeway=g.leeway,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            return "invalid", "the token has expired"
        except jwt.InvalidAudienceError:
            return "invalid", "the token is not meant for this server (aud)"
        except jwt.InvalidIssuerError:
            return "invalid", "the token was issued by another authorization server (iss)"
        except jwt.PyJWTError:
            return "invalid", "the token is not a valid signed JWT"
        missing = [s for s in g.scopes if s not in _granted(claims)]
        if missing:
            return "forbidden", f"the token lacks the scope(s) {' '.join(missing)}"
        return "ok", ""

    async def _key(self, kid: str) -> Any:
        if kid in self._keys and time.monotonic() - self._fetched_at < KEYS_MAX_AGE:
            return self._keys[kid]
        async with self._lock:  # one fetch for every request waiting on it
            now = time.monotonic()
            due = kid not in self._keys or now - self._fetched_at >= KEYS_MAX_AGE
            if due and now - self._tried_at >= REFETCH_AFTER:
                self._tried_at = now
                try:
                    self._keys = await asyncio.to_thread(self._fetch_keys)
                    self._fetched_at = time.monotonic()
                except (OSError, ValueError) as exc:
                    log.warning("exposure '%s': cannot read the signing keys of %s (%s)", self.guard.namespace, self.guard.issuer, type(exc).__name__)
        return self._keys.get(kid)

    def _fetch_keys(self) -> dict[str, Any]:
        import jwt

        if not self.jwks_uri:
            self.jwks_uri = _discover_jwks_uri(self.guard.issuer)
        keys = jwt.PyJWKSet.from_dict(_get_json(self.jwks_uri)).keys
        return {str(k.key_id or ""): k.key for k in keys if getattr(k, "public_key_use", None) in (None, "sig")}


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if kind.lower() == "bearer" and token.strip() else None
    return None


def _granted(claims: dict[str, Any]) -> set[str]:
    """Scopes a token grants: `scope` (RFC 8693, space-separated) or `scp` (a list, Entra and Okta)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found |= set(value.split())
        elif isinstance(value, list):
            found |= {str(v) for v in value}
    return found


def _origin(scope: Scope) -> str:
    host = next((v.decode("latin-1") for n, v in scope.get("headers", ()) if n == b"host"), "")
    if not host and scope.get("server"):
        host = "%s:%s" % tuple(scope["server"])
    return f"{scope.get('scheme', 'http')}://{host}"


def _mount_path(scope: Scope) -> str:
    """The resource's path as the client called it: `/mcp` for an MCP endpoint, else none."""
    path = scope.get("path", "")
    return "/mcp" if path == "/mcp" or path.startswith("/mcp/") else ""


def _get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "naftiko-runtime"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 - the file's own issuer
        return json.loads(response.read(1 << 20))


def _discover_jwks_uri(issuer: str) -> str:
    """`jwks_uri` from the issuer's metadata: RFC 8414 first, then OpenID Connect discovery."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    for url in (f"{origin}/.well-known/oauth-authorization-server{path}", f"{issuer}/.well-known/openid-configuration"):
        try:
            found = _get_json(url).get("jwks_uri")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(found, str) and found:
            return found
    raise ValueError(f"no jwks_uri in the metadata of {issuer}")
