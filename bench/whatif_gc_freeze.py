"""`naftiko` with one change, to measure a suggestion before anyone edits the runtime.

Same command line as `naftiko`. Before the servers start (everything long-lived is built by then:
imported modules, the compiled capability, the apps), it runs `gc.collect(); gc.freeze()`, which
moves every existing object out of the cyclic collector's generations. Without it, each full
collection walks the ~100k objects of mcp/pydantic/the runtime and finds nothing to free: measured
12-17 full collections in 12 s at c=32, 60-95 ms each (docs/PERFORMANCE.md). The table shows this
as the `naftiko+gc.freeze` rows; the suggested fix is the same two lines in
naftiko_runtime/runtime.py `serve()`.

    python bench/whatif_gc_freeze.py run capabilities/vapi-sessions.yaml ...
"""

from __future__ import annotations

import gc
import sys

import naftiko_runtime.runtime as runtime

_serve = runtime.serve


async def serve(*args, **kwargs):
    gc.collect()
    gc.freeze()
    return await _serve(*args, **kwargs)


runtime.serve = serve  # cli._run_http imports `serve` from the module when it runs, after this

if __name__ == "__main__":
    from naftiko_runtime.cli import main

    sys.exit(main(sys.argv[1:]))
