"""Write a generated capability as YAML a person will read and edit, in any format version.

Generators build the document in the 1.0.0-alpha2 list form (named objects in lists, `label`,
the shape of the runtime's own seed); `for_version` reshapes it for the version asked: from
1.0.0-alpha3 on (Ikanos) the root key is `ikanos`, named collections are maps keyed by name and
`label` is `display`; `info.version` exists from beta4 on (capability/versions.py has the table).
Generated documents use only what every version has, so the reshaping is complete for them; it is
not a general migration of hand-written files (that is `naftiko migrate`'s job).

`dump` prints it: keys in the order the format documents them, multi-line descriptions as `|`
blocks, a comment header saying where the file came from.
"""

from __future__ import annotations

from typing import Any

import yaml

from naftiko_runtime.capability.versions import LABEL, LATEST, VERSIONS, is_ikanos, order, root_key

BASE_VERSION = "1.0.0-alpha2"
INFO_VERSION_SINCE = "1.0.0-beta4"


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.strip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def output_versions() -> tuple[str, ...]:
    """The versions a generated file can be written in, oldest first; the last is the default."""
    return tuple(v for v in VERSIONS if order(v) >= order(BASE_VERSION))


def dump(document: dict[str, Any], header: list[str] = (), version: str = LATEST) -> str:
    """The document as YAML text in `version`, `header` as comment lines."""
    body = yaml.dump(for_version(document, version), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=110, default_flow_style=False)
    return "".join(f"# {line}\n" if line else "#\n" for line in header) + body


def for_version(document: dict[str, Any], version: str) -> dict[str, Any]:
    """The alpha2-form document reshaped for `version` (a new document; the input is not changed)."""
    rest = {k: v for k, v in document.items() if k != "naftiko"}
    info = dict(rest.get("info") or {})
    if order(version) < order(INFO_VERSION_SINCE):
        info.pop("version", None)
    if is_ikanos(version) and "label" in info:
        info = {(LABEL.canonical(version) if k == "label" else k): v for k, v in info.items()}
    out: dict[str, Any] = {root_key(version): version}
    for key, value in rest.items():
        out[key] = info if key == "info" else value
    if not is_ikanos(version):
        return out
    capability = dict(out.get("capability") or {})
    capability["consumes"] = [_keyed(c, {"resources": {"operations": {"inputParameters": {}}}}) for c in capability.get("consumes", [])]
    capability["exposes"] = [_keyed(e, {"resources": {"operations": {}}, "tools": {}}) for e in capability.get("exposes", [])]
    out["capability"] = capability
    return out


def _keyed(node: dict[str, Any], nested: dict[str, dict]) -> dict[str, Any]:
    """Lists of named entries under the keys of `nested` as maps keyed by name, recursively."""
    out = dict(node)
    for key, inner in nested.items():
        if isinstance(out.get(key), list):
            out[key] = {item["name"]: _keyed({k: v for k, v in item.items() if k != "name"}, inner) for item in out[key]}
    return out
