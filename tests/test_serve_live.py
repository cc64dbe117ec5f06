"""`warroom serve` with a live route, against the real components of support_live.py (a real
Prometheus, a git repository, a deploy log): an Alertmanager notification POSTed to the intake
opens an incident whose run reads the live sources into a snapshot of its own and diagnoses from
it; a live route without any live source stops the server at start with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_support import Served, wait_for
from support_live import SECRET, World, live_world
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


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[Served]:
    root = world.folder / "service"
    root.mkdir()
    # the world's [sources] and a live route, in one file
    server = Served(root, f"sqlite:///{root / 'warroom.db'}", config=world.config.read_text() + LIVE_ROUTE, replay=None)
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

    def diagnosed() -> list[dict[str, Any]] | None:
        answer = _get(served, f"/api/v1/incidents/{incident_id}/diagnosis")
        return answer.json().get("candidates") if answer.status_code == 200 else None

    candidates = wait_for(diagnosed, 60, "the live incident's diagnosis", every=0.5)
    assert candidates[0]["service"] == "checkout"
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


def test_a_live_route_without_live_sources_stops_the_server_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text(LIVE_ROUTE)
    done = subprocess.run(
        [sys.executable, "-m", "warroom", "serve", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'w.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: field 'sources': no live source configured")
