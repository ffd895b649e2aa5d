"""The nearest MCP peer: FastMCP 4 `FastMCP.from_openapi` on the slim Vapi Sessions OpenAPI.

Runs in bench/.venv-fastmcp (bench/run.sh creates it). The OpenAPI's server URL is replaced by the
benchmark's upstream stub; the client sends the same bearer header the runtime sends. Served
stateless with JSON responses at `/mcp`, on the same uvicorn settings as every other server.

    bench/.venv-fastmcp/bin/python bench/fastmcp_openapi.py --port 18140 --upstream http://127.0.0.1:18101
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx2
import yaml
from fastmcp import FastMCP

from _serve import parser, serve  # bench/ is on sys.path when run as a script

SPEC = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "vapi-sessions-openapi.slim.yml"


def build_app(upstream: str, api_key: str, spec_path: Path = SPEC):
    spec = yaml.safe_load(spec_path.read_text())
    spec["servers"] = [{"url": upstream}]
    client = httpx2.AsyncClient(base_url=upstream, headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0)
    server = FastMCP.from_openapi(openapi_spec=spec, client=client, name="vapi-sessions")
    return server.http_app(path="/mcp", stateless_http=True, json_response=True)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--spec", type=Path, default=SPEC)
    args = p.parse_args()
    serve(build_app(args.upstream, os.environ.get("VAPI_API_KEY", "bench-key"), args.spec), args.host, args.port)


if __name__ == "__main__":
    main()
