"""An OpenAPI description on disk: parsed with positions, `$ref`s followed on demand.

`naftiko import openapi` reads only what it turns into a capability, so references are resolved
lazily, where they are used: the Vapi description's create body reaches 300 schemas (585 KB) that
the capability never needs in full. Every problem is one `AuthoringError` naming the file, the line
and column, and the JSON pointer inside the description, which is what an author looks for.

Decision: no generic resolver (prance, jsonref, referencing). They resolve eagerly (slow on deep
descriptions, and unbounded on recursive schemas) and lose source positions; following a pointer
is a few lines, and cycles are the caller's concern (openapi_import.py cuts them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from naftiko_runtime.capability.diagnostics import Diagnostic, Diagnostics, Pos
from naftiko_runtime.capability.load import display_path
from naftiko_runtime.capability.yamlsource import YList, YMap, parse_text, read_text
from naftiko_runtime.errors import AuthoringError

MAX_REF_HOPS = 64  # a chain of $ref to $ref longer than this is a loop


@dataclass(frozen=True)
class Loc:
    """Where a node is: its file and its JSON pointer in that file."""

    file: Path
    pointer: str = ""

    def child(self, *keys: Any) -> "Loc":
        pointer = self.pointer
        for key in keys:
            pointer += "/" + str(key).replace("~", "~0").replace("/", "~1")
        return Loc(self.file, pointer)

    def __str__(self) -> str:
        return "#" + self.pointer


def fail(pos: Pos, message: str, rule: str) -> AuthoringError:
    return AuthoringError(Diagnostic("error", pos, message, rule))


def pos_in(node: Any, key: Any, fallback: Pos) -> Pos:
    """The position of `node[key]` (or of `node`, or `fallback`)."""
    if isinstance(node, YMap) and key is not None:
        return node.at(key)
    if isinstance(node, YList) and isinstance(key, int):
        return node.at(key)
    return getattr(node, "pos", fallback)


class OpenApiSource:
    """The description file and every file its `$ref`s reach, each loaded once."""

    def __init__(self, path: Path):
        self.path = path.resolve()
        self.display = display_path(path)
        self.files: dict[Path, Any] = {}
        self.root = self.load(self.path, Pos(self.display))
        self.version = self._check_version()

    # ------------------------------------------------------------------ files

    def name(self, file: Path) -> str:
        return self.display if file == self.path else display_path(file)

    def load(self, file: Path, referenced_at: Pos) -> Any:
        if file in self.files:
            return self.files[file]
        display = self.name(file)
        if not file.is_file():
            raise fail(referenced_at, f"cannot read {display}: {'no such file' if not file.exists() else 'not a file'}", "openapi-file")
        diagnostics = Diagnostics()
        text = read_text(file, diagnostics)
        tree = None
        if text is not None:
            if not text.strip():
                raise fail(Pos(display, 1, 1), "the file is empty; expected an OpenAPI 3.0 or 3.1 description", "openapi-parse")
            tree = parse_text(text, display, diagnostics)
            if tree is None and text.lstrip().startswith(("{", "[")):
                tree = _json_tree(text, display)  # JSON that YAML refuses (tabs): no positions
        errors = diagnostics.errors
        if tree is None or errors:
            first = errors[0] if errors else Diagnostic("error", Pos(display), "cannot parse the file", "openapi-parse")
            raise AuthoringError(Diagnostic("error", first.pos, first.message.replace("invalid YAML", "not valid YAML or JSON"), "openapi-parse"))
        self.files[file] = tree
        return tree

    def _check_version(self) -> str:
        root = self.root
        here = Pos(self.display, 1, 1)
        if not isinstance(root, dict):
            raise fail(getattr(root, "pos", here), "expected an OpenAPI description (a mapping with `openapi: 3.x`), found "
                       + ("a list" if isinstance(root, list) else f"'{str(root)[:40]}'"), "openapi-version")
        if "swagger" in root:
            raise fail(root.at("swagger"), f"this is a Swagger {root.get('swagger')} description; `naftiko import openapi` reads "
                       "OpenAPI 3.0 and 3.1. Convert it first (swagger2openapi, or the Swagger Editor's "
                       "'Convert to OpenAPI 3'), then import the result", "openapi-version")
        version = str(root.get("openapi") or "")
        if not version:
            raise fail(root.pos, "no `openapi:` version field; expected an OpenAPI 3.0 or 3.1 description", "openapi-version")
        if not version.startswith(("3.0", "3.1")):
            raise fail(root.at("openapi"), f"OpenAPI {version} is not supported; 3.0.x and 3.1.x are", "openapi-version")
        return version

    # ------------------------------------------------------------------ references

    def deref(self, node: Any, loc: Loc) -> tuple[Any, Loc]:
        """`node` itself, or what its `$ref` (chain) points to, with the target's location."""
        hops = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            hops += 1
            if hops > MAX_REF_HOPS:
                raise fail(self.pos(node, loc, "$ref"), f"at {loc}: $ref chain loops (more than {MAX_REF_HOPS} hops)", "openapi-ref")
            node, loc = self.follow(node, loc)
        return node, loc

    def follow(self, node: YMap, loc: Loc) -> tuple[Any, Loc]:
        """One `$ref` hop: `#/a/b`, `other.yaml`, `other.yaml#/a/b` (relative to the referencing file)."""
        ref = node["$ref"]
        at = self.pos(node, loc, "$ref")
        target, _, fragment = ref.partition("#")
        if target:
            if "://" in target:
                raise fail(at, f"at {loc}: $ref '{ref}' names a remote document; only local files are read (download it next to the description)", "openapi-ref")
            file = (loc.file.parent / unquote(target)).resolve()
            if not file.is_file():
                raise fail(at, f"at {loc}: $ref '{ref}' names a file that does not exist: {self.name(file)}", "openapi-ref")
            doc = self.load(file, at)
        else:
            file, doc = loc.file, self.files[loc.file]
        current: Any = doc
        walked = ""
        for raw in (fragment.split("/")[1:] if fragment.startswith("/") else ([] if not fragment else [None])):
            if raw is None:
                raise fail(at, f"at {loc}: $ref '{ref}' has a fragment that is not a JSON pointer (it must start with '#/')", "openapi-ref")
            token = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(current, dict) and token in current:
                current = current[token]
            elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
                current = current[int(token)]
            else:
                where = f"'{self.name(file)}#{walked}'" if target else f"'#{walked}'"
                known = sorted(str(k) for k in current)[:8] if isinstance(current, dict) else []
                hint = f"; it has: {', '.join(known)}{'...' if isinstance(current, dict) and len(current) > 8 else ''}" if known else ""
                raise fail(at, f"at {loc}: $ref '{ref}' points to nothing: {where} has no '{token}'{hint}", "openapi-ref")
            walked += "/" + raw
        return current, Loc(file, walked)

    def pos(self, node: Any, loc: Loc, key: Any = None) -> Pos:
        return pos_in(node, key, Pos(self.name(loc.file)))


def _json_tree(text: str, display: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(Pos(display, exc.lineno, exc.colno), f"not valid JSON: {exc.msg}", "openapi-parse") from None
    except RecursionError:
        raise fail(Pos(display, 1, 1), "the JSON nests too deeply to read", "openapi-parse") from None
