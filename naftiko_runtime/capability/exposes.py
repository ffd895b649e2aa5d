"""Reading `exposes` entries: REST resources and operations, MCP tools, their actions and outputs."""

from __future__ import annotations

import re
from typing import Any

from naftiko_runtime.capability.adapters import AdaptersReader
from naftiko_runtime.capability.cors import read_cors
from naftiko_runtime.capability.diagnostics import Pos
from naftiko_runtime.capability.imports import ImportReader, is_import
from naftiko_runtime.capability.model import (
    Action,
    Capability,
    McpExposure,
    Param,
    RestExposure,
    RestOperation,
    Tool,
    WithRef,
)
from naftiko_runtime.capability.orchestration import OrchestrationReader
from naftiko_runtime.capability.reader import (
    DOUBLE_BRACE,
    REF_PREFIXES,
    SCHEMA_KEYWORDS,
    SINGLE_BRACE,
    int_or_none,
    merge_params,
)
from naftiko_runtime.capability.versions import LABEL
from naftiko_runtime.capability.yamlsource import YList, YMap


class ExposesReader(OrchestrationReader, AdaptersReader):
    """`exposes` entries into REST, MCP, skill and control exposures (the last two in capability/adapters.py)."""

    def expose(self, cap: Capability, item: Any, pos: Pos) -> None:
        node = self._map(item, "an exposes entry", pos)
        if node is None:
            return
        if is_import(node, "exposes"):
            self.import_expose(cap, node)
            return
        kind = str(node.get("type") or "").lower()
        namespace = self._str(node, "namespace", f"a {kind or 'typed'} exposure") or f"{kind or 'expose'}-{len(cap.exposure_namespaces()) + 1}"
        if kind == "rest":
            cap.rest.append(self.rest(node, namespace))
        elif kind == "mcp":
            cap.mcp.append(self.mcp(node, namespace))
        elif kind == "skill":
            cap.skills.append(self.skill_exposure(node, namespace))
        elif kind == "control":
            if cap.control is not None:
                self.d.error(node.pos, f"a second control exposure (the first is at line {cap.control.pos.line}); one control port serves the whole process", "duplicate-control")
            else:
                cap.control = self.control_exposure(node)
        elif kind == "http":
            self.d.warning(node.pos, f"exposure type 'http' ('{namespace}') is not served by this runtime; write it as `type: rest` with `resources`", "unsupported-feature")
        else:
            self.d.error(node.at("type") if "type" in node else node.pos, f"exposure type '{node.get('type')}' is not one of rest, mcp, skill, control", "bad-expose-type")

    def port(self, node: YMap, namespace: str, required: bool) -> int | None:
        raw = node.get("port")
        if raw is None:
            if required:
                self.d.warning(node.pos, f"exposure '{namespace}' has no `port`; give one or pass `--port {namespace}=PORT`", "missing-port")
            return None
        port = int_or_none(raw)
        if port is None or not 0 <= port <= 65535:
            self.d.error(node.at("port"), f"exposure '{namespace}': port '{raw}' is not a TCP port number", "bad-port")
            return None
        return port

    def rest(self, node: YMap, namespace: str) -> RestExposure:
        exp = RestExposure(namespace=namespace, port=self.port(node, namespace, True) or 0, pos=node.pos,
                           address=self._str(node, "address", "rest") or "", description=self._str(node, "description", "rest"))
        if "authentication" in node:
            exp.auth = self.auth(node.get("authentication"), node.at("authentication"), consumed=False)
        exp.max_binary = self.size(node, "maxBinarySize", f"exposure '{namespace}'")
        if "cors" in node:
            exp.cors = read_cors(node.get("cors"), node.at("cors"), namespace, self.d)
        for res, rpos in self._list(node, "resources", f"exposure '{namespace}'"):
            res_node = self._map(res, "a REST resource", rpos)
            if res_node is None:
                continue
            path = self.route_path(self._str(res_node, "path", "a REST resource", required=True), res_node.at("path"))
            res_params = self.params(res_node, "inputParameters", f"resource '{path}'", consumed=False)
            res_tags = self.tags(res_node, f"resource '{path}'")
            if "forward" in res_node:
                forward = self.forward(res_node, path)
                if forward is not None:
                    exp.forwards.append(forward)
            for op, opos in self._list(res_node, "operations", f"resource '{path}'"):
                op_node = self._map(op, "a REST operation", opos)
                if op_node is None:
                    continue
                method = self.method(op_node, f"operation on '{path}'")
                action = self.action(op_node, namespace, f"{method} {path}", res_params)
                exp.operations.append(RestOperation(
                    method=method, path=path, action=action, pos=op_node.pos,
                    name=self._str(op_node, "name", "operation"), description=self._str(op_node, "description", "operation"),
                    resource=self._str(res_node, "name", "resource"), tags=res_tags + self.tags(op_node, f"operation on '{path}'"),
                    media_type=binary_media_type(op_node),
                ))
        return exp

    def route_path(self, path: str, pos: Pos) -> str:
        path = DOUBLE_BRACE.sub(lambda m: "{" + m.group(1) + "}", path)
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
        exp.max_binary = self.size(node, "maxBinarySize", f"exposure '{namespace}'")
        self.cache_hints(exp, node)
        for item, tpos in self._list(node, "tools", f"exposure '{namespace}'"):
            tnode = self._map(item, "an MCP tool", tpos)
            if tnode is None:
                continue
            name = self._str(tnode, "name", "an MCP tool", required="ref" not in tnode)  # a `ref` tool may inherit it
            if not name and "ref" not in tnode:
                continue
            hints_node = tnode.get("hints")
            hints = {}
            if isinstance(hints_node, YMap):
                for k in ("readOnly", "destructive", "idempotent", "openWorld"):
                    if k in hints_node:
                        hints[k] = bool(hints_node[k])
            action = self.action(tnode, namespace, f"tool '{name or tnode.get('ref')}'", [])
            if action.inputs is None and isinstance(tnode.get("inputSchema"), YMap):
                action.inputs = self.schema_params(tnode["inputSchema"], tnode.at("inputSchema"))
            exp.tools.append(Tool(name=name, action=action, pos=tnode.pos, label=self.renamed(tnode, LABEL, f"tool '{name}'"),
                                  description=self._str(tnode, "description", "tool"), hints=hints, tags=self.tags(tnode, f"tool '{name}'")))
        self.mcp_content(node, exp)
        return exp

    def cache_hints(self, exp: McpExposure, node: YMap) -> None:
        """`ttlMs` / `cacheScope` (beta4): sent as the protocol's cache hints on list and read results."""
        if "ttlMs" in node:
            ttl = int_or_none(node["ttlMs"])
            if ttl is None or ttl < 0:
                self.d.error(node.at("ttlMs"), f"`ttlMs` '{node['ttlMs']}' must be a whole number of milliseconds >= 0 (0: always stale)", "bad-cache-hint")
            else:
                exp.ttl_ms = ttl
        if "cacheScope" in node:
            scope = str(node["cacheScope"]).lower()
            if scope not in ("public", "private"):
                self.d.error(node.at("cacheScope"), f"`cacheScope` '{node['cacheScope']}' is not one of public, private", "bad-cache-hint")
            else:
                exp.cache_scope = scope

    def schema_params(self, schema: YMap, pos: Pos) -> list[Param]:
        """A tool written with a JSON Schema `inputSchema` instead of inputParameters."""
        self.d.note(pos, "tool `inputSchema` read as its input parameters", "dialect-input-schema")
        required = set(schema.get("required") or [])
        out = []
        props = schema.get("properties")
        if isinstance(props, YMap):
            for name, spec in props.items():
                spec = spec if isinstance(spec, YMap) else YMap()
                extra = {k: spec[k] for k in SCHEMA_KEYWORDS if k in spec}
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
                        params[key] = SINGLE_BRACE.sub(lambda m: "{{" + m.group(1) + "}}", params[key])
                node["with"], node.val_pos["with"] = params, single.at("parameters")
        elif call is None and isinstance(calls, YList) and calls:
            self.d.error(node.key_at("calls"), f"{where}: `calls` with several entries is not read by this runtime; write them as `steps` (docs/orchestration.md)", "unsupported-feature")
        if call is not None:
            action.call_pos = node.at("call")
            action.call = self.parse_call(call, action.call_pos, where)
        self.orchestration(action, node, namespace, where)
        declared = self.params(node, "inputParameters", where, consumed=False) if "inputParameters" in node else None
        if declared is not None or inherited:
            action.inputs = merge_params(inherited, declared or [])
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
                if head in REF_PREFIXES:
                    if (namespace, head) not in self._noted_prefixes:  # once per exposure, not per value
                        self._noted_prefixes.add((namespace, head))
                        self.d.note(pos, f"`with` values `{head}.<name>` (like `{value}`) in exposure '{namespace}' are read as references to inputs", "dialect-with-prefix")
                    return WithRef(rest)
        return value


def binary_media_type(node: YMap) -> str | None:
    """The media type a REST operation declares for its binary success answer (beta1), if any."""
    short = node.get("responseBinary")
    if isinstance(short, YMap) and short.get("mediaType"):
        return str(short["mediaType"])
    responses = node.get("responses")
    if isinstance(responses, YMap):
        for status, entry in responses.items():
            content = entry.get("content") if isinstance(entry, YMap) and str(status).startswith("2") else None
            for media, spec in (content.items() if isinstance(content, YMap) else ()):
                if isinstance(spec, YMap) and spec.get("binary") is True:
                    return str(media)
    return None
