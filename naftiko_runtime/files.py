"""Folders served read-only (MCP static resources, skill contents): nothing outside them is reachable.

A client names a file by a relative path. Each segment is percent-decoded once and must then be a
plain name: not empty, not `.` or `..`, no `/`, `\\` or NUL inside it (so `%2e%2e` and `a%2Fb` are
refused like `..` and `a/b`), and not hidden (a leading `.`: `.git`, `.env` are never listed nor
served). The resolved path, symlinks followed, must still be inside the folder, so a symlink
pointing out of it is refused too. Files are read when asked, as a static file server does: editing
a document needs no restart.
"""

from __future__ import annotations

import io
import mimetypes
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from naftiko_runtime.errors import InputError, NotFound

# Types the platform tables often lack or get wrong for documentation folders.
_MIME_OVERRIDES = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".yaml": "application/yaml", ".yml": "application/yaml",
    ".json": "application/json", ".txt": "text/plain", ".csv": "text/csv", ".xml": "application/xml",
    ".html": "text/html", ".js": "text/javascript", ".py": "text/x-python", ".sh": "text/x-shellscript",
}
_TEXT_TYPES = ("application/json", "application/yaml", "application/x-yaml", "application/xml", "application/javascript")


def mime_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return _MIME_OVERRIDES.get(suffix) or mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def is_text(mime: str) -> bool:
    """Whether content of this type is sent as text (else as bytes / base64)."""
    base = mime.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in _TEXT_TYPES or base.endswith(("+json", "+xml", "+yaml"))


@dataclass(frozen=True)
class Entry:
    """One file of a folder: its relative path (`/`-separated), size and type."""

    path: str
    size: int
    mime: str

    @property
    def uri_path(self) -> str:
        """The path with each segment percent-encoded, for use inside a URI."""
        return "/".join(quote(seg, safe="") for seg in self.path.split("/"))


class Folder:
    """A directory whose files are listed and read, never anything outside it."""

    def __init__(self, root: Path, max_bytes: int):
        self.root = root.resolve()
        self.max_bytes = max_bytes

    def entries(self) -> list[Entry]:
        """Every regular file below the root, hidden ones and symlinks leading out excluded, sorted."""
        out: list[Entry] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and self._inside(Path(dirpath, d)))
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if name.startswith(".") or not self._inside(path) or not path.is_file():
                    continue
                rel = path.relative_to(self.root).as_posix()
                out.append(Entry(rel, path.stat().st_size, mime_type(name)))
        return out

    def resolve(self, relative: str, what: str = "path") -> Path:
        """The file `relative` (percent-encoded segments) names. InputError if unsafe, NotFound if absent."""
        segments = [unquote(seg) for seg in relative.split("/")]
        for seg in segments:
            if not seg or seg in (".", "..") or any(c in seg for c in "/\\\0"):
                raise InputError.one(what, None, "is not a plain path inside the folder ('..', '.', empty and encoded '/' segments are refused)")
            if seg.startswith("."):
                raise NotFound(f"no file '{relative}' (hidden files are not served)")
        path = self.root.joinpath(*segments)
        if not self._inside(path):
            raise InputError.one(what, None, "leads outside the folder (through a symlink); it is not served")
        if not path.is_file():
            raise NotFound(f"no file '{relative}'" + (" (it is a folder; list its files)" if path.is_dir() else ""))
        return path

    def read(self, relative: str, what: str = "path") -> tuple[bytes, str]:
        """The bytes and MIME type of one file (NotFound above the size limit: it is not served)."""
        path = self.resolve(relative, what)
        size = path.stat().st_size
        if size > self.max_bytes:
            raise NotFound(f"'{relative}' is {size:,} bytes, over the {self.max_bytes:,}-byte limit (--max-response)")
        return path.read_bytes(), mime_type(path.name)

    def zip(self) -> bytes:
        """Every listed file in one zip archive (paths relative to the root)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in self.entries():
                archive.write(self.root / entry.path, entry.path)
        return buffer.getvalue()

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):  # a symlink loop
            return False
