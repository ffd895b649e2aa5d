"""Masking secrets in every form they take on the wire: one matcher per process, used everywhere.

An upstream that echoes a request does not echo the secret's exact bytes: a JSON body has
`sk\\/secret+XYZ=` for `sk/secret+XYZ=`, a debug page shows the query string percent-encoded
(`sk%2Fsecret%2BXYZ%3D`) or decoded with `+` read as a space, a header holds the base64 that the
runtime itself computed for HTTP Basic. `pattern` spells a secret all those ways at once; a
`Matcher` compiles the patterns of every secret into one regular expression.

Speed: the regex runs only when a cheap pre-check finds an *anchor* in the text. A secret's anchor
is its longest run of ASCII letters and digits, which JSON escaping and percent-encoding leave
intact, so every form of the secret contains it. A response without any anchor (almost all) costs
one substring search per secret; no per-form or per-secret replace loop (docs/SECURITY.md).

The process registry (`REGISTRY`) has two matchers built from what was registered:

- `credentials`: values sent to upstreams or checked on exposures (authentication blocks, and any
  scheme that registers what it sends: `register(value)`); masked in upstream answers (bodies and
  every header), MCP results and logs.
- `logs`: those plus every other bind value (configuration such as base URLs may be secret too,
  but an upstream's answer legitimately contains its own URLs, so only logs mask them).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Iterable
from urllib.parse import quote

MASK = "***"
MIN_LENGTH = 4  # shorter bind values (`1`, `eu`) are not secrets, and masking them would garble text
_RUN = re.compile(r"[A-Za-z0-9]+")


def pattern(secret: str) -> str:
    """A regex matching `secret` spelled any way the wire spells it, character by character:
    raw, JSON-escaped (`\\/`, `\\uXXXX`), percent-encoded (upper- or lower-case hex, UTF-8 bytes),
    `+` or `%20` for a space and a space for `+` (a raw `+` in a query string, decoded by the
    upstream), in any mixture (a client may encode some characters and not others)."""
    return "".join(_spellings(ch) for ch in secret)


def _spellings(ch: str) -> str:
    if ch.isascii() and ch.isalnum():
        return ch
    alternatives = {ch, json.dumps(ch)[1:-1], json.dumps(ch, ensure_ascii=False)[1:-1]}
    alternatives |= {f"\\u{ord(ch):04x}", f"\\u{ord(ch):04X}"} if ord(ch) < 0x10000 else set()
    percent = quote(ch, safe="")
    alternatives |= {percent, percent.lower()} if percent != ch else set()
    if ch == "/":
        alternatives.add("\\/")
    if ch == " ":
        alternatives.add("+")
    if ch == "+":
        alternatives.add(" ")
    escaped = sorted((re.escape(a) for a in alternatives), key=len, reverse=True)
    return escaped[0] if len(escaped) == 1 else f"(?:{'|'.join(escaped)})"


def _anchor(secret: str) -> str:
    """The longest ASCII letter/digit run of `secret` (present in all its forms), or the secret."""
    runs = _RUN.findall(secret)
    best = max(runs, key=len, default="")
    return best if len(best) >= 3 else secret


class Matcher:
    """Masks every form of a fixed set of secrets, in `str` and `bytes`."""

    __slots__ = ("_anchors", "_banchors", "_text", "_bytes", "span")

    def __init__(self, secrets: Iterable[str]):
        values = sorted({s for s in secrets if len(s) >= MIN_LENGTH})
        # the longest any spelling can be (a character is at most 12 bytes: 4 UTF-8 bytes
        # percent-encoded), for masking a stream chunk by chunk
        self.span = 12 * max((len(v) for v in values), default=0)
        spellings = [pattern(s) for s in sorted(values, key=len, reverse=True)]  # longest first
        anchors = sorted({_anchor(s) for s in values}, key=len)
        # an anchor containing a shorter one is implied by it
        self._anchors = tuple(a for i, a in enumerate(anchors) if not any(b in a for b in anchors[:i]))
        self._banchors = tuple(a.encode() for a in self._anchors)
        self._text = re.compile("|".join(spellings)) if spellings else None
        self._bytes = re.compile("|".join(spellings).encode()) if spellings else None

    def __bool__(self) -> bool:
        return self._text is not None

    def mask_bytes(self, data: bytes) -> bytes:
        for anchor in self._banchors:
            if anchor in data:
                return self._bytes.sub(MASK.encode(), data)  # type: ignore[union-attr]
        return data

    def mask_text(self, text: str) -> str:
        for anchor in self._anchors:
            if anchor in text:
                return self._text.sub(MASK, text)  # type: ignore[union-attr]
        return text


class Registry:
    """The secrets of this process. Registration happens at startup; matchers are rebuilt then."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: set[str] = set()
        self._others: set[str] = set()
        self.credentials = Matcher(())
        self.logs = Matcher(())

    def register(self, *values: str, credential: bool = True) -> None:
        """Mask `values` from now on. `credential=False`: in logs only (other bind values).

        A scheme that derives what it sends (a base64 pair, a signed token) registers the derived
        value too; values shorter than MIN_LENGTH are ignored.
        """
        with self._lock:
            target = self._credentials if credential else self._others
            new = {v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH} - target
            if not new:
                return
            target |= new
            self.credentials = Matcher(self._credentials)
            self.logs = Matcher(self._credentials | self._others)


REGISTRY = Registry()
register = REGISTRY.register
