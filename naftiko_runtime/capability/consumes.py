"""Reading `consumes` entries: upstreams, their operations, bodies and credentials (every dialect)."""

from __future__ import annotations

from typing import Any

from naftiko_runtime import credentials
from naftiko_runtime.capability.diagnostics import Pos
from naftiko_runtime.capability.imports import ImportReader, is_import
from naftiko_runtime.capability.model import (
    ApiKey,
    Auth,
    Body,
    Capability,
    ConsumedOperation,
    Consumes,
    Param,
)
from naftiko_runtime.capability.reader import (
    DOUBLE_BRACE,
    SINGLE_BRACE,
    merge_params,
)
from naftiko_runtime.capability.yamlsource import YList, YMap


class ConsumesReader(ImportReader):
    """`consumes` entries, inline or imported, into `Consumes` with compiled-ready operations."""

    def consumes_entry(self, cap: Capability, item: Any, pos: Pos) -> None:
        node = self._map(item, "a consumes entry", pos)
        if node is None:
            return
        if is_import(node, "consumes"):
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
        entry = self.renamed_copy(node, "consumes", "consumes namespace", lambda source: source.consumes,
                                  cap.consumes.__contains__, lambda c: c.operations.values())
        if entry is not None:
            cap.consumes[entry.namespace] = entry

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
        single = SINGLE_BRACE.findall(base)  # OpenAPI server variables, unless a bind or the apikey fills them
        if single:
            base = SINGLE_BRACE.sub(lambda m: "{{" + m.group(1) + "}}", base)
        if base.endswith("/") and base.rstrip("/"):
            self.d.note(node.at("baseUri"), "baseUri ends with '/'; the trailing slash is dropped (paths start with '/')", "dialect-baseuri-slash")
            base = base.rstrip("/")
        consumes = Consumes(namespace=namespace, base_uri=base, pos=node.pos, description=self._str(node, "description", "consumes"))
        if "authentication" not in node and isinstance(node.get("auth"), YMap):
            self.d.note(node.key_at("auth"), "`auth:` read as `authentication:`", "dialect-auth-key")
            node["authentication"], node.val_pos["authentication"] = node["auth"], node.at("auth")
        if "authentication" in node:
            consumes.auth = self.auth(node.get("authentication"), node.at("authentication"), consumed=True)
        if single:
            filled = self.filled_by_binds(consumes)
            consumes.server_variables = tuple(v for v in dict.fromkeys(single) if v not in filled)
        if "tunnel" in node:
            self.tunnel(node, namespace)
        settings = node.get("x-naftiko")
        if isinstance(settings, YMap):
            consumes.settings = dict(settings)
        adapter_params = self.params(node, "inputParameters", f"consumes '{namespace}'", consumed=True)
        consumes.params = adapter_params
        for res, rpos in self._list(node, "resources", f"consumes '{namespace}'"):
            res_node = self._map(res, "a consumed resource", rpos)
            if res_node is None:
                continue
            self.resource(consumes, res_node, adapter_params)
        return consumes

    def filled_by_binds(self, consumes: Consumes) -> set[str]:
        """Placeholder names no caller fills: bind variables, and an apikey placed in the path."""
        if consumes.auth is None:
            return set(self.bind_vars)
        return self.bind_vars | {e.key for e in consumes.auth.entries if e.placement == "path"}

    def tunnel(self, node: YMap, namespace: str) -> None:
        """OpenZiti tunnels are not supported: never a silent direct call instead."""
        tunnel = node.get("tunnel")
        fallback = str(tunnel.get("fallback") or "fail").lower() if isinstance(tunnel, YMap) else "fail"
        kind_ = tunnel.get("type") if isinstance(tunnel, YMap) else None
        what = f"`tunnel` ({kind_ or 'ziti'}) on consumes '{namespace}'"
        if fallback == "direct":
            self.d.warning(node.key_at("tunnel"), f"{what} is not supported by this runtime; with `fallback: direct` its calls go directly to its baseUri", "unsupported-tunnel")
        else:
            self.d.error(node.key_at("tunnel"), f"{what} is not supported by this runtime, and its `fallback` is `{fallback}`{' (the default)' if not isinstance(tunnel, YMap) or 'fallback' not in tunnel else ''}, so its calls cannot be made; reach the API without the tunnel and remove `tunnel`, or set `fallback: direct` to call baseUri directly", "unsupported-tunnel")

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
        method = self.method(node, f"operation '{name}'", consumed=True)
        path = rpath
        if "path" in node:
            sub = self._str(node, "path", f"operation '{name}'")
            if rpath.strip("/") and sub.startswith(rpath.rstrip("/") + "/"):
                self.d.note(node.at("path"), f"operation-level `path` '{sub}' repeats the resource path; used as the full path", "dialect-operation-path")
                path = sub
            else:
                self.d.note(node.at("path"), f"operation-level `path` '{sub}' is appended to the resource path", "dialect-operation-path")
                path = path.rstrip("/") + ("" if sub.startswith("/") or not sub else "/") + sub
        params = merge_params(inherited, self.params(node, "inputParameters", f"operation '{name}'", consumed=True))
        path = self.consumed_path(path, node.at("path") if "path" in node else node.pos)
        appended = []
        in_path = set(DOUBLE_BRACE.findall(path))
        for p in params:
            if p.location == "path" and p.name not in in_path:
                appended.append(p.name)
        declared = {p.name for p in params} | self.filled_by_binds(consumes)
        implied = [n for n in dict.fromkeys(in_path) if n not in declared]
        if implied:
            self.d.note(node.at("path") if "path" in node else node.pos, f"operation '{name}': " + ", ".join("{{" + n + "}}" for n in implied) + f" in path '{path}' has no declared parameter; read as required string path input(s) {', '.join(implied)}", "path-param-implied")
        if appended:
            self.d.note(node.pos, f"path parameter(s) {', '.join(appended)} not in path '{path or '/'}'; appended as trailing segment(s): {path.rstrip('/')}/" + "/".join('{{' + a + '}}' for a in appended), "path-param-appended")
            path = path.rstrip("/") + "".join("/{{" + a + "}}" for a in appended)
        op = ConsumedOperation(
            namespace=consumes.namespace, name=name, method=method, path=path, pos=node.pos,
            resource=rname, description=self._str(node, "description", "operation"), params=params,
            output_format=str(node.get("outputRawFormat") or "json").lower(), tags=self.tags(node, f"operation '{name}'"),
            media_type=self._str(node, "outputMediaType", f"operation '{name}'") or None,
            max_binary=self.size(node, "maxBinarySize", f"operation '{name}'"),
        )
        if op.max_binary is not None and op.output_format != "binary":
            self.d.warning(node.key_at("maxBinarySize"), f"operation '{name}': `maxBinarySize` applies to `outputRawFormat: binary` only; this operation reads {op.output_format}", "binary-size-unused")
        for item, opos in self._list(node, "outputParameters", f"operation '{name}'"):
            out = self.output(item, opos)
            if out is not None:
                op.outputs.append(out)
        if "body" in node:
            op.body = self.body(node.get("body"), node.at("body"))
        elif method in ("POST", "PUT", "PATCH") and not any(p.location == "body" for p in params):
            self.d.note(node.pos, f"{method} operation '{name}' declares no body; the caller's JSON body (input `body`) is forwarded as is", "body-passthrough")
            if any(p.location == "header" and p.name.lower() == "content-type" for p in params):  # any media type
                params.append(Param(name="body", location="body", pos=node.pos, type="string",
                                    description="Request body as text, sent unchanged with the Content-Type given."))
            else:
                params.append(Param(name="body", location="body", pos=node.pos, type="object",
                                    description="JSON request body, forwarded to the upstream as is."))
        return op

    def consumed_path(self, path: str, pos: Pos) -> str:
        if SINGLE_BRACE.search(path):
            path = SINGLE_BRACE.sub(lambda m: "{{" + m.group(1) + "}}", path)
        if path and not path.startswith("/") and not path.startswith("{{"):
            self.d.note(pos, f"path '{path}' does not start with '/'; one is added", "dialect-path-slash")
            path = "/" + path
        return path

    def body(self, raw: Any, pos: Pos) -> Body | None:
        if isinstance(raw, str):
            return Body("raw-json", raw, pos)
        if isinstance(raw, YMap) and "type" in raw:
            kind = str(raw.get("type")).lower()
            kinds = {"json": "json", "text": "text", "xml": "xml", "sparql": "sparql", "formurlencoded": "form", "form": "form",
                     "multipartform": "multipart", "multipart": "multipart", "binary": "binary"}
            if kind not in kinds:
                self.d.error(raw.at("type"), f"body type '{raw.get('type')}' is not one of json, text, xml, sparql, formUrlEncoded, multipartForm, binary", "bad-body-type")
                return None
            data = raw.get("data")
            media_type = self._str(raw, "mediaType", "body") or None
            if kinds[kind] == "json" and isinstance(data, str):
                return Body("raw-json", data, pos, media_type)
            return Body(kinds[kind], data, pos, media_type)  # type: ignore[arg-type]
        if isinstance(raw, (YMap, YList)):
            self.d.note(pos, "body given as a bare mapping; read as `{type: json, data: ...}`", "dialect-body-bare")
            return Body("json", raw, pos)
        self.d.error(pos, f"`body` must be text or `{{type, data}}`, found {kind(raw)}", "bad-body-type")
        return None

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
            return Auth("bearer", node.pos, original_type=kind, fields={"token": token or ""})
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
        if not kind:
            self.d.error(node.pos, f"`authentication` has no `type` ({credentials.names('upstream' if consumed else 'exposure')})", "auth-incomplete")
            return None
        scheme = credentials.scheme_for(kind)
        if scheme is None:
            return Auth("unsupported", node.pos, original_type=kind)
        fields: dict[str, Any] = {}
        for key in scheme.fields:
            value = node.get(key)
            if isinstance(value, YList) and all(not isinstance(v, (YMap, YList)) for v in value):
                fields[key] = [str(v) for v in value]  # scopes, algorithms
            elif isinstance(value, str) and key in ("scopes", "algorithms"):
                fields[key] = value.split()
            elif value is not None:
                fields[key] = self._str(node, key, "authentication")
        required = scheme.upstream if consumed else scheme.exposure
        missing = [k for k in required or () if k not in fields]
        if kind.lower() == "oauth2" and not consumed and not {"resource", "audience"} & set(fields):
            missing.append("resource")  # the audience tokens must be issued for
        if missing:
            cause = self.typos.cause(node.pos, missing)
            self.d.error(node.pos, f"{kind} authentication needs {' and '.join(f'`{k}`' for k in missing)}{cause}", "auth-incomplete")
        return Auth(scheme.kind, node.pos, original_type=kind, fields=fields)
