"""`naftiko run --workers 2` with a control exposure: a scrape of the control port reports the totals of
every worker, whichever worker answers it, also after a worker was killed and restarted; health
and status speak for the whole group."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import capability, eventually, get, write
from tests.support.servers import EchoUpstream, free_port, naftiko, wait_http

pytestmark = pytest.mark.e2e


def workers(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def scrape(control: str) -> dict[str, list]:
    """One scrape on a new connection: the kernel hands it to either worker."""
    text = get(control + "/metrics").text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def total(found: dict[str, list], sample: str, **labels: str) -> float:
    family = sample.removesuffix("_total").removesuffix("_count")
    return sum(s.value for s in found.get(family, []) if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


def test_a_scrape_reports_every_workers_counts_and_survives_a_restart(tmp_path: Path):
    (tmp_path / "settings.env").write_text("EDITION=first\n")
    port, control_port = free_port(), free_port()
    write(tmp_path / "cap.yaml", capability(port=port) + f"  - {{type: control, port: {control_port}, management: {{info: true}}}}\n")
    items, control = f"http://127.0.0.1:{port}/items", f"http://127.0.0.1:{control_port}"
    route = {"adapter": "rest", "exposure": "api", "operation": "GET /items/{id}", "outcome": "2xx"}
    upstream = {"upstream": "echo", "operation": "get-item", "outcome": "2xx"}
    with EchoUpstream() as echo, naftiko(["run", tmp_path / "cap.yaml", "--workers", "2", "--base-uri", f"echo={echo.base_url}"], ports_to_wait=[port, control_port]) as proc:
        wait_http(control + "/health/ready", timeout=20, ok=lambda status: status == 200, proc=proc)
        ready = get(control + "/health/ready").json()
        assert ready["status"] == "UP" and ready["workers"] == {"count": 2, "ready": 2}

        for i in range(40):  # each on a new connection: both workers answer some
            assert get(f"{items}/{i}").status_code == 200
        for _ in range(6):  # each scrape too: every one must see all 40
            found = scrape(control)
            assert total(found, "naftiko_requests_total", **route) == 40
            assert total(found, "naftiko_request_duration_seconds_count", **route) == 40
            assert total(found, "naftiko_upstream_requests_total", **upstream) == 40
            assert total(found, "naftiko_requests_in_flight", adapter="rest") == 0
        assert "process_cpu_seconds_total" not in {s.name for samples in found.values() for s in samples}

        # a request in flight on one worker is seen by a scrape answered by either
        echo.respond_with(200, {"target": "slow"}, delay=2)
        slow = threading.Thread(target=lambda: httpx.get(f"{items}/slow", timeout=10))
        slow.start()
        echo.wait_for(41)
        assert [total(scrape(control), "naftiko_requests_in_flight", adapter="rest") for _ in range(4)] == [1] * 4
        slow.join(10)

        # a killed worker is restarted: its counts stay in the totals, counted once
        killed = workers(proc.pid)[0]
        os.kill(killed, signal.SIGKILL)
        restarting = get(control + "/health/ready")
        eventually(lambda: killed not in workers(proc.pid) and len(workers(proc.pid)) == 2
                   and get(control + "/health/ready").status_code == 200, timeout=20, what="the restarted worker")
        for _ in range(4):
            found = scrape(control)
            assert total(found, "naftiko_requests_total", **route) == 41
            assert total(found, "naftiko_requests_in_flight", adapter="rest") == 0
        for i in range(10):
            assert get(f"{items}/{i}").status_code == 200
        assert [total(scrape(control), "naftiko_requests_total", **route) for _ in range(4)] == [51] * 4
        status = get(control + "/status").json()
    if restarting.status_code == 503:  # when the probe came before the restart
        assert restarting.json()["status"] == "STARTING" and restarting.json()["workers"]["ready"] < 2
    assert status["state"] == "UP" and status["workers"] == {"count": 2, "ready": 2}
    assert status["uptime"] > 1  # the group's, not the restarted worker's
