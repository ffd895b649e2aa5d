"""One settings table: every tunable limit, its CLI flag, its `x-naftiko` key, its default.

`naftiko run` builds its flags from `SETTINGS`, a consumes entry's `x-naftiko:` block overrides
the upstream ones from the same rows, and the README's table is generated from it (a test keeps
them equal), so a limit is defined, parsed, checked and documented in exactly one place.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, Mapping

Unit = Literal["seconds", "bytes", "count"]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_MULTIPLIERS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


@dataclass(frozen=True)
class Setting:
    """One row of the table."""

    name: str  # attribute of `Settings`
    flag: str  # `naftiko run` flag
    unit: Unit
    default: float | int | None
    help: str
    extension: str | None = None  # key under a consumes entry's `x-naftiko:` (per-upstream override)
    minimum: float = 0  # the lowest value allowed (inclusive)
    default_text: str = ""  # how the default reads in docs when it is not a plain value

    def parse(self, raw: Any) -> float | int:
        """A value from the command line or YAML; ValueError naming what is expected."""
        if isinstance(raw, bool):
            raise ValueError(self.expected)
        try:
            value = parse_size(raw) if self.unit == "bytes" else (int(raw) if self.unit == "count" else float(raw))
            if self.unit == "count" and isinstance(raw, float) and raw != int(raw):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{self.expected}, got {raw!r}") from None
        if not math.isfinite(value) or value < self.minimum:
            raise ValueError(f"{self.expected}, got {raw!r}")
        return value

    @property
    def expected(self) -> str:
        what = {"seconds": "a number of seconds", "bytes": "a size in bytes (e.g. 1048576, 512KiB, 10MiB)", "count": "a whole number"}[self.unit]
        low = f"{self.minimum:g}"
        return f"{what} >= {low}" if self.unit != "seconds" else f"{what} > 0"


def parse_size(raw: Any) -> int:
    """`1048576`, `512KiB`, `10MiB`, `1GB`: a byte count (ValueError otherwise)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _SIZE.match(str(raw))
    if not m:
        raise ValueError(f"not a size: {raw!r}")
    number = float(m.group(1)) * _MULTIPLIERS[(m.group(2) or "b").lower()]
    if number != int(number):
        raise ValueError(f"not a whole number of bytes: {raw!r}")
    return int(number)


def size_text(n: int) -> str:
    """`10 MiB` for round sizes, else bytes: limits are named in errors the way they were set."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


SETTINGS: tuple[Setting, ...] = (
    Setting("timeout", "--timeout", "seconds", 30.0, "upstream call budget, retries included",
            extension="timeout", minimum=0.001),
    Setting("connect_timeout", "--connect-timeout", "seconds", 10.0,
            "upstream connect timeout, waiting for a free connection included (never above --timeout)",
            extension="connectTimeout", minimum=0.001),
    Setting("read_timeout", "--read-timeout", "seconds", None, "longest upstream silence while reading an answer",
            extension="readTimeout", minimum=0.001, default_text="--timeout"),
    Setting("retries", "--retries", "count", 2,
            "retries of idempotent upstream calls on connection faults, 429, 502, 503, 504 (never POST/PATCH)",
            extension="retries"),
    Setting("max_connections", "--max-connections", "count", 100,
            "concurrent requests per upstream; a caller waiting past the connect timeout gets 503",
            extension="maxConnections", minimum=1),
    Setting("max_response_bytes", "--max-response", "bytes", 10 << 20, "largest upstream answer read (above: 502)",
            extension="maxResponseBytes", minimum=1),
    Setting("max_body_bytes", "--max-body", "bytes", 1 << 20, "largest request body accepted (above: 413)", minimum=1),
    Setting("grace_period", "--grace-period", "seconds", 30.0,
            "on SIGTERM/SIGINT, how long in-flight requests may take to finish", minimum=0.001),
    Setting("header_timeout", "--header-timeout", "seconds", 10.0,
            "a client sends its request line and headers within this time of connecting (or of the request's first byte)",
            minimum=0.001),
    Setting("body_idle_timeout", "--body-idle-timeout", "seconds", 10.0,
            "longest client silence while sending a request body (above: 408, connection closed)", minimum=0.001),
    Setting("body_timeout", "--body-timeout", "seconds", 60.0,
            "a client sends the whole request body within this time (above: 408, connection closed)", minimum=0.001),
    Setting("max_head_bytes", "--max-head", "bytes", 64 << 10,
            "largest request line plus headers, counted before parsing (above: 431)", minimum=1024),
    Setting("max_clients", "--max-clients", "count", None,
            "client connections per listener; past it the oldest idle one is closed, or the new one gets 503",
            minimum=1, default_text="from the open-file limit"),
    Setting("mock_max_items", "--mock-max-items", "count", 1000,
            "`--mock`: items kept per collection (the oldest is dropped past it)", minimum=1),
    Setting("mock_list_limit", "--mock-list-limit", "count", 100,
            "`--mock`: items in a list answer, newest first", minimum=1),
)
BY_NAME = {s.name: s for s in SETTINGS}
BY_EXTENSION = {s.extension: s for s in SETTINGS if s.extension}


@dataclass(frozen=True)
class Settings:
    """The values in force: defaults, then `naftiko run` flags, then (per upstream) `x-naftiko`."""

    timeout: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float | None = None
    retries: int = 2
    max_connections: int = 100
    max_response_bytes: int = 10 << 20
    max_body_bytes: int = 1 << 20
    grace_period: float = 30.0
    header_timeout: float = 10.0
    body_idle_timeout: float = 10.0
    body_timeout: float = 60.0
    max_head_bytes: int = 64 << 10
    max_clients: int | None = None
    mock_max_items: int = 1000
    mock_list_limit: int = 100

    @property
    def connect(self) -> float:
        """The connect timeout in force: never longer than the whole budget."""
        return min(self.connect_timeout, self.timeout)

    @property
    def read(self) -> float:
        """The read (silence) timeout in force: `--read-timeout`, else the whole budget."""
        return min(self.read_timeout or self.timeout, self.timeout)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Settings":
        given = {s.name: getattr(args, s.name) for s in SETTINGS if getattr(args, s.name, None) is not None}
        return replace(cls(), **given)

    def with_extension(self, ext: Mapping[str, Any]) -> tuple["Settings", list[str]]:
        """These settings overridden by an `x-naftiko:` block; also what is wrong with it.

        A misspelled key is a problem rather than a silently ignored limit.
        """
        problems: list[str] = []
        changes: dict[str, Any] = {}
        for key, raw in ext.items():
            setting = BY_EXTENSION.get(str(key))
            if setting is None:
                problems.append(f"unknown key '{key}'; known: {', '.join(BY_EXTENSION)}")
                continue
            try:
                changes[setting.name] = setting.parse(raw)
            except ValueError as exc:
                problems.append(f"{key} must be {exc}")
        return replace(self, **changes), problems


assert {f.name for f in fields(Settings)} == set(BY_NAME), "every row of SETTINGS is a field of Settings"
assert all(getattr(Settings(), s.name) == s.default for s in SETTINGS), "Settings defaults come from SETTINGS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per row; values are checked by the parser (exit 2 with a usage message)."""
    for setting in SETTINGS:
        parser.add_argument(setting.flag, dest=setting.name, type=_argument_type(setting), default=None,
                            metavar=_metavar(setting),
                            help=f"{setting.help} (default {_default_text(setting)})")


def _metavar(setting: Setting) -> str:
    return "N" if setting.unit == "count" else setting.unit.upper()


def _argument_type(setting: Setting):
    def parse(text: str) -> float | int:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = setting.unit  # argparse names the type in its messages
    return parse


def _default_text(setting: Setting) -> str:
    if setting.default_text:
        return setting.default_text
    if setting.unit == "bytes":
        return size_text(int(setting.default))  # type: ignore[arg-type]
    if setting.unit == "seconds":
        return f"{setting.default:g}s"
    return str(setting.default)


def markdown_table() -> str:
    """The README / docs table of settings, generated from `SETTINGS`."""
    rows = ["| flag | `x-naftiko` key | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.flag} {_metavar(s)}` | "
                    f"{'`' + s.extension + '`' if s.extension else '-'} | {_default_text(s)} | {s.help} |")
    return "\n".join(rows)
