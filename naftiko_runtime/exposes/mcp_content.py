"""MCP resources and prompts on the SDK's handlers: listings built once, reads and gets per call.

Errors are JSON-RPC errors (resources and prompts have no `isError` result): an unknown uri or
prompt, an unsafe path, a bad or missing argument are -32602 naming what to fix; an upstream or
file failure is -32603 naming the upstream. Nothing here raises anything else to the SDK, whose
generic -32603 would say nothing.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import mcp.types as types
from mcp import MCPError

from naftiko_runtime.errors import InputError, NotFound, UpstreamFailure
from naftiko_runtime.exposes.mcp_tools import describe_problems
from naftiko_runtime.plan import McpApi
from naftiko_runtime.resources import ResourceSet
from naftiko_runtime.runtime import Runtime

log = logging.getLogger("naftiko.mcp")


class Resources:
    """resources/list, resources/templates/list and resources/read for one exposure."""

    def __init__(self, api: McpApi, runtime: Runtime):
        self.set = ResourceSet(api.resources)
        self.runtime = runtime
        self.templates = types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=r.resource.uri, name=r.resource.name, title=r.resource.label or None,
                                   description=r.resource.description or None, mime_type=r.resource.mime_type)
            for r in self.set.templates
        ])

    async def list(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        listing = await self.set.listing()
        return types.ListResourcesResult(resources=[
            types.Resource(uri=uri, name=res.name, title=res.label or res.name, description=res.description or None, mime_type=mime)
            for res, uri, mime in listing
        ])

    async def list_templates(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
        return self.templates

    async def read(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            content = await self.set.read(uri, self.runtime)
        except NotFound as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=exc.message) from None
        except InputError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Invalid resource uri '{uri}': {describe_problems(exc)}") from None
        except UpstreamFailure as exc:
            log.warning("resource %s: %s", uri, exc.message)
            raise MCPError(code=types.INTERNAL_ERROR, message=f"Reading '{uri}' failed: {exc.message}") from None
        except OSError as exc:
            log.warning("resource %s: %s", uri, exc)
            raise MCPError(code=types.INTERNAL_ERROR, message=f"Reading '{uri}' failed: the file could not be read") from None
        except Exception:
            log.exception("resource %s: internal error", uri)
            raise MCPError(code=types.INTERNAL_ERROR, message=f"Reading '{uri}' failed with an internal error in the runtime; the error is logged on the server") from None
        item: types.TextResourceContents | types.BlobResourceContents
        if content.text is not None:
            item = types.TextResourceContents(uri=content.uri, mime_type=content.mime, text=content.text)
        else:
            item = types.BlobResourceContents(uri=content.uri, mime_type=content.mime, blob=base64.b64encode(content.data or b"").decode("ascii"))
        return types.ReadResourceResult(contents=[item])


class Prompts:
    """prompts/list and prompts/get for one exposure."""

    def __init__(self, api: McpApi):
        self.prompts = {p.prompt.name: p for p in api.prompts}
        self.listing = types.ListPromptsResult(prompts=[
            types.Prompt(name=p.prompt.name, title=p.prompt.label or None, description=p.prompt.description or None,
                         arguments=[types.PromptArgument(name=a.name, title=a.label or None, description=a.description or None, required=a.required)
                                    for a in p.prompt.arguments] or None)
            for p in api.prompts
        ])

    async def list(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return self.listing

    async def get(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = self.prompts.get(params.name)
        if prompt is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}; known prompts: {', '.join(self.prompts) or 'none'}")
        try:
            messages = prompt.render(params.arguments)
        except InputError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=f"{exc.title}: {describe_problems(exc)}") from None
        return types.GetPromptResult(description=prompt.prompt.description or None, messages=[
            types.PromptMessage(role=role, content=types.TextContent(type="text", text=text)) for role, text in messages
        ])


def content_handlers(api: McpApi, runtime: Runtime) -> dict[str, Any]:
    """The Server handler arguments for what the exposure declares: a capability the server does
    not have is not announced (no `resources` without resources, no `prompts` without prompts)."""
    handlers: dict[str, Any] = {}
    if api.resources:
        resources = Resources(api, runtime)
        handlers.update(on_list_resources=resources.list, on_list_resource_templates=resources.list_templates,
                        on_read_resource=resources.read)
    if api.prompts:
        prompts = Prompts(api)
        handlers.update(on_list_prompts=prompts.list, on_get_prompt=prompts.get)
    return handlers
