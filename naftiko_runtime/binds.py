"""Resolve `binds` to values: environment variables, or YAML/JSON/.env files.

Bind values are secrets and configuration. They are read once at startup; every missing one is
reported together (name and where it was expected) so a user fixes them in one go. The values are
also registered for redaction, so no log line or error body can carry one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from naftiko_runtime.errors import BindError, Missing
from naftiko_runtime.capability.model import Bind, Capability
from naftiko_runtime.capability.normalize import resolve_location
from naftiko_runtime.templates import MISSING, Ref


@dataclass
class BoundValues:
    """Resolved bind values, looked up as `{{VAR}}` or `{{namespace.VAR}}`."""

    flat: dict[str, str] = field(default_factory=dict)
    by_namespace: dict[str, dict[str, str]] = field(default_factory=dict)

    def lookup(self, ref: Ref) -> Any:
        path = ref.path
        if len(path) == 2 and path[0] in self.by_namespace:
            return self.by_namespace[path[0]].get(path[1], MISSING)
        if len(path) == 1:
            return self.flat.get(path[0], MISSING)
        return MISSING

    def knows(self, ref: Ref) -> bool:
        """Whether `ref` names a bind (declared), whatever its value."""
        return self.lookup(ref) is not MISSING

    @property
    def secrets(self) -> list[str]:
        return [v for v in self.flat.values() if v]


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as python-dotenv reads them (quotes, `export`, comments, escapes)."""
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None}


def load_env_file(path: Path, environ: dict[str, str] | None = None) -> None:
    """`--env-file`: set each variable unless the environment already has it (dotenv convention)."""
    target = os.environ if environ is None else environ
    for key, value in read_dotenv(path).items():
        target.setdefault(key, value)


def _scheme(location: str) -> str:
    if "://" in location:
        return location.split("://", 1)[0]
    return location.split(":", 1)[0] if location.startswith(("vault:", "k8s")) else "file"


def bind_files(cap: Capability, base_dir: Path) -> list[Path]:
    """The files `cap`'s binds read (a reload watches them)."""
    return [resolve_location(b.location, base_dir) for b in cap.binds if b.location and _scheme(b.location) == "file"]


def _read_source(bind: Bind, base_dir: Path) -> tuple[Mapping[str, Any] | None, str]:
    """The key -> value source of one bind and a description of where it is, for messages."""
    if not bind.location:
        return os.environ, "environment variable"
    location = bind.location
    scheme = _scheme(location)
    if scheme != "file":
        raise BindError([Missing(bind.namespace, f"bind location scheme '{scheme}://' is not supported; use environment variables (no location) or a file:// path", bind.pos)])
    path = resolve_location(location, bind.base_dir or base_dir)
    if not path.is_file():
        return None, f"file {path}"
    try:
        if path.name.startswith(".env") or path.suffix == ".env":
            data: Any = read_dotenv(path)
        elif path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise BindError([Missing(bind.namespace, f"cannot read bind file {path}: {type(exc).__name__}", bind.pos)]) from None
    if not isinstance(data, dict):
        raise BindError([Missing(bind.namespace, f"bind file {path} must hold a mapping of keys to values", bind.pos)])
    return data, f"key in {path}"


def resolve_binds(cap: Capability, base_dir: Path, allow_missing: bool = False) -> BoundValues:
    """Read every bind. Raises BindError naming all missing values unless `allow_missing` (mock mode)."""
    values = BoundValues()
    missing: list[Missing] = []
    for bind in cap.binds:
        try:
            source, where = _read_source(bind, base_dir)
        except BindError as exc:
            missing.extend(exc.missing)
            continue
        space = values.by_namespace.setdefault(bind.namespace, {})
        for var, provider in bind.keys.items():
            raw = source.get(provider) if source is not None else None
            if raw is None or (isinstance(raw, str) and raw == "" and not bind.location):
                missing.append(Missing(var, f"{where} '{provider}' is not set" if source is not None else f"{where} does not exist", bind.key_pos.get(var, bind.pos)))
                if not allow_missing:
                    continue
                raw = ""
            text = raw if isinstance(raw, str) else json.dumps(raw) if isinstance(raw, (dict, list)) else str(raw)
            values.flat[var] = text
            space[var] = text
    if missing and not allow_missing:
        raise BindError(missing)
    return values
