"""docs/guide.md cannot rot: every shell and YAML block runs, in order, as one script.

- ```bash blocks run as they are written, in one bash process (`set -euo pipefail`), so `cd` and a
  server started with `&` carry over to the next block, as in a terminal;
- ```yaml blocks start with `# file: NAME` and are written to NAME where the script stands;
- the ```json block (Claude Desktop's configuration) is started exactly as Claude Desktop starts it,
  and the Python MCP SDK lists its tools over stdio;
- the `naftiko` steps of the CI workflow block run in the guide's directory.

The only change made to the text: the ports 8080 and 9090 become free ports, so the test never
collides with another server on the machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
import yaml

from tests.support.servers import REPO_ROOT, free_port

GUIDE = REPO_ROOT / "docs" / "guide.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return FENCE.findall(GUIDE.read_text(encoding="utf-8"))


def script(rest: int, mcp: int) -> str:
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for lang, body in blocks():
        body = body.replace("8080", str(rest)).replace("9090", str(mcp))
        if lang == "bash":
            lines.append(body)
        elif lang == "yaml":
            first = body.splitlines()[0]
            assert first.startswith("# file: "), f"a YAML block of the guide must start with `# file: NAME`: {first}"
            name = first.removeprefix("# file: ").strip()
            lines.append(f"mkdir -p \"$(dirname '{name}')\"\ncat > '{name}' <<'GUIDE_EOF'\n{body}GUIDE_EOF")
    return "\n".join(lines) + "\n"


def environment(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "naftiko"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m naftiko_runtime "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def walked(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("guide")
    env = environment(tmp)
    done = subprocess.run(["bash", "-c", script(free_port(), free_port())], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=180)
    return done, tmp / "weather", env


def test_every_shell_and_yaml_block_runs(walked):
    done, _, _ = walked
    assert done.returncode == 0, f"the guide's script failed\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.stdout.count("1 file, 0 errors, 0 warnings") == 2  # the imported file and the edited one
    assert "'days' (query) must be an integer, got 'lots'" in done.stdout
    assert '"city": "Lyon"' in done.stdout and '"subscribe-to-alerts"' in done.stdout
    assert "wrote imported.yaml" in done.stderr and "WEATHER_API_KEY" in (Path(walked[1]) / "imported.yaml").read_text()


def test_the_claude_desktop_configuration_starts_and_lists_the_tools(walked):
    done, where, env = walked
    assert done.returncode == 0, done.stderr
    config = json.loads(next(body for lang, body in blocks() if lang == "json"))
    server = config["mcpServers"]["weather"]
    args = [a.replace("/absolute/path/to/weather/capability.yaml", str(where / "capability.yaml")) for a in server["args"]]

    async def list_tools() -> list[str]:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(command=server["command"], args=args, env={**env, **server["env"]})
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return [t.name for t in (await session.list_tools()).tools]

    assert anyio.run(list_tools) == ["list-forecasts", "subscribe-to-alerts"]


def test_the_ci_workflow_steps_run(walked):
    done, where, env = walked
    assert done.returncode == 0, done.stderr
    workflow = yaml.safe_load((where / ".github" / "workflows" / "capability.yml").read_text())
    steps = [s["run"] for s in workflow["jobs"]["check"]["steps"] if str(s.get("run", "")).startswith("naftiko ")]
    assert len(steps) == 3
    for step in steps:
        ran = subprocess.run(["bash", "-c", step], cwd=where, env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, f"{step}\n{ran.stdout}\n{ran.stderr}"
    assert json.loads((where / "openapi.json").read_text())["paths"].keys() == {"/forecasts", "/subscriptions", "/subscriptions/{id}"}
