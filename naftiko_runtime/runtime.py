"""The per-process half of serving a plan: transports and lifecycle.

A `Plan` (plan.py) is pure and shared; a `Runtime` is what one process builds from it: one pooled
transport per consumes namespace (or the shared in-process fake with `--mock`), and the lifecycle
the health probes report. Pipelines reach upstreams only through `Runtime.send` (and `forward`
through `Runtime.stream`), the seam where per-process concerns (pools, metrics, tracing) sit.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Awaitable

from naftiko_runtime import redact
from naftiko_runtime.exposes.health import Lifecycle
from naftiko_runtime.plan import Plan
from naftiko_runtime.upstream.auth import Authenticator
from naftiko_runtime.upstream.client import HttpTransport, Response, Streamed, Transport
from naftiko_runtime.upstream.request import Prepared

if TYPE_CHECKING:
    from naftiko_runtime.observability import Observability


class Runtime:
    """One process's live state for a plan."""

    def __init__(self, plan: Plan, lifecycle: Lifecycle | None = None, previous: "Runtime | None" = None,
                 observability: "Observability | None" = None):
        self.plan = plan
        redact.register(*plan.credentials)  # masked in answers, MCP results and logs from now on
        self.lifecycle = lifecycle or Lifecycle()  # the process's: moved by the server, reported by the probes
        self.handed_over: set[int] = set()  # transports a reloaded version took over (not closed with this one)
        self.transports: dict[str, Transport] = _transports(plan, previous)
        # per-request credentials (SigV4, OAuth 2 tokens, Digest): this process's token caches, an
        # unchanged namespace's cached token kept across a reload (upstream/auth.py)
        before = previous.authenticators if previous is not None else {}
        self.authenticators: dict[str, Authenticator] = {
            ns: upstream.dynamic.start(self.transports[ns].send, before.get(ns))
            for ns, upstream in plan.upstreams.items() if upstream.dynamic is not None and ns in self.transports and not plan.mock
        }
        self.observability = observability  # the process's metrics and traces; None: nothing is wrapped
        if observability is not None:
            self.send = observability.wrap_send(self.send)  # type: ignore[method-assign]
            self.stream = observability.wrap_stream(self.stream)  # type: ignore[method-assign]
            self.step = observability.wrap_step(self.step)  # type: ignore[method-assign]
            for transport in self.transports.values():
                if isinstance(transport, HttpTransport):
                    transport.on_retry = observability.on_retry

    def send(self, namespace: str, request: Prepared) -> Awaitable[Response]:
        """The upstream's answer to `request` (awaitable). Without per-request credentials it is the
        transport's own coroutine: no extra coroutine frame per call (bench/, callgrind)."""
        auth = self.authenticators.get(namespace)
        if auth is None:
            return self.transports[namespace].send(request)
        return self._authenticated(self.transports[namespace], auth, request)

    @staticmethod
    async def _authenticated(transport: Transport, auth: Authenticator, request: Prepared) -> Response:
        response = await transport.send(await auth.apply(request))
        if response.status == 401 and await auth.retry(request, response):  # a refreshed token, a digest nonce: once
            response = await transport.send(await auth.apply(request))
        return response

    async def step(self, stage: Any, run: Any) -> None:
        """One orchestration step (orchestration.py): the seam where step metrics and spans sit."""
        await stage.run(run, self)

    @contextlib.asynccontextmanager
    async def stream(self, namespace: str, request: Prepared, body: AsyncIterable[bytes] | None) -> AsyncIterator[Streamed]:
        """`forward`: the request body streamed up and the answer streamed back (see `Transport.stream`).

        Per-request credentials that fit a streamed body (an OAuth 2 token) are applied; the plan
        refuses a `forward` to a namespace whose scheme does not fit (SigV4, Digest).
        """
        auth = self.authenticators.get(namespace)
        if auth is not None:
            request = await auth.apply(request)
        async with self.transports[namespace].stream(request, body) as streamed:
            yield streamed

    async def close(self) -> None:
        for transport in {id(t): t for t in self.transports.values()}.values():
            if id(transport) not in self.handed_over:
                await transport.close()


def _transports(plan: Plan, previous: Runtime | None) -> dict[str, Transport]:
    """A transport per consumes namespace. On a reload (`previous`: the runtime of the version
    replaced), what can be kept is: the fake upstream's store, and each connection pool whose
    client settings did not change (no reconnect burst, no client to build on the event loop)."""
    before = previous.transports if previous is not None else {}
    kept: list[Transport] = []
    out: dict[str, Transport] = {}
    if plan.mock:
        from naftiko_runtime.mock import MockTransport  # only with --mock (it imports uuid, platform...)

        shared = next((t for t in before.values() if isinstance(t, MockTransport)), None)
        kept += [shared] if shared is not None else []
        out = dict.fromkeys(plan.cap.consumes, shared or MockTransport(plan.settings))
    else:
        for ns, upstream in plan.upstreams.items():
            old = before.get(ns)
            if isinstance(old, HttpTransport) and (old.settings, old.upstream.tls) == (upstream.settings, upstream.tls):
                kept.append(old)
                out[ns] = old
            else:
                out[ns] = HttpTransport(upstream)
    if previous is not None:
        previous.handed_over.update(id(t) for t in kept)
    return out
