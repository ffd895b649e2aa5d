"""`naftiko import openapi`: an OpenAPI 3.0/3.1 description -> a capability that runs unedited.

The capability has one consumed API (every imported operation with every parameter, typed as the
description types it), a REST exposure mirroring the API's routes, and an MCP exposure with one tool
per operation. Types, enums, defaults and descriptions are written once, on the consumed
parameters; both exposures derive their inputs from them (docs/ARCHITECTURE.md, "Inputs are
derived once"), so the REST OpenAPI, the tool schemas and the request checks cannot disagree, and
an author edits a description in one place. docs/authoring.md lists every mapping rule.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naftiko_runtime.authoring.openapi_source import Loc, OpenApiSource, fail
from naftiko_runtime.authoring.schemas import SchemaConverter, json_type
from naftiko_runtime.capability.diagnostics import Diagnostics, Pos
from naftiko_runtime.capability.reader import SCHEMA_KEYWORDS

METHODS = ("get", "put", "post", "delete", "patch")  # what the capability format can declare
OTHER_METHODS = ("head", "options", "trace")
REST_PORT, MCP_PORT = 8080, 9090
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}  # OpenAPI: such parameters are ignored
_NAME_OK = re.compile(r"^[A-Za-z0-9_\-]+$")
JSON_MEDIA = re.compile(r"^application/([\w.+-]*\+)?json$")
HINTS = {  # MCP tool hints from the HTTP method
    "GET": {"readOnly": True, "destructive": False, "idempotent": True},
    "PUT": {"readOnly": False, "idempotent": True},
    "DELETE": {"readOnly": False, "destructive": True, "idempotent": True},
    "POST": {"readOnly": False, "destructive": False, "idempotent": False},
    "PATCH": {"readOnly": False, "destructive": False, "idempotent": False},
}


@dataclass
class ImportOptions:
    namespace: str | None = None
    tags: list[str] = field(default_factory=list)
    include_paths: list[str] = field(default_factory=list)


@dataclass
class Secret:
    """A bind variable the imported capability needs, and what it holds."""

    name: str
    what: str


@dataclass
class ImportResult:
    document: dict[str, Any]  # the capability, as the alpha2 list form (capability_yaml.py writes any version)
    header: list[str]  # comment lines for the top of the file
    warnings: Diagnostics
    secrets: list[Secret]
    operations: int


class _Skip(Exception):
    """This operation (or parameter) cannot be expressed; the message says why."""

    def __init__(self, pos: Pos, reason: str):
        self.pos = pos
        self.reason = reason


def import_openapi(path: Path, options: ImportOptions | None = None) -> ImportResult:
    """Read `path` and build the capability. Raises AuthoringError for unusable input."""
    return _Importer(OpenApiSource(path), options or ImportOptions()).run()


def kebab(text: str) -> str:
    """`SessionController_findAll` -> `session-controller-find-all`; `GET /a/{id}` -> `get-a-id`."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", str(text))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", text)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def env_prefix(namespace: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", namespace.upper()).strip("_") or "API"


class _Importer:
    def __init__(self, source: OpenApiSource, options: ImportOptions):
        self.src = source
        self.options = options
        self.warnings = Diagnostics()
        self.schemas = SchemaConverter(source)
        self.root = source.root
        self.here = Loc(source.path)
        info = self.root.get("info") if isinstance(self.root.get("info"), dict) else {}
        self.title = str(info.get("title") or Path(source.display).stem)
        self.api_version = str(info.get("version") or "")
        self.info_description = str(info.get("description") or "").strip()
        self.namespace = kebab(options.namespace) if options.namespace else _namespace_from(self.title, source.path)
        self.prefix = env_prefix(self.namespace)
        self.secrets: list[Secret] = []
        self.names: set[str] = set()

    def warn(self, pos: Pos, message: str, rule: str = "openapi-skipped") -> None:
        self.warnings.warning(pos, message, rule)

    # ------------------------------------------------------------------ the document

    def run(self) -> ImportResult:
        paths = self.root.get("paths")
        operations = self.operations(paths)
        if "webhooks" in self.root and self.root["webhooks"]:
            self.warn(self.root.key_at("webhooks"), f"{len(self.root['webhooks'])} webhook(s) skipped: a capability consumes requests it sends, it does not receive callbacks")
        if not operations:
            where = self.root.at("paths") if "paths" in self.root else self.root.pos
            filters = " matching --tag/--include-path" if self.options.tags or self.options.include_paths else ""
            skipped = f" ({len(self.warnings)} skipped, see the warnings)" if len(self.warnings) else ""
            raise fail(where, f"at #/paths: no operations{filters} to import{skipped}", "openapi-no-operations")
        auth = self.authentication(operations)
        resources: dict[str, dict[str, Any]] = {}
        rest: dict[str, dict[str, Any]] = {}
        tools = []
        for op in operations:
            res = resources.setdefault(op.path, {"name": self._resource_name(op.path, resources), "path": op.template, "operations": []})
            res["operations"].append(op.consumed)
            rest.setdefault(op.path, {"name": res["name"], "path": op.template, "operations": []})["operations"].append(
                {"method": op.method, "name": op.name, **({"description": op.description} if op.description else {}), "call": f"{self.namespace}.{op.name}"})
            tool: dict[str, Any] = {"name": op.name}
            if op.description:
                tool["description"] = op.description
            tool["hints"] = dict(HINTS[op.method])
            tool["call"] = f"{self.namespace}.{op.name}"
            tools.append(tool)
        consumes: dict[str, Any] = {"type": "http", "namespace": self.namespace, "baseUri": self.base_uri()}
        if self.info_description:
            consumes["description"] = self.info_description
        if auth is not None:
            consumes["authentication"] = auth
        consumes["resources"] = list(resources.values())
        described = self.info_description or f"{self.title} {self.api_version}".strip()
        document: dict[str, Any] = {
            "naftiko": "1.0.0-alpha2",
            "info": {"label": self.title, "description": described, **({"version": self.api_version} if self.api_version else {})},
        }
        if self.secrets:
            document["binds"] = [{
                "namespace": f"{self.namespace}-env",
                "description": f"Credentials for {self.title}: environment variables, or `naftiko run --env-file FILE`.",
                "keys": {s.name: s.name for s in self.secrets},
            }]
        document["capability"] = {
            "consumes": [consumes],
            "exposes": [
                {"type": "rest", "namespace": f"{self.namespace}-rest", "port": REST_PORT,
                 "description": f"REST adapter for {self.title}: the API's own routes.", "resources": list(rest.values())},
                {"type": "mcp", "namespace": f"{self.namespace}-mcp", "port": MCP_PORT, "transport": "http",
                 "description": f"MCP adapter for {self.title}: one tool per operation.", "tools": tools},
            ],
        }
        return ImportResult(document, self.header(len(operations)), self.warnings, self.secrets, len(operations))

    def header(self, count: int) -> list[str]:
        digest = hashlib.sha256(self.src.path.read_bytes()).hexdigest()[:12]
        lines = [
            f"Generated by `naftiko import openapi {Path(self.src.display).name}`",
            f"from {self.title}{' ' + self.api_version if self.api_version else ''} (OpenAPI {self.src.version}, sha256 {digest}...): {count} operation(s).",
        ]
        if self.secrets:
            lines.append("Secrets (environment variables or --env-file): " + ", ".join(f"{s.name} ({s.what})" for s in self.secrets) + ".")
        lines.append("Try it: `naftiko run FILE --mock`; docs/guide.md walks through editing it.")
        return lines

    def base_uri(self) -> str:
        servers = self.root.get("servers")
        if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict) or not servers[0].get("url"):
            self.warn(self.root.pos, "no `servers`: baseUri is http://localhost; pass `--base-uri NAMESPACE=URL` to `naftiko run` or edit it", "openapi-servers")
            return "http://localhost"
        server = servers[0]
        url = str(server["url"])
        variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}

        def value(m: re.Match) -> str:
            var = variables.get(m.group(1))
            if isinstance(var, dict) and var.get("default") is not None:
                return str(var["default"])
            self.warn(server.at("url"), f"server variable '{m.group(1)}' has no default; left as {{{m.group(1)}}} in baseUri", "openapi-servers")
            return "{{" + m.group(1) + "}}"

        url = re.sub(r"\{([^{}]+)\}", value, url).rstrip("/")
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
            self.warn(server.at("url"), f"server url '{url}' is relative; baseUri is http://localhost{url}. Pass `--base-uri NAMESPACE=URL` to `naftiko run` or edit it", "openapi-servers")
            url = "http://localhost" + ("" if url.startswith("/") or not url else "/") + url
        return url

    def _resource_name(self, path: str, taken: dict[str, dict[str, Any]]) -> str:
        base = kebab(path.replace("{", "").replace("}", "")) or "root"
        used = {r["name"] for r in taken.values()}
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        return name

    # ------------------------------------------------------------------ operations

    def operations(self, paths: Any) -> list["_Operation"]:
        if not isinstance(paths, dict):
            if paths is not None:
                raise fail(self.root.at("paths"), "at #/paths: `paths` must be a mapping of path -> operations", "openapi-structure")
            return []
        out = []
        for path, item in paths.items():
            loc = self.here.child("paths", path)
            path_pos = paths.key_at(path) if hasattr(paths, "key_at") else self.root.pos
            if not str(path).startswith("/"):
                self.warn(path_pos, f"path '{path}' does not start with '/'; skipped")
                continue
            if self.options.include_paths and not any(fnmatch.fnmatchcase(str(path), g) for g in self.options.include_paths):
                continue
            item, item_loc = self.src.deref(item, loc)
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
            for method in OTHER_METHODS:
                if method in item:
                    self.warn(item.key_at(method) if hasattr(item, "key_at") else path_pos, f"{method.upper()} {path} skipped: the capability format declares GET, POST, PUT, PATCH and DELETE")
            for method in [str(k).lower() for k in item if str(k).lower() in METHODS]:
                node = item.get(method)
                if not isinstance(node, dict):
                    continue
                if self.options.tags and not set(self.options.tags) & {str(t) for t in node.get("tags") or []}:
                    continue
                op_loc = item_loc.child(method)
                try:
                    out.append(self.operation(str(path), method.upper(), node, op_loc, shared, item_loc))
                except _Skip as skip:
                    self.warn(skip.pos, f"{method.upper()} {path} skipped: {skip.reason}")
        return out

    def operation(self, path: str, method: str, node: dict, loc: Loc, shared: list, item_loc: Loc) -> "_Operation":
        pos = getattr(node, "pos", self.root.pos)
        if node.get("callbacks"):
            self.warn(node.key_at("callbacks"), f"{method} {path}: its callbacks are skipped (a capability does not receive requests from the API); the operation itself is imported", "openapi-skipped")
        name = self._unique(kebab(node.get("operationId") or "") or kebab(f"{method} {path.replace('{', '').replace('}', '')}"))
        params = self.parameters(path, method, shared, node, loc, item_loc)
        template = re.sub(r"\{([^{}]+)\}", lambda m: "{{" + m.group(1) + "}}", path)
        for var in re.findall(r"\{([^{}]+)\}", path):
            if not _NAME_OK.match(var):
                raise _Skip(pos, f"path parameter '{var}' has characters a capability template cannot name")
            if not any(p["name"] == var and p["in"] == "path" for p in params):
                params.append({"name": var, "in": "path", "type": "string", "required": True})
        body, body_params = self.request_body(path, method, node, loc, {p["name"] for p in params})
        consumed: dict[str, Any] = {"name": name, "method": method}
        description = _describe(node)
        if description:
            consumed["description"] = description
        all_params = params + body_params
        if all_params:
            consumed["inputParameters"] = all_params
        if body is not None:
            consumed["body"] = body
        security = node.get("security") if isinstance(node.get("security"), list) else None
        return _Operation(path, template, method, name, description, consumed, security)

    def _unique(self, base: str) -> str:
        base = base[:60].strip("-") or "operation"
        name, n = base, 2
        while name in self.names:
            name, n = f"{base}-{n}", n + 1
        self.names.add(name)
        return name

    # ------------------------------------------------------------------ parameters

    def parameters(self, path: str, method: str, shared: list, node: dict, loc: Loc, item_loc: Loc) -> list[dict[str, Any]]:
        merged: dict[tuple[str, str], tuple[dict, Loc]] = {}
        own = node.get("parameters") if isinstance(node.get("parameters"), list) else []
        for where, items, base in (("path item", shared, item_loc), ("operation", own, loc)):
            seen: set[tuple[str, str]] = set()
            for i, raw in enumerate(items):
                param, ploc = self.src.deref(raw, base.child("parameters", i))
                if not isinstance(param, dict) or not param.get("name") or not param.get("in"):
                    raise fail(self.src.pos(raw, base), f"at {base.child('parameters', i)}: a parameter needs `name` and `in`", "openapi-structure")
                key = (str(param["name"]), str(param["in"]))
                if key in seen:
                    self.warn(self.src.pos(param, ploc), f"{method} {path}: parameter '{key[0]}' (in {key[1]}) is declared twice; the second is skipped", "openapi-duplicate-parameter")
                    continue
                seen.add(key)
                merged[key] = (param, ploc)
        out = []
        names: set[str] = set()
        for (name, location), (param, ploc) in merged.items():
            pos = self.src.pos(param, ploc)
            if location == "header" and name.lower() in _IGNORED_HEADERS:
                continue
            if name in names:
                self.warn(pos, f"{method} {path}: parameter '{name}' (in {location}) has the name of another parameter; skipped (inputs are named, not located)", "openapi-duplicate-parameter")
                continue
            try:
                entry = self.parameter(name, location, param, ploc)
            except _Skip as skip:
                if param.get("required") or location == "path":
                    raise _Skip(skip.pos, f"its required parameter '{name}' {skip.reason}") from None
                self.warn(skip.pos, f"{method} {path}: optional parameter '{name}' skipped: it {skip.reason}", "openapi-skipped-parameter")
                continue
            names.add(name)
            out.append(entry)
        return out

    def parameter(self, name: str, location: str, param: dict, loc: Loc) -> dict[str, Any]:
        pos = self.src.pos(param, loc)
        if location not in ("path", "query", "header", "cookie"):
            raise _Skip(pos, f"is in '{location}', which is not path, query, header or cookie")
        if not _NAME_OK.match(name) and location == "path":
            raise _Skip(pos, "has characters a capability template cannot name")
        if "schema" in param:
            schema = self.schemas.convert(param["schema"], loc.child("schema"))
        elif isinstance(param.get("content"), dict) and param["content"]:
            media = next(iter(param["content"]))
            spec = param["content"][media]
            schema = self.schemas.convert(spec.get("schema") or {}, loc.child("content", media, "schema")) if isinstance(spec, dict) else {}
            if not JSON_MEDIA.match(str(media)):
                raise _Skip(pos, f"is serialized as '{media}', which the runtime cannot write")
        else:
            schema = {}
        kind = json_type(schema) or "string"
        reason = _unsupported_style(location, param, kind, "content" in param)
        if reason:
            raise _Skip(pos, reason)
        entry: dict[str, Any] = {"name": name, "in": location, "type": kind}
        description = str(param.get("description") or schema.get("description") or "").strip()
        if description:
            entry["description"] = description
        entry["required"] = bool(param.get("required")) or location == "path"
        entry.update(_keywords(schema))
        return entry

    # ------------------------------------------------------------------ request bodies

    def request_body(self, path: str, method: str, node: dict, loc: Loc, taken: set[str]) -> tuple[dict | None, list[dict[str, Any]]]:
        if "requestBody" not in node:
            return None, []
        body, bloc = self.src.deref(node["requestBody"], loc.child("requestBody"))
        pos = self.src.pos(body, bloc)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, dict) or not content:
            return None, []
        required = bool(body.get("required"))
        chosen = _choose_media(content)
        if chosen is None:
            reason = f"its request body is {', '.join(map(str, content))}; JSON, form and multipart bodies are imported"
            if required:
                raise _Skip(pos, reason)
            self.warn(pos, f"{method} {path}: {reason}; imported without a body", "openapi-skipped-body")
            return None, []
        media, kind = chosen
        spec = content[media] if isinstance(content[media], dict) else {}
        schema = self.schemas.convert(spec.get("schema") or {}, bloc.child("content", media, "schema"))
        description = str(body.get("description") or "").strip()
        props = schema.get("properties") if json_type(schema) == "object" else None
        fields_fit = isinstance(props, dict) and props and not (set(props) & (taken | {"body"})) and all(_NAME_OK.match(p) for p in props)
        if kind == "json" and not fields_fit:
            entry = {"name": "body", "in": "body", "type": json_type(schema) or "object",
                     "description": description or schema.get("description") or "The request body (JSON).", "required": required}
            entry.update(_keywords(schema))
            return None, [entry]
        if not fields_fit:
            raise _Skip(pos, f"its {media} body is not an object with plainly named properties, which {kind} bodies need")
        wanted = set(schema.get("required") or []) if required else set()
        entries = []
        for prop, sub in props.items():
            entry = {"name": prop, "in": "body", "type": json_type(sub) or "string"}
            text = str(sub.get("description") or "").strip()
            if text:
                entry["description"] = text
            entry["required"] = prop in wanted
            entry.update(_keywords(sub))
            entries.append(entry)
        if kind == "json":
            return None, entries
        if kind == "form":
            return {"type": "formUrlEncoded", "data": {p: "{{" + p + "}}" for p in props}}, entries
        encoding = spec.get("encoding") if isinstance(spec.get("encoding"), dict) else {}
        parts = []
        for entry, (prop, sub) in zip(entries, props.items()):
            part: dict[str, Any] = {"name": prop, "value": "{{" + prop + "}}"}
            if sub.get("format") in ("binary", "base64") or sub.get("contentMediaType"):
                enc = encoding.get(prop) if isinstance(encoding.get(prop), dict) else {}
                part["filename"] = prop
                part["contentType"] = str(enc.get("contentType") or sub.get("contentMediaType") or "application/octet-stream").split(",")[0].strip()
                text = entry.get("description", "")
                entry["description"] = f"{text} (the file's content, base64-encoded)" if text else "The file's content, base64-encoded."
                entry.pop("format", None)
                entry["format"] = "byte"
            parts.append(part)
        return {"type": "multipartForm", "data": parts}, entries

    # ------------------------------------------------------------------ security

    def authentication(self, operations: list["_Operation"]) -> dict[str, Any] | None:
        components = self.root.get("components") if isinstance(self.root.get("components"), dict) else {}
        schemes = components.get("securitySchemes") if isinstance(components.get("securitySchemes"), dict) else {}
        requirements = self.root.get("security") if isinstance(self.root.get("security"), list) else None
        if not requirements:
            counted: dict[str, int] = {}
            for op in operations:
                for req in op.security or []:
                    if isinstance(req, dict) and req:
                        key = ",".join(sorted(req))
                        counted[key] = counted.get(key, 0) + 1
            requirements = [{name: [] for name in key.split(",")} for key in sorted(counted, key=lambda k: -counted[k])]
        for requirement in requirements:
            if not isinstance(requirement, dict) or not requirement:
                continue
            converted = self._requirement(requirement, schemes)
            if converted is not None:
                return converted
        return None

    def _requirement(self, requirement: dict, schemes: dict) -> dict[str, Any] | None:
        entries = []
        for name, scopes in requirement.items():
            scheme, sloc = self.src.deref(schemes.get(name), self.here.child("components", "securitySchemes", name)) if name in schemes else (None, None)
            if not isinstance(scheme, dict):
                self.warn(self.root.pos, f"security scheme '{name}' is used but not defined under components.securitySchemes; no authentication imported for it", "openapi-security")
                return None
            auth = self._scheme(str(name), scheme, list(scopes or []), len(requirement) > 1)
            if auth is None:
                return None
            entries.append(auth)
        if len(entries) == 1:
            return entries[0]
        # several schemes at once: every credential becomes an API key entry (header, query or cookie)
        keys = []
        for auth in entries:
            if auth["type"] == "apikey":
                keys.append({"name": auth["key"], "in": auth["placement"], "value": auth["value"]})
            elif auth["type"] == "bearer":
                keys.append({"name": "Authorization", "in": "header", "value": "Bearer " + auth["token"]})
            else:
                self.warn(self.root.pos, f"security requirement {', '.join(requirement)} combines {auth['type']} with other schemes, which the capability cannot express; only the first is imported", "openapi-security")
                return entries[0]
        return {"type": "apikey", "parameters": keys}

    def _secret(self, suffix: str, what: str, scheme: str, many: bool) -> str:
        name = f"{self.prefix}_{env_prefix(scheme)}_{suffix}" if many else f"{self.prefix}_{suffix}"
        if not any(s.name == name for s in self.secrets):
            self.secrets.append(Secret(name, what))
        return "{{" + name + "}}"

    def _scheme(self, name: str, scheme: dict, scopes: list[str], many: bool) -> dict[str, Any] | None:
        kind = str(scheme.get("type") or "").lower()
        pos = getattr(scheme, "pos", self.root.pos)
        if kind == "http":
            http = str(scheme.get("scheme") or "").lower()
            if http == "bearer":
                return {"type": "bearer", "token": self._secret("API_KEY", "bearer token", name, many)}
            if http == "basic":
                return {"type": "basic", "username": self._secret("USERNAME", "basic auth user", name, many),
                        "password": self._secret("PASSWORD", "basic auth password", name, many)}
            if http == "digest":
                return {"type": "digest", "username": self._secret("USERNAME", "digest user", name, many),
                        "password": self._secret("PASSWORD", "digest password", name, many)}
            self.warn(pos, f"security scheme '{name}' (http {http}) is not supported; no authentication imported", "openapi-security")
            return None
        if kind == "apikey":
            where = str(scheme.get("in") or "header").lower()
            if where not in ("header", "query", "cookie"):
                self.warn(pos, f"security scheme '{name}': API key in '{where}' is not supported; no authentication imported", "openapi-security")
                return None
            return {"type": "apikey", "key": str(scheme.get("name") or "X-API-Key"), "value": self._secret("API_KEY", f"API key ({where} {scheme.get('name')})", name, many), "placement": where}
        if kind == "oauth2":
            flows = scheme.get("flows") if isinstance(scheme.get("flows"), dict) else {}
            client = flows.get("clientCredentials")
            if isinstance(client, dict) and client.get("tokenUrl"):
                auth: dict[str, Any] = {"type": "oauth2", "tokenEndpoint": str(client["tokenUrl"]),
                                        "clientId": self._secret("CLIENT_ID", "OAuth 2 client id", name, many),
                                        "clientSecret": self._secret("CLIENT_SECRET", "OAuth 2 client secret", name, many)}
                if scopes:
                    auth["scopes"] = scopes
                return auth
            self.warn(pos, f"security scheme '{name}' is OAuth 2 without a client-credentials flow; imported as a bearer token you obtain yourself ({self.prefix}_ACCESS_TOKEN)", "openapi-security")
            return {"type": "bearer", "token": self._secret("ACCESS_TOKEN", "OAuth 2 access token", name, many)}
        if kind == "openidconnect":
            self.warn(pos, f"security scheme '{name}' is OpenID Connect; imported as a bearer token you obtain yourself ({self.prefix}_ACCESS_TOKEN)", "openapi-security")
            return {"type": "bearer", "token": self._secret("ACCESS_TOKEN", "OpenID Connect access token", name, many)}
        self.warn(pos, f"security scheme '{name}' of type '{kind}' is not supported; no authentication imported", "openapi-security")
        return None


@dataclass
class _Operation:
    path: str  # as in the description: `/session/{id}`
    template: str  # as in the capability: `/session/{{id}}`
    method: str
    name: str
    description: str
    consumed: dict[str, Any]
    security: list | None = None


def _namespace_from(title: str, path: Path) -> str:
    name = kebab(title)
    name = re.sub(r"-(api|rest-api|openapi|service)$", "", name) or name
    return name[:40].strip("-") or kebab(path.stem) or "api"


def _describe(node: dict) -> str:
    summary = str(node.get("summary") or "").strip()
    description = str(node.get("description") or "").strip()
    if summary and description and description != summary:
        return f"{summary}\n\n{description}"
    return summary or description


def _keywords(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema keywords a capability parameter carries (reader.SCHEMA_KEYWORDS).

    A parameter has one type and no null (an absent input is left out), so a nullable enum loses
    its `null` here; nested schemas keep it.
    """
    out = {k: schema[k] for k in SCHEMA_KEYWORDS if k in schema and k not in ("example", "examples")}
    if isinstance(out.get("enum"), list) and None in out["enum"]:
        out["enum"] = [v for v in out["enum"] if v is not None]
    return out


def _choose_media(content: dict) -> tuple[str, str] | None:
    for media in content:
        text = str(media).split(";")[0].strip().lower()
        if JSON_MEDIA.match(text) or text == "*/*":
            return str(media), "json"
    for media in content:
        text = str(media).split(";")[0].strip().lower()
        if text == "application/x-www-form-urlencoded":
            return str(media), "form"
        if text == "multipart/form-data":
            return str(media), "multipart"
    return None


def _unsupported_style(location: str, param: dict, kind: str, has_content: bool) -> str | None:
    """Why the runtime cannot send this parameter as the description serializes it (None: it can)."""
    if has_content:
        return None  # JSON text: what the runtime writes for objects and arrays
    style = str(param.get("style") or {"query": "form", "cookie": "form"}.get(location, "simple"))
    explode = param.get("explode", style == "form")
    if location == "query":
        if kind == "object":
            return f"is an object in the query with style '{style}', which the runtime does not serialize"
        if kind == "array" and (style != "form" or not explode):
            return f"is an array in the query with style '{style}' and explode {str(explode).lower()}; the runtime repeats the name per item"
        return None
    if location == "cookie" and kind in ("array", "object"):
        return f"is a cookie with a complex ({kind}) value, which the runtime does not serialize"
    if style != "simple" and location in ("path", "header"):
        return f"uses style '{style}', which the runtime does not serialize"
    if kind in ("array", "object") and location in ("path", "header"):
        return f"is an {kind} in the {location}, which the runtime writes as JSON, not as OpenAPI's comma-separated form"
    return None


def import_command(args: Any) -> int:
    """`naftiko import openapi SPEC`: exit 0 (written, maybe with warnings), 1 (unusable input), 2 (usage)."""
    from naftiko_runtime.authoring.capability_yaml import dump, output_versions
    from naftiko_runtime.authoring.output import say, verify, write
    from naftiko_runtime.errors import AuthoringError

    versions = output_versions()
    if args.version and args.version not in versions:
        say(f"naftiko import openapi: --version {args.version} is not one this runtime writes; choose one of {', '.join(versions)}")
        return 2
    options = ImportOptions(namespace=args.namespace, tags=list(args.tag), include_paths=list(args.include_path))
    try:
        result = import_openapi(Path(args.spec), options)
    except AuthoringError as exc:
        say(str(exc.diagnostic))
        return 1
    for warning in result.warnings:
        say(str(warning))
    text = dump(result.document, result.header, args.version or versions[-1])
    out = Path(args.output) if args.output and args.output != "-" else None
    problems = verify(text, str(out or "<generated>"), (out or Path(args.spec)).resolve().parent)
    if problems:
        say("naftiko import openapi: the generated capability does not load (a bug in the importer; please report it with the OpenAPI file):")
        for problem in problems:
            say(f"  {problem}")
        return 1
    write(text, out)
    if out is not None:
        needs = f"; set {', '.join(s.name for s in result.secrets)} (or run with --mock)" if result.secrets else ""
        say(f"naftiko import openapi: wrote {out}: {result.operations} operation(s), REST on port {REST_PORT}, MCP on port {MCP_PORT}"
            f"{', ' + str(len(result.warnings)) + ' warning(s) above' if len(result.warnings) else ''}{needs}")
    return 0
