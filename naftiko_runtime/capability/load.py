"""Load a capability file: parse with positions, resolve imports, normalize to the model."""

from __future__ import annotations

from pathlib import Path

from naftiko_runtime.capability.diagnostics import Diagnostics, Pos
from naftiko_runtime.capability.imports import ImportProblem
from naftiko_runtime.capability.model import Capability
from naftiko_runtime.capability.normalize import Normalizer
from naftiko_runtime.capability.yamlsource import load_yaml_file, parse_text


def display_path(path: Path) -> str:
    """A path for messages: as given when relative; an absolute one relative to the working
    directory when it lies below it (imports resolve to absolute paths), else absolute."""
    if not path.is_absolute():
        return str(path)
    cwd = Path.cwd().resolve()
    if cwd == Path(cwd.anchor):  # relative to `/` would drop the leading slash
        return str(path)
    try:
        return str(path.resolve().relative_to(cwd))
    except ValueError:
        return str(path)


def load_capability(path: str | Path, diagnostics: Diagnostics | None = None) -> Capability | None:
    """Parse and normalize `path`. Problems go to `diagnostics`; None when nothing usable remains."""
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    return FileLoader(diagnostics).load(Path(path))


def load_text(text: str, file: str = "<text>", base_dir: Path | None = None, diagnostics: Diagnostics | None = None) -> Capability | None:
    """Normalize YAML given as text (tests, stdin)."""
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    loader = FileLoader(diagnostics)
    root = parse_text(text, file, diagnostics)
    if root is None:
        return None
    return Normalizer(file, base_dir or Path.cwd(), diagnostics, loader.load_import).document(root)


class FileLoader:
    """Loads capability files and the files they import, each once per load; refuses cycles.

    Public for `naftiko validate`, which reuses the parsed tree for its schema checks."""

    def __init__(self, diagnostics: Diagnostics):
        self.d = diagnostics
        self.stack: list[Path] = []
        self.loaded: dict[Path, Capability | None] = {}
        self.files: list[Path] = []  # every file read or looked for (a reload watches them all)

    def load(self, path: Path) -> Capability | None:
        file = display_path(path)
        self.files.append(path.absolute())
        if not path.is_file():
            self.d.error(Pos(file), "no such file" if not path.exists() else "not a file", "file-not-found")
            return None
        root = load_yaml_file(path, self.d, file)
        if root is None:
            return None
        self.stack.append(path.resolve())
        try:
            return Normalizer(file, path.resolve().parent, self.d, self.load_import).document(root)
        finally:
            self.stack.pop()

    def load_import(self, path: Path) -> Capability:
        """The imported file's model; raises ImportProblem saying why there is none."""
        key = path.resolve()
        if key in self.stack:
            chain = " -> ".join(display_path(p) for p in self.stack[self.stack.index(key):] + [key])
            raise ImportProblem(f"import cycle ({chain}); remove one of these imports")
        if key not in self.loaded:
            if not path.exists():
                self.files.append(path.absolute())
                raise ImportProblem(f"no such file ({display_path(path)})")
            errors = len(self.d.errors)
            cap = self.load(path)
            self.loaded[key] = cap if cap is not None and len(self.d.errors) == errors else None
        cap = self.loaded[key]
        if cap is None:
            raise ImportProblem(f"{display_path(path)} has errors (listed with its name)")
        return cap
