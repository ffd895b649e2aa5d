"""Logging: everything to stderr (stdout may be an MCP stdio stream), bind values redacted."""

from __future__ import annotations

import logging
import sys

from naftiko_runtime.binds import redactable


class RedactingFilter(logging.Filter):
    """Replaces every bind value (secret) in a log record by `***` before it is written."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = redactable(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = message
        for secret in self.secrets:
            clean = clean.replace(secret, "***")
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_text:
            for secret in self.secrets:
                record.exc_text = record.exc_text.replace(secret, "***")
        return True


def configure_logging(level: str, secrets: list[str] | None = None) -> logging.Handler:
    """All logs to stderr (stdout may be an MCP stdio stream), secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter(secrets or []))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    if level.lower() != "debug":  # the SDK announces every session manager start at INFO
        logging.getLogger("mcp").setLevel(logging.WARNING)
    return handler


def set_secrets(handler: logging.Handler, secrets: list[str]) -> None:
    for f in handler.filters:
        if isinstance(f, RedactingFilter):
            f.secrets = redactable(secrets)
