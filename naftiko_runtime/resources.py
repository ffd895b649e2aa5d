"""MCP resources compiled from the file (SEMANTICS 5.7): static folders and dynamic calls.

- Static (`location`): every file of the folder is a resource `<uri>/<relative path>`; reads go
  through `files.Folder`, which refuses anything that would leave the folder.
- Dynamic (`call`, and `steps` once orchestration compiles them): an `Invocation` compiled by the
  same path as tools. A `{var}` in the uri (one path segment) makes it a URI template; a read
  matches the uri, and the variables become the invocation's inputs.

Nothing here knows the MCP SDK: a read returns `Content`, failures raise the errors.py tree
(`NotFound`, `InputError`, `UpstreamFailure`), and exposes/mcp_content.py maps them to MCP.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from naftiko_runtime.capability.model import McpResource
from naftiko_runtime.errors import CompileError, InputError, InputProblem, NotFound, UpstreamFailure
from naftiko_runtime.files import Folder, is_text
from naftiko_runtime.inputs import coerce
from naftiko_runtime.pipeline import Invocation, Outcome
from naftiko_runtime.shaping import NOTHING

if TYPE_CHECKING:
    from naftiko_runtime.runtime import Runtime

JSON = "application/json"
URI_VAR = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
ERROR_BODY_LIMIT = 500  # characters of an upstream error body in a read error


@dataclass(frozen=True)
class Content:
    """One item of a read: text, or bytes (sent base64) when the type is not text."""

    uri: str
    mime: str
    text: str | None = None
    data: bytes | None = None


class UpstreamError(UpstreamFailure):
    """The upstream answered a dynamic resource read with an error status."""

    what = "answered with an error"


class StaticResource:
    """A folder whose files are resources `<uri>/<path>`."""

    def __init__(self, resource: McpResource, max_bytes: int):
        assert resource.location is not None
        self.resource = resource
        self.base = resource.uri.rstrip("/")
        self.folder = Folder(resource.location, max_bytes)

    def owns(self, uri: str) -> bool:
        return uri == self.base or uri.startswith(self.base + "/")

    def listing(self) -> list[tuple[str, str]]:
        """(uri, MIME type) of every file now in the folder."""
        return [(f"{self.base}/{e.uri_path}", self.resource.mime_type or e.mime) for e in self.folder.entries()]

    def read(self, uri: str) -> Content:
        if uri == self.base:
            raise NotFound(f"resource '{uri}' is the folder of '{self.resource.name}'; read one of its files (resources/list)")
        data, mime = self.folder.read(uri[len(self.base) + 1:], what="uri")
        mime = self.resource.mime_type or mime
        if is_text(mime) and not self.resource.binary:
            try:
                return Content(uri, mime, text=data.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        return Content(uri, mime, data=data)


class DynamicResource:
    """A resource read through an invocation; a template when its uri has `{var}` segments."""

    def __init__(self, resource: McpResource, invocation: Invocation):
        self.resource = resource
        self.invocation = invocation
        self.variables = URI_VAR.findall(resource.uri)
        self.is_template = bool(self.variables)
        self.types = {i.name: i.type for i in invocation.inputs}
        unreachable = [i.name for i in invocation.inputs if i.required and i.name not in self.variables]
        if unreachable:
            names = ", ".join(unreachable)
            raise CompileError(f"resource '{resource.name}': its call needs {names}, which its uri '{resource.uri}' does not provide; "
                               f"add {' '.join('{' + n + '}' for n in unreachable)} to the uri or set {'them' if len(unreachable) > 1 else 'it'} with `with`",
                               "resource-inputs", resource.pos)
        pattern, last = "", 0
        for m in URI_VAR.finditer(resource.uri):
            pattern += re.escape(resource.uri[last:m.start()]) + "([^/]+)"
            last = m.end()
        self.pattern = re.compile(pattern + re.escape(resource.uri[last:]))

    def match(self, uri: str) -> dict[str, str] | None:
        m = self.pattern.fullmatch(uri)
        return None if m is None else {name: unquote(value) for name, value in zip(self.variables, m.groups())}

    async def read(self, uri: str, values: dict[str, str], runtime: "Runtime") -> Content:
        inputs: dict[str, Any] = {}
        problems: list[InputProblem] = []
        for name, text in values.items():
            try:
                inputs[name] = coerce(text, self.types.get(name, "string"))
            except ValueError:
                problems.append(InputProblem(name, None, f"must be {self.types[name]}, got '{text[:40]}' in the uri"))
        if problems:
            raise InputError(problems)
        return self.content(uri, await self.invocation.invoke(inputs, runtime))

    def content(self, uri: str, outcome: Outcome) -> Content:
        declared = self.resource.mime_type
        namespace = self.invocation.upstream or "upstream"
        if not outcome.ok:
            body = outcome.body.decode("utf-8", errors="replace")[:ERROR_BODY_LIMIT] if outcome.value is NOTHING else json.dumps(outcome.value)[:ERROR_BODY_LIMIT]
            try:
                reason = HTTPStatus(outcome.status).phrase
            except ValueError:
                reason = ""
            detail = f"HTTP {outcome.status} {reason}".rstrip() + f" reading '{uri}'" + (f": {body}" if body else "")
            if outcome.status == 404:
                raise NotFound(f"no resource '{uri}': upstream '{namespace}' answered {detail}")
            raise UpstreamError(namespace, detail)
        if outcome.value is not NOTHING:
            text = json.dumps(outcome.value, ensure_ascii=False)
            if self.resource.binary:
                return Content(uri, declared or JSON, data=text.encode())
            return Content(uri, declared or JSON, text=text)
        mime = declared or (outcome.content_type or JSON).split(";", 1)[0].strip() or JSON
        if is_text(mime) and not self.resource.binary:
            return Content(uri, mime, text=outcome.body.decode("utf-8", errors="replace"))
        return Content(uri, mime, data=outcome.body)


Resource = StaticResource | DynamicResource


class ResourceSet:
    """The resources of one MCP exposure, matched in declaration order (exact uris before templates)."""

    def __init__(self, resources: tuple[Resource, ...]):
        self.resources = resources
        self.static = [r for r in resources if isinstance(r, StaticResource)]
        self.fixed = [r for r in resources if isinstance(r, DynamicResource) and not r.is_template]
        self.templates = [r for r in resources if isinstance(r, DynamicResource) and r.is_template]

    async def listing(self) -> list[tuple[McpResource, str, str | None]]:
        """(declaration, uri, MIME type) of every concrete resource: fixed dynamic ones, then each file."""
        out: list[tuple[McpResource, str, str | None]] = [(r.resource, r.resource.uri, r.resource.mime_type) for r in self.fixed]
        for static in self.static:
            out += [(static.resource, uri, mime) for uri, mime in await asyncio.to_thread(static.listing)]
        return out

    async def read(self, uri: str, runtime: "Runtime") -> Content:
        for resource in self.fixed:
            if resource.resource.uri == uri:
                return await resource.read(uri, {}, runtime)
        for static in self.static:
            if static.owns(uri):
                return await asyncio.to_thread(static.read, uri)
        for template in self.templates:
            values = template.match(uri)
            if values is not None:
                return await template.read(uri, values, runtime)
        raise NotFound(f"no resource has the uri '{uri}'; see resources/list and resources/templates/list")
