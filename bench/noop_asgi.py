"""The HTTP server's own ceiling: a raw ASGI app under uvicorn that answers the Session, no I/O.

Same uvicorn settings as every Python server here (`_serve.py`); whatever a proxy costs above this
row is its own work and its upstream client's.

    python bench/noop_asgi.py --port 18140
"""

from __future__ import annotations

import json
from pathlib import Path

from _serve import parser, serve  # bench/ is on sys.path when run as a script

BODY = json.dumps(json.loads((Path(__file__).with_name("session.json")).read_text()), separators=(",", ":")).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    serve(app, args.host, args.port)
