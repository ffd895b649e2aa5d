"""Compile a consumed operation into a request plan; build the upstream request per call.

Everything that does not depend on the call's arguments (URL pieces, bind values, auth headers,
template parsing) is decided here once. Per call, `RequestPlan.build` only looks values up,
encodes them, and assembles bytes. Values from callers are always encoded for where they go:
path values per segment, query values as query components, headers checked for CR/LF, JSON bodies
serialized, so no input can change the upstream path, query, host or headers.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote, unquote, urlencode

from naftiko_runtime.binds import BoundValues
from naftiko_runtime.errors import CompileError, InputError
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.model import Auth, Body, ConsumedOperation, Consumes, Param
from naftiko_runtime.settings import Settings
from naftiko_runtime.templates import MISSING, Ref, Template, to_text

JSON_CT = "application/json"
_COOKIE_SAFE = "!#$%&'()*+-./:<=>?@[]^_`{|}~"
_BAD_HEADER_CHARS = frozenset(map(chr, range(0x20))) - {"\t"} | {"\x7f"}  # line breaks, NUL and other controls
_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.{1,2}(?:$|[/\\])")
_UNRESERVED = re.compile(r"[A-Za-z0-9_~-]+")  # a path value of these alone goes out as it is (ids, UUIDs)
# Characters an HTTP client following the WHATWG URL standard (pyreqwest, browsers) would rewrite in
# a path or a query. The file's constant URL parts are percent-encoded here, at load, so the bytes
# the plan holds are the bytes that go out; values from callers never contain them (only
# unreserved characters are left unescaped). `\\` would become `/`, `#` would start a fragment.
_PATH_REWRITTEN = frozenset(' "<>`{}\\#') | frozenset(map(chr, range(0x20))) | {"\x7f"}
_QUERY_REWRITTEN = frozenset(' "<>\'#') | frozenset(map(chr, range(0x20))) | {"\x7f"}
_ENCODED_DOTS = re.compile(r"^(?:\.|%2e){1,2}$", re.IGNORECASE)

if TYPE_CHECKING:
    from naftiko_runtime.upstream.auth import DynamicAuth

Lookup = Callable[[Ref], Any]


def wire_form(text: str, query: bool = False) -> str:
    """A constant URL part in the form clients send unchanged (see `_PATH_REWRITTEN`)."""
    rewritten = _QUERY_REWRITTEN if query else _PATH_REWRITTEN
    if text.isascii() and not any(ch in rewritten for ch in text):
        return text
    return "".join(quote(ch, safe="") if ch in rewritten or not ch.isascii() else ch for ch in text)


def dot_segment(path: str) -> str | None:
    """The first `.`/`..` segment of a path, also percent-encoded (`%2e%2e`): clients and servers
    resolve them, so the path sent would not be the one written."""
    return next((seg for seg in path.split("/") if _ENCODED_DOTS.match(seg)), None)


@dataclass
class CompileContext:
    """What compiling needs to know about the capability and this process."""

    binds: BoundValues
    prefixes: frozenset[str]  # `{{tools.x}}`, `{{rest.x}}`, `{{<exposure-ns>.x}}` name input x
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    mock: bool = False
    base_dir: Path = Path(".")  # the capability file's directory (relative certificate paths)

    def template(self, source: str, json_mode: bool = False) -> Template:
        """Parse, fold in bind values, and strip input prefixes: the per-request part is left."""
        compiled = Template.compile_json(source) if json_mode else Template.compile(source)
        compiled = compiled.bind(self.binds.lookup)
        if any(len(r.path) > 1 and r.path[0] in self.prefixes for r in compiled.refs):
            parts = tuple(
                Ref(p.path[1:], p.in_string) if isinstance(p, Ref) and len(p.path) > 1 and p.path[0] in self.prefixes else p
                for p in compiled.parts
            )
            compiled = Template(compiled.source, parts, compiled.json_mode)
        return compiled


def lookup_in(args: dict[str, Any]) -> Lookup:
    """Resolve `{{x}}` / `{{x.field}}` against call arguments; MISSING when absent."""

    def lookup(ref: Ref) -> Any:
        value = args.get(ref.path[0], MISSING)
        for key in ref.path[1:]:
            if isinstance(value, dict):
                value = value.get(key, MISSING)
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return MISSING
        return value

    return lookup


def _present(value: Any) -> bool:
    return value is not MISSING and value is not None


@dataclass
class Prepared:
    """One upstream request, ready to send."""

    method: str
    url: str  # fully encoded
    headers: dict[str, str]
    body: bytes | None
    path_values: list[str]  # decoded path parameter values, in order (the mock upstream reads them)
    item: bool  # the path ends with a parameter (`/session/{id}`)
    limit: "Limit | None" = None  # a cap on the answer other than the namespace's maxResponseBytes
    operation: str = ""  # the consumed operation's name (metric labels and span names)
    masked: bool = True  # False: an answer only the runtime reads (a token endpoint's), never relayed


@dataclass(frozen=True)
class Limit:
    """A cap on one operation's answer and how errors name it (`maxBinarySize of 'ns.op'`)."""

    bytes: int
    name: str


@dataclass
class _Placed:
    name: str
    template: Template | None  # None: take the argument of the same name


@dataclass(frozen=True)
class TlsPlan:
    """TLS material of one upstream as data (PEM bytes), so any HTTP client can be given it.

    Trusted CAs are the system's (`SSL_CERT_FILE`/`SSL_CERT_DIR` honored) plus `ca_pems`;
    `identity_pem` is a client certificate chain and its private key, for mutual TLS.
    """

    ca_pems: tuple[bytes, ...] = ()
    identity_pem: bytes | None = None


class Upstream:
    """One consumes namespace compiled once: its base URL, credentials and client settings.

    The base URL is a constant after binding: a variable no bind declares is a startup error,
    because a caller must never choose the upstream host.
    """

    def __init__(self, namespace: str, base_url: str, auth: "AuthPlan", settings: Settings, tls: TlsPlan | None = None,
                 dynamic: "DynamicAuth | None" = None):
        self.namespace = namespace
        self.base_url = base_url
        self.auth = auth
        self.settings = settings
        self.tls = tls
        self.dynamic = dynamic  # credentials applied per request by Runtime.send (upstream/auth.py)

    @classmethod
    def compile(cls, consumes: Consumes, ctx: CompileContext, settings: Settings, base_uri: str | None = None) -> "Upstream | None":
        """The compiled namespace, or None after reporting its problems to `ctx.diagnostics`."""
        namespace = consumes.namespace
        ok = True
        try:
            auth = AuthPlan(consumes.auth, ctx, namespace)
        except CompileError as exc:
            ctx.diagnostics.error(consumes.auth.pos if consumes.auth is not None else consumes.pos, exc.message, exc.rule)
            auth, ok = AuthPlan(None, ctx, namespace), False
        base = ctx.template(base_uri if base_uri is not None else consumes.base_uri)
        for name, value in auth.path_vars.items():  # apikey placement `path` fills `{{key}}`
            base = base.bind(lambda r, n=name, v=value: v if r.path == (n,) else MISSING)
        if consumes.server_variables and base_uri is None and not ctx.mock:
            names = ", ".join("{" + v + "}" for v in consumes.server_variables)
            ctx.diagnostics.error(consumes.pos, f"baseUri of consumes '{namespace}' has server variables {names} with no value; "
                                  f"pass `--base-uri {namespace}=URL` to `naftiko run` (or declare a bind for each variable)", "baseuri-server-variables")
            ok = False
        elif not base.is_constant and not ctx.mock:
            names = ", ".join("{{" + r.text + "}}" for r in base.refs)
            ctx.diagnostics.error(consumes.pos, f"baseUri of consumes '{namespace}' uses {names}, which no bind declares (a caller must never choose the upstream host)", "unbound-variable")
            ok = False
        base_url = ""
        if base.is_constant:
            scheme, sep, rest = base.constant().partition("://")
            authority, slash, path = rest.partition("/")
            if dot_segment(path) is not None:
                ctx.diagnostics.error(consumes.pos, f"baseUri of consumes '{namespace}' has a '{dot_segment(path)}' segment, which HTTP clients and servers resolve; write the URL it stands for", "dot-segment")
                ok = False
            base_url = scheme + sep + authority + slash + wire_form(path)
        dynamic, tls = None, None
        if ok and auth.kind and not ctx.mock:
            try:
                dynamic, tls = _per_upstream(auth, base_url, ctx, namespace)
            except CompileError as exc:
                ctx.diagnostics.error(consumes.auth.pos if consumes.auth is not None else consumes.pos, exc.message, exc.rule)
                ok = False
        return cls(namespace, base_url, auth, settings, tls, dynamic) if ok else None


class RequestPlan:
    """A consumed operation compiled for repeated calls."""

    def __init__(self, upstream: Upstream, op: ConsumedOperation, ctx: CompileContext, limit: Limit | None = None):
        self.namespace = upstream.namespace
        self.limit = limit
        self.operation = op.name
        self.method = op.method
        self.op = op
        raw_path, _, fixed_query = op.path.partition("?")
        self.fixed_query = wire_form(fixed_query, query=True)
        self.auth = upstream.auth
        self.base_url = upstream.base_url
        self.path = ctx.template(raw_path)
        for name, value in self.auth.path_vars.items():
            self.path = self.path.bind(lambda r, n=name, v=value: quote(v, safe="") if r.path == (n,) else MISSING)
        skeleton = "".join(part if isinstance(part, str) else "x" for part in self.path.parts)  # a value is never empty
        if dot_segment(skeleton) is not None:
            raise CompileError(f"the path of '{self.namespace}.{op.name}' ({op.path}) has a '{dot_segment(skeleton)}' segment, which HTTP "
                               "clients and servers resolve; write the path it stands for", "dot-segment")
        self.path = Template(self.path.source, tuple(wire_form(p) if isinstance(p, str) else p for p in self.path.parts))
        self.item = bool(self.path.parts) and isinstance(self.path.parts[-1], Ref)
        self.query: list[_Placed] = []
        self.headers: list[_Placed] = []
        self.cookies: list[_Placed] = []
        self.body_fields: list[_Placed] = []
        self.whole_body: str | None = None
        self.defaults: dict[str, str] = {}
        for p in op.params:
            self._place(p, ctx)
        self.body = BodyPlan(op.body, ctx) if op.body is not None else None
        self.json_body = self.body is None and (self.whole_body is not None or bool(self.body_fields) or bool(self.auth.body))

    def _place(self, p: Param, ctx: CompileContext) -> None:
        template = ctx.template(p.value) if isinstance(p.value, str) else None
        if p.value is not None and not isinstance(p.value, str):
            template = Template(to_text(p.value), (to_text(p.value),))
        placed = _Placed(p.name, template)
        if p.location == "query":
            self.query.append(placed)
        elif p.location == "header":
            self.headers.append(placed)
        elif p.location == "cookie":
            self.cookies.append(placed)
        elif p.location == "body":
            if p.name == "body" and template is None:
                self.whole_body = p.name
            else:
                self.body_fields.append(placed)
        elif p.location == "environment":
            if p.name in os.environ:
                self.defaults[p.name] = os.environ[p.name]

    @staticmethod
    def _value(placed: _Placed, args: dict[str, Any], lookup: Lookup) -> Any:
        if placed.template is None:
            return args.get(placed.name, MISSING)
        if placed.template.is_constant:
            return placed.template.constant()
        if placed.template.all_missing(lookup):
            return MISSING
        return placed.template.render_value(lookup)

    def build(self, args: dict[str, Any]) -> Prepared:
        if self.defaults:
            args = {**self.defaults, **args}
        lookup = lookup_in(args)
        path_values: list[str] = []
        url = self._url(lookup, path_values)
        query = [self.fixed_query] if self.fixed_query else []
        for placed in self.query:
            value = self._value(placed, args, lookup)
            if _present(value):
                query.append(_query_pair(placed.name, value))
        query.extend(self.auth.query)
        if query:
            url += "?" + "&".join(q for q in query if q)
        headers: dict[str, str] = dict(self.auth.headers)
        for placed in self.headers:
            value = self._value(placed, args, lookup)
            if _present(value):
                headers[placed.name] = _header_value(placed.name, value)
        cookies = [*self.auth.cookies]
        for placed in self.cookies:
            value = self._value(placed, args, lookup)
            if _present(value):
                cookies.append(f"{placed.name}={quote(to_text(value), safe=_COOKIE_SAFE)}")
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        body: bytes | None = None
        if self.body is not None:
            body, content_type = self.body.render(lookup, self.auth.body)
            headers.setdefault("Content-Type", content_type)
        elif self.json_body:
            payload = self._json_payload(args, lookup)
            declared = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
            if isinstance(payload, str) and declared is not None and "json" not in declared.lower():
                body = payload.encode()  # text in the media type the caller declared: sent unchanged
            elif payload is not MISSING:
                body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
                headers.setdefault("Content-Type", JSON_CT)
        return Prepared(self.method, url, headers, body, path_values, self.item, self.limit, self.operation)

    def _json_payload(self, args: dict[str, Any], lookup: Lookup) -> Any:
        payload: Any = args.get(self.whole_body, MISSING) if self.whole_body else MISSING
        fields = {}
        for placed in self.body_fields:
            value = self._value(placed, args, lookup)
            if value is not MISSING:
                fields[placed.name] = value
        fields.update(self.auth.body)
        if fields:
            if payload is MISSING or payload is None:
                payload = {}
            if isinstance(payload, dict):
                payload = {**payload, **fields}
        return payload

    def _url(self, lookup: Lookup, path_values: list[str]) -> str:
        out = [self.base_url]
        for part in self.path.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = lookup(part)
            text = value if type(value) is str else to_text(value)  # noqa: E721 (the common case, without a call)
            if not text:  # MISSING, None and "" alike
                raise InputError.one(part.text, "path", f"is required to build the upstream URL of '{self.namespace}.{self.operation}'")
            path_values.append(text)
            out.append(text if _UNRESERVED.fullmatch(text) else path_segment(part.text, text))
        return "".join(out)


def path_segment(name: str, text: str, safe: str = "") -> str:
    """A path value from a caller as one encoded segment. A `.`/`..` segment is a 400, also inside
    the value (`../x`, `..\\x`): an upstream that decodes %2F must not walk up the base path."""
    if _DOT_SEGMENT.search(text):
        raise InputError.one(name, "path", f"'{text[:40]}' is not allowed as a path value (a '.' or '..' segment)")
    return quote(text, safe=safe)


# `forward`: headers that describe one connection, not the request, never go upstream from a caller
# (RFC 9110 7.6.1), nor do the ones the client computes itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "host", "content-length"})
_PCHAR = "!$&'()*+,;=:@"  # sub-delims and `:@`: left as they are in forwarded path segments


class ForwardPlan:
    """A `forward` resource compiled: requests it proxies keep their method, remaining path,
    query string and body; of the caller's headers only the trusted ones go upstream, then the
    consumed namespace's fixed headers and credentials (which win)."""

    def __init__(self, upstream: Upstream, trusted: list[str], fixed_headers: dict[str, str], operation: str):
        self.namespace = upstream.namespace
        self.operation = operation  # `forward <resource path>`: the upstream operation of metrics and spans
        self.base_url = upstream.base_url
        self.trusted = frozenset(h.lower() for h in trusted) - HOP_BY_HOP
        self.headers = {**fixed_headers, **upstream.auth.headers}
        self.query = "&".join(upstream.auth.query)
        self.cookies = "; ".join(upstream.auth.cookies)

    def prepare(self, method: str, segments: list[str], query: str, headers: list[tuple[bytes, bytes]]) -> Prepared:
        """`segments` are the raw (percent-encoded) path segments after the route's prefix."""
        path = "".join("/" + path_segment("path", unquote(seg), _PCHAR) for seg in segments)
        query = "&".join(q for q in (wire_form(query, query=True), self.query) if q)
        out: dict[str, str] = {}
        accept_encoding = "identity"  # the answer is passed through undecoded: only what the caller reads
        for raw_name, raw_value in headers:
            name = raw_name.decode("latin-1")
            if name in ("content-type", "accept-encoding") or name in self.trusted:
                value = raw_value.decode("latin-1")
                if name == "accept-encoding":
                    accept_encoding = value
                elif name in out:
                    out[name] = out[name] + (", " if name != "cookie" else "; ") + value
                else:
                    out[name] = value
        out["accept-encoding"] = accept_encoding
        if self.cookies:
            out["cookie"] = f"{out['cookie']}; {self.cookies}" if "cookie" in out else self.cookies
        for name, value in self.headers.items():
            out.pop(name.lower(), None)
            out[name] = value
        url = self.base_url + path + ("?" + query if query else "")
        return Prepared(method, url, out, None, [unquote(s) for s in segments], len(segments) > 1, operation=self.operation)


def _query_pair(name: str, value: Any) -> str:
    if isinstance(value, list):
        return "&".join(f"{quote(name, safe='')}={quote(to_text(v), safe='')}" for v in value)
    return f"{quote(name, safe='')}={quote(to_text(value), safe='')}"


def _header_value(name: str, value: Any) -> str:
    text = to_text(value)
    if any(ch in _BAD_HEADER_CHARS for ch in text):
        raise InputError.one(name, "header", "must not contain line breaks, NUL or other control characters")
    return text


class AuthPlan:
    """Upstream credentials, rendered once at startup from bind values."""

    def __init__(self, auth: Auth | None, ctx: CompileContext, namespace: str):
        self.headers: dict[str, str] = {}
        self.query: list[str] = []
        self.cookies: list[str] = []
        self.body: dict[str, str] = {}
        self.path_vars: dict[str, str] = {}
        self.derived: list[str] = []  # values the runtime computed from credentials (masked like them)
        self.kind = ""  # set for the schemes compiled per upstream (dynamic, tls)
        self.fields: dict[str, object] = {}
        if auth is None:
            return
        render = lambda text: _constant(ctx, text or "", namespace)  # noqa: E731
        if auth.kind == "bearer":
            self.headers["Authorization"] = f"Bearer {render(auth.token)}"
        elif auth.kind == "basic":
            creds = f"{render(auth.username)}:{render(auth.password)}".encode()
            encoded = base64.b64encode(creds).decode()
            self.headers["Authorization"] = "Basic " + encoded
            self.derived.append(encoded)
        elif auth.kind == "apikey":
            for entry in auth.entries:
                value = render(entry.value)
                if entry.placement == "header":
                    self.headers[entry.key] = value
                elif entry.placement == "query":
                    self.query.append(_query_pair(entry.key, value))
                elif entry.placement == "cookie":
                    self.cookies.append(f"{entry.key}={quote(value, safe=_COOKIE_SAFE)}")
                elif entry.placement == "body":
                    self.body[entry.key] = value
                elif entry.placement == "path":
                    self.path_vars[entry.key] = value
        else:  # per-request schemes (upstream/auth.py) and client certificates (upstream/tls.py)
            self.fields = {k: render(v) if isinstance(v, str) else v for k, v in auth.fields.items()}
            self.kind = auth.kind
        for name, value in self.headers.items():  # a bound secret read from a file often ends with a line break
            if any(ch in _BAD_HEADER_CHARS for ch in value):
                raise CompileError(f"authentication of consumes '{namespace}': the value bound for header '{name}' holds a line "
                                   "break or another control character (often a trailing newline in the secret); remove it", "bad-credential")


def _per_upstream(auth: AuthPlan, base_url: str, ctx: CompileContext, namespace: str) -> tuple["DynamicAuth | None", TlsPlan | None]:
    """The per-request credentials or the TLS client identity of a scheme AuthPlan does not render."""
    from naftiko_runtime.upstream import auth as dynamic
    from naftiko_runtime.upstream.tls import compile_tls

    fields = auth.fields
    if auth.kind == "aws-sigv4":
        return dynamic.SigV4Config.compile(fields, base_url, namespace), None
    if auth.kind == "oauth2":
        return dynamic.OAuth2Config.compile(fields, namespace), None
    if auth.kind == "digest":
        return dynamic.DigestConfig(str(fields.get("username", "")), str(fields.get("password", ""))), None
    if auth.kind == "certificate":
        return None, compile_tls(fields, ctx.base_dir, namespace)
    return None, None


def _constant(ctx: CompileContext, text: str, namespace: str) -> str:
    """Credentials come from binds only, never from a caller: what is left unresolved is an error."""
    template = ctx.template(text)
    if not template.is_constant and not ctx.mock:
        names = ", ".join("{{" + r.text + "}}" for r in template.refs)
        raise CompileError(f"authentication of consumes '{namespace}' uses {names}, which no bind declares", "unbound-variable")
    return template.constant()


class BodyPlan:
    """A `body:` template (SEMANTICS 2.4) with the content type its kind implies."""

    _TYPES = {"json": JSON_CT, "raw-json": JSON_CT, "text": "text/plain", "xml": "application/xml",
              "sparql": "application/sparql-query", "form": "application/x-www-form-urlencoded",
              "binary": "application/octet-stream"}

    def __init__(self, body: Body, ctx: CompileContext):
        self.kind = body.kind
        self.content_type = body.media_type or self._TYPES.get(body.kind, JSON_CT)
        if body.kind == "multipart":
            self.compiled = Multipart(body.data, ctx)
        elif body.kind == "raw-json":
            self.compiled: Any = ctx.template(str(body.data), json_mode=True)
        elif body.kind in ("text", "xml", "sparql", "binary") or (body.kind == "form" and isinstance(body.data, str)):
            self.compiled = ctx.template(to_text(body.data))
        else:
            self.compiled = _compile_tree(body.data, ctx)

    def render(self, lookup: Lookup, extra_fields: dict[str, str]) -> tuple[bytes, str]:
        if isinstance(self.compiled, Multipart):
            return self.compiled.render(lookup, extra_fields)
        if isinstance(self.compiled, Template):
            text = self.compiled.render(lookup)
            if self.kind == "binary":
                return _base64_bytes(text, self.compiled), self.content_type
            if self.kind == "form" and extra_fields:
                text += ("&" if text else "") + urlencode(extra_fields)
            return text.encode(), self.content_type
        data = _render_tree(self.compiled, lookup)
        if data is MISSING:
            data = {}
        if extra_fields and isinstance(data, dict):
            data = {**data, **extra_fields}
        if self.kind == "form":
            return urlencode({k: to_text(v) for k, v in (data or {}).items()}).encode(), self.content_type
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), self.content_type


def _base64_bytes(text: str, template: Template) -> bytes:
    """A binary body: the rendered text is base64 (standard or URL-safe, padding optional)."""
    try:
        return _from_base64(text)
    except (ValueError, binascii.Error):
        names = ", ".join(r.text for r in template.refs) or "body"
        raise InputError.one(names, "body", "must be base64 text (the bytes of the binary body)") from None


def _from_base64(text: str) -> bytes:
    """Standard or URL-safe base64, whitespace and padding optional; ValueError otherwise."""
    compact = "".join(text.split())
    return base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=b"-_" if ("-" in compact or "_" in compact) else None, validate=True)


class Multipart:
    """A `multipartForm` body: parts with a name, a value template and, for files, a filename.

    A file part's value is its content base64-encoded (how JSON and MCP carry bytes), decoded
    before sending; a plain part's value is sent as UTF-8 text. Parts whose value is missing are
    left out, like absent query parameters.
    """

    def __init__(self, data: Any, ctx: CompileContext):
        if not isinstance(data, list):
            raise CompileError("a multipartForm body's `data` must be a list of parts ({name, value, filename?, contentType?})")
        self.parts: list[tuple[str, Template, str | None, str | None]] = []
        for part in data:
            if not isinstance(part, dict) or not part.get("name"):
                raise CompileError("each multipartForm part needs a `name` and a `value`")
            filename = part.get("filename")
            content_type = part.get("contentType")
            self.parts.append((str(part["name"]), ctx.template(to_text(part.get("value"))),
                               str(filename) if filename is not None else None, str(content_type) if content_type else None))

    def render(self, lookup: Lookup, extra_fields: dict[str, str]) -> tuple[bytes, str]:
        boundary = uuid.uuid4().hex
        out: list[bytes] = []
        fields = [(name, template.render_value(lookup), filename, ctype) for name, template, filename, ctype in self.parts]
        fields += [(name, value, None, None) for name, value in extra_fields.items()]
        for name, value, filename, ctype in fields:
            if not _present(value):
                continue
            if filename is not None:
                try:
                    content = _from_base64(to_text(value))
                except (ValueError, binascii.Error):
                    raise InputError.one(name, "body", "must be the file's content, base64-encoded") from None
                disposition = f'form-data; name="{_form_quote(name)}"; filename="{_form_quote(filename)}"'
                head = f"Content-Disposition: {disposition}\r\nContent-Type: {ctype or 'application/octet-stream'}\r\n\r\n"
            else:
                content = to_text(value).encode()
                head = f'Content-Disposition: form-data; name="{_form_quote(name)}"\r\n' + (f"Content-Type: {ctype}\r\n" if ctype else "") + "\r\n"
            out.append(f"--{boundary}\r\n{head}".encode() + content + b"\r\n")
        out.append(f"--{boundary}--\r\n".encode())
        return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _form_quote(text: str) -> str:
    """A name or filename inside a quoted Content-Disposition parameter (the HTML form encoding)."""
    return text.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _compile_tree(data: Any, ctx: CompileContext) -> Any:
    if isinstance(data, dict):
        return {str(k): _compile_tree(v, ctx) for k, v in data.items()}
    if isinstance(data, list):
        return [_compile_tree(v, ctx) for v in data]
    if isinstance(data, str) and "{{" in data:
        return ctx.template(data)
    return data


def _render_tree(node: Any, lookup: Lookup) -> Any:
    """Structured body data: a lone `{{x}}` keeps x's type; a missing one drops its key."""
    if isinstance(node, Template):
        return node.render_value(lookup)
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            rendered = _render_tree(value, lookup)
            if rendered is not MISSING:
                out[key] = rendered
        return out
    if isinstance(node, list):
        return [v for v in (_render_tree(item, lookup) for item in node) if v is not MISSING]
    return node
