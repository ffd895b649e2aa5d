"""Reading the adapters beyond tools and routes: MCP resources and prompts, skill catalogs, control.

Every `location` is a `file:///` URI resolved against the capability file (as imports are), and it
must exist when the file is read: a catalog or resource folder that is missing is a startup error
with its position, not an empty listing discovered by the first client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from naftiko_runtime.capability.imports import resolve_location
from naftiko_runtime.capability.diagnostics import Pos
from naftiko_runtime.capability.model import (
    Action,
    Auth,
    ControlExposure,
    McpExposure,
    McpPrompt,
    McpResource,
    Observability,
    Param,
    PromptArgument,
    PromptMessage,
    Skill,
    SkillExposure,
    SkillTool,
)
from naftiko_runtime.capability.reader import Reader, int_or_none, kind
from naftiko_runtime.capability.versions import LABEL
from naftiko_runtime.capability.yamlsource import YList, YMap
from naftiko_runtime.templates import placeholder_names

SKILL_FRONTMATTER = ("license", "compatibility", "metadata", "allowed-tools", "argument-hint", "user-invocable",
                     "disable-model-invocation")
PROMPT_ROLES = ("user", "assistant")


class AdaptersReader(Reader):
    """MCP resources and prompts, `skill` and `control` exposures."""

    # ExposesReader's: what a tool or REST operation does (call or steps, with, outputs)
    action: Callable[[YMap, str, str, list[Param]], Action]
    port: Callable[[YMap, str, bool], int | None]
    auth: Callable[[Any, Pos, bool], Auth | None]  # ConsumesReader's: an `authentication` block

    def location(self, node: YMap, where: str, folder: bool) -> Path | None:
        """`location` as a path that exists (a folder or a file); None after reporting why not."""
        raw = self._str(node, "location", where)
        if not raw:
            return None
        path = resolve_location(raw, self.base_dir)
        what = "folder" if folder else "file"
        if not (path.is_dir() if folder else path.is_file()):
            found = "does not exist" if not path.exists() else f"is not a {what}"
            self.d.error(node.at("location"), f"{where}: location '{raw}' {found} (resolved to {path}); "
                         f"give the {what}'s path relative to this file, like file:///./{'docs' if folder else 'prompt.md'}",
                         "location-not-found")
            return None
        return path

    # ---------------------------------------------------------------- MCP resources and prompts

    def mcp_content(self, node: YMap, exp: McpExposure) -> None:
        for item, pos in self._list(node, "resources", f"exposure '{exp.namespace}'"):
            resource = self.mcp_resource(item, pos, exp.namespace)
            if resource is not None:
                exp.resources.append(resource)
        for item, pos in self._list(node, "prompts", f"exposure '{exp.namespace}'"):
            prompt = self.mcp_prompt(item, pos)
            if prompt is not None:
                exp.prompts.append(prompt)

    def mcp_resource(self, item: Any, pos: Pos, namespace: str) -> McpResource | None:
        node = self._map(item, "an MCP resource", pos)
        if node is None:
            return None
        name = self._str(node, "name", "an MCP resource", required=True)
        uri = self._str(node, "uri", f"resource '{name}'", required=True)
        if not name or not uri:
            return None
        where = f"resource '{name}'"
        resource = McpResource(name=name, uri=uri, pos=node.pos, label=self.renamed(node, LABEL, where),
                               description=self._str(node, "description", where),
                               mime_type=self._str(node, "mimeType", where) or None)
        binary = node.get("binary")
        if binary is not None and not isinstance(binary, bool):
            self.d.error(node.at("binary"), f"`binary` in {where} must be true or false, found {kind(binary)}", "structure")
        resource.binary = binary is True
        dynamic = any(key in node for key in ("call", "steps", "calls", "ref"))
        if "location" in node:
            if dynamic:
                self.d.error(node.key_at("location"), f"{where} has both `location` (static files) and `call`/`steps`; keep one", "resource-mode")
                return None
            if "{" in uri:
                self.d.error(node.at("uri"), f"{where}: a static resource's uri cannot be a template ('{uri}'); its files are listed as <uri>/<path>", "resource-mode")
                return None
            resource.location = self.location(node, where, folder=True)
            return resource if resource.location is not None else None
        if not dynamic:
            self.d.error(node.pos, f"{where} needs `location` (a folder of files) or `call` (read from a consumed operation)", "resource-mode")
            return None
        resource.action = self.action(node, namespace, where, [])
        return resource

    def mcp_prompt(self, item: Any, pos: Pos) -> McpPrompt | None:
        node = self._map(item, "an MCP prompt", pos)
        if node is None:
            return None
        name = self._str(node, "name", "an MCP prompt", required=True)
        if not name:
            return None
        where = f"prompt '{name}'"
        prompt = McpPrompt(name=name, pos=node.pos, label=self.renamed(node, LABEL, where), description=self._str(node, "description", where))
        for arg, apos in self._list(node, "arguments", where):
            arg_node = self._map(arg, f"an argument of {where}", apos)
            arg_name = self._str(arg_node, "name", f"an argument of {where}", required=True) if arg_node is not None else ""
            if arg_node is None or not arg_name:
                continue
            if any(a.name == arg_name for a in prompt.arguments):
                self.d.error(arg_node.pos, f"{where}: argument '{arg_name}' is declared twice", "duplicate-parameter")
                continue
            prompt.arguments.append(PromptArgument(arg_name, arg_node.pos, label=self.renamed(arg_node, LABEL, f"argument '{arg_name}'"),
                                                   description=self._str(arg_node, "description", "argument"),
                                                   required=arg_node.get("required", True) is not False))
        if ("template" in node) == ("location" in node):
            self.d.error(node.pos, f"{where} needs exactly one of `template` (a list of messages) or `location` (a file)", "prompt-mode")
            return None
        if "location" in node:
            path = self.location(node, where, folder=False)
            if path is None:
                return None
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self.d.error(node.at("location"), f"{where}: cannot read {path} as UTF-8 text ({exc.__class__.__name__})", "location-not-found")
                return None
            prompt.messages.append(PromptMessage("user", text, node.at("location")))
        for msg, mpos in self._list(node, "template", where):
            msg_node = self._map(msg, f"a message of {where}", mpos)
            if msg_node is None:
                continue
            role = self._str(msg_node, "role", f"a message of {where}", required=True).lower()
            if role and role not in PROMPT_ROLES:
                self.d.error(msg_node.at("role"), f"{where}: role '{role}' is not one of {', '.join(PROMPT_ROLES)}", "prompt-template")
            prompt.messages.append(PromptMessage(role or "user", self._str(msg_node, "content", f"a message of {where}", required=True),
                                                 msg_node.at("content") if "content" in msg_node else msg_node.pos))
        declared = [a.name for a in prompt.arguments]
        for message in prompt.messages:
            names, malformed = placeholder_names(message.content)
            if malformed:
                self.d.error(message.pos, f"{where}: unbalanced `{{{{` or `}}}}` near '{malformed}'; placeholders are {{{{argument}}}}", "prompt-template")
            for placeholder in names:
                if placeholder not in declared:
                    self.d.error(message.pos, f"{where}: `{{{{{placeholder}}}}}` names no argument (declared: {', '.join(declared) or 'none'}); declare it under `arguments`", "prompt-template")
        return prompt

    # ---------------------------------------------------------------- skill exposures

    def skill_exposure(self, node: YMap, namespace: str) -> SkillExposure:
        exp = SkillExposure(namespace=namespace, pos=node.pos, port=self.port(node, namespace, True),
                            address=self._str(node, "address", "skill") or "", description=self._str(node, "description", "skill"))
        if "authentication" in node:
            exp.auth = self.auth(node.get("authentication"), node.at("authentication"), False)
        for item, pos in self._list(node, "skills", f"exposure '{namespace}'"):
            skill = self.skill(item, pos)
            if skill is not None:
                exp.skills.append(skill)
        for group, gpos in self._list(node, "groups", f"exposure '{namespace}'"):
            skill = self.skill_group(group, gpos)
            if skill is not None:
                exp.skills.append(skill)
        if "tools" in node and "skills" not in node:
            self.d.note(node.key_at("tools"), f"skill exposure '{namespace}': `tools` at the exposure level read as one skill named '{namespace}'", "dialect-skill-tools")
            skill = Skill(name=namespace, pos=node.pos, description=exp.description)
            skill.tools = self.skill_tools(node, f"skill '{namespace}'")
            exp.skills.append(skill)
        if not exp.skills:
            self.d.error(node.pos, f"skill exposure '{namespace}' lists no `skills`", "required-field")
        return exp

    def skill(self, item: Any, pos: Pos) -> Skill | None:
        node = self._map(item, "a skill", pos)
        if node is None:
            return None
        name = self._str(node, "name", "a skill", required=True)
        if not name:
            return None
        where = f"skill '{name}'"
        skill = Skill(name=name, pos=node.pos, description=self._str(node, "description", where, required=True))
        for key in SKILL_FRONTMATTER:
            if key in node:
                skill.frontmatter[key] = _plain(node[key])
        if "location" in node:
            skill.location = self.location(node, where, folder=True)
        skill.tools = self.skill_tools(node, where)
        for tool in skill.tools:
            if tool.instruction is None:
                continue
            if "location" not in node:
                self.d.error(tool.pos, f"{where}: tool '{tool.name}' uses `instruction`, which needs the skill's `location` folder", "skill-instruction")
            elif skill.location is not None and not (skill.location / tool.instruction).resolve().is_file():
                self.d.error(tool.pos, f"{where}: tool '{tool.name}': instruction '{tool.instruction}' is not a file in {skill.location}", "location-not-found")
        return skill

    def skill_group(self, item: Any, pos: Pos) -> Skill | None:
        """The generator's `groups: [{name, description, skills: [{name, call}]}]`: a group is a skill."""
        node = self._map(item, "a skill group", pos)
        if node is None:
            return None
        name = self._str(node, "name", "a skill group", required=True)
        if not name:
            return None
        self.d.note(pos, f"skill group '{name}' read as a skill; its `skills` entries are its tools", "dialect-skill-groups")
        skill = Skill(name=name, pos=node.pos, description=self._str(node, "description", f"skill '{name}'"))
        skill.tools = self.skill_tools(node, f"skill '{name}'", key="skills")
        return skill

    def skill_tools(self, node: YMap, where: str, key: str = "tools") -> list[SkillTool]:
        out: list[SkillTool] = []
        for item, pos in self._list(node, key, where):
            tnode = self._map(item, f"a tool of {where}", pos)
            name = self._str(tnode, "name", f"a tool of {where}", required=True) if tnode is not None else ""
            if tnode is None or not name:
                continue
            tool = SkillTool(name=name, pos=tnode.pos, description=self._str(tnode, "description", f"tool '{name}'"))
            given = [k for k in ("from", "instruction", "call") if k in tnode]
            if len(given) != 1:
                self.d.error(tnode.pos, f"{where}: tool '{name}' needs exactly one of `from` (a sibling exposure's operation or tool) "
                             f"or `instruction` (a file in the skill's location){'; found ' + ', '.join(given) if given else ''}", "skill-tool")
                continue
            if "instruction" in tnode:
                tool.instruction = self._str(tnode, "instruction", f"tool '{name}'")
            elif "from" in tnode:
                source = self._map(tnode["from"], f"`from` of tool '{name}'", tnode.at("from"))
                if source is None:
                    continue
                ns = self._str(source, "sourceNamespace", f"`from` of tool '{name}'", required=True)
                action = self._str(source, "action", f"`from` of tool '{name}'", required=True)
                if not ns or not action:
                    continue
                tool.source = (ns, action)
            else:  # `call: ns.op`: the sibling exposure that calls that operation is found when compiling
                call = self._str(tnode, "call", f"tool '{name}'")
                head, dot, op = call.partition(".")
                if not dot or not op:
                    self.d.error(tnode.at("call"), f"{where}: tool '{name}': call '{call}' must be `<consumes-namespace>.<operation>`", "bad-call")
                    continue
                tool.source = ("", call)
            out.append(tool)
        return out

    # ---------------------------------------------------------------- control

    def control_exposure(self, node: YMap) -> ControlExposure:
        exp = ControlExposure(pos=node.pos, port=self.port(node, "control", True), address=self._str(node, "address", "control") or "")
        if "namespace" in node:
            exp.namespace = self._str(node, "namespace", "control") or "control"
        if "authentication" in node:
            exp.auth = self.auth(node.get("authentication"), node.at("authentication"), False)
        management = self._map(node.get("management"), "`management`", node.at("management")) if "management" in node else None
        if management is not None:
            exp.health = self._flag(management, "health", True)
            exp.info = self._flag(management, "info", False)
            for key in ("reload", "validate", "logs", "scripting"):
                if management.get(key) not in (None, False):
                    self.d.warning(management.key_at(key), f"control `management.{key}` is not served by this runtime (health, info, metrics and traces are)", "unsupported-feature")
        obs = self._map(node.get("observability"), "`observability`", node.at("observability")) if "observability" in node else None
        if obs is not None:
            exp.observability = self.observability(obs)
        return exp

    def observability(self, node: YMap) -> Observability:
        out = Observability(enabled=self._flag(node, "enabled", True))
        metrics = self._section(node, "metrics")
        out.metrics = self._flag(self._section(metrics, "local"), "enabled", True)
        traces = self._section(node, "traces")
        local = self._section(traces, "local")
        out.traces = self._flag(local, "enabled", True)
        if "buffer-size" in local:
            size = int_or_none(local["buffer-size"])
            if size is None or not 10 <= size <= 10000:
                self.d.error(local.at("buffer-size"), f"traces.local.buffer-size must be a whole number from 10 to 10000, got {local['buffer-size']!r}", "bad-observability")
            else:
                out.buffer_size = size
        if "sampling" in traces:
            rate = traces["sampling"]
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                self.d.error(traces.at("sampling"), f"traces.sampling must be a number from 0 to 1 (1.0 samples every request), got {rate!r}", "bad-observability")
            else:
                out.sampling = float(rate)
        if "propagation" in traces:
            propagation = str(traces["propagation"]).lower()
            if propagation not in ("w3c", "b3"):
                self.d.error(traces.at("propagation"), f"traces.propagation must be w3c or b3, got '{traces['propagation']}'", "bad-observability")
            else:
                out.propagation = propagation  # type: ignore[assignment]
        otlp = self._section(self._section(node, "exporters"), "otlp")
        if "endpoint" in otlp:
            out.otlp_endpoint = self._str(otlp, "endpoint", "exporters.otlp") or None
        return out

    def _section(self, node: YMap, key: str) -> YMap:
        value = node.get(key)
        if value is not None and not isinstance(value, YMap):
            self.d.error(node.at(key), f"`{key}` must be a mapping, found {kind(value)}", "structure")
        return value if isinstance(value, YMap) else YMap()

    def _flag(self, node: YMap, key: str, default: bool) -> bool:
        value = node.get(key, default)
        if not isinstance(value, bool):
            self.d.error(node.at(key), f"`{key}` must be true or false, found {kind(value)}", "structure")
            return default
        return value


def _plain(value: Any) -> Any:
    """YAML nodes as plain JSON values (for the catalog's JSON answers)."""
    if isinstance(value, YMap):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, YList):
        return [_plain(v) for v in value]
    return value
