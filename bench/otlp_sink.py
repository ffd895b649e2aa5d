"""A local OTLP/HTTP traces receiver for the observability rows: accepts every export, keeps nothing.

The traced `naftiko run` exports its spans here (sampling 1.0), so tracing is measured with its
real cost (span creation, batching, protobuf encoding and the POSTs), not against a dead endpoint.
Runs on the load generator's core.

    python bench/otlp_sink.py --port 18150
"""

from __future__ import annotations

from _serve import parser, serve  # bench/ is on sys.path when run as a script

HEADERS = [(b"content-type", b"application/x-protobuf"), (b"content-length", b"0")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:  # read (and drop) the export
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})  # an empty ExportTraceServiceResponse
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    serve(app, args.host, args.port)
