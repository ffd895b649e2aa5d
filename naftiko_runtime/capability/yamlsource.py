"""Parse YAML safely and keep a source position for every node.

Capability authors fix what an error message points at, so every mapping, list and value keeps
its file:line:col. The tree is plain dicts and lists (subclasses carrying positions), so the rest
of the code never needs to know about YAML.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from naftiko_runtime.capability.diagnostics import Diagnostics, Pos

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_NODES = 1_000_000  # an alias bomb expands far past this; real files stay under 100k
_MAX_BYTES = 64 * 1024 * 1024


class YMap(dict):
    """A mapping that remembers where it, each key and each value stand in the source."""

    pos: Pos
    key_pos: dict[Any, Pos]
    val_pos: dict[Any, Pos]

    def at(self, key: Any) -> Pos:
        """Position of the value under `key` (the key's own if absent, else the mapping's)."""
        return self.val_pos.get(key) or self.key_pos.get(key) or self.pos

    def key_at(self, key: Any) -> Pos:
        return self.key_pos.get(key) or self.pos


class YList(list):
    """A sequence that remembers where it and each item stand in the source."""

    pos: Pos
    item_pos: list[Pos]

    def at(self, index: int) -> Pos:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos


def pos_of(value: Any, default: Pos) -> Pos:
    return getattr(value, "pos", default)


class _Builder:
    def __init__(self, file: str, diagnostics: Diagnostics):
        self.file = file
        self.diagnostics = diagnostics
        self.active: set[int] = set()
        self.memo: dict[int, tuple[Any, int]] = {}  # aliased nodes are built once
        self.constructor = yaml.SafeLoader("")  # only its scalar constructor is used

    def pos(self, node: yaml.Node) -> Pos:
        mark = node.start_mark
        return Pos(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node) -> Any:
        return self.sized(node)[0]

    def sized(self, node: yaml.Node) -> tuple[Any, int]:
        """Build a node and count the nodes it stands for once aliases are expanded.

        Aliased nodes are built once and shared, so an alias bomb costs only its own size to
        detect; the expanded count is what later stages would walk, and is capped.
        """
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node), 1
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            raise _Recursive(self.pos(node))
        self.active.add(key)
        try:
            built = self.sequence(node) if isinstance(node, yaml.SequenceNode) else self.mapping(node)
        finally:
            self.active.discard(key)
        if built[1] > _MAX_NODES:
            raise _TooLarge()
        self.memo[key] = built
        return built

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == "tag:yaml.org,2002:str":  # most scalars: no constructor round trip
            return node.value
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates stay text: they are metadata, not data to compute with
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            return node.value

    def sequence(self, node: yaml.SequenceNode) -> tuple[YList, int]:
        out, size = YList(), 1
        for item in node.value:
            value, n = self.sized(item)
            out.append(value)
            size += n
        out.pos = self.pos(node)
        out.item_pos = [self.pos(item) for item in node.value]
        return out, size

    def mapping(self, node: yaml.MappingNode) -> tuple[YMap, int]:
        out, size = YMap(), 1
        out.pos = self.pos(node)
        out.key_pos, out.val_pos = {}, {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged, n = self.sized(value_node)
                self.merge(out, merged)
                size += n
                continue
            key = self.build(key_node)
            if isinstance(key, (dict, list)):
                self.diagnostics.warning(self.pos(key_node), "a mapping key must be a plain value; this entry is ignored", "yaml-complex-key")
                continue
            value, n = self.sized(value_node)
            if key in out:
                first = out.key_pos[key]
                outcome = "with the same value" if out[key] == value else "the last one wins"
                self.diagnostics.warning(
                    self.pos(key_node),
                    f"duplicate key '{key}' (first at line {first.line}); {outcome}, remove one of them",
                    "yaml-duplicate-key",
                )
            out[key] = value
            size += n
            out.key_pos[key] = self.pos(key_node)
            out.val_pos[key] = self.pos(value_node)
        return out, size

    @staticmethod
    def merge(target: YMap, source: Any) -> None:
        sources = source if isinstance(source, list) else [source]
        for src in sources:
            if isinstance(src, YMap):
                for k, v in src.items():
                    if k not in target:
                        target[k] = v
                        target.key_pos[k] = src.key_pos.get(k, src.pos)
                        target.val_pos[k] = src.val_pos.get(k, src.pos)


class _TooLarge(Exception):
    pass


class _Recursive(Exception):
    def __init__(self, pos: Pos):
        self.pos = pos


def parse_text(text: str, file: str, diagnostics: Diagnostics) -> Any:
    """Parse one YAML document; on failure add an error with the position and return None."""
    where = Pos(file, 1, 1)
    if not text.strip():
        diagnostics.error(where, "the file is empty; a capability starts with `ikanos: \"1.0.0-beta4\"`", "yaml-empty")
        return None
    deep = _too_deep(text)
    if deep is not None:
        diagnostics.error(Pos(file, deep, 1), f"the YAML nests more than {_MAX_DEPTH} levels deep here; a capability file never needs that, so it is refused unread", "yaml-too-deep")
        return None
    try:
        root_node = yaml.compose(text, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Pos(file, mark.line + 1, mark.column + 1) if mark else where
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        diagnostics.error(pos, f"invalid YAML: {problem}{context}{_yaml_hint(problem)}", "yaml-syntax")
        return None
    except yaml.YAMLError as exc:
        diagnostics.error(where, f"invalid YAML: {exc}", "yaml-syntax")
        return None
    except RecursionError:
        diagnostics.error(where, "the YAML nests too deeply to read", "yaml-too-deep")
        return None
    if root_node is None:
        diagnostics.error(where, "the file holds no YAML document", "yaml-empty")
        return None
    builder = _Builder(file, diagnostics)
    try:
        return builder.build(root_node)
    except _TooLarge:
        diagnostics.error(where, f"the document expands to more than {_MAX_NODES:,} nodes (a YAML alias bomb?); refused", "yaml-alias-bomb")
    except _Recursive as exc:
        diagnostics.error(exc.pos, "a YAML alias refers to itself; refused", "yaml-recursive-alias")
    except RecursionError:
        diagnostics.error(where, "the YAML nests too deeply to read", "yaml-too-deep")
    return None


_MAX_DEPTH = 100  # real files nest under 30; checked here because parsers' own limits differ by release
_FLOW = re.compile(r"""'[^']*'|"(?:[^"\\]|\\.)*"|#.*|([\[{])|([\]}])""")


def _too_deep(text: str) -> int | None:
    """The line where the document nests deeper than `_MAX_DEPTH` (block indentation levels plus open
    flow brackets, quoted text and comments aside), or None. Run before the parser, so the verdict
    does not depend on which PyYAML release is installed (6.0.4 refuses deep nesting by itself,
    with its own message)."""
    indents: list[int] = []
    flow = 0
    for number, line in enumerate(text.splitlines(), 1):
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        indent = len(line) - len(content)
        while indents and indent < indents[-1]:
            indents.pop()
        if not indents or indent > indents[-1]:
            indents.append(indent)
        if "[" in content or "{" in content or flow:
            for match in _FLOW.finditer(content):
                flow += 1 if match.group(1) else -1 if match.group(2) else 0
                if len(indents) + flow > _MAX_DEPTH:
                    return number
        if len(indents) > _MAX_DEPTH:
            return number
    return None


def _yaml_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return " (a value containing ': ' must be quoted, or the indentation is off)"
    if "found character '\\t'" in problem:
        return " (YAML indents with spaces, not tabs)"
    if "could not find expected ':'" in problem:
        return " (a key is missing its ':' or a quoted string is not closed)"
    if "expected <block end>" in problem:
        return " (check the indentation of this line against the previous ones)"
    return ""


def read_text(path: Path, diagnostics: Diagnostics) -> str | None:
    """Read a file as UTF-8 text, reporting binary data, bad encodings and size instead of raising."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            diagnostics.error(Pos(file), f"the file is {size:,} bytes; capability files over {_MAX_BYTES:,} bytes are refused", "file-too-large")
            return None
        data = path.read_bytes()
    except OSError as exc:
        diagnostics.error(Pos(file), f"cannot read the file: {exc.strerror or exc}", "file-unreadable")
        return None
    if b"\x00" in data[:8192]:
        diagnostics.error(Pos(file), "this is a binary file, not YAML", "file-binary")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        diagnostics.error(Pos(file, line, col), f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x}); save it as UTF-8", "file-encoding")
        return None


def load_yaml_file(path: Path, diagnostics: Diagnostics, display: str | None = None) -> Any:
    """Read and parse a YAML file; None (with diagnostics) when it cannot be used."""
    text = read_text(path, diagnostics)
    if text is None:
        return None
    return parse_text(text, display or str(path), diagnostics)
