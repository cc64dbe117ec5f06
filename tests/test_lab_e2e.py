"""The whole lab, for real, on a compressed timeline: up, a fault, a real alert, a capture, down.

Runs with `make test-lab` (pytest -m lab): about a minute and a half on two cores.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from warroom.lab import processes
from warroom.lab.topology import LabPaths, read_state

pytestmark = [pytest.mark.lab, pytest.mark.timeout(420)]


class Recorder(BaseHTTPRequestHandler):
    """A loopback webhook receiver standing in for warroom serve's intake; keeps every body."""

    received: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def _warroom(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warroom", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabPaths, list[tuple[str, dict]]]]:
    root = tmp_path_factory.mktemp("lab")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook = f"http://127.0.0.1:{server.server_address[1]}/api/v1/alerts/alertmanager"
    up = _warroom(
        "lab", "up", "--dir", str(root), "--products", "5000", "--timeline", "compressed", "--alert-webhook", webhook
    )
    paths = LabPaths(root)
    try:
        assert up.returncode == 0, up.stdout + up.stderr + (paths.logs / "supervisor.log").read_text()
        yield paths, Recorder.received
    finally:
        _warroom("lab", "down", "--dir", str(root))
        server.shutdown()


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_fault_to_alert_to_capture_to_down(lab: tuple[LabPaths, list[tuple[str, dict]]], tmp_path: Path) -> None:
    paths, received = lab
    # Healthy traffic flows end to end before anything breaks.
    _wait_for(lambda: '"http.response.status_code": 200' in paths.service_log("payment").read_text(), 60, "payments")
    assert not any(payload["status"] == "firing" for _, payload in received)

    broke = _warroom("lab", "break", "dependency_down", "--dir", str(paths.root))
    assert broke.returncode == 0, broke.stderr

    def payment_down_fired() -> bool:
        return any(
            path == "/api/v1/alerts/alertmanager"
            and payload["status"] == "firing"
            and payload["version"] == "4"
            and any(a["labels"].get("service") == "payment" for a in payload["alerts"])
            for path, payload in received
        )

    _wait_for(payment_down_fired, 60, "Alertmanager to deliver the payment alert")

    out = tmp_path / "captures" / "payment-down"
    captured = _warroom("lab", "capture", "--dir", str(paths.root), "--out", str(out), "--since", "3m", "--gzip")
    assert captured.returncode == 0, captured.stderr
    expected = {
        "metrics/prometheus.jsonl.gz",
        "traces/otlp-traces.jsonl.gz",
        "logs/otlp-logs.jsonl.gz",
        "logs/gateway.log.gz",
        "logs/checkout.log.gz",
        "logs/postgresql.json.gz",
        "deploys.jsonl",
        "repo.bundle",
        "prometheus/rules.yml",
    }
    assert expected <= {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    # The truth sits beside the capture, never inside it.
    truth = json.loads((out.parent / "payment-down.truth.json").read_text())
    assert (truth["service"], truth["fault_type"], truth["change_kind"]) == ("payment", "dependency_down", "config")
    assert not any("truth" in p.name for p in out.rglob("*"))

    with gzip.open(out / "metrics/prometheus.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    names = {row["metric"] for row in rows}
    assert {"http_requests_total", "http_request_duration_seconds_bucket", "db_client_connection_max", "up"} <= names
    ups = [r for r in rows if r["metric"] == "up" and r["labels"].get("service") == "payment"]
    assert ups[0]["value"] == 1 and ups[-1]["value"] == 0
    alerts = sorted((out / "alerts").glob("*.json"))
    assert any(json.loads(p.read_bytes())["status"] == "firing" for p in alerts)
    deploys = [json.loads(line) for line in (out / "deploys.jsonl").read_text().splitlines()]
    assert deploys[-1]["commit"] == truth["commit"] and deploys[-1]["kind"] == "scale"
    with gzip.open(out / "traces/otlp-traces.jsonl.gz", "rt") as handle:
        lines = handle.readlines()
    spans = [
        span
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    assert any(a["key"] == "db.query.text" for span in spans for a in span.get("attributes", []))

    pids_file = paths.pids
    recorded = [line.split() for line in pids_file.read_text().splitlines()]
    state = read_state(paths)
    assert state is not None
    down = _warroom("lab", "down", "--dir", str(paths.root))
    assert down.returncode == 0, down.stderr
    assert read_state(paths) is None
    assert not [pid for pid, started, *_ in recorded if processes.start_time(int(pid)) == started]
    assert not Path(f"/sys/fs/cgroup/memory/warroom-lab-{state.supervisor_pid}").exists()
    assert not os.path.exists(paths.state)
