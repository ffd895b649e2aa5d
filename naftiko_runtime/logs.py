"""Logging: everything to stderr (stdout may be an MCP stdio stream), bind values redacted.

Two formats (`--log-format`): `text` (the default, one human line per record) and `json` (one JSON
object per line: `time`, `level`, `logger`, `message`, `trace_id`/`span_id` inside a traced
request, `exception`). Secrets are masked before either formatter sees the record. In JSON mode
the command's own announcements (`console`) and Python warnings go through the same handler, so
every line on stderr parses. With `--workers N` (N > 1) every worker's lines name it
(`label_worker`): `[worker 1]` in text, `"worker": 1` in JSON; the supervisor's do not.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from naftiko_runtime import redact

_json_handler: logging.Handler | None = None  # set in JSON mode: `console` writes through it
_handler: logging.Handler | None = None  # the one handler of the process
TEXT_FORMAT = "%(asctime)s %(levelname)-7s {label}%(name)s: %(message)s"


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


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the trace context of the current span when tracing is on."""

    worker: int | None = None  # a worker's number (--workers N > 1): a `worker` field on every record

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            out["worker"] = self.worker
        out.update(_trace_context())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def _trace_context() -> dict[str, str]:
    """`trace_id` and `span_id` of the span in progress; nothing unless OpenTelemetry is in use
    (it is imported only when tracing is on, so this costs a dictionary lookup otherwise)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def configure_logging(level: str, secrets: list[str] | None = None, fmt: str = "text") -> logging.Handler:
    """All logs to stderr (stdout may be an MCP stdio stream), secrets redacted."""
    global _json_handler, _handler
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)  # a warning printed raw would be a line that is not JSON
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT.format(label=""), "%H:%M:%S"))
    _json_handler = handler if fmt == "json" else None
    _handler = handler
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


def label_worker(number: int) -> None:
    """In a worker process of `--workers N` (N > 1), right after the fork: its log lines say which
    worker wrote them, as the supervisor's lines about it do (`worker 1 (pid 4242) ...`)."""
    if _handler is None:
        return
    if isinstance(_handler.formatter, JsonFormatter):
        formatter = JsonFormatter()
        formatter.worker = number
        _handler.setFormatter(formatter)
    else:
        _handler.setFormatter(logging.Formatter(TEXT_FORMAT.format(label=f"[worker {number}] "), "%H:%M:%S"))


def set_secrets(handler: logging.Handler, secrets: list[str]) -> None:
    """Bind values are masked in logs (credentials are registered by the runtime, for everything)."""
    redact.register(*secrets, credential=False)


def console(message: str) -> None:
    """What the command tells its user (listening URLs, refusals): a plain line, or a JSON record
    through the log handler in JSON mode, whatever the log level."""
    if _json_handler is None:
        print(message, file=sys.stderr, flush=True)
        return
    record = logging.LogRecord("naftiko", logging.INFO, __file__, 0, message.removeprefix("naftiko: "), None, None)
    _json_handler.handle(record)
