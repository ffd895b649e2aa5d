"""MCP tools from compiled invocations: definitions, argument checks, and results.

Nothing here knows about transports. Everything a call needs (the `Tool` definition, the output
validator, the upstream name) is built once per tool; a call only checks the arguments, invokes,
and renders the `Outcome` as a result in its wire form (a dict), which the fast path
(exposes/mcp_fast.py) serializes as is and the SDK's handler turns into a `CallToolResult`. Errors the model can act on (bad arguments, an
upstream 4xx/5xx, an unreachable upstream) are results with `is_error`, never JSON-RPC errors, so
the model sees them; an unknown tool name is the one protocol error (-32602).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from http import HTTPStatus
from typing import Any

import mcp_types as types

from naftiko_runtime.inputs import schema_validator
from naftiko_runtime.errors import InputError, StepFailure, UpstreamFailure, cap_text
from naftiko_runtime.pipeline import Invocation, Outcome
from naftiko_runtime.plan import McpApi, McpTool
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.shaping import NOTHING

log = logging.getLogger("naftiko.mcp")

_HINTS = (("readOnly", "read_only_hint"), ("destructive", "destructive_hint"),
          ("idempotent", "idempotent_hint"), ("openWorld", "open_world_hint"))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


WireResult = dict[str, Any]  # a CallToolResult as it goes on the wire (camelCase keys)


def _result(text: str, structured: Any = None, is_error: bool = False) -> WireResult:
    out: WireResult = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if structured is not None:
        out["structuredContent"] = structured
    return out


def error_result(text: str) -> WireResult:
    """A tool result the model reads as a failure it may fix (not a protocol error)."""
    return _result(text, is_error=True)


def output_schema(invocation: Invocation) -> tuple[dict[str, Any] | None, bool]:
    """The published output schema and whether results are wrapped as `{"result": ...}`.

    MCP output schemas must describe objects; a declared array or scalar shape is wrapped.
    """
    schema = invocation.output_schema
    if not schema:  # None, or `{}` (a declared shape that constrains nothing): publish none
        return None, False
    if schema.get("type") == "object":
        return schema, False
    return {"type": "object", "properties": {"result": schema}, "required": ["result"]}, True


def annotations(tool: McpTool) -> types.ToolAnnotations | None:
    """`label` and `hints` as ToolAnnotations; unset hints stay unset (no MCP defaults filled in)."""
    hints = tool.tool.hints
    values = {attr: hints[key] for key, attr in _HINTS if hints.get(key) is not None}
    if tool.tool.label:
        values["title"] = tool.tool.label
    return types.ToolAnnotations(**values) if values else None


class ToolRunner:
    """One tool: its published definition and how a call is checked, invoked and rendered."""

    def __init__(self, tool: McpTool, runtime: Runtime):
        self.name = tool.tool.name
        self.invocation = tool.invocation
        self.runtime = runtime
        self.upstream = tool.invocation.upstream
        schema, self.wrap = output_schema(tool.invocation)
        self.output_validator = schema_validator(schema) if schema is not None else None
        self.definition = types.Tool(
            name=self.name,
            title=tool.tool.label or None,
            description=tool.tool.description or None,
            input_schema=tool.invocation.input_schema,
            output_schema=schema,
            annotations=annotations(tool),
        )

    async def call(self, arguments: Any) -> types.CallToolResult:
        """The result as the SDK's model (its handlers: stdio, the handshake-era HTTP transport)."""
        return types.CallToolResult.model_validate(await self.call_wire(arguments))

    async def call_wire(self, arguments: Any) -> WireResult:
        """Never raises: every failure becomes an `is_error` result, internal ones are logged."""
        try:
            if arguments is None:
                arguments = {}
            elif not isinstance(arguments, dict):
                return error_result(f"Invalid arguments for tool '{self.name}': arguments must be a JSON object, got {type(arguments).__name__}")
            outcome = await self.invocation.invoke(arguments, self.runtime)
            return self.render(outcome)
        except InputError as exc:
            return error_result(f"Invalid arguments for tool '{self.name}' (nothing was sent): " + describe_problems(self.invocation.blame(exc)))
        except UpstreamFailure as exc:
            log.warning("tool %s: %s", self.name, exc.message)
            return error_result(f"Tool '{self.name}' failed: {exc.message}")
        except StepFailure as exc:
            log.warning("tool %s: %s", self.name, exc.message)
            body = exc.body_text()
            return error_result(f"Tool '{self.name}' failed: {exc.message}" + (f": {body}" if body else ""))
        except Exception:  # the last line of defence: a safe message, the traceback in the log
            log.exception("tool %s: internal error", self.name)
            return error_result(f"Tool '{self.name}' failed with an internal error in the runtime; the error is logged on the server")

    def render(self, outcome: Outcome) -> WireResult:
        """A 2xx answer as structured content plus the same JSON as text; >= 400 as an error result."""
        if not outcome.ok:
            return error_result(self._upstream_error(outcome))
        if outcome.binary:
            return {"content": [binary_content(self.name, outcome)], "isError": False}
        if outcome.value is not NOTHING:
            value, raw = outcome.value, None
        else:
            raw = outcome.body.decode("utf-8", errors="replace")
            try:
                value = json.loads(raw) if raw.strip() else NOTHING
            except (ValueError, RecursionError):
                value = NOTHING
            if value is NOTHING:
                if self.output_validator is not None:
                    return error_result(f"Tool '{self.name}': the upstream answered HTTP {outcome.status} without the JSON its declared output needs")
                return _result(raw or f"(HTTP {outcome.status}, no content)")
        structured = value if isinstance(value, dict) and not self.wrap else {"result": value}
        if self.output_validator is not None and not self.output_validator.is_valid(structured):
            log.warning("tool %s: the upstream answer does not match the declared output shape", self.name)
            return error_result(f"Tool '{self.name}': the upstream answer does not match the tool's declared output shape; "
                                f"it was: {self._capped(outcome)}")
        text = raw if raw is not None and structured is value else _dumps(structured)
        return _result(text, structured)

    def _upstream_error(self, outcome: Outcome) -> str:
        try:
            reason = f" {HTTPStatus(outcome.status).phrase}"
        except ValueError:
            reason = ""
        body = self._capped(outcome)
        return f"Upstream '{self.upstream}' answered HTTP {outcome.status}{reason}" + (f": {body}" if body else " with no body")

    def _capped(self, outcome: Outcome) -> str:
        """The answer as text for an error message, cut at ERROR_BODY_LIMIT characters.

        Credentials an upstream echoes back are already masked by its transport (upstream/client.py).
        """
        return cap_text(outcome.body.decode("utf-8", errors="replace") if outcome.value is NOTHING else _dumps(outcome.value))


def binary_content(tool: str, outcome: Outcome) -> dict[str, Any]:
    """Raw bytes as the content block their media type calls for, base64-encoded (never as text):
    images and audio as such (a model can look at or listen to them), anything else as an embedded
    blob resource with a per-call URI (it is not addressable later)."""
    media = (outcome.content_type or "application/octet-stream").split(";", 1)[0].strip()
    data = base64.b64encode(outcome.body).decode("ascii")
    if media.startswith(("image/", "audio/")):
        return {"type": media.split("/", 1)[0], "data": data, "mimeType": media}
    return {"type": "resource", "resource": {"uri": f"naftiko://transient/{tool}/{uuid.uuid4()}", "mimeType": media, "blob": data}}


def describe_problems(exc: InputError) -> str:
    """`'id' is required (string: The unique ...)`, one clause per argument, for the model to fix."""
    return "; ".join(f"'{p.name}' {p.detail}" for p in exc.problems)


class Toolset:
    """The tools of one MCP exposure, in declaration order, as the MCP handlers serve them."""

    def __init__(self, api: McpApi, runtime: Runtime):
        self.runners = {t.tool.name: ToolRunner(t, runtime) for t in api.tools}
        self.listing = types.ListToolsResult(tools=[r.definition for r in self.runners.values()])

    def input_schema(self, name: str) -> dict[str, Any] | None:
        runner = self.runners.get(name)
        return runner.definition.input_schema if runner else None
