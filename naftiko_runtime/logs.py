"""Logging: everything to stderr (stdout may be an MCP stdio stream), bind values redacted."""

from __future__ import annotations

import logging
import sys

from naftiko_runtime import redact


class RedactingFilter(logging.Filter):
    """Masks every registered secret, in every form (redact.py), in a log record before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        matcher = redact.REGISTRY.logs
        if not matcher:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = matcher.mask_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_text:
            record.exc_text = matcher.mask_text(record.exc_text)
        return True


def configure_logging(level: str, secrets: list[str] | None = None) -> logging.Handler:
    """All logs to stderr (stdout may be an MCP stdio stream), secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    set_secrets(handler, secrets or [])
    handler.addFilter(RedactingFilter())
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
    """Bind values are masked in logs (credentials are registered by the runtime, for everything)."""
    redact.register(*secrets, credential=False)
