"""`naftiko migrate FILE`: rewrite a capability file into another version's shape.

The file is edited as YAML, not regenerated from the model: ruamel.yaml's round trip keeps comments,
key order and quoting; indentation and line width are chosen to reproduce the author's layout as
closely as ruamel can (docs/migrate.md says what can still move). Three kinds of edits, each printed
as one line on stderr:

- the version's shape (docs/versions.md): the root key and version, lists of named objects <->
  maps keyed by name, `label` <-> `display`, `location` <-> `from`, `functions` <-> `flows`,
  `targetName` <-> `target`;
- dialect forms the normalizer reads with a note: the note says what the runtime understood, the
  edit writes it down (`auth:` -> `authentication:`, a missing `type: http`...);
- nothing else. Going down to a version that lacks a feature the file uses is an error naming it.

The result is loaded again and must normalize to what the original serves (same routes, tools,
calls and inputs); otherwise nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from naftiko_runtime.capability import versions
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import display_path, load_capability, load_text
from naftiko_runtime.capability.model import Capability

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
WIDTHS = (80, 100, 120, 4096)


class MigrationError(Exception):
    """Why a file cannot be migrated; the message names the line and the fix."""


def add_parser(sub: Any) -> None:
    mig = sub.add_parser("migrate", help="rewrite a capability file into another format version",
                         description="Rewrite a capability file into another format version (default: the newest), "
                                     "keeping comments, key order and formatting; one line per change on stderr.")
    mig.add_argument("file", help="the capability YAML file")
    mig.add_argument("--to", default=versions.LATEST, metavar="VERSION", help=f"target version (default {versions.LATEST}; {versions.RANGE})")
    out = mig.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", type=Path, metavar="OUT", help="write the result to OUT instead of stdout")
    out.add_argument("--in-place", action="store_true", help="rewrite FILE, keeping the original as FILE.bak")


def migrate_command(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if args.to not in versions.VERSIONS:
        _say(f"naftiko migrate: --to {args.to} is not a version; use one of {', '.join(versions.VERSIONS)}")
        return EXIT_USAGE
    if not path.is_file():
        _say(f"naftiko migrate: {path}: no such file")
        return EXIT_USAGE
    try:
        result = migrate_file(path, args.to)
    except MigrationError as exc:
        _say(f"naftiko migrate: {exc}")
        return EXIT_ERROR
    for change in result.changes:
        _say(change)
    _say(f"naftiko migrate: {path}: {len(result.changes)} change(s), {result.source} -> {args.to}" + ("" if result.changes else " (already in that shape)"))
    for note in result.notes:
        _say(note)
    if args.in_place:
        if result.text != result.original:
            shutil.copyfile(path, path.with_name(path.name + ".bak"))
            path.write_text(result.text, encoding="utf-8")
            _say(f"naftiko migrate: wrote {path} (the original is {path.name}.bak)")
    elif args.output is not None:
        args.output.write_text(result.text, encoding="utf-8")
    else:
        sys.stdout.write(result.text)
    return EXIT_OK


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Result:
    source: str
    original: str
    text: str
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things to do by hand (imported files...)


def migrate_file(path: Path, target: str) -> Result:
    """The migrated text of `path`; raises MigrationError when it cannot be migrated faithfully."""
    original = path.read_text(encoding="utf-8")
    d = Diagnostics()
    before = load_capability(path, d)
    errors = [x for x in d.errors if x.pos.file.endswith(path.name)]
    if before is None or errors:
        first = errors[0] if errors else (d.errors[0] if d.errors else None)
        raise MigrationError(f"{path}: the file has errors; fix them first (`naftiko validate {path}`){': ' + str(first) if first else ''}")
    if any(x.rule == "yaml-duplicate-key" for x in d):
        dup = next(x for x in d if x.rule == "yaml-duplicate-key")
        raise MigrationError(f"{dup.pos}: {dup.message}; the migrated file could keep only one of them, so remove one first")
    editor = Editor(str(path), original, before.version, target)
    editor.dialect([x for x in d if x.rule in FIXES and x.pos.file == display_path(path)])
    editor.reshape()
    text = editor.dump()
    after_d = Diagnostics()
    after = load_text(text, str(path), path.resolve().parent, after_d)
    if after is None or after_d.errors:
        problem = after_d.errors[0] if after_d.errors else "nothing could be read"
        raise MigrationError(f"{path}: the migrated file would not load ({problem}); nothing was written, please report this")
    lost = _difference(surface(before), surface(after))
    if lost:
        raise MigrationError(f"{path}: the migrated file would serve something else ({lost}); nothing was written, please report this")
    notes = [f"naftiko migrate: {path} imports {source} ({version}): migrate it too (`naftiko migrate {source} --to {target}`)"
             for source, version in editor.imports if version != target]
    changes = sorted(editor.changes, key=lambda c: int(m.group(1)) if (m := re.search(r":(\d+): ", c)) else 0)
    return Result(before.version, original, text, changes, notes)


# ----------------------------------------------------------------------------- the YAML editor

def _yaml(original: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    offset = _sequence_offset(original)
    yaml.indent(mapping=_mapping_indent(original), sequence=offset + 2, offset=offset)
    yaml.explicit_start = original.lstrip().startswith("---")
    return yaml


def _sequence_offset(text: str) -> int:
    """How far the author indents a list's `-` under its key (0: `key:` / `- item` aligned)."""
    previous = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("- ") and re.match(r"^\s*[\w-]+:\s*(#.*)?$", previous):
            return max(0, (len(line) - len(stripped)) - (len(previous) - len(previous.lstrip())))
        if stripped and not stripped.startswith("#"):
            previous = line
    return 0


_FOLDED = re.compile(r"^(\s*)(?:- )?[\w-]+: [^'\"|>{\[#&*!\s][^\n]*\n\1\s+[^\s#-][^:\n]*(?:\n|$)", re.M)


def _mapping_indent(text: str) -> int:
    """How far the author indents a mapping under its key (ruamel guesses sequences only)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z_][\w-]*:\s*(#.*)?$", line):
            own = len(line) - len(line.lstrip())
            for nxt in lines[i + 1:]:
                if nxt.strip() and not nxt.lstrip().startswith("#"):
                    step = len(nxt) - len(nxt.lstrip()) - own
                    if step > 0 and not nxt.lstrip().startswith("- "):
                        return step
                    break
    return 2


def _dump(yaml: Any, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


class Editor:
    """The round-trip tree of one file and the edits made to it, each logged with its line."""

    def __init__(self, file: str, original: str, source: str, target: str):
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        self.Map, self.Seq = CommentedMap, CommentedSeq
        self.file = file
        self.original = original
        self.source = source
        self.target = target
        self.up = versions.is_ikanos(target)
        self.yaml = _yaml(original)
        self.data = self.yaml.load(original)
        self.yaml.width = self._best_width()
        self.changes: list[str] = []
        self.imports: list[tuple[str, str]] = []

    def _best_width(self) -> int:
        """The line width whose plain round trip changes the fewest lines of the original; only
        long plain scalars folded over several lines depend on it."""
        if not _FOLDED.search(self.original):
            return WIDTHS[-1]
        best = (10**9, WIDTHS[-1])
        for width in WIDTHS:
            self.yaml.width = width
            text = _dump(self.yaml, self.data)
            changed = sum(1 for line in difflib.unified_diff(self.original.splitlines(), text.splitlines(), lineterm="", n=0) if line[:1] in "+-")
            best = min(best, (changed, width))
            if changed == 0:
                break
        return best[1]

    def dump(self) -> str:
        return _dump(self.yaml, self.data)

    def log(self, node: Any, key: Any, what: str) -> None:
        line = _line(node, key)
        self.changes.append(f"{self.file}:{line}: {what}" if line else f"{self.file}: {what}")

    # ------------------------------------------------------------------ primitives

    def rename(self, node: Any, old: str, new: str, where: str) -> None:
        if not isinstance(node, self.Map) or old not in node or new in node:
            return
        index = list(node).index(old)
        line = _line(node, old)
        comment = node.ca.items.pop(old, None)
        value = node.pop(old)
        node.insert(index, new, value)
        if comment is not None:
            node.ca.items[new] = comment
        self.changes.append(f"{self.file}:{line}: `{old}` -> `{new}` ({where})")

    def renamed(self, node: Any, rename: versions.Rename, where: str) -> None:
        old, new = (rename.old, rename.new) if self.up else (rename.new, rename.old)
        self.rename(node, old, new, where)

    def named(self, node: Any, key: str, child: Callable[[Any], None] | None = None) -> None:
        """A named collection in the target's shape (keyed map up, list of `{name}` down), then each entry."""
        value = node.get(key) if isinstance(node, self.Map) else None
        if isinstance(value, self.Seq) and self.up:
            value = self._to_map(node, key, value)
        elif isinstance(value, self.Map) and not self.up:
            value = self._to_list(node, key, value)
        entries = value.values() if isinstance(value, self.Map) else value if isinstance(value, self.Seq) else ()
        for entry in list(entries):
            if child is not None and isinstance(entry, self.Map):
                child(entry)

    def _to_map(self, parent: Any, key: str, seq: Any) -> Any:
        out = self.Map()
        for i, item in enumerate(seq):
            if isinstance(item, str):  # a bare name
                item = self.Map(name=item)
            if not isinstance(item, self.Map):
                raise MigrationError(f"{self.file}:{_line(seq, i)}: an entry of `{key}` is not a mapping; fix it first")
            given = item.get("name")
            name = str(given) if given is not None else _made_name(item, key, i)
            unique = name
            while unique in out:  # the runtime reads the first of two same-named entries; the second keeps its meaning under a new name
                unique = f"{name}-{sum(1 for k in out if k == name or str(k).startswith(name + '-')) + 1}"
            if given is None:
                self.log(seq, i, f"an entry of `{key}` without `name` is keyed '{unique}' (made from its {'method and path' if key == 'operations' else 'path'})")
            elif unique != name:
                self.log(seq, i, f"a second entry of `{key}` named '{name}' is keyed '{unique}' (names become keys; calls still reach the first)")
            comment = _comment_text(item.ca.items.pop("name", None)) or _comment_text(seq.ca.items.get(i))
            item.pop("name", None)
            out[unique] = item if len(item) else None
            if comment:
                out.yaml_add_eol_comment(comment, unique)
        _copy_comments(seq, out)
        parent[key] = out
        self.log(parent, key, f"`{key}`: list of {len(out)} named entr{'y' if len(out) == 1 else 'ies'} -> map keyed by name")
        return out

    def _to_list(self, parent: Any, key: str, mapping: Any) -> Any:
        out = self.Seq()
        for name, item in mapping.items():
            entry = self.Map()
            entry["name"] = name
            for k, v in (item.items() if isinstance(item, self.Map) else ()):
                entry[k] = v
            if isinstance(item, self.Map):
                entry.ca.items.update(item.ca.items)
            out.append(entry)
        _copy_comments(mapping, out)
        parent[key] = out
        self.log(parent, key, f"`{key}`: map of {len(out)} entr{'y' if len(out) == 1 else 'ies'} -> list of named entries")
        return out

    # ------------------------------------------------------------------ the version's shape

    def reshape(self) -> None:
        data = self.data
        if not isinstance(data, self.Map):
            raise MigrationError(f"{self.file}: the file is not a mapping")
        self._newer_features()
        key = next(k for k in ("ikanos", "naftiko") if k in data)
        want = versions.root_key(self.target)
        if key != want:
            self.rename(data, key, want, "the root key of " + versions.generation(self.target) + " files")
        if str(data[want]) != self.target:
            old = data[want]
            data[want] = type(old)(self.target) if isinstance(old, str) and type(old) is not str else self.target
            self.log(data, want, f"version {old} -> {self.target}")
        if isinstance(data.get("info"), self.Map):
            self.renamed(data["info"], versions.LABEL, "info")
        self._entries(data.get("binds"), self.bind)
        body = data.get("capability") if isinstance(data.get("capability"), self.Map) else data
        self._entries(body.get("consumes"), self.consumes)
        self._entries(body.get("exposes"), self.expose)
        self._entries(body.get("aggregates"), self.aggregate)
        if body is not data:
            self.named(body, "tools", self.action)  # the dialect's capability-level tools
        self._entries(body.get("binds") if body is not data else None, self.bind)

    def _entries(self, seq: Any, fn: Callable[[Any], None]) -> None:
        for entry in seq if isinstance(seq, self.Seq) else ():
            if isinstance(entry, self.Map):
                fn(entry)

    def _import(self, node: Any) -> bool:
        if not any(k in node for k in ("from", "location", "import")):
            return False
        self.renamed(node, versions.LOCATION, "import")
        source = node.get("from", node.get("location"))
        if isinstance(source, str):
            self.imports.append((source, self._version_of(source)))
        return True

    def _version_of(self, source: str) -> str:
        from naftiko_runtime.capability.imports import resolve_location

        try:
            import yaml as pyyaml

            doc = pyyaml.safe_load(resolve_location(source, Path(self.file).resolve().parent).read_text(encoding="utf-8"))
            return str(doc.get("ikanos", doc.get("naftiko")))
        except Exception:  # noqa: BLE001 - a note, not a check: the import itself was checked on load
            return "?"

    def bind(self, node: Any) -> None:
        if "from" in node or "import" in node:
            self._import(node)

    def consumes(self, node: Any) -> None:
        if self._import(node):
            return
        self.named(node, "inputParameters")
        self.named(node, "resources", self.consumed_resource)

    def consumed_resource(self, node: Any) -> None:
        self.renamed(node, versions.LABEL, "resource")
        self.named(node, "inputParameters")
        self.named(node, "operations", self.consumed_operation)

    def consumed_operation(self, node: Any) -> None:
        self.renamed(node, versions.LABEL, "operation")
        self.named(node, "inputParameters")
        self.named(node, "outputParameters")

    def expose(self, node: Any) -> None:
        if self._import(node):
            return
        kind = str(node.get("type") or "").lower()
        if kind == "rest":
            self.named(node, "resources", self.rest_resource)
        elif kind == "mcp":
            self.named(node, "tools", self.action)
            self.named(node, "resources", self.action)
            self.named(node, "prompts", self.prompt)
        elif kind == "skill":
            self.named(node, "skills", lambda skill: self.named(skill, "tools"))
            self.named(node, "tools", self.action)  # the dialect's skill exposure with tools of its own
            for group in node.get("groups") or ():  # the dialect's skill groups
                self.named(group, "skills", lambda skill: self.named(skill, "tools"))

    def rest_resource(self, node: Any) -> None:
        self.renamed(node, versions.LABEL, "resource")
        self.named(node, "inputParameters")
        self.named(node, "operations", self.action)

    def action(self, node: Any) -> None:
        """A REST operation, tool, MCP resource or flow: what they share."""
        self.renamed(node, versions.LABEL, "display name")
        self._identity_output(node)
        self.named(node, "inputParameters")
        if "steps" in node:
            self.named(node, "steps")
            self.named(node, "outputParameters")  # orchestrated outputs are keyed by name in Ikanos
            for mapping in node.get("mappings") or ():
                self.renamed(mapping, versions.TARGET_NAME, "mapping")

    def _identity_output(self, node: Any) -> None:
        """`outputParameters: [{type: object, mapping: $.}]` returns the upstream body as is, which no
        output parameter says officially: the identity is written by leaving the outputs out."""
        outputs = node.get("outputParameters")
        if not (isinstance(outputs, self.Seq) and len(outputs) == 1 and isinstance(outputs[0], self.Map)):
            return
        only = outputs[0]
        if set(only) <= {"type", "mapping", "name", "description"} and str(only.get("mapping", "")).strip() in ("$", "$.") \
                and str(only.get("type", "object")) in ("object", "array") and "call" in node:
            self.log(node, "outputParameters", "removed `outputParameters` that only pass the upstream body through (`mapping: $.`): no outputs means the same")
            del node["outputParameters"]

    def prompt(self, node: Any) -> None:
        self.renamed(node, versions.LABEL, "prompt")
        self.named(node, "arguments", lambda arg: self.renamed(arg, versions.LABEL, "prompt argument"))

    def aggregate(self, node: Any) -> None:
        if self._import(node):
            return
        self.renamed(node, versions.LABEL, "aggregate")
        self.renamed(node, versions.FUNCTIONS, "aggregate")
        self.named(node, "flows" if self.up else "functions", self.action)

    # ------------------------------------------------------------------ features the target lacks

    def _newer_features(self) -> None:
        found: list[tuple[str, str, int | None]] = []
        target = versions.order(self.target)

        def lacks(feature: str) -> bool:
            return versions.order(versions.FEATURES[feature].since) > target

        def visit(node: Any, path: tuple[str, ...]) -> None:
            if isinstance(node, self.Map):
                for key, value in node.items():
                    feature = _FEATURE_KEYS.get(str(key))
                    if feature and lacks(feature) and not (key == "tags" and path[-1:] == ("info",)) \
                            and not (key == "version" and path != ("info",)) and not (key == "binary" and path[:1] != ("capability",) and "exposes" not in path):
                        found.append((feature, str(key), _line(node, key)))
                    visit(value, path + (str(key),))
            elif isinstance(node, self.Seq):
                for item in node:
                    visit(item, path)

        visit(self.data, ())
        body = self.data.get("capability") if isinstance(self.data.get("capability"), self.Map) else None
        if lacks("import-exposes"):
            for part in ("exposes", "aggregates", "binds"):
                holder = self.data if part == "binds" else body
                for entry in (holder or {}).get(part) or ():
                    if isinstance(entry, self.Map) and ("from" in entry or "import" in entry):
                        found.append(("import-exposes", f"an import of {part}", _line(entry, "import")))
            if body is None and any(k in self.data for k in ("exposes", "aggregates")):
                found.append(("shared-parts", "root exposes/aggregates", None))
        if found:
            feature, key, line = found[0]
            what = versions.FEATURES[feature]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise MigrationError(f"{self.file}:{line or 1}: `{key}` is {what.what}, which exists from {what.since} on; "
                                 f"{self.target} cannot express it{more}: migrate to {what.since} or later, or remove it first")

    # ------------------------------------------------------------------ dialect notes -> edits

    def dialect(self, notes: list) -> None:
        """Write down what the normalizer understood, where one edit says it (docs/migrate.md)."""
        index = _Index(self.data, self.Map, self.Seq)
        for note in notes:
            fix = FIXES.get(note.rule)
            if fix is not None:
                fix(self, index, note)


def _made_name(item: Any, key: str, index: int) -> str:
    """A key for an entry that had no name (exposed REST resources and operations may lack one)."""
    words = [str(item.get("method") or "")] if key == "operations" else []
    words.append(re.sub(r"[{}]", "", str(item.get("path") or "")))
    name = re.sub(r"[^A-Za-z0-9]+", "-", " ".join(words)).strip("-").lower()
    return name or f"{key.rstrip('s')}-{index + 1}"


def _line(node: Any, key: Any) -> int | None:
    try:
        if isinstance(key, int):
            return node.lc.item(key)[0] + 1
        return node.lc.key(key)[0] + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        line = getattr(getattr(node, "lc", None), "line", None)
        return line + 1 if line is not None else None


def _comment_text(tokens: Any) -> str:
    """The text of the first comment in a ruamel comment slot (`# x` -> `x`), or ''."""
    for token in tokens or ():
        for one in token if isinstance(token, list) else [token]:
            value = getattr(one, "value", None)
            if value and value.strip().startswith("#"):
                return value.strip().lstrip("#").strip().split("\n", 1)[0]
    return ""


def _copy_comments(source: Any, target: Any) -> None:
    """Comments before and after a collection stay where they were."""
    if getattr(source.ca, "comment", None):
        target.ca.comment = source.ca.comment
    if getattr(source.ca, "end", None):
        target.ca.end = source.ca.end


class _Index:
    """Mappings and keys of the round-trip tree by 1-based (line, col), as diagnostics name them."""

    def __init__(self, data: Any, Map: type, Seq: type):
        self.maps: dict[tuple[int, int], Any] = {}
        self.keys: dict[tuple[int, int], tuple[Any, Any]] = {}
        self.values: dict[tuple[int, int], tuple[Any, Any]] = {}
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, Map):
                self.maps[(node.lc.line + 1, node.lc.col + 1)] = node
                for key, value in node.items():
                    k, v = node.lc.key(key), node.lc.value(key)
                    self.keys[(k[0] + 1, k[1] + 1)] = (node, key)
                    self.values[(v[0] + 1, v[1] + 1)] = (node, key)
                    stack.append(value)
            elif isinstance(node, Seq):
                stack.extend(node)

    def at(self, pos: Any) -> tuple[Any, Any] | tuple[None, None]:
        where = (pos.line, pos.col)
        return self.keys.get(where) or self.values.get(where) or (None, None)


def _fix_auth_key(e: Editor, index: _Index, note: Any) -> None:
    node, key = index.at(note.pos)
    if key == "auth":
        e.rename(node, "auth", "authentication", "dialect: the official key")


def _fix_bearer_value(e: Editor, index: _Index, note: Any) -> None:
    node, key = index.at(note.pos)
    if key == "value" and node.get("type") == "bearer":
        e.rename(node, "value", "token", "dialect: a bearer credential is its `token`")


def _added(key: str, value: str, after: str, why: str) -> Callable[[Editor, _Index, Any], None]:
    """A fix that writes a key the runtime assumed (in the mapping the note points at)."""
    def fix(e: Editor, index: _Index, note: Any) -> None:
        node = index.maps.get((note.pos.line, note.pos.col))
        if node is not None and key not in node:
            node.insert(list(node).index(after) + 1 if after in node else 0, key, value)
            e.log(node, key, f"added `{key}: {value}` ({why})")
    return fix


def _rewritten(key: str, change: Callable[[str], str], what: str) -> Callable[[Editor, _Index, Any], None]:
    """A fix that rewrites a text value the runtime read differently (quoting kept)."""
    def fix(e: Editor, index: _Index, note: Any) -> None:
        node, found = index.at(note.pos)
        value = node[found] if found == key else None
        if isinstance(value, str) and change(value) != value:
            node[found] = type(value)(change(value)) if type(value) is not str else change(value)
            e.log(node, found, f"`{key}`: {what}")
    return fix


FIXES: dict[str, Callable[[Editor, _Index, Any], None]] = {  # diagnostic rule -> the edit that says the same
    "dialect-auth-key": _fix_auth_key,
    "dialect-bearer-value": _fix_bearer_value,
    "dialect-consumes-type": _added("type", "http", "namespace", "dialect: a consumes entry without `type` is http"),
    "dialect-baseuri-slash": _rewritten("baseUri", lambda v: v.rstrip("/") or v, "dropped the trailing `/` (paths start with `/`)"),
    "dialect-default-method": _added("method", "GET", "name", "the default the runtime used"),
    "missing-method": _added("method", "GET", "name", "the default the runtime used"),
    "dialect-path-slash": _rewritten("path", lambda v: v if v.startswith("/") else "/" + v, "added the leading `/`"),
}
_FEATURE_KEYS = {
    "tags": "tags", "tunnel": "tunnel", "outputMediaType": "binary", "maxBinarySize": "binary",
    "responses": "binary", "responseBinary": "binary", "binary": "binary", "ttlMs": "cache-hints",
    "cacheScope": "cache-hints", "version": "info-version",
}


# ----------------------------------------------------------------------------- what a file serves

def surface(cap: Capability) -> dict[str, Any]:
    """What a client can observe of a normalized capability: upstream calls, routes, tools."""
    consumes = {ns: (c.base_uri, sorted((op.name, op.method, op.path, tuple((p.name, p.location) for p in op.params)) for op in c.operations.values()))
                for ns, c in cap.consumes.items()}
    rest = sorted((e.namespace, e.port, op.method, op.path, op.action.call, tuple(op.action.with_), _inputs(op.action.inputs))
                  for e in cap.rest for op in e.operations)
    tools = sorted((e.namespace, t.name, t.label, t.description, t.action.call, tuple(t.action.with_), _inputs(t.action.inputs))
                   for e in cap.mcp for t in e.tools)
    binds = sorted((b.namespace, tuple(sorted(b.keys.items()))) for b in cap.binds)
    return {"consumes": consumes, "rest": rest, "tools": tools, "binds": binds}


def _inputs(params: Any) -> tuple | None:
    return None if params is None else tuple((p.name, p.location, p.type, p.required) for p in params)


def _difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    for key in before:
        if before[key] != after[key]:
            return f"its {key} differ"
    return ""
