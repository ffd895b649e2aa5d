"""MCP prompts compiled from the file (SEMANTICS 5.7): messages with `{{argument}}` placeholders.

Templates are compiled once (a `location` file is read when the capability loads, like an
import), and rendering is one pass over the compiled parts: an argument value containing
`{{other}}` is sent as that text, never expanded. Unlike the reference engine, a missing required
argument is refused naming it (the reference leaves the placeholder in the text); a missing
optional one renders empty.
"""

from __future__ import annotations

from typing import Any

from naftiko_runtime.capability.model import McpPrompt
from naftiko_runtime.errors import InputError, InputProblem
from naftiko_runtime.templates import MISSING, Ref, Template


class Prompt:
    """One prompt: its declaration and its compiled messages."""

    def __init__(self, prompt: McpPrompt):
        self.prompt = prompt
        self.messages = tuple((m.role, Template.compile(m.content)) for m in prompt.messages)
        self.required = [a for a in prompt.arguments if a.required]

    def render(self, arguments: dict[str, Any] | None) -> list[tuple[str, str]]:
        """(role, text) per message. InputError naming every missing required argument."""
        args = arguments or {}
        missing = [a for a in self.required if args.get(a.name) in (None, "")]
        if missing:
            raise InputError([InputProblem(a.name, None, "is required" + (f" ({a.description})" if a.description else "")) for a in missing],
                             f"Missing arguments for prompt '{self.prompt.name}'")

        def lookup(ref: Ref) -> Any:
            return args.get(ref.text, MISSING)

        return [(role, template.render(lookup)) for role, template in self.messages]
