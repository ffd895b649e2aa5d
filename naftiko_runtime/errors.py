"""One error tree for everything the runtime raises on purpose.

```
NaftikoError
  StartupError            the capability cannot be served (nothing is)
    CapabilityError       every error diagnostic found while loading and compiling, with positions
    BindError             bind values that could not be read, all of them at once
    BuildError            several files were built and some failed: each file with its error
    CompileError          one problem found while compiling; the compiler turns it into a diagnostic
    UsageError            the command line names something the capability does not have (exit 2)
  AuthoringError          a file an authoring command reads (an OpenAPI description) cannot be used
  RequestError            one call failed; each adapter renders it (problem+json, MCP isError)
    InputError            the caller's input (400)
    NotFound              a resource, prompt, skill or file the caller named does not exist (404)
    UpstreamFailure       the upstream: UpstreamUnreachable, UpstreamTimeout, UpstreamTooLarge,
                          UpstreamBadResponse, UpstreamBusy (502/504/503)
    StepFailure           one orchestration step failed, which stopped the sequence: the upstream's
                          4xx passes through, 5xx and transport failures are 502/504
```

Anything else escaping a request is a bug: adapters log it once and answer a generic 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from naftiko_runtime.capability.diagnostics import Diagnostic, Pos


ERROR_BODY_LIMIT = 4096  # characters of an upstream error body passed on to a caller


def cap_text(text: str, limit: int = ERROR_BODY_LIMIT) -> str:
    """An upstream answer as text for an error message, cut at `limit` characters."""
    if len(text) > limit:
        return text[:limit] + f"... (cut at {limit:,} of {len(text):,} characters)"
    return text


class NaftikoError(Exception):
    """Root of the runtime's own errors."""


# ---------------------------------------------------------------------------- startup


class StartupError(NaftikoError):
    """The capability cannot be served."""


class CapabilityError(StartupError):
    """A capability cannot be served; carries every error found, not just the first."""

    def __init__(self, diagnostics: list["Diagnostic"]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


@dataclass(frozen=True)
class Missing:
    """One bind value that could not be read, and where it was declared."""

    name: str
    where: str
    pos: "Pos"

    def __str__(self) -> str:
        return f"{self.pos}: {self.name}: {self.where}"


class BindError(StartupError):
    """Some bind values could not be read; `missing` lists every one."""

    def __init__(self, missing: list[Missing]):
        self.missing = missing
        super().__init__("; ".join(str(m) for m in missing))


class CompileError(StartupError):
    """One problem found while compiling an operation, tool, guard or upstream.

    `pos` is None when the compiler knows the position better (it reports at the node it was
    compiling); `rule` is the diagnostic rule id `validate` shows.
    """

    def __init__(self, message: str, rule: str = "compile", pos: "Pos | None" = None):
        self.message = message
        self.rule = rule
        self.pos = pos
        super().__init__(message)


class BuildError(StartupError):
    """Some of several capability files cannot be served; `failures` pairs each with its error."""

    def __init__(self, failures: list[tuple[str, StartupError]]):
        self.failures = failures
        super().__init__("; ".join(f"{file}: {exc}" for file, exc in failures))


class UsageError(StartupError):
    """A command-line value that does not fit the capability (an unknown namespace...)."""


# ---------------------------------------------------------------------------- authoring


class AuthoringError(NaftikoError):
    """An input of `naftiko import openapi` (or another authoring command) cannot be used.

    Carries the one diagnostic that says where (file:line:col, and the JSON pointer in the message).
    """

    def __init__(self, diagnostic: "Diagnostic"):
        self.diagnostic = diagnostic
        super().__init__(str(diagnostic))


# ---------------------------------------------------------------------------- requests


class RequestError(NaftikoError):
    """A call failed in a way the caller is told about; `status` is the HTTP status REST answers."""

    status: int = 500


@dataclass
class InputProblem:
    name: str
    location: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "detail": self.detail}
        if self.location:
            out["in"] = self.location
        return out


class InputError(RequestError):
    """The caller's input is missing, malformed or unsafe: a 400, never sent upstream."""

    status = 400

    def __init__(self, problems: list[InputProblem], title: str = "Invalid input"):
        self.problems = problems
        self.title = title
        super().__init__("; ".join(f"{p.name}: {p.detail}" for p in problems))

    @classmethod
    def one(cls, name: str, location: str | None, detail: str) -> "InputError":
        return cls([InputProblem(name, location, detail)])


class NotFound(RequestError):
    """The caller named something that does not exist: a resource URI, prompt, skill or file."""

    status = 404

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class UpstreamFailure(RequestError):
    """The upstream could not be reached, timed out, or answered something unusable.

    Subclasses say which; `retryable` marks a fault after which an idempotent request may safely
    be sent again (the request never reached the upstream, or its answer was lost).
    """

    status = 502
    what = "failed"
    title = "Bad gateway"

    def __init__(self, namespace: str, detail: str = "", *, retryable: bool = False):
        self.namespace = namespace
        self.detail = detail
        self.retryable = retryable
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"upstream '{self.namespace}' {self.what}" + (f": {self.detail}" if self.detail else "")


class UpstreamUnreachable(UpstreamFailure):
    what = "could not be reached"


class UpstreamTimeout(UpstreamFailure):
    status = 504
    what = "did not answer in time"
    title = "Upstream timeout"


class UpstreamTooLarge(UpstreamFailure):
    what = "answered with a body over the size limit"


class UpstreamBadResponse(UpstreamFailure):
    what = "answered with a response that could not be read"


class UpstreamBusy(UpstreamFailure):
    status = 503
    what = "has no free connection"
    title = "Upstream busy"


class StepFailure(RequestError):
    """An orchestration step failed; the steps after it did not run (docs/orchestration.md).

    `upstream_status` and `body` are the upstream's answer when it gave one (a 4xx passes through
    as the status, a 5xx becomes 502); a transport failure keeps its own status (502/503/504).
    """

    title = "Step failed"

    def __init__(self, step: str, detail: str, *, status: int = 502, upstream: str | None = None,
                 upstream_status: int | None = None, body: bytes = b"", content_type: str | None = None,
                 retry_after: str | None = None):
        self.step = step
        self.detail = detail
        self.status = status
        self.upstream = upstream
        self.upstream_status = upstream_status
        self.body = body
        self.content_type = content_type
        self.retry_after = retry_after
        super().__init__(self.message)

    @classmethod
    def answered(cls, step: str, upstream: str, status: int, body: bytes, content_type: str | None,
                 retry_after: str | None = None) -> "StepFailure":
        try:
            reason = f" {HTTPStatus(status).phrase}"
        except ValueError:
            reason = ""
        return cls(step, f"upstream '{upstream}' answered HTTP {status}{reason}", status=status if status < 500 else 502,
                   upstream=upstream, upstream_status=status, body=body, content_type=content_type, retry_after=retry_after)

    @classmethod
    def unreachable(cls, step: str, failure: UpstreamFailure) -> "StepFailure":
        return cls(step, failure.message, status=failure.status, upstream=failure.namespace)

    @property
    def message(self) -> str:
        return f"step '{self.step}' failed: {self.detail}"

    def body_text(self) -> str:
        """The upstream's answer (credentials it echoed are already masked by the transport)."""
        return cap_text(self.body.decode("utf-8", errors="replace"))
