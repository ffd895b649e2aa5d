"""Reading a REST exposure's `cors` block (an extension of this runtime; docs/cors.md).

Both spellings are read: the names of the reference engine's proposal (ikanos issue #377:
`allowedOrigins`, `allowedMethods`, `allowedHeaders`, `exposedHeaders`, `allowCredentials`,
`maxAge`) and short ones (`origins`, `methods`, `headers`, `credentials`). A CORS mistake silently
opens or closes an API to browsers, so a malformed origin, the `null` origin, and `*` together with
credentials are errors: the file is not served until they are fixed (a misspelt key is an error
too, reported by the key walker of capability/keys.py with a did-you-mean).
"""

from __future__ import annotations

import re
from typing import Any

from naftiko_runtime.capability.diagnostics import Diagnostics, Pos
from naftiko_runtime.capability.keys import KINDS
from naftiko_runtime.capability.model import HTTP_METHODS, Cors
from naftiko_runtime.capability.yamlsource import YList, YMap

KEYS = {  # spelling -> field
    "allowedOrigins": "origins", "origins": "origins",
    "allowedMethods": "methods", "methods": "methods",
    "allowedHeaders": "headers", "headers": "headers",
    "exposedHeaders": "exposed_headers",
    "allowCredentials": "credentials", "credentials": "credentials",
    "maxAge": "max_age",
}
assert set(KEYS) == set(KINDS["cors"].keys), "capability/keys.py lists the same cors keys"
# scheme://host[:port], where host may start with `*.` (any subdomain) or be a bracketed IPv6 address
_ORIGIN = re.compile(r"^https?://(\*\.)?([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name


def read_cors(value: Any, pos: Pos, namespace: str, d: Diagnostics) -> Cors | None:
    """The `cors` block of REST exposure `namespace`; None (with error diagnostics) when unusable."""
    where = f"exposure '{namespace}': cors"
    if not isinstance(value, YMap):
        d.error(pos, f"{where} must be a mapping (allowedOrigins, allowedMethods, allowedHeaders, exposedHeaders, allowCredentials, maxAge)", "cors")
        return None
    fields: dict[str, tuple[Any, Pos, str]] = {}
    errors = len(d.errors)
    for key in value:
        name = KEYS.get(str(key))  # other keys are reported by the one key walker (capability/keys.py)
        if name is None:
            continue
        if name in fields:
            d.error(value.key_at(key), f"{where}: '{key}' and '{fields[name][2]}' say the same thing; keep one", "cors")
        else:
            fields[name] = (value[key], value.at(key), str(key))
    cors = Cors(origins=[], pos=pos)
    if "origins" not in fields:
        d.error(pos, f"{where} needs `allowedOrigins`: the browser origins allowed (e.g. https://portal.example.com, or '*')", "cors")
    else:
        for origin, opos in _strings(fields["origins"], d, where):
            origin = origin.rstrip("/").lower() if origin != "*" else origin
            if origin == "null":
                d.error(opos, f"{where}: the 'null' origin is sent by sandboxed iframes and local files, so allowing it allows any page", "cors")
            elif origin != "*" and not _ORIGIN.match(origin):
                d.error(opos, f"{where}: origin '{origin}' must be scheme://host[:port] (no path), e.g. https://portal.example.com or https://*.example.com", "cors")
            else:
                cors.origins.append(origin)
    if "methods" in fields:
        for method, mpos in _strings(fields["methods"], d, where):
            method = method.upper()
            if method != "*" and method not in HTTP_METHODS:
                d.error(mpos, f"{where}: '{method}' is not an HTTP method; use some of {', '.join(HTTP_METHODS)} or '*'", "cors")
            else:
                cors.methods.append(method)
    for name in ("headers", "exposed_headers"):
        if name in fields:
            names = []
            for header, hpos in _strings(fields[name], d, where):
                if header != "*" and not _TOKEN.match(header):
                    d.error(hpos, f"{where}: '{header}' is not a header name", "cors")
                names.append(header)
            setattr(cors, name, names)
    if "credentials" in fields:
        raw, cpos, key = fields["credentials"]
        if not isinstance(raw, bool):
            d.error(cpos, f"{where}: `{key}` must be true or false", "cors")
        elif raw and "*" in cors.origins:
            d.error(cpos, f"{where}: `{key}: true` with the origin '*' would let every website call this API with its "
                          "visitors' cookies and credentials; list the origins allowed instead", "cors")
        else:
            cors.credentials = raw
    if "max_age" in fields:
        raw, apos, _ = fields["max_age"]
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            d.error(apos, f"{where}: `maxAge` must be a whole number of seconds >= 0, got {raw!r}", "cors")
        else:
            cors.max_age = raw
    return cors if len(d.errors) == errors else None


def _strings(field: tuple[Any, Pos, str], d: Diagnostics, where: str) -> list[tuple[str, Pos]]:
    """A list of strings, or one string (commas separate several): each with its position."""
    raw, pos, key = field
    if isinstance(raw, YList):
        out = []
        for i, item in enumerate(raw):
            if isinstance(item, (YMap, YList)) or item is None:
                d.error(raw.at(i), f"{where}: `{key}` items must be text", "cors")
            else:
                out.append((str(item).strip(), raw.at(i)))
        return out
    if isinstance(raw, YMap) or raw is None:
        d.error(pos, f"{where}: `{key}` must be a list", "cors")
        return []
    return [(part.strip(), pos) for part in str(raw).split(",") if part.strip()]
