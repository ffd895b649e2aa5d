"""Normalize a parsed capability (any accepted dialect) into the canonical model.

Real capability files mix the official alpha1..beta4 forms (capability/versions.py) with the generator dialect (see
docs/dialect.md). Each rewrite here leaves a `note` (or a `warning` when meaning was guessed),
so `naftiko validate` can show authors what the runtime understood; things that cannot work are
`error`s. Nothing is silently dropped: an ignored key is a warning.
"""

from __future__ import annotations

import difflib
from typing import Any

from naftiko_runtime import credentials
from naftiko_runtime.capability.consumes import ConsumesReader
from naftiko_runtime.capability.imports import is_import, resolve_location
from naftiko_runtime.capability.diagnostics import Pos
from naftiko_runtime.capability.exposes import ExposesReader
from naftiko_runtime.capability.keys import check_keys
from naftiko_runtime.capability.model import (
    Bind,
    Capability,
)
from naftiko_runtime.capability import versions
from naftiko_runtime.capability.reader import Loader, kind
from naftiko_runtime.capability.versions import LATEST
from naftiko_runtime.capability.yamlsource import YList, YMap
from naftiko_runtime.templates import refs_in

__all__ = ["Normalizer", "resolve_location", "Loader"]

SHARED_PARTS = ("consumes", "exposes", "aggregates", "binds")


class Normalizer(ConsumesReader, ExposesReader):
    """Walks one document; `load_import` reads an imported consumes file (same dialect rules)."""

    # ---------------------------------------------------------------- document

    def document(self, root: Any) -> Capability | None:
        if not isinstance(root, YMap):
            self.d.error(self._pos(root), f"a capability file must be a mapping starting with `ikanos: \"{LATEST}\"`, found {kind(root)}", "structure")
            return None
        self.typos = check_keys(root, self.d)
        detected = versions.detect(root, self.d, root.pos)
        if detected is None:
            return None
        self.version, _ = detected
        cap = Capability(file=self.file, version=self.version, pos=root.pos, diagnostics=self.d, typos=self.typos)
        info = root.get("info")
        if isinstance(info, YMap):
            cap.label = self.renamed(info, versions.LABEL, "info")
            cap.description = self._str(info, "description", "info")
            cap.info_version = self._str(info, "version", "info")
            cap.tags = self.tags(info, "info")
        cap.binds = self.binds(root, "binds")
        self.bind_vars = cap.bind_names
        body = root.get("capability")
        if body is None:
            shared = [key for key in SHARED_PARTS if key in root]
            if shared:  # a file of shared parts, imported by others
                cap.shared = True
                self.shared_parts(cap, root, shared)
                return cap
            self.d.error(root.pos, "missing `capability:` (a capability needs `capability.exposes` and `capability.consumes`; a file of shared parts has a root `consumes`, `exposes`, `aggregates` or `binds`)", "structure")
            return cap
        body = self._map(body, "`capability`", root.at("capability"))
        if body is None:
            return cap
        if "binds" in body:
            self.d.note(body.at("binds"), "`capability.binds` is merged with the root `binds` (the reference engine ignores it)", "dialect-capability-binds")
            cap.binds += self.binds(body, "binds")
            self.bind_vars = cap.bind_names
        for key in ("consumes", "exposes", "aggregates"):
            if key in root:
                self.d.warning(root.key_at(key), f"root `{key}` in a capability file is not used; move it under `capability.{key}`", "root-part-ignored")
        for key in ("tools", "workflow", "imports"):
            if key in body:
                self.d.warning(body.key_at(key), f"`capability.{key}` is not supported by this runtime and is ignored", "unsupported-feature")
        for item, pos in self._list(body, "consumes", "capability"):
            self.consumes_entry(cap, item, pos)
        self.implicit_binds(cap)
        if "aggregates" in body:
            self.aggregates(cap, body)
        for item, pos in self._list(body, "exposes", "capability"):
            self.expose(cap, item, pos)
        self.link_refs(cap)
        if not body.get("exposes"):
            self.d.warning(body.pos, f"the capability exposes nothing (`capability.exposes` is empty), so `run` has nothing to serve{self.typos.cause(body.pos, ['exposes'])}", "no-exposes")
        return cap

    def shared_parts(self, cap: Capability, root: YMap, keys: list[str]) -> None:
        """A file holding only parts other files import: root consumes, aggregates, exposes (and binds)."""
        if any(key != "consumes" for key in keys) and not versions.is_ikanos(self.version):
            self.d.note(root.pos, f"a file of shared {', '.join(keys)} is an Ikanos ({versions.FIRST_IKANOS}+) form; read as one", "version-feature")
        for item, pos in self._list(root, "consumes", "root"):
            self.consumes_entry(cap, item, pos)
        if "aggregates" in root:
            self.aggregates(cap, root)
        for item, pos in self._list(root, "exposes", "root"):
            self.expose(cap, item, pos)

    # ---------------------------------------------------------------- binds

    def binds(self, parent: YMap, key: str) -> list[Bind]:
        out = []
        for item, pos in self._list(parent, key, "binds"):
            node = self._map(item, "a bind", pos)
            if node is None:
                continue
            if is_import(node, "binds"):
                out += self.import_binds(node)
                continue
            keys_node = node.get("keys")
            keys: dict[str, str] = {}
            key_pos: dict[str, Pos] = {}
            if isinstance(keys_node, YMap):
                for var, provider in keys_node.items():
                    keys[str(var)] = str(provider if provider is not None else var)
                    key_pos[str(var)] = keys_node.key_at(var)
            elif isinstance(keys_node, YList):  # a list of names: each reads itself
                for i, var in enumerate(keys_node):
                    keys[str(var)] = str(var)
                    key_pos[str(var)] = keys_node.at(i)
                self.d.note(node.at("keys"), "bind `keys` written as a list; each name reads the variable of the same name", "dialect-bind-keys-list")
            else:
                self.d.error(node.pos, "a bind needs `keys:` mapping each variable name to where its value is read", "required-field")
            location = node.get("location")
            out.append(Bind(
                namespace=self._str(node, "namespace", "a bind") or "binds",
                keys=keys, pos=node.pos, location=str(location) if location else None, key_pos=key_pos,
                base_dir=self.base_dir,
            ))
        return out

    def implicit_binds(self, cap: Capability) -> None:
        """Credentials and base URIs naming a variable no bind declares read the environment.

        Authors write `token: '{{API_TOKEN}}'` and forget to declare API_TOKEN under `binds`. What
        they mean is a secret from the environment, so it becomes one, with a warning; `run` then
        stops if the variable is unset, as for any bind. Only credentials and base URIs get this:
        they never take caller input, so no other template can reach the environment.
        """
        declared = {(b.namespace, var) for b in cap.binds for var in b.keys} | {(None, var) for b in cap.binds for var in b.keys}
        implicit: dict[str, Bind] = {}
        for consumes in cap.consumes.values():
            texts: list[tuple[str | None, Pos]] = [] if consumes.server_variables else [(consumes.base_uri, consumes.pos)]
            path_keys = {e.key for e in consumes.auth.entries if e.placement == "path"} if consumes.auth else set()
            if consumes.auth is not None:
                a = consumes.auth
                texts += [(t, a.pos) for t in credentials.texts(a)]
            for text, pos in texts:
                for ref in refs_in(text):
                    ns, var = (ref.path[0], ref.path[1]) if len(ref.path) == 2 else (None, ref.path[0])
                    if len(ref.path) > 2 or (ns, var) in declared or (ns is None and var in path_keys):
                        continue
                    declared.add((ns, var))
                    bind = implicit.setdefault(ns or "env", Bind(namespace=ns or "env", keys={}, pos=pos))
                    bind.keys[var] = var
                    bind.key_pos[var] = pos
                    close = difflib.get_close_matches(var, sorted(cap.bind_names - {var}), n=1, cutoff=0.8)
                    if close:  # a typo of a declared name, not a new secret
                        self.d.error(pos, f"`{{{{{ref.text}}}}}` names no bind variable; did you mean {close[0]}?", "unbound-variable")
                    else:
                        self.d.warning(pos, f"`{{{{{ref.text}}}}}` is not declared in `binds`; it is read from the environment variable {var} (declare it under `binds` to say so)", "bind-implicit")
        cap.binds += implicit.values()
