"""A skill exposure compiled into its catalog (SEMANTICS 6.1): what `GET /skills...` answers.

The skill server is a catalog: it never executes a tool. A derived tool points at the sibling
REST operation or MCP tool an agent should call (`invocationRef`), checked when the file loads, so
a catalog never advertises an action that does not exist. The JSON documents are built once; only
the files of a skill's `location` folder are read per request (through `files.Folder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from naftiko_runtime.capability.model import Capability, Skill, SkillTool
from naftiko_runtime.errors import NotFound
from naftiko_runtime.files import Folder
from naftiko_runtime.capability.diagnostics import did_you_mean, name_list

# Frontmatter fields in the order the detail document lists them.
FRONTMATTER = ("license", "compatibility", "argument-hint", "allowed-tools", "user-invocable", "disable-model-invocation", "metadata")


@dataclass(frozen=True)
class Problem:
    """A catalog entry that cannot be resolved; the compiler reports it at `tool.pos`."""

    tool: SkillTool
    message: str
    rule: str
    error: bool = True


@dataclass(frozen=True)
class Target:
    """Where a derived tool is invoked: a sibling exposure's operation or tool."""

    namespace: str
    action: str
    mode: str  # rest | mcp | unknown
    description: str = ""


def _actions(cap: Capability) -> dict[str, tuple[str, dict[str, str], dict[tuple[str, str], str]]]:
    """Per sibling REST/MCP exposure: its mode, action name -> description, and call -> action name."""
    out: dict[str, tuple[str, dict[str, str], dict[tuple[str, str], str]]] = {}
    for exp in cap.mcp:
        out[exp.namespace] = ("mcp", {t.name: t.description for t in exp.tools},
                              {t.action.call: t.name for t in reversed(exp.tools) if t.action.call})
    for rest in cap.rest:
        ops = [op for op in rest.operations if op.name]
        out.setdefault(rest.namespace, ("rest", {op.name: op.description for op in ops},
                                        {op.action.call: op.name for op in reversed(ops) if op.action.call}))
    return out


def resolve(skills: list[Skill], cap: Capability) -> tuple[dict[int, Target], list[Problem]]:
    """The target of every derived tool (by `id(tool)`), and what cannot be resolved."""
    siblings = _actions(cap)
    targets: dict[int, Target] = {}
    problems: list[Problem] = []
    for skill in skills:
        for tool in skill.tools:
            if tool.source is None:
                continue
            namespace, action = tool.source
            if not namespace:  # the generator's `call: ns.op`: whichever sibling exposes that call
                call = tuple(action.split(".", 1))
                found = [(ns, by_call[call]) for ns, (_, _, by_call) in siblings.items() if call in by_call]
                if not found:
                    problems.append(Problem(tool, f"skill '{skill.name}': tool '{tool.name}' calls '{action}', which no REST operation or MCP tool "
                                                  "of this file calls; it is listed with mode 'unknown'", "skill-source", error=False))
                    targets[id(tool)] = Target("", action, "unknown")
                    continue
                namespace, action = found[0]
            sibling = siblings.get(namespace)
            if sibling is None:
                problems.append(Problem(tool, f"skill '{skill.name}': tool '{tool.name}': `from.sourceNamespace` '{namespace}' is no REST or MCP "
                                              f"exposure of this file{did_you_mean(namespace, siblings)} (known: {name_list(siblings)})", "skill-source"))
                continue
            mode, actions, _ = sibling
            if action not in actions:
                what = "operation" if mode == "rest" else "tool"
                problems.append(Problem(tool, f"skill '{skill.name}': tool '{tool.name}': `from.action` '{action}' is no {what} of '{namespace}'"
                                              f"{did_you_mean(action, actions)} (known: {name_list(actions)})", "skill-source"))
                continue
            targets[id(tool)] = Target(namespace, action, mode, actions[action])
    return targets, problems


class SkillEntry:
    """One skill: its catalog documents, and its folder when it has a `location`."""

    def __init__(self, skill: Skill, targets: dict[int, Target], max_bytes: int):
        self.skill = skill
        self.folder = Folder(skill.location, max_bytes) if skill.location is not None else None
        fm = skill.frontmatter
        self.summary: dict[str, Any] = {"name": skill.name, "description": skill.description}
        if "license" in fm:
            self.summary["license"] = fm["license"]
        self.summary["tools"] = [t.name for t in skill.tools]
        self.detail: dict[str, Any] = {"name": skill.name, "description": skill.description}
        self.detail.update({key: fm[key] for key in FRONTMATTER if key in fm})
        self.detail["tools"] = [self._tool(t, targets.get(id(t))) for t in skill.tools]

    @staticmethod
    def _tool(tool: SkillTool, target: Target | None) -> dict[str, Any]:
        if tool.instruction is not None:
            return {"name": tool.name, "description": tool.description, "type": "instruction", "instruction": tool.instruction}
        if target is None:  # unresolved: the compiler reports it and nothing is served
            target = Target(*(tool.source or ("", "")), mode="unknown")
        return {"name": tool.name, "description": tool.description or target.description, "type": "derived",
                "invocationRef": {"targetNamespace": target.namespace, "action": target.action, "mode": target.mode}}

    def files(self) -> Folder:
        if self.folder is None:
            raise NotFound(f"skill '{self.skill.name}' has no `location` folder, so it has no files")
        return self.folder


class Catalog:
    """Every skill of one exposure, by name, with the listing document."""

    def __init__(self, skills: list[Skill], targets: dict[int, Target], max_bytes: int):
        self.skills = {s.name: SkillEntry(s, targets, max_bytes) for s in skills}
        self.listing = {"count": len(self.skills), "skills": [s.summary for s in self.skills.values()]}

    def get(self, name: str) -> SkillEntry:
        entry = self.skills.get(name)
        if entry is None:
            raise NotFound(f"no skill '{name}'; known: {name_list(self.skills)}")
        return entry
