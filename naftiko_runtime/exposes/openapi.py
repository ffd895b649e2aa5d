"""OpenAPI 3.1 for a REST exposure, derived from the same compiled routes that serve it."""

from __future__ import annotations

import re
from typing import Any

from naftiko_runtime import __version__
from naftiko_runtime.plan import ForwardRoute, Plan, RestApi, Route

_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _operation(route: Route) -> dict[str, Any]:
    op = route.operation
    inv = route.invocation
    params = []
    for i in inv.inputs:
        if i.location in ("path", "query", "header", "cookie"):
            param: dict[str, Any] = {"name": i.name, "in": i.location, "required": i.required or i.location == "path", "schema": i.json_schema()}
            if i.description:
                param["description"] = i.description
                param["schema"].pop("description", None)
            params.append(param)
    doc: dict[str, Any] = {
        "operationId": re.sub(r"[^A-Za-z0-9_]", "_", op.name or f"{route.method}_{route.path}"),
        "parameters": params,
        "responses": {
            "default": {"description": "The upstream's answer, passed through with its status", "content": {"application/json": {"schema": {}}}},
            "400": _PROBLEM, "413": _PROBLEM, "502": _PROBLEM, "503": _PROBLEM, "504": _PROBLEM,
        },
    }
    if op.description:
        doc["summary"] = op.description
    if op.tags:
        doc["tags"] = list(dict.fromkeys(op.tags))
    schema = inv.output_schema
    if inv.binary_type is not None:
        doc["responses"]["default"]["content"] = {inv.binary_type: {"schema": {"type": "string", "format": "binary"}}}
    elif schema is not None:
        doc["responses"]["default"]["content"]["application/json"]["schema"] = schema
    whole = next((i for i in inv.inputs if i.whole_body), None)
    fields = [i for i in inv.inputs if i.location in (None, "body") and not i.whole_body]
    if whole is not None:
        body_schema = whole.json_schema()
        doc["requestBody"] = {"required": whole.required, "content": {"application/json": {"schema": body_schema}}}
    elif fields:
        body_schema = {"type": "object", "properties": {i.name: i.json_schema() for i in fields}}
        required = [i.name for i in fields if i.required]
        if required:
            body_schema["required"] = required
        doc["requestBody"] = {"required": bool(required), "content": {"application/json": {"schema": body_schema}}}
    return doc


def _unique(operation_id: str, taken: set[str]) -> str:
    """OpenAPI requires unique operationIds; files often reuse a name (`get`) across resources."""
    unique, n = operation_id, 2
    while unique in taken:
        unique, n = f"{operation_id}_{n}", n + 1
    taken.add(unique)
    return unique


_FORWARDED = ("get", "put", "post", "delete", "patch")


def _forwarded(forward: ForwardRoute, method: str, capture: str | None) -> dict[str, Any]:
    """A method a `forward` resource proxies: any body and answer, passed through."""
    doc: dict[str, Any] = {
        "operationId": re.sub(r"[^A-Za-z0-9_]", "_", f"forward_{forward.plan.namespace}_{method}"),
        "summary": f"Forwarded to upstream '{forward.plan.namespace}'",
        "parameters": [],
        "responses": {
            "default": {"description": "The upstream's answer, passed through with its status and headers", "content": {"*/*": {"schema": {}}}},
            "413": _PROBLEM, "502": _PROBLEM, "503": _PROBLEM, "504": _PROBLEM,
        },
    }
    if capture is not None:
        doc["parameters"].append({"name": capture, "in": "path", "required": True, "schema": {"type": "string"},
                                  "description": "The rest of the path, `/` included, forwarded as it is"})
    if method in ("put", "post", "patch"):
        doc["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
    return doc


def openapi_document(plan: Plan, api: RestApi) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for route in api.routes:
        operation = _operation(route)
        operation["operationId"] = _unique(operation["operationId"], ids)
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    for forward in api.forwards:  # the methods its own operations do not serve, at its route and its prefix
        places = [(forward.path, forward.capture)]
        if forward.capture is not None and forward.prefix not in paths:
            places.append((forward.prefix, None))
        for path, capture in places:
            served = paths.setdefault(path, {})
            for method in _FORWARDED:
                if method not in served:
                    served[method] = _forwarded(forward, method, capture)
                    served[method]["operationId"] = _unique(served[method]["operationId"], ids)
    cap = plan.cap
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": cap.label or api.exposure.namespace,
            "version": cap.info_version or __version__,
            "description": api.exposure.description or cap.description,
        },
        "paths": paths,
        "components": {
            "responses": {
                "Problem": {
                    "description": "An error the runtime produced (RFC 9457)",
                    "content": {"application/problem+json": {"schema": {"type": "object", "properties": {
                        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                        "detail": {"type": "string"}, "instance": {"type": "string"},
                    }}}},
                }
            }
        },
    }
    if api.guard is not None:  # the exposure's authentication (exposes/auth.py), on every operation
        schemes = api.guard.security_schemes()
        document["components"]["securitySchemes"] = schemes
        document["security"] = [{name: [] for name in schemes}]
        for operations in paths.values():
            for op in operations.values():
                op["responses"]["401"] = _PROBLEM
    return document
