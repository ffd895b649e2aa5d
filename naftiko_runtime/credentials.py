"""Every authentication scheme, in one table: its `type` spellings, its keys, which of them are
credentials, and where it can be used.

The normalizer reads `authentication` blocks with it, the key table (capability/keys.py) knows
their keys from it, the compiler refuses a scheme where the table says it cannot work, and the
values of the fields it marks secret are what logs and answers never show. A new scheme is a row
here plus its reading (capability/consumes.py), its upstream side (upstream/auth.py) or its
exposure side (exposes/auth.py). docs/authentication.md describes each one for users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from naftiko_runtime.templates import Ref, Template


@dataclass(frozen=True)
class Scheme:
    kind: str  # the model's `Auth.kind`
    types: tuple[str, ...]  # `type:` values that select it, compared without case, '-' and '_'
    fields: tuple[str, ...]  # keys read from the block (besides `type`)
    secrets: tuple[str, ...]  # fields holding credentials: never logged, masked in what callers see
    upstream: tuple[str, ...] | None  # keys required on a consumes entry; None: not usable there
    exposure: tuple[str, ...] | None  # keys required on an exposure; None: not usable there


_OAUTH2_UPSTREAM = ("tokenEndpoint", "clientId", "clientSecret", "scopes", "audience", "clientAuthentication")
_OAUTH2_EXPOSURE = ("authorizationServerUri", "resource", "audience", "scopes", "tokenValidation", "jwksUri", "algorithms", "leeway")

SCHEMES: tuple[Scheme, ...] = (
    Scheme("bearer", ("bearer",), ("token",), ("token",), ("token",), ("token",)),
    Scheme("apikey", ("apikey", "header", "query", "cookie"), ("key", "value", "placement"), ("value",),
           ("key", "value"), ("key", "value")),
    Scheme("basic", ("basic",), ("username", "password"), ("username", "password"),
           ("username", "password"), ("username", "password")),
    Scheme("digest", ("digest",), ("username", "password"), ("username", "password"),
           ("username", "password"), None),
    Scheme("aws-sigv4", ("awssigv4", "awssignaturev4", "sigv4"),
           ("accessKeyId", "secretAccessKey", "sessionToken", "region", "service"),
           ("accessKeyId", "secretAccessKey", "sessionToken"), ("accessKeyId", "secretAccessKey"), None),
    Scheme("oauth2", ("oauth2",), tuple(dict.fromkeys(_OAUTH2_UPSTREAM + _OAUTH2_EXPOSURE)), ("clientSecret",),
           ("tokenEndpoint", "clientId", "clientSecret"), ("authorizationServerUri",)),
    Scheme("certificate", ("certificate", "mtls", "clientcertificate"),
           ("certificate", "privateKey", "passphrase", "caBundle"), ("privateKey", "passphrase"),
           ("certificate",), None),
)

# Keys real files write in `authentication` blocks that are read as one of the schemes above
# (docs/dialect.md: `{type: apiKey, header, token}`, `{type: query, parameters: [...]}`, oauth1).
DIALECT_KEYS = ("header", "name", "in", "parameters", "consumerKey", "signingKey")


def _loose(text: str) -> str:
    return text.lower().replace("-", "").replace("_", "")


BY_TYPE: dict[str, Scheme] = {t: s for s in SCHEMES for t in s.types}
BY_KIND: dict[str, Scheme] = {s.kind: s for s in SCHEMES}


def scheme_for(type_: str) -> Scheme | None:
    return BY_TYPE.get(_loose(type_))


def all_keys() -> tuple[str, ...]:
    """Every key an `authentication` block may hold, for the key table."""
    return tuple(dict.fromkeys(("type", *(f for s in SCHEMES for f in s.fields), *DIALECT_KEYS)))


def names(direction: str) -> str:
    """'bearer, apikey, ...': the `type`s usable upstream (`upstream`) or on exposures (`exposure`)."""
    return ", ".join(s.types[0] if s.kind != "aws-sigv4" else "aws-sig-v4" for s in SCHEMES if getattr(s, direction) is not None)


def texts(auth: Any, secret_only: bool = False) -> Iterator[str]:
    """The template texts of an `Auth` (every field, or only its credentials), API key values included."""
    scheme = BY_KIND.get(auth.kind)
    wanted = (scheme.secrets if secret_only else scheme.fields) if scheme is not None else ()
    for name in wanted:
        value = auth.fields.get(name)
        if isinstance(value, str):
            yield value
    for entry in auth.entries:
        yield entry.value


def values(auth: Any, lookup: Callable[[Ref], Any]) -> list[str]:
    """The bind values an `authentication` block's credentials use: what must never appear in a
    log line or an answer (upstreams that echo a credential back are scrubbed)."""
    if auth is None:
        return []
    out: list[str] = []
    for text in texts(auth, secret_only=True):
        for ref in Template.compile(text).refs:
            value = lookup(ref)
            if isinstance(value, str) and value:
                out.append(value)
    return out
