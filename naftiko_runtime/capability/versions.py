"""Format versions: which exist, how a file says which one it is, and what each one changed.

The format was called Naftiko up to 1.0.0-alpha2 (root key `naftiko:`) and Ikanos from 1.0.0-alpha3
on (root key `ikanos:`). Every version from alpha1 to beta4 normalizes to the one canonical model,
so nothing at run time depends on the version: only which spelling a file is expected to use (the
normalizer notes the other one), which official schema `validate --strict` checks it against, and
what `naftiko migrate` rewrites. docs/versions.md says the same for users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from naftiko_runtime.capability.diagnostics import Diagnostics, Pos

VERSIONS = (
    "1.0.0-alpha1", "1.0.0-alpha2", "1.0.0-alpha3", "1.0.0-alpha4",
    "1.0.0-beta1", "1.0.0-beta2", "1.0.0-beta3", "1.0.0-beta4",
)
LATEST = VERSIONS[-1]
FIRST_IKANOS = "1.0.0-alpha3"
RANGE = f"{VERSIONS[0]} .. {LATEST}"

# Versions whose official schema differs only in the version string share the schema of the first.
SCHEMA_OF = {
    "1.0.0-alpha1": "1.0.0-alpha1", "1.0.0-alpha2": "1.0.0-alpha2",
    "1.0.0-alpha3": "1.0.0-alpha3", "1.0.0-alpha4": "1.0.0-alpha3",
    "1.0.0-beta1": "1.0.0-beta1", "1.0.0-beta2": "1.0.0-beta1", "1.0.0-beta3": "1.0.0-beta1",
    "1.0.0-beta4": "1.0.0-beta4",
}
SCHEMA_VERSIONS = tuple(dict.fromkeys(SCHEMA_OF.values()))


def order(version: str) -> int:
    return VERSIONS.index(version)


def is_ikanos(version: str) -> bool:
    """Ikanos versions (alpha3 on): `ikanos:` root, keyed maps, `display`, `flows`, `target`, `from`."""
    return order(version) >= order(FIRST_IKANOS)


def root_key(version: str) -> str:
    return "ikanos" if is_ikanos(version) else "naftiko"


def generation(version: str) -> str:
    return "Ikanos" if is_ikanos(version) else "Naftiko"


@dataclass(frozen=True)
class Rename:
    """A key renamed from one version on: `old` before `since`, `new` from `since`."""

    old: str
    new: str
    since: str = FIRST_IKANOS

    def canonical(self, version: str) -> str:
        return self.new if order(version) >= order(self.since) else self.old


LABEL = Rename("label", "display")
FUNCTIONS = Rename("functions", "flows")
TARGET_NAME = Rename("targetName", "target")
LOCATION = Rename("location", "from")


@dataclass(frozen=True)
class Feature:
    """Something a file can use that exists only from `since` on (migrating below it is an error)."""

    name: str
    since: str
    what: str


FEATURES = {
    f.name: f for f in (
        Feature("tags", FIRST_IKANOS, "`tags` on operations, resources, tools and flows"),
        Feature("tunnel", FIRST_IKANOS, "`tunnel` (OpenZiti) on consumes"),
        Feature("import-exposes", FIRST_IKANOS, "imports of exposes, aggregates and binds"),
        Feature("shared-parts", FIRST_IKANOS, "a file holding only shared exposes, aggregates or binds"),
        Feature("binary", "1.0.0-beta1", "binary content (`outputRawFormat: binary`, `outputMediaType`, `maxBinarySize`, `responses`, `responseBinary`, resource `binary`)"),
        Feature("cache-hints", "1.0.0-beta4", "MCP cache hints (`ttlMs`, `cacheScope`)"),
        Feature("info-version", "1.0.0-beta4", "`info.version`"),
    )
}


def detect(root: dict[str, Any], d: Diagnostics, pos: Pos) -> tuple[str, str] | None:
    """The file's version and the root key that declares it; None after reporting why not.

    `naftiko:` with an Ikanos version (or the reverse) is read, with a note: the version string
    says what the author meant, the key is a spelling.
    """
    keys = [k for k in ("ikanos", "naftiko") if k in root]
    if not keys:
        d.error(pos, f"missing the format version at the top of the file: `ikanos: \"{LATEST}\"` (or `naftiko: \"1.0.0-alpha2\"` for older files)", "version")
        return None
    key = keys[0]
    at = root.at(key) if hasattr(root, "at") else pos
    if len(keys) == 2:
        d.warning(root.key_at("naftiko") if hasattr(root, "key_at") else pos,
                  f"both `ikanos: {root['ikanos']}` and `naftiko: {root['naftiko']}`; `ikanos` is used, remove `naftiko`", "version")
    version = str(root[key]).strip()
    if version not in VERSIONS:
        d.error(at, f"format version '{version}' is not supported; this runtime reads {RANGE} (every alpha and beta)", "version")
        return None
    if key != root_key(version):
        d.note(root.key_at(key) if hasattr(root, "key_at") else pos,
               f"`{key}: {version}`: {generation(version)} {version} files start with `{root_key(version)}:`; read as `{root_key(version)}: {version}`",
               "version-root-key")
    return version, key
