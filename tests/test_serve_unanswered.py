"""A live route whose sources do not answer (a Prometheus URL on a closed loopback port, a deploy
log not written yet): the incident opens, its run ends `failed` with a `run_failed` event naming
each source and its error, in the API and in the room, and the incident stays open (a failed run
is not among the runs a restart takes up: test_serve_executor.py's recovery). Once the deploy log
is there, a commander runs the investigation again: a new run reads the sources up to now and
goes on; the failed run stays as it ended."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from serve_support import Served, am_payload, free_port, wait_for

# a deploy of the alerting service shortly before its alert (am_payload's startsAt, 18:49:30)
DEPLOY = {
    "time": "2024-05-12T18:41:00Z",
    "service": "gateway",
    "version": "v2",
    "previous_version": "v1",
    "kind": "deploy",
    "description": "gateway v2",
    "deployed_by": "ci",
    "status": "succeeded",
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    closed = free_port()  # bound once and released: nothing listens there
    config = f"""
[sources]
lookback = "10m"
[sources.prometheus]
url = "http://127.0.0.1:{closed}"
[sources.deploy_log]
path = "{tmp_path / "deploys.jsonl"}"

[serve]
workers = 1

[[serve.routes]]
name = "live"
source = "live"
storm_window_s = 0
"""
    with Served(tmp_path, f"sqlite:///{tmp_path / 'warroom.db'}", config=config, replay=None).running() as server:
        yield server


def test_a_run_no_source_answers_ends_failed_and_says_why(served: Served) -> None:
    # a live route's pool is started with the server, before any alert (its workers import the agents)
    workers = [p for p in served.group() if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 1  # [serve] workers = 1
    posted = httpx.post(
        f"{served.url}/api/v1/alerts/alertmanager", headers=served.headers("responder"), json=am_payload(), timeout=10
    )
    assert posted.status_code == 202, posted.text
    [incident_id] = posted.json()["incidents"]

    assert wait_for(_ended(served, incident_id), 60, "the run to end", every=0.3) == "failed"
    shown = served.get(f"/api/v1/incidents/{incident_id}").json()
    assert shown["incident"]["status"] not in ("resolved", "closed")
    events = served.get(f"/api/v1/incidents/{incident_id}/timeline").json()["events"]
    [failed] = [e for e in events if e["kind"] == "run_failed"]
    assert "no live source answered" in failed["summary"]
    prometheus, deploys = failed["data"]["sources"]
    assert prometheus["kind"] == "prometheus" and prometheus["location"].startswith("http://127.0.0.1:")
    assert prometheus["detail"] and deploys["kind"] == "deploy-log" and deploys["detail"]  # the errors they gave
    page = _room(served, incident_id, "viewer")
    assert page.status_code == 200 and 'id="run-failed"' in page.text and "no live source answered" in page.text
    assert 'id="rerun"' not in page.text  # a viewer may not run it again
    assert 'id="rerun"' in _room(served, incident_id, "commander").text

    rerun = f"{served.url}/api/v1/incidents/{incident_id}/rerun"
    refused = httpx.post(rerun, headers=served.headers("responder"), json={"reason": "back"}, timeout=10)
    assert refused.status_code == 403
    (served.root / "deploys.jsonl").write_text(json.dumps(DEPLOY) + "\n")  # one source is back
    again = httpx.post(rerun, headers=served.headers("commander"), json={"reason": "deploy log is back"}, timeout=10)
    assert again.status_code == 202, again.text
    assert again.json()["failed_run_id"] == failed["data"]["run_id"] and again.json()["status"] == "queued"
    assert wait_for(_ended(served, incident_id), 120, "the second run to end", every=0.3) != "failed"
    events = served.get(f"/api/v1/incidents/{incident_id}/timeline").json()["events"]
    [rerun_event] = [e for e in events if e["kind"] == "rerun"]
    assert rerun_event["source"] == "commander-token" and "deploy log is back" in rerun_event["summary"]
    assert rerun_event["data"]["run_id"] == again.json()["run_id"]
    assert len([e for e in events if e["kind"] == "run_failed"]) == 1  # the second run read its sources
    # the failed run stays failed; a re-run of a run that did not fail is refused
    twice = httpx.post(rerun, headers=served.headers("commander"), json={"reason": "again"}, timeout=10)
    assert twice.status_code == 409
    audit = served.get("/api/v1/audit", role="admin").json()
    assert sorted(a["status_code"] for a in audit if a["path"].endswith("/rerun")) == [202, 403, 409]

    log = (served.root / "server-1.log").read_text()
    assert "Traceback" not in log


def _ended(served: Served, incident_id: str) -> Callable[[], str | None]:
    def ended() -> str | None:
        status = served.get(f"/api/v1/incidents/{incident_id}").json()["run_status"]
        return status if status not in (None, "running", "queued") else None

    return ended


def _room(served: Served, incident_id: str, role: str) -> httpx.Response:
    return httpx.get(
        f"{served.url}/incidents/{incident_id}", cookies={"warroom_token": served.tokens[role]}, timeout=10
    )
