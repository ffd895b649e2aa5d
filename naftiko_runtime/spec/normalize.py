"""Normalize a parsed capability (any accepted dialect) into the canonical model.

Real capability files mix the official alpha1..alpha3 forms with the generator dialect (see
docs/dialect.md). Each rewrite here leaves a `note` (or a `warning` when meaning was guessed),
so `naftiko validate` can show authors what the runtime understood; things that cannot work are
`error`s. Nothing is silently dropped: an ignored key is a warning.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Callable

from naftiko_runtime.spec.diagnostics import Diagnostics, Pos
from naftiko_runtime.spec.model import (
    HTTP_METHODS,
    JSON_TYPES,
    Action,
    ApiKey,
    Auth,
    Bind,
    Body,
    Capability,
    ConsumedOperation,
    Consumes,
    McpExposure,
    OtherExposure,
    OutputParam,
    Param,
    RestExposure,
    RestOperation,
    Tool,
    WithRef,
)
from naftiko_runtime.spec.yamlsource import YList, YMap
from naftiko_runtime.templates import refs_in

SUPPORTED_VERSIONS = ("1.0.0-alpha1", "1.0.0-alpha2", "1.0.0-alpha3")
PARAM_LOCATIONS = ("path", "query", "header", "cookie", "body", "environment")
UNSUPPORTED_AUTH = {"oauth1", "aws-sig-v4", "awssigv4", "aws", "hmac", "ntlm", "kerberos", "mtls"}
_SCHEMA_KEYWORDS = (
    "enum", "items", "properties", "format", "default", "minimum", "maximum", "minLength",
    "maxLength", "pattern", "minItems", "maxItems", "const", "examples", "example",
)
_SINGLE_BRACE = re.compile(r"(?<!\{)\{([A-Za-z0-9_.\-]+)\}(?!\})")
_DOUBLE_BRACE = re.compile(r"\{\{\s*([A-Za-z0-9_\-]+)\s*\}\}")
_REF_PREFIXES = ("rest", "tools", "mcp")

Loader = Callable[[Path], Any]


class Normalizer:
    """Walks one document; `load_import` reads an imported consumes file (same dialect rules)."""

    def __init__(self, file: str, base_dir: Path, diagnostics: Diagnostics, load_import: Loader | None = None):
        self.file = file
        self.base_dir = base_dir
        self.d = diagnostics
        self.load_import = load_import
        self._noted_prefixes: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------- helpers

    def _pos(self, node: Any) -> Pos:
        return getattr(node, "pos", Pos(self.file, 1, 1))

    def _map(self, node: Any, where: str, pos: Pos) -> YMap | None:
        if isinstance(node, YMap):
            return node
        if node is not None:
            self.d.error(pos, f"{where} must be a mapping (key: value), found {_kind(node)}", "structure")
        return None

    def _list(self, parent: YMap, key: str, where: str) -> list[tuple[Any, Pos]]:
        node = parent.get(key)
        if node is None:
            return []
        if isinstance(node, YMap) and key in ("inputParameters", "resources", "operations", "tools", "outputParameters"):
            # ikanos-style named-object maps: {name: {...}} -> [{name, ...}]
            self.d.note(parent.at(key), f"`{key}` written as a map of name -> entry; read as a list", "dialect-named-map")
            out = []
            for name, value in node.items():
                if isinstance(value, YMap):
                    if "name" not in value:
                        value["name"] = name
                        value.key_pos["name"] = node.key_at(name)
                        value.val_pos["name"] = node.key_at(name)
                    out.append((value, node.at(name)))
            return out
        if not isinstance(node, YList):
            self.d.error(parent.at(key), f"`{where}.{key}` must be a list, found {_kind(node)}", "structure")
            return []
        return [(item, node.at(i)) for i, item in enumerate(node)]

    def _str(self, node: YMap, key: str, where: str, required: bool = False) -> str:
        value = node.get(key)
        if value is None:
            if required:
                self.d.error(node.pos, f"{where} is missing `{key}`", "required-field")
            return ""
        if isinstance(value, (YMap, YList)):
            self.d.error(node.at(key), f"`{key}` in {where} must be text, found {_kind(value)}", "structure")
            return ""
        return str(value)

    # ---------------------------------------------------------------- document

    def document(self, root: Any) -> Capability | None:
        if not isinstance(root, YMap):
            self.d.error(self._pos(root), f"a capability file must be a mapping with a `naftiko` key, found {_kind(root)}", "structure")
            return None
        version = root.get("naftiko")
        if version is None:
            self.d.error(root.pos, "missing `naftiko: 1.0.0-alpha2` (the spec version) at the top of the file", "version")
            return None
        version = str(version)
        if version not in SUPPORTED_VERSIONS:
            self.d.error(root.at("naftiko"), f"spec version '{version}' is not supported; this runtime reads {', '.join(SUPPORTED_VERSIONS)}", "version")
            return None
        cap = Capability(file=self.file, version=version, pos=root.pos, diagnostics=self.d)
        info = root.get("info")
        if isinstance(info, YMap):
            cap.label = self._str(info, "label", "info")
            cap.description = self._str(info, "description", "info")
        cap.binds = self.binds(root, "binds")
        body = root.get("capability")
        if body is None:
            if "consumes" in root:  # a shared consumes file
                for item, pos in self._list(root, "consumes", "root"):
                    self.consumes_entry(cap, item, pos)
                return cap
            self.d.error(root.pos, "missing `capability:` (a capability needs `capability.exposes` and `capability.consumes`)", "structure")
            return cap
        body = self._map(body, "`capability`", root.at("capability"))
        if body is None:
            return cap
        if "binds" in body:
            self.d.note(body.at("binds"), "`capability.binds` is merged with the root `binds` (the reference engine ignores it)", "dialect-capability-binds")
            cap.binds += self.binds(body, "binds")
        if "consumes" in root:
            self.d.warning(root.at("consumes"), "root `consumes` in a capability file is not used; move it under `capability.consumes`", "root-consumes-ignored")
        for key in ("tools", "workflow", "imports", "aggregates"):
            if key in body:
                self.d.warning(body.key_at(key), f"`capability.{key}` is not supported by this runtime and is ignored", "unsupported-feature")
        for item, pos in self._list(body, "consumes", "capability"):
            self.consumes_entry(cap, item, pos)
        self.implicit_binds(cap)
        for item, pos in self._list(body, "exposes", "capability"):
            self.expose(cap, item, pos)
        if not body.get("exposes"):
            self.d.warning(body.pos, "the capability exposes nothing (`capability.exposes` is empty), so `run` has nothing to serve", "no-exposes")
        return cap

    # ---------------------------------------------------------------- binds

    def binds(self, parent: YMap, key: str) -> list[Bind]:
        out = []
        for item, pos in self._list(parent, key, "binds"):
            node = self._map(item, "a bind", pos)
            if node is None:
                continue
            keys_node = node.get("keys")
            keys: dict[str, str] = {}
            key_pos: dict[str, Pos] = {}
            if isinstance(keys_node, YMap):
                for var, provider in keys_node.items():
                    keys[str(var)] = str(provider if provider is not None else var)
                    key_pos[str(var)] = keys_node.key_at(var)
            elif isinstance(keys_node, YList):  # a list of names: each reads itself
                for i, var in enumerate(keys_node):
                    keys[str(var)] = str(var)
                    key_pos[str(var)] = keys_node.at(i)
                self.d.note(node.at("keys"), "bind `keys` written as a list; each name reads the variable of the same name", "dialect-bind-keys-list")
            else:
                self.d.error(node.pos, "a bind needs `keys:` mapping each variable name to where its value is read", "required-field")
            location = node.get("location")
            out.append(Bind(
                namespace=self._str(node, "namespace", "a bind") or "binds",
                keys=keys, pos=node.pos, location=str(location) if location else None, key_pos=key_pos,
            ))
        return out

    def implicit_binds(self, cap: Capability) -> None:
        """Credentials and base URIs naming a variable no bind declares read the environment.

        Authors write `token: '{{API_TOKEN}}'` and forget to declare API_TOKEN under `binds`. What
        they mean is a secret from the environment, so it becomes one, with a warning; `run` then
        stops if the variable is unset, as for any bind. Only credentials and base URIs get this:
        they never take caller input, so no other template can reach the environment.
        """
        declared = {(b.namespace, var) for b in cap.binds for var in b.keys} | {(None, var) for b in cap.binds for var in b.keys}
        implicit: dict[str, Bind] = {}
        for consumes in cap.consumes.values():
            texts: list[tuple[str | None, Pos]] = [(consumes.base_uri, consumes.pos)]
            path_keys = {e.key for e in consumes.auth.entries if e.placement == "path"} if consumes.auth else set()
            if consumes.auth is not None:
                a = consumes.auth
                texts += [(t, a.pos) for t in (a.token, a.username, a.password, *(e.value for e in a.entries))]
            for text, pos in texts:
                for ref in refs_in(text):
                    ns, var = (ref.path[0], ref.path[1]) if len(ref.path) == 2 else (None, ref.path[0])
                    if len(ref.path) > 2 or (ns, var) in declared or (ns is None and var in path_keys):
                        continue
                    declared.add((ns, var))
                    bind = implicit.setdefault(ns or "env", Bind(namespace=ns or "env", keys={}, pos=pos))
                    bind.keys[var] = var
                    bind.key_pos[var] = pos
                    close = difflib.get_close_matches(var, sorted(cap.bind_names - {var}), n=1, cutoff=0.8)
                    if close:  # a typo of a declared name, not a new secret
                        self.d.error(pos, f"`{{{{{ref.text}}}}}` names no bind variable; did you mean {close[0]}?", "unbound-variable")
                    else:
                        self.d.warning(pos, f"`{{{{{ref.text}}}}}` is not declared in `binds`; it is read from the environment variable {var} (declare it under `binds` to say so)", "bind-implicit")
        cap.binds += implicit.values()

    # ---------------------------------------------------------------- consumes

    def consumes_entry(self, cap: Capability, item: Any, pos: Pos) -> None:
        node = self._map(item, "a consumes entry", pos)
        if node is None:
            return
        if "location" in node or "import" in node:
            self.import_consumes(cap, node)
            return
        consumes = self.consumes(node)
        if consumes is None:
            return
        if consumes.namespace in cap.consumes:
            self.d.error(node.at("namespace"), f"consumes namespace '{consumes.namespace}' is declared twice", "duplicate-namespace")
            return
        cap.consumes[consumes.namespace] = consumes

    def import_consumes(self, cap: Capability, node: YMap) -> None:
        location = self._str(node, "location", "an imported consumes", required=True)
        wanted = self._str(node, "import", "an imported consumes", required=True)
        alias = self._str(node, "as", "an imported consumes") or wanted
        if not location or not wanted:
            return
        if self.load_import is None:
            return
        target = _file_path(location, self.base_dir)
        imported = self.load_import(target)
        if imported is None:
            self.d.error(node.at("location"), f"cannot import consumes from '{location}' (looked for {target})", "import-not-found")
            return
        found = imported.consumes.get(wanted)
        if found is None:
            known = ", ".join(imported.consumes) or "none"
            self.d.error(node.at("import"), f"'{location}' has no consumes namespace '{wanted}'; it has: {known}", "import-not-found")
            return
        if alias in cap.consumes:
            self.d.error(node.at("as" if "as" in node else "import"), f"consumes namespace '{alias}' is declared twice", "duplicate-namespace")
            return
        found.namespace = alias
        for op in found.operations.values():
            op.namespace = alias
        cap.consumes[alias] = found

    def consumes(self, node: YMap) -> Consumes | None:
        namespace = self._str(node, "namespace", "a consumes entry", required=True)
        if not namespace:
            return None
        kind = node.get("type")
        if kind is None:
            self.d.note(node.pos, f"consumes '{namespace}' has no `type`; read as `type: http`", "dialect-consumes-type")
        elif str(kind).lower() != "http":
            self.d.error(node.at("type"), f"consumes type '{kind}' is not supported; only `http` is", "unsupported-consumes-type")
            return None
        base = self._str(node, "baseUri", f"consumes '{namespace}'", required=True)
        if _SINGLE_BRACE.search(base):
            base = _SINGLE_BRACE.sub(lambda m: "{{" + m.group(1) + "}}", base)
        if base.endswith("/") and base.rstrip("/"):
            self.d.note(node.at("baseUri"), "baseUri ends with '/'; the trailing slash is dropped (paths start with '/')", "dialect-baseuri-slash")
            base = base.rstrip("/")
        consumes = Consumes(namespace=namespace, base_uri=base, pos=node.pos, description=self._str(node, "description", "consumes"))
        if "authentication" not in node and isinstance(node.get("auth"), YMap):
            self.d.note(node.key_at("auth"), "`auth:` read as `authentication:`", "dialect-auth-key")
            node["authentication"], node.val_pos["authentication"] = node["auth"], node.at("auth")
        if "authentication" in node:
            consumes.auth = self.auth(node.get("authentication"), node.at("authentication"), consumed=True)
        settings = node.get("x-naftiko")
        if isinstance(settings, YMap):
            consumes.settings = dict(settings)
        adapter_params = self.params(node, "inputParameters", f"consumes '{namespace}'", consumed=True)
        for res, rpos in self._list(node, "resources", f"consumes '{namespace}'"):
            res_node = self._map(res, "a consumed resource", rpos)
            if res_node is None:
                continue
            self.resource(consumes, res_node, adapter_params)
        return consumes

    def resource(self, consumes: Consumes, node: YMap, adapter_params: list[Param]) -> None:
        rname = self._str(node, "name", "a consumed resource")
        where = f"resource '{rname or node.get('path')}'"
        path = self._str(node, "path", where)
        if not path and "path" not in node:
            self.d.error(node.pos, f"{where} in consumes '{consumes.namespace}' is missing `path`", "required-field")
        res_params = self.params(node, "inputParameters", where, consumed=True)
        if res_params:
            self.d.note(node.at("inputParameters"), "resource-level inputParameters apply to every operation of the resource (the reference engine ignores them)", "dialect-resource-params")
        for op_node, opos in self._list(node, "operations", where):
            op_node = self._map(op_node, "a consumed operation", opos)
            if op_node is None:
                continue
            op = self.consumed_operation(consumes, rname, path, op_node, adapter_params + res_params)
            if op is None:
                continue
            if op.name in consumes.operations:
                first = consumes.operations[op.name].pos
                self.d.warning(op.pos, f"operation '{op.name}' is declared twice in consumes '{consumes.namespace}' (first at line {first.line}); calls reach the first", "duplicate-operation")
                continue
            consumes.operations[op.name] = op

    def consumed_operation(self, consumes: Consumes, rname: str, rpath: str, node: YMap, inherited: list[Param]) -> ConsumedOperation | None:
        name = self._str(node, "name", "a consumed operation", required=True)
        if not name:
            return None
        method = self.method(node, f"operation '{name}'")
        path = rpath
        if "path" in node:
            sub = self._str(node, "path", f"operation '{name}'")
            if rpath.strip("/") and sub.startswith(rpath.rstrip("/") + "/"):
                self.d.note(node.at("path"), f"operation-level `path` '{sub}' repeats the resource path; used as the full path", "dialect-operation-path")
                path = sub
            else:
                self.d.note(node.at("path"), f"operation-level `path` '{sub}' is appended to the resource path", "dialect-operation-path")
                path = path.rstrip("/") + ("" if sub.startswith("/") or not sub else "/") + sub
        params = _merge_params(inherited, self.params(node, "inputParameters", f"operation '{name}'", consumed=True))
        path = self.consumed_path(path, node.at("path") if "path" in node else node.pos)
        appended = []
        in_path = set(_DOUBLE_BRACE.findall(path))
        for p in params:
            if p.location == "path" and p.name not in in_path:
                appended.append(p.name)
        if appended:
            self.d.note(node.pos, f"path parameter(s) {', '.join(appended)} not in path '{path or '/'}'; appended as trailing segment(s): {path.rstrip('/')}/" + "/".join('{{' + a + '}}' for a in appended), "path-param-appended")
            path = path.rstrip("/") + "".join("/{{" + a + "}}" for a in appended)
        op = ConsumedOperation(
            namespace=consumes.namespace, name=name, method=method, path=path, pos=node.pos,
            resource=rname, description=self._str(node, "description", "operation"), params=params,
            output_format=str(node.get("outputRawFormat") or "json").lower(), appended_path_params=appended,
        )
        if "body" in node:
            op.body = self.body(node.get("body"), node.at("body"))
        elif method in ("POST", "PUT", "PATCH") and not any(p.location == "body" for p in params):
            self.d.note(node.pos, f"{method} operation '{name}' declares no body; the caller's JSON body (input `body`) is forwarded as is", "body-passthrough")
            params.append(Param(name="body", location="body", pos=node.pos, type="object",
                                description="JSON request body, forwarded to the upstream as is."))
        return op

    def consumed_path(self, path: str, pos: Pos) -> str:
        if _SINGLE_BRACE.search(path):
            path = _SINGLE_BRACE.sub(lambda m: "{{" + m.group(1) + "}}", path)
        if path and not path.startswith("/") and not path.startswith("{{"):
            self.d.note(pos, f"path '{path}' does not start with '/'; one is added", "dialect-path-slash")
            path = "/" + path
        return path

    def method(self, node: YMap, where: str) -> str:
        raw = node.get("method")
        if raw is None:
            self.d.note(node.pos, f"{where} has no `method`; GET is used", "dialect-default-method")
            return "GET"
        method = str(raw).upper()
        if method not in HTTP_METHODS:
            self.d.error(node.at("method"), f"{where}: method '{raw}' is not an HTTP method; use one of {', '.join(HTTP_METHODS[:5])}", "bad-method")
        return method

    def params(self, node: YMap, key: str, where: str, consumed: bool) -> list[Param]:
        out: list[Param] = []
        seen: dict[str, Pos] = {}
        for item, pos in self._list(node, key, where):
            p = self.param(item, pos, where, consumed)
            if p is None:
                continue
            if p.name in seen:
                self.d.warning(p.pos, f"input '{p.name}' is declared twice in {where} (first at line {seen[p.name].line}); the first is used", "duplicate-parameter")
                continue
            seen[p.name] = p.pos
            out.append(p)
        return out

    def param(self, item: Any, pos: Pos, where: str, consumed: bool) -> Param | None:
        if isinstance(item, str):  # a bare name
            return Param(name=item, location=None, pos=pos)
        node = self._map(item, f"a parameter of {where}", pos)
        if node is None:
            return None
        name = self._str(node, "name", f"a parameter of {where}", required=True)
        if not name:
            return None
        loc = node.get("in")
        location = str(loc).lower() if loc is not None else None
        if location is not None and location not in PARAM_LOCATIONS:
            if location == "formdata":
                location = "body"
            else:
                self.d.error(node.at("in"), f"parameter '{name}': `in: {loc}` is not one of {', '.join(PARAM_LOCATIONS)}", "bad-param-location")
                location = None
        ptype = str(node.get("type") or "string").lower()
        if ptype not in JSON_TYPES:
            alias = {"int": "integer", "float": "number", "double": "number", "bool": "boolean", "str": "string", "list": "array", "dict": "object", "map": "object"}.get(ptype)
            if alias:
                self.d.note(node.at("type"), f"parameter '{name}': type '{ptype}' read as '{alias}'", "dialect-param-type")
                ptype = alias
            else:
                self.d.warning(node.at("type"), f"parameter '{name}': unknown type '{ptype}', read as string", "bad-param-type")
                ptype = "string"
        required_default = location == "path" or (not consumed and key_required_default(where))
        required = node.get("required", required_default)
        value = node.get("value", node.get("template", node.get("mapping")))
        schema = {k: node[k] for k in _SCHEMA_KEYWORDS if k in node}
        return Param(
            name=name, location=location, pos=node.pos, type=ptype,
            description=self._str(node, "description", "parameter"), required=bool(required),
            value=value, schema=schema,
        )

    def body(self, raw: Any, pos: Pos) -> Body | None:
        if isinstance(raw, str):
            return Body("raw-json", raw, pos)
        if isinstance(raw, YMap) and "type" in raw:
            kind = str(raw.get("type")).lower()
            kinds = {"json": "json", "text": "text", "xml": "xml", "sparql": "sparql", "formurlencoded": "form", "form": "form", "multipartform": "multipart", "multipart": "multipart"}
            if kind not in kinds:
                self.d.error(raw.at("type"), f"body type '{raw.get('type')}' is not one of json, text, xml, sparql, formUrlEncoded, multipartForm", "bad-body-type")
                return None
            data = raw.get("data")
            if kinds[kind] == "json" and isinstance(data, str):
                return Body("raw-json", data, pos)
            return Body(kinds[kind], data, pos)  # type: ignore[arg-type]
        if isinstance(raw, (YMap, YList)):
            self.d.note(pos, "body given as a bare mapping; read as `{type: json, data: ...}`", "dialect-body-bare")
            return Body("json", raw, pos)
        self.d.error(pos, f"`body` must be text or `{{type, data}}`, found {_kind(raw)}", "bad-body-type")
        return None

    # ---------------------------------------------------------------- auth

    def auth(self, raw: Any, pos: Pos, consumed: bool) -> Auth | None:
        node = self._map(raw, "`authentication`", pos)
        if node is None:
            return None
        kind = str(node.get("type") or "").strip()
        low = kind.lower().replace("_", "").replace("-", "")
        f = lambda k: self._str(node, k, "authentication") or None  # noqa: E731
        if low == "bearer":
            if "key" in node or "placement" in node:
                key = f("key") or "Authorization"
                value = f("value") or f("token") or ""
                self.d.note(node.pos, f"bearer with key/value/placement read as header `{key}: {value}`", "dialect-bearer-keyvalue")
                return Auth("apikey", node.pos, entries=[ApiKey(key, value, str(node.get("placement") or "header").lower())], original_type=kind)
            token = f("token")
            if token is None and "value" in node:
                token = f("value")
                self.d.note(node.at("value"), "bearer `value` read as `token`", "dialect-bearer-value")
            if token is None:
                self.d.error(node.pos, "bearer authentication has no `token`", "auth-incomplete")
            return Auth("bearer", node.pos, token=token or "", original_type=kind)
        if low in ("apikey", "header", "query", "cookie"):
            entries: list[ApiKey] = []
            default_place = low if low in ("header", "query", "cookie") else "header"
            if isinstance(node.get("parameters"), YList):
                for i, p in enumerate(node["parameters"]):
                    if isinstance(p, YMap) and p.get("name"):
                        entries.append(ApiKey(str(p["name"]), str(p.get("value") or ""), str(p.get("in") or default_place).lower()))
                self.d.note(node.pos, f"`type: {kind}` with `parameters` read as {len(entries)} API key value(s) in the {default_place}", "dialect-auth-parameters")
            else:
                key = f("key") or f("header") or f("name")
                value = f("value") or f("token")
                placement = str(node.get("placement") or node.get("in") or default_place).lower()
                if low != "apikey" or kind != "apikey":
                    self.d.note(node.pos, f"`type: {kind}` read as apikey `{key}` in the {placement}", "dialect-auth-apikey")
                if "placement" not in node and low == "apikey":
                    self.d.note(node.pos, "apikey has no `placement`; `header` is used", "dialect-apikey-placement")
                if not key or value is None:
                    self.d.error(node.pos, "apikey authentication needs `key` and `value`", "auth-incomplete")
                    return None
                if placement not in ("header", "query", "cookie", "body", "path"):
                    self.d.error(node.at("placement"), f"apikey placement '{placement}' is not one of header, query, cookie, body, path", "auth-bad-placement")
                    return None
                entries.append(ApiKey(key, value, placement))
            return Auth("apikey", node.pos, entries=entries, original_type=kind)
        if low in ("basic", "digest"):
            if "username" not in node or "password" not in node:
                self.d.error(node.pos, f"{low} authentication needs `username` and `password`", "auth-incomplete")
            return Auth(low, node.pos, username=f("username") or "", password=f("password") or "", original_type=kind)  # type: ignore[arg-type]
        if low == "oauth2":
            return Auth("oauth2", node.pos, original_type=kind)
        if not kind:
            self.d.error(node.pos, "`authentication` has no `type` (bearer, apikey, basic)", "auth-incomplete")
            return None
        return Auth("unsupported", node.pos, original_type=kind)

    # ---------------------------------------------------------------- exposes

    def expose(self, cap: Capability, item: Any, pos: Pos) -> None:
        node = self._map(item, "an exposes entry", pos)
        if node is None:
            return
        kind = str(node.get("type") or "").lower()
        namespace = self._str(node, "namespace", f"a {kind or 'typed'} exposure") or f"{kind or 'expose'}-{len(cap.exposure_namespaces()) + 1}"
        if kind == "rest":
            cap.rest.append(self.rest(node, namespace))
        elif kind == "mcp":
            cap.mcp.append(self.mcp(node, namespace))
        elif kind in ("skill", "control", "http"):
            cap.other.append(OtherExposure(type=kind, namespace=namespace, pos=node.pos, port=_int_or_none(node.get("port"))))
        else:
            self.d.error(node.at("type") if "type" in node else node.pos, f"exposure type '{node.get('type')}' is not one of rest, mcp, skill, control", "bad-expose-type")

    def port(self, node: YMap, namespace: str, required: bool) -> int | None:
        raw = node.get("port")
        if raw is None:
            if required:
                self.d.warning(node.pos, f"exposure '{namespace}' has no `port`; give one or pass `--port {namespace}=PORT`", "missing-port")
            return None
        port = _int_or_none(raw)
        if port is None or not 0 <= port <= 65535:
            self.d.error(node.at("port"), f"exposure '{namespace}': port '{raw}' is not a TCP port number", "bad-port")
            return None
        return port

    def rest(self, node: YMap, namespace: str) -> RestExposure:
        exp = RestExposure(namespace=namespace, port=self.port(node, namespace, True) or 0, pos=node.pos,
                           address=self._str(node, "address", "rest") or "", description=self._str(node, "description", "rest"))
        if "authentication" in node:
            exp.auth = self.auth(node.get("authentication"), node.at("authentication"), consumed=False)
        for res, rpos in self._list(node, "resources", f"exposure '{namespace}'"):
            res_node = self._map(res, "a REST resource", rpos)
            if res_node is None:
                continue
            path = self.route_path(self._str(res_node, "path", "a REST resource", required=True), res_node.at("path"))
            res_params = self.params(res_node, "inputParameters", f"resource '{path}'", consumed=False)
            if "forward" in res_node:
                self.d.warning(res_node.key_at("forward"), "`forward` (proxying) is not supported by this runtime yet; this resource serves only its operations", "unsupported-feature")
            for op, opos in self._list(res_node, "operations", f"resource '{path}'"):
                op_node = self._map(op, "a REST operation", opos)
                if op_node is None:
                    continue
                method = self.method(op_node, f"operation on '{path}'")
                action = self.action(op_node, namespace, f"{method} {path}", res_params)
                exp.operations.append(RestOperation(
                    method=method, path=path, action=action, pos=op_node.pos,
                    name=self._str(op_node, "name", "operation"), description=self._str(op_node, "description", "operation"),
                    resource=self._str(res_node, "name", "resource"),
                ))
        return exp

    def route_path(self, path: str, pos: Pos) -> str:
        path = _DOUBLE_BRACE.sub(lambda m: "{" + m.group(1) + "}", path)
        if not path.startswith("/"):
            path = "/" + path
        if len(path) > 1 and path.endswith("/"):
            self.d.note(pos, f"route '{path}' ends with '/'; served without it", "dialect-route-slash")
            path = path.rstrip("/")
        if "?" in path:
            self.d.warning(pos, f"route '{path}' contains a query string; only the path part is matched", "route-query")
            path = path.split("?", 1)[0]
        return path

    def mcp(self, node: YMap, namespace: str) -> McpExposure:
        transport = str(node.get("transport") or "http").lower()
        if transport not in ("http", "stdio"):
            self.d.error(node.at("transport"), f"MCP transport '{transport}' is not one of http, stdio", "bad-transport")
            transport = "http"
        exp = McpExposure(namespace=namespace, pos=node.pos, port=self.port(node, namespace, transport == "http"),
                          address=self._str(node, "address", "mcp") or "", transport=transport,  # type: ignore[arg-type]
                          description=self._str(node, "description", "mcp"))
        if "authentication" in node:
            exp.auth = self.auth(node.get("authentication"), node.at("authentication"), consumed=False)
        for key in ("resources", "prompts"):
            if key in node:
                self.d.warning(node.key_at(key), f"MCP `{key}` are not served by this runtime yet; tools are", "unsupported-feature")
        for item, tpos in self._list(node, "tools", f"exposure '{namespace}'"):
            tnode = self._map(item, "an MCP tool", tpos)
            if tnode is None:
                continue
            name = self._str(tnode, "name", "an MCP tool", required=True)
            if not name:
                continue
            hints_node = tnode.get("hints")
            hints = {}
            if isinstance(hints_node, YMap):
                for k in ("readOnly", "destructive", "idempotent", "openWorld"):
                    if k in hints_node:
                        hints[k] = bool(hints_node[k])
            action = self.action(tnode, namespace, f"tool '{name}'", [])
            if action.inputs is None and isinstance(tnode.get("inputSchema"), YMap):
                action.inputs = self.schema_params(tnode["inputSchema"], tnode.at("inputSchema"))
            exp.tools.append(Tool(name=name, action=action, pos=tnode.pos, label=self._str(tnode, "label", "tool"),
                                  description=self._str(tnode, "description", "tool"), hints=hints))
        return exp

    def schema_params(self, schema: YMap, pos: Pos) -> list[Param]:
        """A tool written with a JSON Schema `inputSchema` instead of inputParameters."""
        self.d.note(pos, "tool `inputSchema` read as its input parameters", "dialect-input-schema")
        required = set(schema.get("required") or [])
        out = []
        props = schema.get("properties")
        if isinstance(props, YMap):
            for name, spec in props.items():
                spec = spec if isinstance(spec, YMap) else YMap()
                extra = {k: spec[k] for k in _SCHEMA_KEYWORDS if k in spec}
                out.append(Param(name=str(name), location=None, pos=props.key_at(name), type=str(spec.get("type") or "string"),
                                 description=str(spec.get("description") or ""), required=name in required, schema=extra))
        return out

    def action(self, node: YMap, namespace: str, where: str, inherited: list[Param]) -> Action:
        action = Action(pos=node.pos)
        call = node.get("call")
        calls = node.get("calls")
        if call is None and isinstance(calls, YList) and len(calls) == 1 and isinstance(calls[0], YMap) and calls[0].get("capability"):
            single = calls[0]
            self.d.note(node.key_at("calls"), f"{where}: `calls: [{{capability: ...}}]` read as `call` (+ `with` from its `parameters`)", "dialect-calls")
            call = single["capability"]
            node.val_pos["call"] = single.at("capability")
            if isinstance(single.get("parameters"), YMap) and "with" not in node:
                params = single["parameters"]
                for key in list(params):
                    if isinstance(params[key], str):
                        params[key] = _SINGLE_BRACE.sub(lambda m: "{{" + m.group(1) + "}}", params[key])
                node["with"], node.val_pos["with"] = params, single.at("parameters")
        elif call is None and isinstance(calls, YList) and calls:
            self.d.error(node.key_at("calls"), f"{where}: `calls` with several steps is orchestration, which this runtime does not support yet", "unsupported-feature")
        if call is not None:
            action.call_pos = node.at("call")
            parts = str(call).split(".")
            if len(parts) == 2 and all(parts):
                action.call = (parts[0], parts[1])
            elif len(parts) == 3 and all(parts):
                self.d.note(node.at("call"), f"call '{call}' names a resource; read as '{parts[0]}.{parts[2]}'", "dialect-call-three-part")
                action.call = (parts[0], parts[2])
            else:
                self.d.error(node.at("call"), f"{where}: call '{call}' must be `<consumes-namespace>.<operation>`", "bad-call")
        if "ref" in node:
            self.d.error(node.at("ref"), f"{where}: `ref` to aggregate functions is not supported by this runtime yet", "unsupported-feature")
        if "steps" in node:
            action.steps = list(node.get("steps") or [])
            self.d.error(node.key_at("steps"), f"{where}: orchestration `steps` are not supported by this runtime yet", "unsupported-feature")
        declared = self.params(node, "inputParameters", where, consumed=False) if "inputParameters" in node else None
        if declared is not None or inherited:
            action.inputs = _merge_params(inherited, declared or [])
        with_node = node.get("with")
        if with_node is not None:
            if isinstance(with_node, YMap):
                action.has_with = True
                for key, value in with_node.items():
                    action.with_[str(key)] = self.with_value(value, namespace, with_node.at(key))
                    action.with_pos[str(key)] = with_node.at(key)
            else:
                self.d.error(node.at("with"), f"{where}: `with` must be a mapping of consumed parameter -> value", "structure")
        for item, opos in self._list(node, "outputParameters", where):
            out = self.output(item, opos)
            if out is not None:
                action.outputs.append(out)
        return action

    def with_value(self, value: Any, namespace: str, pos: Pos) -> Any:
        if isinstance(value, str) and "{{" not in value:
            head, dot, rest = value.partition(".")
            if dot and rest and re.fullmatch(r"[A-Za-z0-9_$\-]+", rest):  # `$` for OData names (`tools.$select`)
                if head == namespace:
                    return WithRef(rest)
                if head in _REF_PREFIXES:
                    if (namespace, head) not in self._noted_prefixes:  # once per exposure, not per value
                        self._noted_prefixes.add((namespace, head))
                        self.d.note(pos, f"`with` values `{head}.<name>` (like `{value}`) in exposure '{namespace}' are read as references to inputs", "dialect-with-prefix")
                    return WithRef(rest)
        return value

    def output(self, item: Any, pos: Pos) -> OutputParam | None:
        node = self._map(item, "an output parameter", pos)
        if node is None:
            return None
        out = OutputParam(type=str(node.get("type") or "object").lower(), pos=node.pos,
                          name=str(node["name"]) if node.get("name") is not None else None)
        mapping = node.get("mapping")
        value = node.get("value")
        if mapping is None and isinstance(value, str) and value.strip().startswith("$"):
            mapping, value = value, None  # consumed style `value: $.x` on an exposed output
        out.mapping = str(mapping).strip() if mapping is not None else None
        out.value = value
        props = node.get("properties")
        if isinstance(props, YMap):
            for key, sub in props.items():
                parsed = self.output(sub, props.at(key))
                if parsed is not None:
                    out.properties[str(key)] = parsed
        elif isinstance(props, YList):  # a list of named outputs
            for i, sub in enumerate(props):
                parsed = self.output(sub, props.at(i))
                if parsed is not None and parsed.name:
                    out.properties[parsed.name] = parsed
        items = node.get("items")
        if isinstance(items, YList) and items:
            items = items[0]
        if isinstance(items, YMap):
            out.items = self.output(items, node.at("items"))
        return out


def key_required_default(where: str) -> bool:
    """MCP tool inputs are required unless `required: false` (spec); REST inputs are optional."""
    return where.startswith("tool ")


def _merge_params(first: list[Param], second: list[Param]) -> list[Param]:
    """Later levels (operation) override earlier ones (adapter, resource) by name."""
    out: dict[str, Param] = {p.name: p for p in first}
    for p in second:
        out[p.name] = p
    return list(out.values())


def _file_path(location: str, base_dir: Path) -> Path:
    """`./x.yml`, `x.yml`, `file:///./x.yml`, `file://./x.yml` resolve against the capability's directory."""
    loc = location
    for prefix in ("file://", "file:"):
        if loc.startswith(prefix):
            loc = loc[len(prefix):]
            break
    if loc.startswith("/./") or loc.startswith("/../"):
        loc = loc[1:]
    path = Path(loc)
    return path if path.is_absolute() else (base_dir / path).resolve()


def resolve_location(location: str, base_dir: Path) -> Path:
    return _file_path(location, base_dir)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _kind(node: Any) -> str:
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    if node is None:
        return "nothing"
    return f"{type(node).__name__} '{node}'"
