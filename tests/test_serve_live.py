"""`warroom serve` with a live route, against the real components of support_live.py (a real
Prometheus, a git repository, a deploy log): an Alertmanager notification POSTed to the intake
opens an incident whose run reads the live sources into a snapshot of its own and diagnoses from
it; a live route without any live source stops the server at start with one line."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from actions_helpers import ServiceState, http_service
from comms_helpers import Recorder, smtp_server
from serve_support import Served, wait_for
from support_live import SECRET, World, live_world
from warroom.cli import app
from warroom.serve.cadence import SENDER
from warroom.sources.snapshot import load_info
from warroom.store.repository import Store

LIVE_ROUTE = """
[serve]
workers = 1

[[serve.routes]]
name = "live"
source = "live"
matchers = ['severity=~"critical|P0|P1"']
storm_window_s = 0
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # the load goes on while the server starts: the incident's read reaches up to the intake's now
    with live_world(tmp_path_factory.mktemp("serve-live"), load_for=300) as found:
        yield found


@dataclass
class Receivers:
    smtp: Recorder
    smtp_port: int
    webhook: ServiceState
    webhook_url: str


# updates every 3 s whatever the severity: fractional minutes, so the cadence shows within a test
CADENCE = 0.05


def _comms(smtp_port: int, webhook: str) -> str:
    return f"""
[comms]
retries = 0
cadence_minutes = {{ P0 = {CADENCE}, P1 = {CADENCE}, P2 = {CADENCE}, P3 = {CADENCE} }}

[[comms.channels]]
type = "webhook"
name = "status-hook"
url = "{webhook}/hook"
audiences = ["customer"]

[[comms.channels]]
type = "email"
name = "exec-mail"
host = "127.0.0.1"
port = {smtp_port}
from = "incidents@example.com"
to = ["exec@example.com"]
audiences = ["executive"]
"""


@pytest.fixture(scope="module")
def receivers() -> Iterator[Receivers]:
    with smtp_server() as (port, mails), http_service() as (base, hooks):
        yield Receivers(mails, port, hooks, base)


@pytest.fixture(scope="module")
def served(world: World, receivers: Receivers) -> Iterator[Served]:
    root = world.folder / "service"
    root.mkdir()
    # the world's [sources], a live route and the comms channels, in one file
    config = world.config.read_text() + _comms(receivers.smtp_port, receivers.webhook_url) + LIVE_ROUTE
    server = Served(root, f"sqlite:///{root / 'warroom.db'}", config=config, replay=None)
    server.make_tokens()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _get(served: Served, path: str) -> httpx.Response:
    return httpx.get(f"{served.url}{path}", headers=served.headers("viewer"), timeout=10)


def test_an_alert_opens_an_incident_diagnosed_from_the_live_sources(world: World, served: Served) -> None:
    payload = json.loads(world.alert.read_text())
    posted = httpx.post(
        f"{served.url}/api/v1/alerts/alertmanager", headers=served.headers("responder"), json=payload, timeout=10
    )
    assert posted.status_code == 202, posted.text
    [incident_id] = posted.json()["incidents"]

    def stopped() -> str | None:  # at its approval gate (or done): the diagnosis is in
        status = _get(served, f"/api/v1/incidents/{incident_id}").json()["run_status"]
        return status if status not in (None, "running") else None

    # generous: on two shared cores the live read and the workflow take from 20 s to over a minute
    wait_for(stopped, 180, "the live incident's run to reach its approval gate", every=0.5)
    diagnosis = _get(served, f"/api/v1/incidents/{incident_id}/diagnosis").json()
    candidates = diagnosis["candidates"]
    # checkout, or "cause not established" (no candidate) in some runs: the live read's last step
    # can read as a traffic drop (the open engine weakness test_live_source.py describes) — never
    # another service
    assert candidates[0]["service"] == "checkout" if candidates else not diagnosis["established"], diagnosis
    incident = _get(served, f"/api/v1/incidents/{incident_id}").json()
    assert incident["incident"]["telemetry_source"].startswith("live (prometheus ")
    # one snapshot per incident beside the store, read from the live sources for this incident
    snapshot = served.root / "snapshots" / incident_id
    info = load_info(snapshot)
    assert {s.kind for s in info.incident.sources if s.answered} == {"prometheus", "git", "deploy-log"}
    assert any(q.source == "prometheus" and q.location.startswith(world.prometheus_url) for q in info.incident.queries)
    received = json.loads((snapshot / "alert.json").read_text())
    assert received["alerts"][0]["fingerprint"] == payload["alerts"][0]["fingerprint"]
    store = Store(served.db_url)
    try:
        options = store.latest_run(incident_id).options
    finally:
        store.close()
    assert options["source"]["kind"] == "live" and options["replay_clock"] is False
    assert not [p for p in snapshot.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


def test_updates_go_out_on_cadence_while_the_incident_is_open(served: Served, receivers: Receivers) -> None:
    """After the diagnosis the run waits for an approval: the service keeps stakeholders informed
    on the cadence, over the real SMTP server and the loopback webhook, each update on the timeline."""
    [incident] = _get(served, "/api/v1/incidents").json()

    def cadence_updates() -> list[list[dict[str, Any]]] | None:
        events = _get(served, f"/api/v1/incidents/{incident['id']}/comms").json()["events"]
        by_update: dict[int, list[dict[str, Any]]] = {}
        for event in events:
            if event["source"] == SENDER:
                by_update.setdefault(event["data"]["sequence"], []).append(event)
        return [by_update[k] for k in sorted(by_update)] if len(by_update) >= 2 else None

    updates = wait_for(cadence_updates, 30, "two updates on cadence", every=0.5)
    times = [datetime.fromisoformat(update[0]["at"]) for update in updates]
    assert all(b - a >= timedelta(minutes=CADENCE) - timedelta(milliseconds=50) for a, b in itertools.pairwise(times))
    for update in updates:
        delivered = {e["data"]["channel"]: e["data"]["status"] for e in update}
        # the internal audience has no channel here: recorded as skipped, not dropped
        assert delivered == {"status-hook": "delivered", "exec-mail": "delivered", "none": "skipped"}, update
    assert len(receivers.smtp.mails) >= 2 and len(receivers.webhook.recorded("/hook")) >= 2
    assert all(m["To"] == "exec@example.com" for m in receivers.smtp.mails)


def test_sigterm_stops_the_server_with_one_line(served: Served) -> None:
    served.stop()  # SIGTERM to its process group; the run waits at its approval gate, nothing runs
    log = (served.root / f"server-{served.starts}.log").read_text()
    assert "Traceback" not in log
    assert log.strip().splitlines()[-1] == "stopped (SIGTERM); no run was in progress"


def test_a_live_route_without_live_sources_stops_the_server_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text(LIVE_ROUTE)
    done = CliRunner().invoke(app, ["serve", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'w.db'}"])
    assert done.exit_code == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: field 'sources': no live source configured")
