"""Imports: a named entry (consumes, exposes, aggregate or bind) taken from another file.

```yaml
consumes:
  - import: registry                          # the entry's namespace in the other file
    from: ./shared/registry-consumes.yaml      # `location:` in Naftiko (alpha1/alpha2) files
    as: reg                                    # optional local name
```

Paths resolve relative to the importing file. The imported file is normalized with its own
version's rules (a Naftiko file may import an Ikanos one and the reverse, with a note), may itself
import (nested imports; the reference engine refuses them, this runtime reads them), and is read
once per load however often it is imported. Every failure (missing file, cycle, unknown name) is an
error at the import entry, so the author sees which line to fix.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from naftiko_runtime.capability import versions
from naftiko_runtime.capability.diagnostics import Pos
from naftiko_runtime.capability.model import Bind, Capability
from naftiko_runtime.capability.reader import Reader
from naftiko_runtime.capability.yamlsource import YMap


T = TypeVar("T")


class ImportProblem(Exception):
    """Why a file cannot be imported (no such file, a cycle, errors of its own)."""


IMPORT_KEYS = ("from", "location", "import")


def is_import(node: YMap, part: str) -> bool:
    """Whether an entry is an import. A bind's `location` is where its values live, not an import."""
    keys = ("from", "import") if part == "binds" else IMPORT_KEYS
    return any(k in node for k in keys)


class ImportReader(Reader):
    """Resolves import entries to copies of the entries they name."""

    def imported(self, node: YMap, part: str) -> tuple[Capability, str, str, Pos] | None:
        """(the imported file's model, the name wanted, the local name, where the name is written)."""
        where = f"an import of {part}"
        if "from" in node and "location" in node:
            self.d.error(node.key_at("location"), f"{where} has both `from` and `location`; keep one (`from` in Ikanos files, `location` before alpha3)", "import-both-keys")
        key = "from" if "from" in node else "location"
        canonical = versions.LOCATION.canonical(self.version)
        if key != canonical and key in node and part != "binds":
            self.d.note(node.key_at(key), f"`{key}` in {where}: {self.version} calls it `{canonical}`; read as `{canonical}`", "version-renamed-key")
        if part != "consumes" and not versions.is_ikanos(self.version):
            self.d.note(node.pos, f"imports of {part} are an Ikanos ({versions.FIRST_IKANOS}+) feature; read as in Ikanos", "version-feature")
        source = self._str(node, key, where)
        wanted = self._str(node, "import", where, required=True)
        if not source:
            self.d.error(node.pos, f"{where} is missing `{canonical}` (the file that holds '{wanted or 'it'}', relative to this file)", "required-field")
        if not source or not wanted or self.load_import is None:
            return None
        target = resolve_location(source, self.base_dir)
        try:
            cap = self.load_import(target)
        except ImportProblem as exc:
            self.d.error(node.at(key), f"cannot import {part} '{wanted}' from '{source}': {exc}", "import-not-found" if "no such file" in str(exc) else "import-cycle" if "cycle" in str(exc) else "import-failed")
            return None
        if versions.is_ikanos(cap.version) != versions.is_ikanos(self.version):
            self.d.note(node.at(key), f"'{source}' is a {versions.generation(cap.version)} {cap.version} file imported into a {versions.generation(self.version)} {self.version} one; each is read by its own version's rules", "import-other-version")
        return cap, wanted, self._str(node, "as", where) or wanted, node.at("import")

    def unknown(self, source: YMap, part: str, wanted: str, pos: Pos, known: list[str]) -> None:
        key = "from" if "from" in source else "location"
        self.d.error(pos, f"'{source.get(key)}' defines no {part} '{wanted}'; it has: {', '.join(known) or 'none'}", "import-not-found")

    def renamed_copy(self, node: YMap, part: str, what: str, entries: Callable[[Capability], dict[str, T]],
                     taken: Callable[[str], bool], members: Callable[[T], Iterable[Any]]) -> T | None:
        """The entry an import names, deep-copied under its local name (`as`), its `members`
        (operations, functions) renamed with it; None after reporting an unknown or taken name."""
        found = self.imported(node, part)
        if found is None:
            return None
        source, wanted, alias, pos = found
        known = entries(source)
        entry = known.get(wanted)
        if entry is None:
            self.unknown(node, what, wanted, pos, list(known))
            return None
        if taken(alias):
            self.d.error(node.at("as" if "as" in node else "import"), f"{what} '{alias}' is declared twice", "duplicate-namespace")
            return None
        entry = copy.deepcopy(entry)
        entry.namespace = alias  # type: ignore[attr-defined]
        for member in members(entry):
            member.namespace = alias
        return entry

    def import_binds(self, node: YMap) -> list[Bind]:
        found = self.imported(node, "binds")
        if found is None:
            return []
        cap, wanted, alias, pos = found
        binds = [b for b in cap.binds if b.namespace == wanted]
        if not binds:
            self.unknown(node, "bind namespace", wanted, pos, sorted({b.namespace for b in cap.binds}))
            return []
        out = []
        for bind in binds:
            bind = copy.copy(bind)
            bind.namespace = alias
            out.append(bind)
        return out

    def import_expose(self, cap: Capability, node: YMap) -> None:
        found = self.imported(node, "exposes")
        if found is None:
            return
        source, wanted, alias, pos = found
        for kind in ("rest", "mcp", "skills"):
            for exposure in getattr(source, kind):
                if exposure.namespace == wanted:
                    exposure = copy.deepcopy(exposure)
                    exposure.namespace = alias
                    getattr(cap, kind).append(exposure)
                    return
        if source.control is not None and source.control.namespace == wanted and cap.control is None:
            cap.control = copy.deepcopy(source.control)
            return
        self.unknown(node, "exposure", wanted, pos, source.exposure_namespaces())


def resolve_location(location: str, base_dir: Path) -> Path:
    """`./x.yml`, `x.yml`, `file:///./x.yml`, `file://./x.yml` resolve against the importing file's directory."""
    loc = location
    for prefix in ("file://", "file:"):
        if loc.startswith(prefix):
            loc = loc[len(prefix):]
            break
    if loc.startswith("/./") or loc.startswith("/../"):
        loc = loc[1:]
    path = Path(loc)
    return path if path.is_absolute() else (base_dir / path).resolve()


