"""Route matching in time independent of the number of routes.

A segment trie: literal segments are dict lookups, a `{name}` segment captures one segment, and a
segment mixing text and variables (`{tag}.{format}`, `v{n}`) is a small regex. A capability with
500 operations matches a path as fast as one with 5 (Starlette's router scans a list of regexes
in order). Literal segments win over patterns, patterns over variables, with backtracking, so
`/items/search` and `/items/{id}` can both exist. A prefix may also take every deeper path
(`add_tail`, for `forward`); it is the last resort at its node.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

T = TypeVar("T")
_VAR = re.compile(r"^\{([^{}/]+)\}$")
_INNER_VAR = re.compile(r"\\\{([^{}/]+)\\\}")


class _Node(Generic[T]):
    __slots__ = ("literal", "patterns", "vars", "target", "tail")

    def __init__(self) -> None:
        self.literal: dict[str, _Node[T]] = {}
        self.patterns: list[tuple[re.Pattern[str], list[str], _Node[T]]] = []
        self.vars: list[tuple[str, _Node[T]]] = []
        self.target: T | None = None
        self.tail: tuple[str, T] | None = None  # matches one or more further segments, joined under this name


class Router(Generic[T]):
    """Maps route templates (`/v1/session/{id}`) to targets; `match` returns (target, params)."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._static: dict[str, T] = {}

    def add(self, template: str, target: T) -> None:
        segments = _split(template)
        if not any("{" in s for s in segments):
            self._static["/" + "/".join(segments)] = target
        self._node(segments).target = target

    def add_tail(self, prefix: str, name: str, target: T) -> None:
        """`prefix/...`: any path with one or more segments after `prefix` (whose variables and
        patterns match as in `add`), when no other route matches it; the rest is `params[name]`."""
        self._node(_split(prefix)).tail = (name, target)

    def _node(self, segments: list[str]) -> _Node[T]:
        node = self._root
        for segment in segments:
            m = _VAR.match(segment)
            if m:
                node = _var_child(node, m.group(1))
            elif "{" in segment:
                node = _pattern_child(node, segment)
            else:
                node = node.literal.setdefault(segment, _Node())
        return node

    def match(self, path: str) -> tuple[T, dict[str, str]] | None:
        static = self._static.get(path.rstrip("/") or "/")
        if static is not None:
            return static, {}
        segments = _split(path)
        params: dict[str, str] = {}
        node = self._root
        for segment in segments:  # the first choice at every node, as `_walk` tries them, without recursion
            child = node.literal.get(segment)
            if child is None:
                if node.patterns or not node.vars or not segment:
                    break
                name, child = node.vars[0]
                params[name] = segment
            node = child
        else:
            if node.target is not None:
                return node.target, params
        params = {}  # a dead end: the whole search, with backtracking
        found = _walk(self._root, segments, 0, params)
        return (found, params) if found is not None else None


def _var_child(node: _Node[T], name: str) -> _Node[T]:
    for existing, child in node.vars:
        if existing == name:
            return child
    child = _Node()
    node.vars.append((name, child))
    return child


def _pattern_child(node: _Node[T], segment: str) -> _Node[T]:
    names: list[str] = []

    def group(m: re.Match[str]) -> str:
        names.append(m.group(1))
        return "([^/]+?)"

    regex = re.compile("^" + _INNER_VAR.sub(group, re.escape(segment)) + "$")
    for existing, _, child in node.patterns:
        if existing.pattern == regex.pattern:
            return child
    child = _Node()
    node.patterns.append((regex, names, child))
    return child


def _split(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def _walk(node: _Node[T], segments: list[str], i: int, params: dict[str, str]) -> T | None:
    if i == len(segments):
        return node.target
    segment = segments[i]
    child = node.literal.get(segment)
    if child is not None:
        found = _walk(child, segments, i + 1, params)
        if found is not None:
            return found
    if not segment:
        return None
    for regex, names, child in node.patterns:
        m = regex.match(segment)
        if m:
            found = _walk(child, segments, i + 1, params)
            if found is not None:
                params.update(zip(names, m.groups()))
                return found
    for name, child in node.vars:
        found = _walk(child, segments, i + 1, params)
        if found is not None:
            params[name] = segment
            return found
    if node.tail is not None:
        name, target = node.tail
        params[name] = "/".join(segments[i:])
        return target
    return None
